//! Every kernel against its CPU twin, on seeded random inputs with sizes that are not
//! multiples of the workgroup or tile sizes. Runs natively on whatever WebGPU adapter is
//! present (lavapipe in CI: `WGPU_BACKEND=vulkan XLALIGN_REQUIRE_GPU=1`).
#![cfg(not(target_arch = "wasm32"))]

mod common;

use bytes::Bytes;
use common::*;
use xlalign_core::tensor::{quantize, DType, Tensor};
use xlalign_gpu::kernels::Epilogue;
use xlalign_gpu::ops;

fn tensor(dtype: DType, rows: usize, cols: usize, values: &[f32]) -> Tensor {
    let bytes = quantize(dtype, values).expect("quantise");
    Tensor::new("w", dtype, vec![rows, cols], Bytes::from(bytes)).expect("tensor")
}

/// Runs one matmul on the GPU and checks every output against the f64 reference computed
/// from the same (dequantised) weights. The bound is ~60 f32 ulps of the output's
/// magnitude Σ|x·w|: far above honest rounding, far below any indexing or decoding slip.
fn check_matmul(dtype: DType, m: usize, k: usize, n: usize, seed: u64) {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(seed);
    let x = rng.vec(m * k, -2.0, 2.0);
    let w = tensor(dtype, n, k, &rng.vec(n * k, -0.5, 0.5));
    let bias = rng.vec(n, -1.0, 1.0);
    let got = pollster::block_on(ops::matmul(&ctx, &x, m, &w, &bias, Epilogue::None))
        .expect("gpu matmul");
    let (want, mag) = matmul_ref(&x, m, &w.to_f32_vec(), n, k, &bias);
    assert_eq!(got.len(), m * n);
    let mut worst = (0f32, 0usize);
    for i in 0..m * n {
        let err = (got[i] - want[i]).abs();
        let tol = 4e-6 * mag[i] + 1e-6;
        assert!(
            err <= tol,
            "{dtype:?} {m}×{k}→{n}: y[{}][{}] = {} vs {} (err {err}, tol {tol})",
            i / n,
            i % n,
            got[i],
            want[i]
        );
        if err / tol > worst.0 {
            worst = (err / tol, i);
        }
    }
    eprintln!(
        "{dtype:?} {m}×{k}→{n}: worst error {:.3} of tolerance",
        worst.0
    );
}

#[test]
fn matmul_q4_0_37_tokens_384_to_1536() {
    check_matmul(DType::Q4_0, 37, 384, 1536, 1);
}

#[test]
fn matmul_q8_0_37_tokens_384_to_1536() {
    check_matmul(DType::Q8_0, 37, 384, 1536, 2);
}

#[test]
fn matmul_q4_0_odd_rows_and_columns() {
    // n = 67 leaves a partial column tile, m = 5 a mostly empty row tile, k = 1536 many
    // k-steps (the FFN-down shape).
    check_matmul(DType::Q4_0, 5, 1536, 67, 3);
}

#[test]
fn matmul_f32_5_tokens_96_to_67() {
    check_matmul(DType::F32, 5, 96, 67, 4);
}

#[test]
fn matmul_f32_k_not_a_multiple_of_the_tile() {
    check_matmul(DType::F32, 7, 45, 13, 5);
}

#[test]
fn matmul_f16_odd_width() {
    // Odd k puts f16 pairs across row boundaries.
    check_matmul(DType::F16, 9, 33, 70, 6);
}

/// The fused GELU epilogue, isolated with an identity weight (x·Iᵀ is exact in f32), against
/// the exact erf form in f64 over [-12, 12] including the points where the
/// approximation's error peaks and the tails.
fn check_gelu(epi: Epilogue, exact: fn(f64) -> f64) {
    let Some(ctx) = gpu() else { return };
    let n = 64;
    let mut xs: Vec<f32> = (0..=2400).map(|i| -12.0 + i as f32 * 0.01).collect();
    xs.extend([
        0.0,
        -0.0,
        1e-6,
        -1e-6,
        3.0e-3,
        std::f32::consts::FRAC_1_SQRT_2,
        -std::f32::consts::FRAC_1_SQRT_2,
        5.5,
        -5.5,
        30.0,
        -30.0,
    ]);
    while !xs.len().is_multiple_of(n) {
        xs.push(0.5);
    }
    let m = xs.len() / n;
    let mut eye = vec![0f32; n * n];
    for i in 0..n {
        eye[i * n + i] = 1.0;
    }
    let w = Tensor::from_f32("eye", vec![n, n], &eye).unwrap();
    let got =
        pollster::block_on(ops::matmul(&ctx, &xs, m, &w, &vec![0.0; n], epi)).expect("gpu gelu");
    let mut worst = (0f64, 0f32);
    for (g, &x) in got.iter().zip(&xs) {
        let err = (*g as f64 - exact(x as f64)).abs();
        if err > worst.0 || err.is_nan() {
            worst = (err, x);
        }
    }
    eprintln!("{epi:?}: max abs error {:.3e} at x = {}", worst.0, worst.1);
    assert!(
        worst.0 <= 1e-5,
        "{epi:?} max abs error {} at x = {}",
        worst.0,
        worst.1
    );
}

