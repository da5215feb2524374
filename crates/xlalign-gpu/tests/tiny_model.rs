//! The whole GPU encoder against the CPU backend on small random encoders: every storage
//! type, both GELU forms, mean and first-token pooling, head and FFN sizes that are not
//! multiples of the kernels' tiles, and batches mixing lengths (the padding mask). Needs no
//! model file.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::*;
use xlalign_core::backend::Backend;
use xlalign_core::cpu::CpuBackend;
use xlalign_core::model::{Activation, Pooling};
use xlalign_core::tensor::DType;
use xlalign_gpu::GpuBackend;

fn sequences(vocab: u32, seed: u64) -> Vec<Vec<u32>> {
    let mut rng = Rng::new(seed);
    [1usize, 7, 33, 40, 12, 2]
        .iter()
        .map(|&n| (0..n).map(|_| rng.below(vocab)).collect())
        .collect()
}

/// Runs every layer of a random encoder on the GPU (weights as stored) and on the CPU
/// (weights dequantised to f32, or as stored when `cpu_f32` is false); `min_cos` bounds the
/// per-token cosine, `max_err` the absolute difference (LayerNorm outputs are O(1)).
fn check(
    dtype: DType,
    activation: Activation,
    pooling: Pooling,
    cpu_f32: bool,
    min_cos: f64,
    max_err: f32,
    seed: u64,
) {
    let Some(ctx) = gpu() else { return };
    let (cfg, w) = tiny_model(dtype, activation, pooling, seed);
    let gpu =
        pollster::block_on(GpuBackend::from_weights(ctx, &cfg, &w, "tiny")).expect("gpu backend");
    let cpu_w = if cpu_f32 { dequantized(&w) } else { w.clone() };
    let cpu = CpuBackend::from_weights(&cfg, &cpu_w).expect("cpu backend");
    let seqs = sequences(cfg.vocab as u32, seed);
    let refs: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
    let layers: Vec<usize> = (0..=cfg.layers).collect();
    let got = pollster::block_on(gpu.forward(&refs, &layers)).expect("gpu forward");
    let want = pollster::block_on(cpu.forward(&refs, &layers)).expect("cpu forward");
    let (mut worst_cos, mut worst_err) = (1f64, 0f32);
    for (s, (g, c)) in got.iter().zip(&want).enumerate() {
        for (l, (gl, cl)) in g.layers.iter().zip(&c.layers).enumerate() {
            assert_eq!(gl.dim(), (seqs[s].len(), cfg.hidden));
            for (t, (gr, cr)) in gl.rows().into_iter().zip(cl.rows()).enumerate() {
                let (gr, cr) = (gr.as_slice().unwrap(), cr.as_slice().unwrap());
                let cos = cosine(gr, cr);
                let (err, _) = max_abs_diff(gr, cr);
                worst_cos = worst_cos.min(cos);
                worst_err = worst_err.max(err);
                assert!(
                    cos >= min_cos && err <= max_err,
                    "{dtype:?} layer {l} seq {s} token {t}: cosine {cos}, max error {err}"
                );
            }
        }
    }
    // Pooled on the GPU vs pooled here from the CPU's last layer.
    let pooled = pollster::block_on(gpu.forward_pooled(&refs)).expect("gpu pooled");
    for (s, p) in pooled.iter().enumerate() {
        let last = &want[s].layers[cfg.layers];
        let mut v = match pooling {
            Pooling::Mean => last.mean_axis(ndarray::Axis(0)).unwrap().to_vec(),
            Pooling::Cls => last.row(0).to_vec(),
        };
        xlalign_core::embed::l2_normalize(&mut v);
        let cos = cosine(p, &v);
        assert!(
            cos >= min_cos,
            "{dtype:?} {pooling:?} pooled seq {s}: cosine {cos}"
        );
    }
    eprintln!("{dtype:?} {activation:?} {pooling:?}: min cosine {worst_cos:.7}, max abs error {worst_err:.2e}");
}

// Against f32 CPU math only rounding differs, so the bounds are tight; a decoding or
// indexing slip anywhere moves whole rows.

#[test]
fn f32_weights() {
    check(
        DType::F32,
        Activation::GeluErf,
        Pooling::Mean,
        true,
        0.999999,
        1e-4,
        1,
    );
}

