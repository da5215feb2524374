//! Whole-encoder tests on small random models, against a textbook f64 implementation.

use bytes::Bytes;

use super::*;
use crate::backend::{WriteBlocks, WriteRows};
use crate::model::{Activation, EncoderLayer, LayerNorm, Linear, Pooling};
use crate::table::RowTable;
use crate::tensor::{quantize, DType, Tensor};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

fn config(activation: Activation) -> EncoderConfig {
    EncoderConfig {
        hidden: 64,
        layers: 2,
        heads: 4,
        ff: 96,
        vocab: 50,
        max_positions: 20,
        type_vocab: 2,
        layer_norm_eps: 1e-12,
        activation,
        position_offset: 2,
        pooling: Pooling::Mean,
    }
}

fn tensor(dtype: DType, shape: Vec<usize>, vals: &[f32]) -> Tensor {
    Tensor::new(
        "t",
        dtype,
        shape,
        Bytes::from(quantize(dtype, vals).unwrap()),
    )
    .unwrap()
}

fn weights(c: &EncoderConfig, dtype: DType, seed: u64) -> EncoderWeights {
    let mut r = Rng(seed);
    let h = c.hidden;
    let mut linear = |out: usize, inp: usize| Linear {
        weight: tensor(dtype, vec![out, inp], &r.vec(out * inp, 0.5)),
        bias: r.vec(out, 0.2),
    };
    let mut layers = Vec::new();
    for _ in 0..c.layers {
        let (query, key, value, attn_output) =
            (linear(h, h), linear(h, h), linear(h, h), linear(h, h));
        let (ffn_up, ffn_down) = (linear(c.ff, h), linear(h, c.ff));
        layers.push((query, key, value, attn_output, ffn_up, ffn_down));
    }
    let mut norm = || LayerNorm {
        weight: r.vec(h, 0.4).iter().map(|v| v + 1.0).collect(),
        bias: r.vec(h, 0.2),
    };
    let layers = layers
        .into_iter()
        .map(
            |(query, key, value, attn_output, ffn_up, ffn_down)| EncoderLayer {
                query,
                key,
                value,
                attn_output,
                attn_norm: norm(),
                ffn_up,
                ffn_down,
                output_norm: norm(),
            },
        )
        .collect();
    let embd_norm = norm();
    EncoderWeights {
        token_embd: RowTable::from_tensor(tensor(
            dtype,
            vec![c.vocab, h],
            &r.vec(c.vocab * h, 2.0),
        ))
        .unwrap(),
        position_embd: r.vec(c.max_positions * h, 0.5).into(),
        token_types: r.vec(c.type_vocab * h, 0.5),
        embd_norm,
        layers,
    }
}

