//! Plain f32 matrix product `out = a·b` (row-major, no transposes): attention scores and
//! context, and linear layers whose weights are stored as F32/F16.
//!
//! The SIMD versions keep a tile of `out` in registers (4 rows × 16 columns on AVX2,
//! 4 × 8 on wasm) and stream `b` row by row, broadcasting one value of `a` per row.

use super::isa::Isa;

/// `out = a·b` with `a` as `m × k`, `b` as `k × n`, `out` as `m × n` (overwritten).
///
/// Panics if a length disagrees with the dimensions.
pub fn matmul(a: &[f32], b: &[f32], out: &mut [f32], m: usize, k: usize, n: usize) {
    matmul_with(Isa::best(), a, b, out, m, k, n)
}

/// [`matmul`] on a chosen instruction set. Results agree with the scalar version up to
/// rounding (the SIMD versions use fused multiply-add and a different order).
pub fn matmul_with(isa: Isa, a: &[f32], b: &[f32], out: &mut [f32], m: usize, k: usize, n: usize) {
    assert_eq!(a.len(), m * k, "matmul: a is not {m}×{k}");
    assert_eq!(b.len(), k * n, "matmul: b is not {k}×{n}");
    assert_eq!(out.len(), m * n, "matmul: out is not {m}×{n}");
    if m == 0 || n == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        // SAFETY: an `Isa` with AVX2 exists only when the CPU has AVX2 and FMA; lengths checked.
        return unsafe { avx2::matmul(a, b, out, m, k, n) };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if isa.has_simd128() {
        // SAFETY: simd128 is enabled at compile time; lengths checked.
        return unsafe { simd128::matmul(a, b, out, m, k, n) };
    }
    let _ = isa;
    scalar::matmul(a, b, out, m, k, n)
}

mod scalar {
    pub fn matmul(a: &[f32], b: &[f32], out: &mut [f32], m: usize, k: usize, n: usize) {
        for i in 0..m {
            let row = &mut out[i * n..(i + 1) * n];
            row.fill(0.0);
            for (kk, &av) in a[i * k..(i + 1) * k].iter().enumerate() {
                for (o, &bv) in row.iter_mut().zip(&b[kk * n..(kk + 1) * n]) {
                    *o += av * bv;
                }
            }
        }
    }

    /// Columns `j0..n` of rows `i0..i1`, for the edges the SIMD tiles do not cover.
    #[allow(clippy::too_many_arguments)]
    #[cfg(any(
        target_arch = "x86_64",
        all(target_arch = "wasm32", target_feature = "simd128")
    ))]
    pub fn edge(
        a: &[f32],
        b: &[f32],
        out: &mut [f32],
        i0: usize,
        i1: usize,
        j0: usize,
        k: usize,
        n: usize,
    ) {
        for i in i0..i1 {
            for j in j0..n {
                let mut s = 0f32;
                for kk in 0..k {
                    s += a[i * k + kk] * b[kk * n + j];
                }
                out[i * n + j] = s;
            }
        }
    }
}