#[test]
fn gelu_erf_approximation_matches_exact_erf_form() {
    check_gelu(Epilogue::GeluErf, gelu_exact);
}

#[test]
fn gelu_tanh_matches_its_formula() {
    check_gelu(Epilogue::GeluTanh, gelu_tanh_exact);
}

#[test]
fn gelu_epilogue_applies_after_the_bias_on_quantised_weights() {
    let Some(ctx) = gpu() else { return };
    let (m, k, n) = (13, 64, 50);
    let mut rng = Rng::new(7);
    let x = rng.vec(m * k, -1.0, 1.0);
    let w = tensor(DType::Q4_0, n, k, &rng.vec(n * k, -0.5, 0.5));
    let bias = rng.vec(n, -2.0, 2.0);
    let got = pollster::block_on(ops::matmul(&ctx, &x, m, &w, &bias, Epilogue::GeluErf)).unwrap();
    let (lin, mag) = matmul_ref(&x, m, &w.to_f32_vec(), n, k, &bias);
    for i in 0..m * n {
        let want = gelu_exact(lin[i] as f64) as f32;
        assert!(
            (got[i] - want).abs() <= 4e-6 * mag[i] + 1e-5,
            "y[{i}] = {} vs {want}",
            got[i]
        );
    }
}

fn check_layer_norm(rows: usize, n: usize, residual: bool, offset: f32, seed: u64) {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(seed);
    // `offset` shifts every row's mean far from zero: the one-pass E[x²] − E[x]² variance
    // would lose most digits there.
    let x: Vec<f32> = rng
        .vec(rows * n, -3.0, 3.0)
        .into_iter()
        .map(|v| v + offset)
        .collect();
    let r = rng.vec(rows * n, -1.0, 1.0);
    let g = rng.vec(n, 0.5, 1.5);
    let b = rng.vec(n, -0.5, 0.5);
    let eps = 1e-12;
    let res = residual.then_some(r.as_slice());
    let got =
        pollster::block_on(ops::layer_norm(&ctx, &x, res, n, &g, &b, eps)).expect("gpu layernorm");
    let want = layer_norm_ref(&x, res, n, &g, &b, eps);
    let (err, at) = max_abs_diff(&got, &want);
    eprintln!("layernorm {rows}×{n} residual={residual} offset={offset}: max abs error {err:.3e}");
    let tol = 2e-5 * (1.0 + offset.abs() / 3.0);
    assert!(
        err <= tol,
        "layernorm {rows}×{n}: x[{at}] = {} vs {} (err {err})",
        got[at],
        want[at]
    );
}

#[test]
fn layer_norm_with_residual_37_rows_of_384() {
    check_layer_norm(37, 384, true, 0.0, 11);
}

#[test]
fn layer_norm_without_residual_odd_width() {
    check_layer_norm(5, 97, false, 0.0, 12);
}

#[test]
fn layer_norm_is_stable_for_a_large_mean() {
    check_layer_norm(9, 384, true, 100.0, 13);
}

fn check_attention(lens: &[u32], seq_len: usize, heads: usize, d: usize, seed: u64) {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(seed);
    let hidden = heads * d;
    let b = lens.len();
    let mut qkv = rng.vec(b * seq_len * 3 * hidden, -2.0, 2.0);
    // Padding keys/values get large values: if the mask leaked, the outputs would move a lot.
    for (bi, &len) in lens.iter().enumerate() {
        for t in len as usize..seq_len {
            for c in hidden..3 * hidden {
                qkv[(bi * seq_len + t) * 3 * hidden + c] = 50.0 + rng.uniform(0.0, 50.0);
            }
        }
    }
    let got = pollster::block_on(ops::attention(&ctx, &qkv, lens, seq_len, heads, d))
        .expect("gpu attention");
    let want = attention_ref(&qkv, lens, seq_len, heads, d);
    let (err, at) = max_abs_diff(&got, &want);
    eprintln!("attention lens={lens:?} L={seq_len} heads={heads} d={d}: max abs error {err:.3e}");
    assert!(
        got.iter().all(|v| v.is_finite()),
        "non-finite attention output"
    );
    assert!(
        err <= 2e-5,
        "attention: ctx[{at}] = {} vs {} (err {err})",
        got[at],
        want[at]
    );
}

#[test]
fn attention_masks_padding_keys() {
    // 37 and 70 are not multiples of the query or key tile; length 1 is a lone token.
    check_attention(&[37, 5, 1, 36], 37, 3, 32, 21);
    check_attention(&[70, 33, 64], 70, 2, 32, 22);
}

#[test]
fn attention_odd_head_size() {
    check_attention(&[9, 4], 9, 4, 20, 23);
    check_attention(&[13, 2, 13], 13, 1, 64, 24);
}