/// The encoder as written in the model description, in f64 on dequantised weights.
fn reference(c: &EncoderConfig, w: &EncoderWeights, ids: &[u32], upto: usize) -> Vec<Vec<f64>> {
    let h = c.hidden;
    let ln = |x: &mut Vec<Vec<f64>>, n: &LayerNorm| {
        for row in x.iter_mut() {
            let mean = row.iter().sum::<f64>() / h as f64;
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / h as f64;
            for (j, v) in row.iter_mut().enumerate() {
                *v = (*v - mean) / (var + c.layer_norm_eps as f64).sqrt() * n.weight[j] as f64
                    + n.bias[j] as f64;
            }
        }
    };
    let lin = |x: &Vec<Vec<f64>>, l: &Linear| -> Vec<Vec<f64>> {
        let wf = l.weight.to_f32_vec();
        let (out, inp) = (l.weight.shape[0], l.weight.shape[1]);
        x.iter()
            .map(|row| {
                (0..out)
                    .map(|o| {
                        (0..inp)
                            .map(|i| row[i] * wf[o * inp + i] as f64)
                            .sum::<f64>()
                            + l.bias[o] as f64
                    })
                    .collect()
            })
            .collect()
    };
    let emb = w.token_embd.to_f32_vec();
    let mut x: Vec<Vec<f64>> = ids
        .iter()
        .enumerate()
        .map(|(t, &id)| {
            (0..h)
                .map(|j| {
                    emb[id as usize * h + j] as f64
                        + w.position_embd[(c.position_offset + t) * h + j] as f64
                        + w.token_types[j] as f64
                })
                .collect()
        })
        .collect();
    ln(&mut x, &w.embd_norm);
    let (heads, d) = (c.heads, c.head_dim());
    for l in &w.layers[..upto] {
        let (q, k, v) = (lin(&x, &l.query), lin(&x, &l.key), lin(&x, &l.value));
        let n = ids.len();
        let mut ctx = vec![vec![0f64; h]; n];
        for hd in 0..heads {
            for i in 0..n {
                let s: Vec<f64> = (0..n)
                    .map(|j| {
                        (0..d)
                            .map(|e| q[i][hd * d + e] * k[j][hd * d + e])
                            .sum::<f64>()
                            / (d as f64).sqrt()
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::MIN, f64::max);
                let z: f64 = s.iter().map(|v| (v - m).exp()).sum();
                for e in 0..d {
                    ctx[i][hd * d + e] = (0..n)
                        .map(|j| (s[j] - m).exp() / z * v[j][hd * d + e])
                        .sum();
                }
            }
        }
        let a = lin(&ctx, &l.attn_output);
        for (xr, ar) in x.iter_mut().zip(&a) {
            xr.iter_mut().zip(ar).for_each(|(p, q)| *p += q);
        }
        ln(&mut x, &l.attn_norm);
        let mut f = lin(&x, &l.ffn_up);
        for v in f.iter_mut().flatten() {
            *v = match c.activation {
                Activation::GeluErf => kernels::gelu(*v as f32) as f64,
                Activation::GeluTanh => kernels::gelu_tanh(*v as f32) as f64,
            };
        }
        let o = lin(&f, &l.ffn_down);
        for (xr, or) in x.iter_mut().zip(&o) {
            xr.iter_mut().zip(or).for_each(|(p, q)| *p += q);
        }
        ln(&mut x, &l.output_norm);
    }
    x
}

fn cosine(a: &[f32], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * y).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn sequences() -> Vec<Vec<u32>> {
    vec![
        vec![0, 5, 9, 2],
        vec![0, 17, 3, 3, 44, 49, 8, 1, 2],
        vec![7],
        (0..18).map(|i| (i * 7 % 50) as u32).collect(),
    ]
}

#[test]
fn forward_matches_the_textbook_encoder() {
    for (dtype, act, min_cos) in [
        (DType::F32, Activation::GeluErf, 0.999_999),
        (DType::F16, Activation::GeluTanh, 0.999_999),
        // Int8 activations cost a little accuracy, as in the reference encoder.
        (DType::Q8_0, Activation::GeluErf, 0.9995),
        (DType::Q4_0, Activation::GeluErf, 0.9995),
    ] {
        let c = config(act);
        let w = weights(&c, dtype, 42);
        let seqs = sequences();
        let refs: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
        for isa in Isa::available() {
            let cpu = CpuBackend::from_weights(&c, &w).unwrap().with_isa(isa);
            let out = cpu.forward_sync(&refs, &[2, 0, 1]).unwrap();
            for (s, o) in seqs.iter().zip(&out) {
                for (k, &layer) in [2usize, 0, 1].iter().enumerate() {
                    let want = reference(&c, &w, s, layer);
                    let got = &o.layers[k];
                    assert_eq!(got.dim(), (s.len(), c.hidden));
                    for (t, row) in want.iter().enumerate() {
                        let cos = cosine(got.row(t).as_slice().unwrap(), row);
                        assert!(
                            cos >= min_cos,
                            "{dtype:?} {isa} layer {layer} token {t}: cosine {cos}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn batching_and_threads_do_not_change_results() {
    let c = config(Activation::GeluErf);
    let w = weights(&c, DType::Q4_0, 7);
    let cpu = CpuBackend::from_weights(&c, &w).unwrap();
    let seqs = sequences();
    let refs: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
    let batch = cpu.forward_sync(&refs, &[2]).unwrap();
    for (s, b) in refs.iter().zip(&batch) {
        let alone = cpu.forward_sync(&[s], &[2]).unwrap();
        assert_eq!(alone[0].layers[0], b.layers[0]);
    }
    #[cfg(feature = "parallel")]
    {
        let one = cpu
            .clone()
            .with_threads(1)
            .unwrap()
            .forward_sync(&refs, &[2])
            .unwrap();
        let three = cpu
            .clone()
            .with_threads(3)
            .unwrap()
            .forward_sync(&refs, &[2])
            .unwrap();
        for ((a, b), c) in one.iter().zip(&three).zip(&batch) {
            assert_eq!(a.layers[0], b.layers[0]);
            assert_eq!(a.layers[0], c.layers[0]);
        }
    }
}

#[test]
fn only_requested_layers_come_back_in_order() {
    let c = config(Activation::GeluErf);
    let w = weights(&c, DType::Q8_0, 3);
    let cpu = CpuBackend::from_weights(&c, &w).unwrap();
    let ids = [0u32, 4, 2];
    let out = cpu.forward_sync(&[&ids], &[1, 0, 1]).unwrap();
    assert_eq!(out[0].layers.len(), 3);
    assert_eq!(out[0].layers[0], out[0].layers[2]);
    assert_ne!(out[0].layers[0], out[0].layers[1]);
    assert!(cpu.forward_sync(&[&ids], &[]).unwrap()[0].layers.is_empty());
}

#[test]
fn bad_requests_are_errors_not_panics() {
    let c = config(Activation::GeluErf);
    let w = weights(&c, DType::Q4_0, 5);
    let cpu = CpuBackend::from_weights(&c, &w).unwrap();
    let msg =
        |seqs: &[&[u32]], layers: &[usize]| cpu.forward_sync(seqs, layers).unwrap_err().to_string();
    assert!(msg(&[&[0, 50, 2]], &[1]).contains("outside the vocabulary"));
    assert!(msg(&[&[]], &[1]).contains("empty"));
    // max_positions 20 minus position_offset 2 leaves 18 positions.
    assert!(msg(&[&[1; 19]], &[1]).contains("at most 18"));
    assert!(msg(&[&[1, 2]], &[3]).contains("layer 3"));
    assert!(cpu.forward_sync(&[&[1; 18]], &[1]).is_ok());
    // A configuration made by hand whose position offset leaves no position: every sequence
    // is refused (the length did not wrap around).
    let odd = EncoderConfig {
        position_offset: 30,
        ..c.clone()
    };
    if let Ok(cpu) = CpuBackend::from_weights(&odd, &w) {
        let e = cpu
            .forward_sync(&[&[0, 1, 2]], &[1])
            .unwrap_err()
            .to_string();
        assert!(e.contains("at most 0"), "{e}");
    }
}

#[test]
fn mismatched_weights_are_rejected() {
    let c = config(Activation::GeluErf);
    let mut w = weights(&c, DType::Q4_0, 5);
    w.layers.push(w.layers[0].clone());
    assert!(CpuBackend::from_weights(&c, &w).is_err());
    let mut w = weights(&c, DType::Q4_0, 5);
    w.layers[0].attn_norm.bias.pop();
    assert!(CpuBackend::from_weights(&c, &w).is_err());
    let mut w = weights(&c, DType::Q4_0, 5);
    w.layers[1].ffn_up = w.layers[1].ffn_down.clone();
    assert!(CpuBackend::from_weights(&c, &w).is_err());
}

#[test]
fn info_names_the_instruction_set() {
    let c = config(Activation::GeluErf);
    let cpu = CpuBackend::from_weights(&c, &weights(&c, DType::Q4_0, 1))
        .unwrap()
        .with_isa(Isa::scalar());
    let info = cpu.info();
    assert_eq!(info.kind, "cpu");
    assert!(info.device.contains("scalar"), "{}", info.device);
}

#[test]
fn rows_written_into_a_running_backend_encode_like_the_full_table() {
    let c = config(Activation::GeluErf);
    for dtype in [DType::Q4_0, DType::F16] {
        let full = weights(&c, dtype, 11);
        let mut partial = full.clone();
        partial.token_embd =
            RowTable::zeroed("token_embd", dtype, vec![c.vocab, c.hidden]).unwrap();
        let want = CpuBackend::from_weights(&c, &full).unwrap();
        let cpu = CpuBackend::from_weights(&c, &partial).unwrap();
        let seqs = sequences();
        let refs: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
        let layers = [0, c.layers];
        let want = want.forward_sync(&refs, &layers).unwrap();
        let before = cpu.forward_sync(&refs, &layers).unwrap();
        assert_ne!(
            before[0].layers[0], want[0].layers[0],
            "zero rows encode differently"
        );

        // Rows arrive in pages, through the backend and through the model's table alike.
        let bytes = full.token_embd.read().bytes().to_vec();
        let rb = full.token_embd.row_bytes();
        cpu.write_token_rows(0, &bytes[..20 * rb]).unwrap();
        partial
            .token_embd
            .write_rows(20, &bytes[20 * rb..])
            .unwrap();
        let got = cpu.forward_sync(&refs, &layers).unwrap();
        for (s, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.layers, w.layers, "{dtype:?} sequence {s}");
        }
        assert!(cpu.write_token_rows(c.vocab - 1, &bytes[..2 * rb]).is_err());
    }
}

#[test]
fn an_absent_block_is_never_run_and_added_blocks_encode_like_the_full_model() {
    let c = config(Activation::GeluErf);
    let full = weights(&c, DType::Q4_0, 11);
    let whole = CpuBackend::from_weights(&c, &full).unwrap();
    let mut first = full.clone();
    let deeper = first.layers.split_off(1);
    let cpu = CpuBackend::from_weights(&c, &first).unwrap();
    let clone = cpu.clone();
    assert_eq!(cpu.blocks_present(), 1);
    let ids: &[u32] = &[0, 7, 31, 2];
    // Layers 0 and 1 need at most block 0; layer 2 needs block 1, which is absent.
    assert_eq!(
        cpu.forward_sync(&[ids], &[0, 1]).unwrap()[0].layers,
        whole.forward_sync(&[ids], &[0, 1]).unwrap()[0].layers
    );
    let e = cpu.forward_sync(&[ids], &[1, 2]).unwrap_err().to_string();
    assert!(e.contains("block 1 has not arrived"), "{e}");
    // Out of order, twice, or past the end: errors, and nothing changes.
    assert!(cpu.add_block(2, &deeper[0]).is_err());
    assert!(cpu.add_block(0, &deeper[0]).is_err());
    assert_eq!(cpu.blocks_present(), 1);
    // A malformed block is refused.
    let mut bad = deeper[0].clone();
    bad.output_norm.bias.pop();
    assert!(cpu.add_block(1, &bad).is_err());
    cpu.add_block(1, &deeper[0]).unwrap();
    assert!(cpu.add_block(2, &deeper[0]).is_err(), "past the last block");
    // Every clone runs the added block, with the full model's result.
    assert_eq!(clone.blocks_present(), 2);
    assert_eq!(
        clone.forward_sync(&[ids], &[2]).unwrap()[0].layers,
        whole.forward_sync(&[ids], &[2]).unwrap()[0].layers
    );
}