/// Rows per register tile.
#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "wasm32", target_feature = "simd128")
))]
const MR: usize = 4;

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::*;
    use std::arch::x86_64::*;

    /// One tile: rows `rows` (clamped duplicates at the bottom edge), columns `j0..j0+8·V`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
    unsafe fn tile<const V: usize>(
        a: *const f32,
        b: *const f32,
        out: *mut f32,
        rows: [usize; MR],
        nr: usize,
        j0: usize,
        k: usize,
        n: usize,
    ) {
        let mut acc = [[_mm256_setzero_ps(); V]; MR];
        for kk in 0..k {
            let bp = b.add(kk * n + j0);
            let bv: [__m256; V] = core::array::from_fn(|v| _mm256_loadu_ps(bp.add(8 * v)));
            for r in 0..MR {
                let av = _mm256_broadcast_ss(&*a.add(rows[r] * k + kk));
                for v in 0..V {
                    acc[r][v] = _mm256_fmadd_ps(av, bv[v], acc[r][v]);
                }
            }
        }
        for r in 0..nr {
            for v in 0..V {
                _mm256_storeu_ps(out.add(rows[r] * n + j0 + 8 * v), acc[r][v]);
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn matmul(a: &[f32], b: &[f32], out: &mut [f32], m: usize, k: usize, n: usize) {
        let (ap, bp, op) = (a.as_ptr(), b.as_ptr(), out.as_mut_ptr());
        let n16 = n / 16 * 16;
        let n8 = n / 8 * 8;
        for i0 in (0..m).step_by(MR) {
            let rows: [usize; MR] = core::array::from_fn(|r| (i0 + r).min(m - 1));
            let nr = MR.min(m - i0);
            for j0 in (0..n16).step_by(16) {
                tile::<2>(ap, bp, op, rows, nr, j0, k, n);
            }
            if n8 > n16 {
                tile::<1>(ap, bp, op, rows, nr, n16, k, n);
            }
            scalar::edge(a, b, out, i0, i0 + nr, n8, k, n);
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128 {
    use super::*;
    use core::arch::wasm32::*;

    #[inline(always)]
    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
    unsafe fn tile<const V: usize>(
        a: *const f32,
        b: *const f32,
        out: *mut f32,
        rows: [usize; MR],
        nr: usize,
        j0: usize,
        k: usize,
        n: usize,
    ) {
        let mut acc = [[f32x4_splat(0.0); V]; MR];
        for kk in 0..k {
            let bp = b.add(kk * n + j0);
            let bv: [v128; V] = core::array::from_fn(|v| v128_load(bp.add(4 * v) as *const v128));
            for r in 0..MR {
                let av = f32x4_splat(*a.add(rows[r] * k + kk));
                for v in 0..V {
                    acc[r][v] = f32x4_add(acc[r][v], f32x4_mul(av, bv[v]));
                }
            }
        }
        for r in 0..nr {
            for v in 0..V {
                v128_store(out.add(rows[r] * n + j0 + 4 * v) as *mut v128, acc[r][v]);
            }
        }
    }

    pub unsafe fn matmul(a: &[f32], b: &[f32], out: &mut [f32], m: usize, k: usize, n: usize) {
        let (ap, bp, op) = (a.as_ptr(), b.as_ptr(), out.as_mut_ptr());
        let n8 = n / 8 * 8;
        let n4 = n / 4 * 4;
        for i0 in (0..m).step_by(MR) {
            let rows: [usize; MR] = core::array::from_fn(|r| (i0 + r).min(m - 1));
            let nr = MR.min(m - i0);
            for j0 in (0..n8).step_by(8) {
                tile::<2>(ap, bp, op, rows, nr, j0, k, n);
            }
            if n4 > n8 {
                tile::<1>(ap, bp, op, rows, nr, n8, k, n);
            }
            scalar::edge(a, b, out, i0, i0 + nr, n4, k, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn case() -> impl Strategy<Value = (usize, usize, usize, Vec<f32>, Vec<f32>)> {
        (1usize..13, 0usize..40, 1usize..45).prop_flat_map(|(m, k, n)| {
            (
                Just(m),
                Just(k),
                Just(n),
                proptest::collection::vec(-3.0f32..3.0, m * k),
                proptest::collection::vec(-3.0f32..3.0, k * n),
            )
        })
    }

    proptest! {
        #[test]
        fn simd_matches_scalar_and_f64((m, k, n, a, b) in case()) {
            let mut want = vec![0f32; m * n];
            matmul_with(Isa::scalar(), &a, &b, &mut want, m, k, n);
            for isa in Isa::available() {
                let mut got = vec![f32::NAN; m * n];
                matmul_with(isa, &a, &b, &mut got, m, k, n);
                for i in 0..m {
                    for j in 0..n {
                        let exact: f64 = (0..k).map(|kk| a[i * k + kk] as f64 * b[kk * n + j] as f64).sum();
                        let mag: f64 = (0..k).map(|kk| (a[i * k + kk] as f64 * b[kk * n + j] as f64).abs()).sum();
                        // Each f32 sum of k terms is within k·2⁻²⁴·Σ|terms| of the exact value.
                        let tol = (k as f64 + 1.0) * 6e-8 * mag + 1e-30;
                        let g = got[i * n + j] as f64;
                        prop_assert!((g - exact).abs() <= tol, "{} [{},{}]: {} vs {}", isa, i, j, g, exact);
                        prop_assert!((want[i * n + j] as f64 - exact).abs() <= tol);
                    }
                }
            }
        }
    }
}
