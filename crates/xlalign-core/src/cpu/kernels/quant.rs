//! Activation quantisation for the integer matmuls.
//!
//! Before a linear layer with quantised weights, each activation row is cut into blocks of
//! 32 values and each block stored as int8 with one f32 scale: `d = amax/127`,
//! `q = round_half_even(x/d)`, so `x ≈ d·q` with `|x − d·q| ≤ d/2`. This is ggml's Q8_0
//! scheme (with an f32 instead of an f16 scale), the one the reference encoder applies.
//! The per-block sum of `q` is kept too: Q4_0 weights are multiplied as raw nibbles
//! (0..15) and their −8 offset is folded in afterwards as `−8·Σq`.

use super::isa::Isa;
use crate::cpu::par;
use crate::tensor::QK;

/// Rows of activations quantised in 32-value blocks.
#[derive(Clone, Debug, Default)]
pub struct Q8Rows {
    rows: usize,
    cols: usize,
    /// `rows × cols` int8 values, row-major; always within −127..=127.
    pub(crate) qs: Vec<i8>,
    /// One scale per block (`rows × cols/32`).
    pub(crate) scales: Vec<f32>,
    /// Σq of each block.
    pub(crate) sums: Vec<i32>,
}

impl Q8Rows {
    /// Quantises `x` (`rows × cols`, row-major) on the best instruction set.
    ///
    /// Panics if `cols` is not a positive multiple of 32 or `x.len()` not a multiple of `cols`.
    pub fn quantize(x: &[f32], cols: usize) -> Q8Rows {
        Q8Rows::quantize_with(Isa::best(), x, cols)
    }

    /// [`Q8Rows::quantize`] on a chosen instruction set; every instruction set gives
    /// bit-identical output.
    pub fn quantize_with(isa: Isa, x: &[f32], cols: usize) -> Q8Rows {
        let mut q = Q8Rows::default();
        q.quantize_into_with(isa, x, cols);
        q
    }

    /// Re-quantises into this buffer, reusing its allocations.
    pub fn quantize_into_with(&mut self, isa: Isa, x: &[f32], cols: usize) {
        assert!(
            cols > 0 && cols.is_multiple_of(QK),
            "Q8Rows: row length {cols} is not a multiple of {QK}"
        );
        assert!(
            x.len().is_multiple_of(cols),
            "Q8Rows: {} values are not rows of {cols}",
            x.len()
        );
        let rows = x.len() / cols;
        let blocks = rows * cols / QK;
        self.rows = rows;
        self.cols = cols;
        self.qs.resize(x.len(), 0);
        self.scales.resize(blocks, 0.0);
        self.sums.resize(blocks, 0);
        let per_row = cols / QK;
        // Rows are independent; big batches are worth splitting across threads.
        par::for_each_rows3(
            par::token_chunk(rows, 1),
            (&mut self.qs, cols),
            (&mut self.scales, per_row),
            (&mut self.sums, per_row),
            |r0, qs, scales, sums| {
                let x = &x[r0 * cols..r0 * cols + qs.len()];
                quantize_rows(isa, x, qs, scales, sums)
            },
        );
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Blocks per row.
    pub fn blocks(&self) -> usize {
        self.cols / QK
    }

    /// The int8 values and scale of block `b` of row `r`.
    pub fn block(&self, r: usize, b: usize) -> (&[i8], f32) {
        let i = r * self.blocks() + b;
        (&self.qs[i * QK..(i + 1) * QK], self.scales[i])
    }

    /// `d·q` for every value, row-major.
    pub fn dequantize(&self) -> Vec<f32> {
        self.qs
            .chunks_exact(QK)
            .zip(&self.scales)
            .flat_map(|(q, &d)| q.iter().map(move |&v| d * v as f32))
            .collect()
    }
}

/// Quantises whole blocks: `qs` and `x` hold 32 values per entry of `scales`/`sums`.
fn quantize_rows(isa: Isa, x: &[f32], qs: &mut [i8], scales: &mut [f32], sums: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        // SAFETY: an `Isa` with AVX2 exists only when the CPU has it; the caller passes
        // matching lengths.
        return unsafe { avx2::quantize(x, qs, scales, sums) };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if isa.has_simd128() {
        // SAFETY: simd128 is enabled at compile time; matching lengths.
        return unsafe { simd128::quantize(x, qs, scales, sums) };
    }
    let _ = isa;
    scalar::quantize(x, qs, scales, sums)
}

/// Adding then subtracting 1.5·2^23 rounds half to even for |v| < 2^22, with plain adds
/// (no libm call on targets without a rounding instruction), matching `roundps`/`f32x4.nearest`.
const ROUND: f32 = 12_582_912.0;

mod scalar {
    use super::*;

