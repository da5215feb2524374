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
    w.position_embd.truncate(10);
    let e = pollster::block_on(GpuBackend::from_weights(ctx, &cfg, &w, "broken")).unwrap_err();
    assert!(e.to_string().contains("position_embd"), "{e}");
}
