//! The wasm SIMD kernels against the scalar twin, in headless Chromium (the engine that runs
//! them), on shapes the model never has: ragged row groups and token tiles. Built with
//! `-C target-feature=+simd128` (scripts/test.sh), and again with the feature relaxed-simd
//! (scripts/test-browser.sh), so each of the package's two builds runs its own kernels.
//!
//! Q4_0 (the model's matrices) must give the scalar kernel's bits exactly: the wasm kernels
//! compute each block's exact integer dot and then the same f32 operations in the same
//! order. Q8_0 sums a block's float terms in another order, so it is held to a rounding
//! bound instead.

use bytes::Bytes;
use wasm_bindgen_test::*;
use xlalign_core::cpu::kernels::qmatmul::{qmatmul_with, QMatrix};
use xlalign_core::cpu::kernels::quant::Q8Rows;
use xlalign_core::cpu::Isa;
use xlalign_core::tensor::{quantize, DType, Tensor, QK};

wasm_bindgen_test_configure!(run_in_dedicated_worker);

/// A small LCG: reproducible values in −0.5..0.5 without another dependency.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

/// The instruction set this build was meant to run.
fn expected_isa() -> &'static str {
    if cfg!(feature = "relaxed-simd") {
        "relaxed-simd"
    } else {
        "simd128"
    }
}

#[wasm_bindgen_test]
fn this_build_runs_its_simd_kernels() {
    // Without `-C target-feature=+simd128` the build has only the scalar kernels.
    assert_eq!(Isa::best().name(), expected_isa());
}

#[wasm_bindgen_test]
fn activation_quantisation_matches_the_scalar_kernel() {
    let isa = Isa::best();
    for (k, cols) in [32usize, 64, 384, 1536].into_iter().enumerate() {
        let mut x: Vec<f32> = values(3 * cols, 100 + k as u64)
            .iter()
            .map(|v| v * 40.0)
            .collect();
        // A block of zeros, one whose largest magnitude is negative, and one in the last lane.
        x[..QK].fill(0.0);
        x[QK + 8] = -90.0;
        let last = x.len() - 1;
        x[last] = 75.5;
        let got = Q8Rows::quantize_with(isa, &x, cols).dequantize();
        let want = Q8Rows::quantize_with(Isa::scalar(), &x, cols).dequantize();
        let (g, w): (Vec<u32>, Vec<u32>) = (
            got.iter().map(|v| v.to_bits()).collect(),
            want.iter().map(|v| v.to_bits()).collect(),
        );
        assert_eq!(g, w, "{} quantisation of rows of {cols}", isa.name());
    }
}

#[wasm_bindgen_test]
fn simd_kernels_match_the_scalar_kernel() {
    let isa = Isa::best();
    let mut seed = 1u64;
    for dtype in [DType::Q4_0, DType::Q8_0] {
        for rows in [1usize, 3, 4, 5, 8, 15, 16, 17, 31, 40] {
            for blocks in [1usize, 2, 3] {
                for tokens in [1usize, 2, 3, 4, 5, 9] {
                    seed += 1;
                    let cols = blocks * QK;
                    let w = values(rows * cols, seed)
                        .iter()
                        .map(|v| v * 0.2)
                        .collect::<Vec<_>>();
                    let bytes = quantize(dtype, &w).unwrap();
                    let t = Tensor::new("w", dtype, vec![rows, cols], Bytes::from(bytes)).unwrap();
                    let deq = t.to_f32_vec();
                    let w = QMatrix::from_tensor(&t).unwrap();
                    let x: Vec<f32> = values(tokens * cols, !seed)
                        .iter()
                        .map(|v| v * 8.0)
                        .collect();
                    let xq = Q8Rows::quantize_with(isa, &x, cols);
                    let xd = xq.dequantize();
                    let bias: Vec<f32> = (0..rows).map(|i| i as f32 * 0.25 - 1.0).collect();
                    let mut want = vec![0f32; tokens * rows];
                    qmatmul_with(Isa::scalar(), &w, &xq, Some(&bias), &mut want);
                    let mut got = vec![f32::NAN; tokens * rows];
                    qmatmul_with(isa, &w, &xq, Some(&bias), &mut got);
                    for ti in 0..tokens {
                        for o in 0..rows {
                            let (g, s) = (got[ti * rows + o], want[ti * rows + o]);
                            let at = format!(
                                "{} {dtype:?} {rows}×{cols}, {tokens} tokens [{ti},{o}]",
                                isa.name()
                            );
                            if dtype == DType::Q4_0 {
                                assert_eq!(g.to_bits(), s.to_bits(), "{at}: {g} vs {s}");
                            } else {
                                let mag: f32 = (0..cols)
                                    .map(|k| (deq[o * cols + k] * xd[ti * cols + k]).abs())
                                    .sum();
                                assert!((g - s).abs() <= 1e-5 * mag + 1e-6, "{at}: {g} vs {s}");
                            }
                        }
                    }
                }
            }
        }
    }
}
