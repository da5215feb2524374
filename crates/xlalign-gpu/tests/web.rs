//! The kernels and a whole (small, random) encoder in a real browser's WebGPU: the same
//! checks as the native tests, compiled by the browser's own WGSL compiler (Tint in
//! Chromium) instead of naga. Needs WebGPU enabled (webdriver.json passes
//! `--enable-unsafe-webgpu`):
//!
//! ```text
//! CHROMEDRIVER=/usr/bin/chromedriver \
//! CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
//! WASM_BINDGEN_TEST_WEBDRIVER_JSON=$PWD/crates/xlalign-gpu/webdriver.json \
//!   cargo test -p xlalign-gpu --target wasm32-unknown-unknown --test web
//! ```
#![cfg(target_arch = "wasm32")]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use ndarray::Array2;
use wasm_bindgen_test::*;
use xlalign_core::align::methods::extract;
use xlalign_core::align::{cosine_matrix, AlignOptions, Method};
use xlalign_core::backend::Backend;
use xlalign_core::cpu::CpuBackend;
use xlalign_core::model::{Activation, Pooling};
use xlalign_core::tensor::{quantize, DType, Tensor};
use xlalign_gpu::kernels::Epilogue;
use xlalign_gpu::{align_on_gpu, ops, GpuBackend, GpuContext};

wasm_bindgen_test_configure!(run_in_browser);

/// A browser without WebGPU is a failure here: this suite exists to test WebGPU.
async fn ctx() -> Arc<GpuContext> {
    match GpuContext::new().await {
        Ok(c) => {
            web_sys_log(&format!("WebGPU adapter: {}", c.describe()));
            c
        }
        Err(e) => panic!(
            "no WebGPU in this browser ({e}); run with webdriver.json (--enable-unsafe-webgpu)"
        ),
    }
}

fn web_sys_log(s: &str) {
    wasm_bindgen_test::console_log!("{s}");
}

#[wasm_bindgen_test]
async fn quantised_matmul_with_gelu() {
    let ctx = ctx().await;
    for (dtype, seed) in [(DType::Q4_0, 1), (DType::Q8_0, 2), (DType::F16, 3)] {
        let (m, k, n) = (37, 96, 67);
        let mut rng = Rng::new(seed);
        let x = rng.vec(m * k, -2.0, 2.0);
        let wv = rng.vec(n * k, -0.5, 0.5);
        let w = Tensor::new(
            "w",
            dtype,
            vec![n, k],
            Bytes::from(quantize(dtype, &wv).unwrap()),
        )
        .unwrap();
        let bias = rng.vec(n, -1.0, 1.0);
        let got = ops::matmul(&ctx, &x, m, &w, &bias, Epilogue::GeluErf)
            .await
            .expect("gpu matmul");
        let (lin, mag) = matmul_ref(&x, m, &w.to_f32_vec(), n, k, &bias);
        for i in 0..m * n {
            let want = gelu_exact(lin[i] as f64) as f32;
            assert!(
                (got[i] - want).abs() <= 4e-6 * mag[i] + 1e-5,
                "{dtype:?} y[{i}] = {} vs {want}",
                got[i]
            );
        }
    }
}

#[wasm_bindgen_test]
async fn attention_layer_norm_and_pooling() {
    let ctx = ctx().await;
    let (seq_len, heads, d) = (37, 3, 32);
    let lens = [37u32, 5, 1];
    let mut rng = Rng::new(10);
    let qkv = rng.vec(lens.len() * seq_len * 3 * heads * d, -2.0, 2.0);
    let got = ops::attention(&ctx, &qkv, &lens, seq_len, heads, d)
        .await
        .expect("attention");
    let (err, at) = max_abs_diff(&got, &attention_ref(&qkv, &lens, seq_len, heads, d));
    assert!(err <= 2e-5, "attention ctx[{at}] err {err}");

    let n = 97;
    let x = rng.vec(5 * n, -3.0, 3.0);
    let r = rng.vec(5 * n, -1.0, 1.0);
    let g = rng.vec(n, 0.5, 1.5);
    let b = rng.vec(n, -0.5, 0.5);
    let got = ops::layer_norm(&ctx, &x, Some(&r), n, &g, &b, 1e-12)
        .await
        .expect("layernorm");
    let (err, _) = max_abs_diff(&got, &layer_norm_ref(&x, Some(&r), n, &g, &b, 1e-12));
    assert!(err <= 2e-5, "layernorm err {err}");

    let pooled = ops::pool(
        &ctx,
        &qkv[..lens.len() * seq_len * 9],
        &lens,
        seq_len,
        9,
        false,
    )
    .await
    .expect("pool");
    assert_eq!(pooled.len(), lens.len() * 9);
    for v in pooled.chunks(9) {
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "pooled norm {norm}");
    }
}

#[wasm_bindgen_test]
async fn small_encoder_matches_the_cpu() {
    let ctx = ctx().await;
    let (cfg, w) = tiny_model(DType::Q4_0, Activation::GeluErf, Pooling::Mean, 20);
    let gpu = GpuBackend::from_weights(ctx, &cfg, &w, "tiny")
        .await
        .expect("gpu backend");
    let cpu = CpuBackend::from_weights(&cfg, &dequantized(&w)).expect("cpu backend");
    let seqs: Vec<Vec<u32>> = [3usize, 17, 40]
        .iter()
        .map(|&n| (0..n as u32).map(|i| (i * 7 + 1) % 301).collect())
        .collect();
    let refs: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
    let layers: Vec<usize> = (0..=cfg.layers).collect();
    let got = gpu.forward(&refs, &layers).await.expect("gpu forward");
    let want = cpu.forward(&refs, &layers).await.expect("cpu forward");
    for (s, (g, c)) in got.iter().zip(&want).enumerate() {
        for (l, (gl, cl)) in g.layers.iter().zip(&c.layers).enumerate() {
            let (err, _) = max_abs_diff(gl.as_slice().unwrap(), cl.as_slice().unwrap());
            assert!(err <= 1e-4, "layer {l} of sequence {s}: max error {err}");
        }
    }
    web_sys_log(&format!(
        "small encoder in the browser: {}",
        gpu.info().device
    ));
}