#[test]
fn f16_weights_with_tanh_gelu_and_first_token_pooling() {
    check(
        DType::F16,
        Activation::GeluTanh,
        Pooling::Cls,
        true,
        0.999999,
        1e-4,
        2,
    );
}

#[test]
fn q8_0_weights() {
    check(
        DType::Q8_0,
        Activation::GeluErf,
        Pooling::Mean,
        true,
        0.999999,
        1e-4,
        3,
    );
}

#[test]
fn q4_0_weights() {
    check(
        DType::Q4_0,
        Activation::GeluErf,
        Pooling::Mean,
        true,
        0.999999,
        1e-4,
        4,
    );
}

#[test]
fn q4_0_weights_against_the_cpu_int8_path() {
    // The CPU backend as it runs quantised models (int8 activation blocks before every
    // quantised matmul): close, not equal.
    check(
        DType::Q4_0,
        Activation::GeluErf,
        Pooling::Mean,
        false,
        0.999,
        0.1,
        4,
    );
}

#[test]
fn inconsistent_weights_are_refused() {
    let Some(ctx) = gpu() else { return };
    let (cfg, mut w) = tiny_model(DType::F32, Activation::GeluErf, Pooling::Mean, 5);
    w.position_embd = w.position_embd[..10].into();
    let e = pollster::block_on(GpuBackend::from_weights(ctx, &cfg, &w, "broken")).unwrap_err();
    assert!(e.to_string().contains("position_embd"), "{e}");
}

/// `align_sequences` (the states stay on the GPU; units averaged there by `gather.wgsl`)
/// against reading the states back, averaging on the CPU and aligning those vectors: the
/// same links and cosines, over several passes (a small token budget splits the batch) and
/// units of one and of several rows.
#[test]
fn units_gathered_on_the_gpu_match_the_read_back_states() {
    use ndarray::{Array2, Axis};
    use xlalign_core::align::{cosine_matrix, AlignOptions, Direction, Method};
    use xlalign_core::backend::{SequencePair, UnitPair};

    let Some(ctx) = gpu() else { return };
    let (cfg, w) = tiny_model(DType::Q8_0, Activation::GeluErf, Pooling::Mean, 900);
    let mut gpu = pollster::block_on(GpuBackend::from_weights(ctx.clone(), &cfg, &w, "tiny"))
        .expect("gpu backend");
    gpu.set_max_tokens_per_pass(1);
    let seqs = sequences(cfg.vocab as u32, 901);
    let refs: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
    let mut rng = Rng::new(902);
    // Random groups of 1–3 rows of a sequence (overlapping, as shared CJK pieces are).
    let mut groups = |seq: usize, n: usize| -> Vec<Vec<usize>> {
        let len = refs[seq].len() as u32;
        (0..n)
            .map(|_| {
                (0..1 + rng.below(3))
                    .map(|_| rng.below(len) as usize)
                    .collect()
            })
            .collect()
    };
    let units = [
        (2, 3, groups(2, 29), groups(3, 37)),
        (0, 4, groups(0, 1), groups(4, 11)),
        (5, 1, groups(5, 3), groups(1, 5)),
    ];
    let pairs: Vec<SequencePair> = units
        .iter()
        .map(|(s, t, su, tu)| SequencePair {
            src: *s,
            tgt: *t,
            src_units: su,
            tgt_units: tu,
        })
        .collect();
    let mean = |states: &Array2<f32>, groups: &[Vec<usize>]| {
        let mut out = Array2::<f32>::zeros((groups.len(), states.ncols()));
        for (r, rows) in groups.iter().enumerate() {
            out.row_mut(r)
                .assign(&states.select(Axis(0), rows).mean_axis(Axis(0)).unwrap());
        }
        out
    };
    for (layer, opts) in [
        (0, AlignOptions::new(Method::Argmax)),
        (
            2,
            AlignOptions {
                direction: Direction::Union,
                threshold: Some(0.1),
                ..AlignOptions::new(Method::Softmax)
            },
        ),
    ] {
        // Pooling needs the last layer, which the second case runs to.
        let pooled = layer == 2;
        let done = pollster::block_on(gpu.align_sequences(&refs, layer, pooled, &pairs, &opts))
            .expect("align_sequences")
            .expect("the GPU answers for this method");
        if pooled {
            let want = pollster::block_on(gpu.forward_pooled(&refs)).expect("pooled");
            assert_eq!(
                done.pooled, want,
                "pooled vectors as forward_pooled gives them"
            );
        } else {
            assert!(done.pooled.is_empty());
        }
        let got = done.pairs;
        let states = pollster::block_on(gpu.forward(&refs, &[layer])).expect("forward");
        let vectors: Vec<(Array2<f32>, Array2<f32>)> = units
            .iter()
            .map(|(s, t, su, tu)| {
                (
                    mean(&states[*s].layers[0], su),
                    mean(&states[*t].layers[0], tu),
                )
            })
            .collect();
        let host: Vec<UnitPair> = vectors
            .iter()
            .map(|(s, t)| UnitPair {
                src: s.view(),
                tgt: t.view(),
            })
            .collect();
        let want = pollster::block_on(xlalign_gpu::align_pairs_on_gpu(&ctx, &host, &opts))
            .expect("aligning read-back units");
        for (k, ((g, w), (s, t))) in got.iter().zip(&want).zip(&vectors).enumerate() {
            let key = |l: &xlalign_core::align::UnitLink| (l.row, l.col);
            assert_eq!(
                g.links.iter().map(key).collect::<Vec<_>>(),
                w.links.iter().map(key).collect::<Vec<_>>(),
                "pair {k}, layer {layer}"
            );
            let cpu = cosine_matrix(s.view(), t.view());
            for (a, b) in g.cosine.iter().zip(&cpu) {
                assert!((a - b).abs() < 1e-5, "pair {k}: cosine {a} vs {b}");
            }
            assert!(!g.links.is_empty(), "pair {k} has links");
        }
    }
    // Units pointing outside their sequence are refused.
    let bad = [vec![0usize, 99]];
    let e = pollster::block_on(gpu.align_sequences(
        &refs,
        1,
        false,
        &[SequencePair {
            src: 0,
            tgt: 1,
            src_units: &bad,
            tgt_units: &bad,
        }],
        &AlignOptions::default(),
    ))
    .unwrap_err();
    assert!(e.to_string().contains("rows"), "{e}");
}