    pub fn quantize(x: &[f32], qs: &mut [i8], scales: &mut [f32], sums: &mut [i32]) {
        for (((xb, qb), d), s) in x
            .chunks_exact(QK)
            .zip(qs.chunks_exact_mut(QK))
            .zip(scales)
            .zip(sums)
        {
            let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = amax / 127.0;
            let inv = if scale != 0.0 { 1.0 / scale } else { 0.0 };
            let mut sum = 0i32;
            for (q, &v) in qb.iter_mut().zip(xb) {
                // |v·inv| ≤ 127 up to rounding, so the clamp only guards that last ulp.
                let r = ((v * inv).clamp(-127.0, 127.0) + ROUND) - ROUND;
                *q = r as i8;
                sum += r as i32;
            }
            *d = scale;
            *s = sum;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::*;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn quantize(x: &[f32], qs: &mut [i8], scales: &mut [f32], sums: &mut [i32]) {
        let sign = _mm256_set1_ps(-0.0);
        let lo = _mm256_set1_ps(-127.0);
        let hi = _mm256_set1_ps(127.0);
        // packs_epi32/packs_epi16 interleave the two 128-bit lanes; this restores order.
        let perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        for b in 0..scales.len() {
            let p = x.as_ptr().add(b * QK);
            let v = [
                _mm256_loadu_ps(p),
                _mm256_loadu_ps(p.add(8)),
                _mm256_loadu_ps(p.add(16)),
                _mm256_loadu_ps(p.add(24)),
            ];
            let a = _mm256_max_ps(
                _mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])),
            );
            let m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
            let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
            let m = _mm_max_ss(m, _mm_movehdup_ps(m));
            let amax = _mm_cvtss_f32(m);
            let scale = amax / 127.0;
            let inv = _mm256_set1_ps(if scale != 0.0 { 1.0 / scale } else { 0.0 });
            let q = v.map(|vi| {
                let c = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(vi, inv), lo), hi);
                _mm256_cvtps_epi32(_mm256_round_ps(
                    c,
                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC,
                ))
            });
            let s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
            let s = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
            let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
            let packed = _mm256_packs_epi16(
                _mm256_packs_epi32(q[0], q[1]),
                _mm256_packs_epi32(q[2], q[3]),
            );
            let packed = _mm256_permutevar8x32_epi32(packed, perm);
            _mm256_storeu_si256(qs.as_mut_ptr().add(b * QK) as *mut __m256i, packed);
            scales[b] = scale;
            sums[b] = _mm_cvtsi128_si32(s);
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128 {
    use super::*;
    use core::arch::wasm32::*;

    #[inline]
    pub unsafe fn quantize(x: &[f32], qs: &mut [i8], scales: &mut [f32], sums: &mut [i32]) {
        let lo = f32x4_splat(-127.0);
        let hi = f32x4_splat(127.0);
        for b in 0..scales.len() {
            let p = x.as_ptr().add(b * QK) as *const v128;
            let v: [v128; 8] = core::array::from_fn(|i| v128_load(p.add(i)));
            let mut a = f32x4_abs(v[0]);
            for vi in &v[1..] {
                a = f32x4_max(a, f32x4_abs(*vi));
            }
            // The horizontal max in registers: scalar `f32::max` on the lanes compiles to
            // calls of `fmaxf` in wasm (it must ignore NaN; `f32x4.max` need not, and these
            // are absolute values of finite activations).
            let a = f32x4_max(a, i32x4_shuffle::<2, 3, 0, 1>(a, a));
            let a = f32x4_max(a, i32x4_shuffle::<1, 0, 3, 2>(a, a));
            let amax = f32x4_extract_lane::<0>(a);
            let scale = amax / 127.0;
            let inv = f32x4_splat(if scale != 0.0 { 1.0 / scale } else { 0.0 });
            let q = v.map(|vi| {
                i32x4_trunc_sat_f32x4(f32x4_nearest(f32x4_min(
                    f32x4_max(f32x4_mul(vi, inv), lo),
                    hi,
                )))
            });
            let mut s = q[0];
            for qi in &q[1..] {
                s = i32x4_add(s, *qi);
            }
            let sum = i32x4_extract_lane::<0>(s)
                + i32x4_extract_lane::<1>(s)
                + i32x4_extract_lane::<2>(s)
                + i32x4_extract_lane::<3>(s);
            let out = qs.as_mut_ptr().add(b * QK) as *mut v128;
            let h0 = i8x16_narrow_i16x8(
                i16x8_narrow_i32x4(q[0], q[1]),
                i16x8_narrow_i32x4(q[2], q[3]),
            );
            let h1 = i8x16_narrow_i16x8(
                i16x8_narrow_i32x4(q[4], q[5]),
                i16x8_narrow_i32x4(q[6], q[7]),
            );
            v128_store(out, h0);
            v128_store(out.add(1), h1);
            scales[b] = scale;
            sums[b] = sum;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rows() -> impl Strategy<Value = (Vec<f32>, usize)> {
        (1usize..6, 1usize..5).prop_flat_map(|(r, b)| {
            let cols = b * QK;
            // Mix magnitudes so some blocks are tiny, some large, some exactly zero.
            (
                proptest::collection::vec(
                    prop_oneof![-50.0f32..50.0, -1e-3f32..1e-3, Just(0.0)],
                    r * cols,
                ),
                Just(cols),
            )
        })
    }

    proptest! {
        #[test]
        fn every_isa_quantises_exactly_like_scalar((x, cols) in rows()) {
            let want = Q8Rows::quantize_with(Isa::scalar(), &x, cols);
            for isa in Isa::available() {
                let got = Q8Rows::quantize_with(isa, &x, cols);
                prop_assert_eq!(&got.qs, &want.qs, "{}", isa);
                prop_assert_eq!(&got.scales, &want.scales, "{}", isa);
                prop_assert_eq!(&got.sums, &want.sums, "{}", isa);
            }
        }

        #[test]
        fn quantisation_error_is_at_most_half_a_step((x, cols) in rows()) {
            let q = Q8Rows::quantize(&x, cols);
            let back = q.dequantize();
            for (blk, (xb, yb)) in x.chunks(QK).zip(back.chunks(QK)).enumerate() {
                let d = q.scales[blk];
                let sum: i32 = q.qs[blk * QK..(blk + 1) * QK].iter().map(|&v| v as i32).sum();
                prop_assert_eq!(sum, q.sums[blk]);
                for (a, b) in xb.iter().zip(yb) {
                    // Half a step, plus the f32 rounding of `x / d` and of `q * d` (a few ulps
                    // of the value itself: -42.680496 came back as -42.853294 with d 0.34559107,
                    // 2.5e-6 over half a step).
                    let tolerance = d * 0.5 * (1.0 + 1e-5) + a.abs() * 4.0 * f32::EPSILON + f32::MIN_POSITIVE;
                    prop_assert!((a - b).abs() <= tolerance, "{} vs {} (d {})", a, b, d);
                }
            }
        }
    }

    #[test]
    fn rounds_half_to_even_and_keeps_the_extremes() {
        // amax 127 gives d = 1, so values are rounded as they are.
        let mut x = vec![0f32; QK];
        x[0] = 127.0;
        x[1] = -127.0;
        x[2] = 2.5;
        x[3] = 3.5;
        x[4] = -2.5;
        x[5] = 0.5;
        let q = Q8Rows::quantize_with(Isa::scalar(), &x, QK);
        assert_eq!(&q.qs[..6], &[127, -127, 2, 4, -2, 0]);
        assert_eq!(q.scales[0], 1.0);
        assert_eq!(q.sums[0], 4);
    }
}