#[wasm_bindgen_test]
async fn alignment_matches_the_cpu() {
    let ctx = ctx().await;
    let mut rng = Rng::new(30);
    let src = Array2::from_shape_vec((13, 64), rng.vec(13 * 64, -1.0, 1.0)).unwrap();
    let tgt = Array2::from_shape_vec((17, 64), rng.vec(17 * 64, -1.0, 1.0)).unwrap();
    for method in [Method::Argmax, Method::Softmax, Method::Itermax] {
        let opts = AlignOptions {
            threshold: Some(0.1),
            iterations: 3,
            ..AlignOptions::new(method)
        };
        let got = align_on_gpu(&ctx, src.view(), tgt.view(), &opts)
            .await
            .expect("gpu align");
        let cos = cosine_matrix(src.view(), tgt.view());
        let dot = src.dot(&tgt.t());
        let want = extract(cos.view(), Some(dot.view()), &opts).unwrap();
        let key = |l: &xlalign_core::align::UnitLink| (l.row, l.col);
        assert_eq!(
            got.iter().map(key).collect::<Vec<_>>(),
            want.iter().map(key).collect::<Vec<_>>(),
            "{method:?}"
        );
    }
}

/// The single-pass alignment (states kept on the GPU across several unawaited passes, units
/// averaged there) against aligning the read-back states, in the browser's WebGPU.
#[wasm_bindgen_test]
async fn alignment_from_states_kept_on_the_gpu() {
    use xlalign_core::align::UnitLink;
    use xlalign_core::backend::{SequencePair, UnitPair};
    let ctx = ctx().await;
    let (cfg, w) = tiny_model(DType::Q8_0, Activation::GeluErf, Pooling::Mean, 40);
    let mut gpu = GpuBackend::from_weights(ctx.clone(), &cfg, &w, "tiny")
        .await
        .expect("gpu backend");
    // One sequence per pass.
    gpu.set_max_tokens_per_pass(1);
    let seqs: Vec<Vec<u32>> = [9usize, 23, 40, 5]
        .iter()
        .map(|&n| (0..n as u32).map(|i| (i * 11 + 3) % 301).collect())
        .collect();
    let refs: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
    let single = |n: usize, step: usize, len: usize| -> Vec<Vec<usize>> {
        (0..n).map(|i| vec![(i * step) % len]).collect()
    };
    let averaged = |n: usize, len: usize| -> Vec<Vec<usize>> {
        (0..n).map(|i| vec![i % len, (i * 3 + 1) % len]).collect()
    };
    let units = [
        (0, 2, single(9, 1, 9), averaged(31, 40)),
        (3, 1, averaged(4, 5), single(23, 1, 23)),
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
    for method in [Method::Argmax, Method::Softmax, Method::Itermax] {
        let opts = AlignOptions {
            threshold: Some(0.1),
            ..AlignOptions::new(method)
        };
        let got = gpu
            .align_sequences(&refs, 2, false, &pairs, &opts)
            .await
            .expect("align_sequences")
            .expect("the GPU answers")
            .pairs;
        let states = gpu.forward(&refs, &[2]).await.expect("forward");
        let mean = |seq: usize, groups: &[Vec<usize>]| {
            let s = &states[seq].layers[0];
            let mut out = Array2::<f32>::zeros((groups.len(), s.ncols()));
            for (r, rows) in groups.iter().enumerate() {
                out.row_mut(r).assign(
                    &s.select(ndarray::Axis(0), rows)
                        .mean_axis(ndarray::Axis(0))
                        .unwrap(),
                );
            }
            out
        };
        let vectors: Vec<_> = units
            .iter()
            .map(|(s, t, su, tu)| (mean(*s, su), mean(*t, tu)))
            .collect();
        let host: Vec<UnitPair> = vectors
            .iter()
            .map(|(s, t)| UnitPair {
                src: s.view(),
                tgt: t.view(),
            })
            .collect();
        let want = xlalign_gpu::align_pairs_on_gpu(&ctx, &host, &opts)
            .await
            .expect("aligning read-back units");
        let key = |l: &UnitLink| (l.row, l.col);
        for (k, ((g, w), (s, t))) in got.iter().zip(&want).zip(&vectors).enumerate() {
            // Cosines do not see the units' scale; the softmax links (dot products) do.
            let cos = cosine_matrix(s.view(), t.view());
            for (a, b) in g.cosine.iter().zip(&cos) {
                assert!(
                    (a - b).abs() < 1e-5,
                    "{method:?}, pair {k}: cosine {a} vs {b}"
                );
            }
            assert_eq!(
                g.links.iter().map(key).collect::<Vec<_>>(),
                w.links.iter().map(key).collect::<Vec<_>>(),
                "{method:?}, pair {k}"
            );
            assert!(!g.links.is_empty(), "{method:?}, pair {k}");
        }
    }
}