/// Progressive loading uploads a table with absent (zero) rows and writes the rows in later:
/// the hidden states must then be exactly those of uploading the whole table, for every
/// storage type (the quantised ones write a part's quants and scales separately).
#[test]
fn rows_written_after_upload_match_the_full_upload() {
    use xlalign_core::backend::WriteRows;
    use xlalign_core::table::RowTable;
    let Some(ctx) = gpu() else { return };
    for dtype in [DType::Q4_0, DType::Q8_0, DType::F16, DType::F32] {
        let (cfg, w) = tiny_model(dtype, Activation::GeluErf, Pooling::Mean, 17);
        let mut partial = w.clone();
        partial.token_embd =
            RowTable::zeroed("token_embd", dtype, vec![cfg.vocab, cfg.hidden]).unwrap();
        let full = pollster::block_on(GpuBackend::from_weights(ctx.clone(), &cfg, &w, "full"))
            .expect("gpu backend");
        let gpu = pollster::block_on(GpuBackend::from_weights(
            ctx.clone(),
            &cfg,
            &partial,
            "rows",
        ))
        .expect("gpu backend");
        let seqs = sequences(cfg.vocab as u32, 17);
        let refs: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
        let layers: Vec<usize> = (0..=cfg.layers).collect();
        let want = pollster::block_on(full.forward(&refs, &layers)).expect("forward");
        let before = pollster::block_on(gpu.forward(&refs, &layers)).expect("forward");
        assert_ne!(
            before[2].layers[0], want[2].layers[0],
            "{dtype:?}: zero rows differ"
        );

        // Two writes that split the table at a row that is not a round number.
        let bytes = w.token_embd.read().bytes().to_vec();
        let rb = w.token_embd.row_bytes();
        gpu.write_token_rows(137, &bytes[137 * rb..]).unwrap();
        gpu.write_token_rows(0, &bytes[..137 * rb]).unwrap();
        let got = pollster::block_on(gpu.forward(&refs, &layers)).expect("forward");
        for (s, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.layers, w.layers, "{dtype:?} sequence {s}");
        }
        assert!(gpu
            .write_token_rows(cfg.vocab - 1, &bytes[..2 * rb])
            .is_err());
        assert!(gpu.write_token_rows(0, &bytes[..rb - 1]).is_err());
    }
}