#[test]
fn attention_is_stable_for_large_scores() {
    // Scores of several hundred would overflow exp() without the running maximum.
    let Some(ctx) = gpu() else { return };
    let (seq_len, heads, d) = (17, 2, 32);
    let mut rng = Rng::new(25);
    let qkv: Vec<f32> = rng.vec(2 * seq_len * 3 * heads * d, -20.0, 20.0);
    let lens = [17, 9];
    let got = pollster::block_on(ops::attention(&ctx, &qkv, &lens, seq_len, heads, d)).unwrap();
    let want = attention_ref(&qkv, &lens, seq_len, heads, d);
    let (err, at) = max_abs_diff(&got, &want);
    assert!(
        err <= 1e-3,
        "ctx[{at}] = {} vs {} (err {err})",
        got[at],
        want[at]
    );
}

fn check_embed(dtype: DType, vocab: usize, hidden: usize, rows_per_part: Option<usize>, seed: u64) {
    let Some(ctx) = gpu() else { return };
    let mut rng = Rng::new(seed);
    let table = tensor(dtype, vocab, hidden, &rng.vec(vocab * hidden, -1.0, 1.0));
    let (seq_len, batch, pos_offset) = (13, 3, 2);
    let position = rng.vec((seq_len + pos_offset) * hidden, -0.1, 0.1);
    let token_type = rng.vec(hidden, -0.1, 0.1);
    let mut ids: Vec<u32> = (0..seq_len * batch)
        .map(|_| rng.below(vocab as u32))
        .collect();
    ids[0] = 0;
    ids[1] = vocab as u32 - 1;
    let got = pollster::block_on(ops::embed(
        &ctx,
        &table,
        &position,
        &token_type,
        &ids,
        seq_len,
        pos_offset,
        rows_per_part,
    ))
    .expect("gpu embed");
    let deq = table.to_f32_vec();
    let mut want = vec![0f32; ids.len() * hidden];
    for (t, &id) in ids.iter().enumerate() {
        let p = t % seq_len + pos_offset;
        for i in 0..hidden {
            want[t * hidden + i] =
                deq[id as usize * hidden + i] + position[p * hidden + i] + token_type[i];
        }
    }
    let (err, at) = max_abs_diff(&got, &want);
    assert!(
        err <= 1e-6,
        "{dtype:?} embed: x[{at}] = {} vs {} (err {err})",
        got[at],
        want[at]
    );
}

#[test]
fn embedding_gather_q4_0_split_table() {
    check_embed(DType::Q4_0, 1000, 96, Some(333), 31);
}

#[test]
fn embedding_gather_q8_0() {
    check_embed(DType::Q8_0, 777, 64, None, 32);
}

#[test]
fn embedding_gather_f16_odd_width_split_table() {
    check_embed(DType::F16, 501, 97, Some(100), 33);
}

#[test]
fn embedding_gather_f32() {
    check_embed(DType::F32, 300, 45, Some(299), 34);
}

#[test]
fn pooling_mean_and_first_token() {
    let Some(ctx) = gpu() else { return };
    let (seq_len, hidden) = (11, 97);
    let lens = [11u32, 4, 1];
    let mut rng = Rng::new(41);
    let x = rng.vec(lens.len() * seq_len * hidden, -1.0, 1.0);
    for first in [false, true] {
        let got = pollster::block_on(ops::pool(&ctx, &x, &lens, seq_len, hidden, first))
            .expect("gpu pool");
        for (b, &len) in lens.iter().enumerate() {
            let n = if first { 1 } else { len as usize };
            let mut v: Vec<f64> = (0..hidden)
                .map(|c| {
                    (0..n)
                        .map(|t| x[(b * seq_len + t) * hidden + c] as f64)
                        .sum::<f64>()
                        / n as f64
                })
                .collect();
            let norm = v.iter().map(|a| a * a).sum::<f64>().max(1e-12).sqrt();
            v.iter_mut().for_each(|a| *a /= norm);
            let want: Vec<f32> = v.iter().map(|a| *a as f32).collect();
            let (err, at) = max_abs_diff(&got[b * hidden..(b + 1) * hidden], &want);
            assert!(err <= 1e-6, "pool first={first} seq {b}: [{at}] err {err}");
        }
    }
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    let Some(ctx) = gpu() else { return };
    let w = Tensor::from_f32("w", vec![3, 4], &[0.0; 12]).unwrap();
    assert!(pollster::block_on(ops::matmul(
        &ctx,
        &[0.0; 7],
        2,
        &w,
        &[0.0; 3],
        Epilogue::None
    ))
    .is_err());
    assert!(pollster::block_on(ops::attention(&ctx, &[0.0; 6], &[2], 1, 1, 1)).is_err());
    assert!(pollster::block_on(ops::pool(&ctx, &[0.0; 4], &[0], 2, 2, false)).is_err());
}
