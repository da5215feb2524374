//! x86-64 kernels on [`Q4Grouped`] weights (Q4_0 regrouped sixteen rows wide; see
//! `grouped`).
//!
//! - AVX-512 VNNI: a tile of 16 rows × 8 tokens. Per block, the eight weight vectors (four
//!   loads, low and high nibbles) stay in registers for the eight tokens; each token adds
//!   eight `vpdpbusd` with four of its activation bytes broadcast, then one conversion, scale
//!   product and multiply-add for all 16 rows. The eight tokens' chains are independent.
//! - AVX2 (and AVX-VNNI, whose processors run this one too): half a group, 8 rows × 4
//!   tokens, with `vpmaddubsw` (nibble × activation, pairs summed in i16) added up in i16
//!   over the whole block (at most 8·2·15·127 = 30,480 in magnitude: no saturation), then
//!   one `vpmaddwd` per token and block.
//!
//! Measured on the 2-core AMD EPYC (Zen 4, `avx512_vnni`), `xlalign bench`: see README,
//! "Benchmarks".

use std::arch::x86_64::*;
use std::ops::Range;

use super::grouped::{walk, Q4Grouped, GROUP_BLOCK_BYTES, ROWS};
use crate::cpu::kernels::quant::Q8Rows;
use crate::tensor::QK;

/// Tokens per AVX-512 tile.
pub(super) const TOKS_512: usize = 8;
/// Weight rows and tokens per AVX2 tile.
const ROWS_256: usize = 8;
pub(super) const TOKS_256: usize = 4;

/// Rows `rows` (starting at a multiple of [`ROWS`]) for tokens `t0..t0+nt` into `out`
/// (`nt` rows of `rows.len()` values), plus `bias`, on AVX-512 VNNI.
///
/// # Safety
/// The CPU must have AVX-512F/BW/VL and AVX-512 VNNI; `p` must be the regrouped form of a
/// matrix of at least `rows.end` rows whose columns are `x`'s, and `t0 + nt ≤ x.rows()`.
#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn run_avx512(
    p: &Q4Grouped,
    x: &Q8Rows,
    bias: Option<&[f32]>,
    rows: Range<usize>,
    t0: usize,
    nt: usize,
    out: &mut [f32],
) {
    walk::<ROWS, TOKS_512>(rows, t0, nt, out, |r0, nr, toks, o| {
        let mask: __mmask16 = if nr == ROWS { !0 } else { (1u16 << nr) - 1 };
        let bias = match bias {
            Some(b) => _mm512_maskz_loadu_ps(mask, b.as_ptr().add(r0)),
            None => _mm512_setzero_ps(),
        };
        let acc = tile_avx512(p, r0 / ROWS, x, toks);
        for (a, o) in acc.iter().zip(o) {
            _mm512_mask_storeu_ps(*o, mask, _mm512_add_ps(*a, bias));
        }
    })
}

/// [`run_avx512`] on AVX2 + FMA.
///
/// # Safety
/// The CPU must have AVX2 and FMA; the rest as [`run_avx512`].
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn run_avx2(
    p: &Q4Grouped,
    x: &Q8Rows,
    bias: Option<&[f32]>,
    rows: Range<usize>,
    t0: usize,
    nt: usize,
    out: &mut [f32],
) {
    walk::<ROWS_256, TOKS_256>(rows, t0, nt, out, |r0, nr, toks, o| {
        let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr as i32), lane);
        let bias = match bias {
            Some(b) => _mm256_maskload_ps(b.as_ptr().add(r0), mask),
            None => _mm256_setzero_ps(),
        };
        let acc = tile_avx2(p, r0 / ROWS, (r0 % ROWS) / ROWS_256, x, toks);
        for (a, o) in acc.iter().zip(o) {
            _mm256_maskstore_ps(*o, mask, _mm256_add_ps(*a, bias));
        }
    })
}

/// Group `g`'s 16 rows × the tokens `toks`: one vector of 16 row results per token.
#[inline]
#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn tile_avx512(
    p: &Q4Grouped,
    g: usize,
    x: &Q8Rows,
    toks: [usize; TOKS_512],
) -> [__m512; TOKS_512] {
    let nb = p.blocks;
    let wp = p.nibbles.as_ptr().add(g * nb * GROUP_BLOCK_BYTES);
    let ws = p.scales.as_ptr().add(g * nb * ROWS);
    let xp: [*const i8; TOKS_512] = toks.map(|t| x.qs.as_ptr().add(t * nb * QK));
    let xs: [*const f32; TOKS_512] = toks.map(|t| x.scales.as_ptr().add(t * nb));
    let xsum: [*const i32; TOKS_512] = toks.map(|t| x.sums.as_ptr().add(t * nb));
    let low = _mm512_set1_epi8(0x0F);
    let mut acc = [_mm512_setzero_ps(); TOKS_512];
    for b in 0..nb {
        let wb = wp.add(b * GROUP_BLOCK_BYTES);
        // w[k]: the low nibbles of vector k (k < 4), then the high ones of vector k − 4; both
        // meet activation word k of the block (see `Q4Grouped`).
        let w: [__m512i; 8] = core::array::from_fn(|k| {
            let v = _mm512_loadu_si512(wb.add((k % 4) * 64) as *const __m512i);
            if k < 4 {
                _mm512_and_si512(v, low)
            } else {
                _mm512_and_si512(_mm512_srli_epi16(v, 4), low)
            }
        });
        let d = _mm512_loadu_ps(ws.add(b * ROWS));
        for j in 0..TOKS_512 {
            let xb = xp[j].add(b * QK) as *const i32;
            // The nibbles are the unsigned side (0..15); their −8 offset is −8·Σq.
            let mut s = _mm512_set1_epi32(-8 * *xsum[j].add(b));
            for (k, wk) in w.iter().enumerate() {
                s = _mm512_dpbusd_epi32(s, *wk, _mm512_set1_epi32(xb.add(k).read_unaligned()));
            }
            let scale = _mm512_mul_ps(d, _mm512_set1_ps(*xs[j].add(b)));
            acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), scale, acc[j]);
        }
    }
    acc
}

/// Half `h` (rows `8h..8h+8`) of group `g` × the tokens `toks`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2(
    p: &Q4Grouped,
    g: usize,
    h: usize,
    x: &Q8Rows,
    toks: [usize; TOKS_256],
) -> [__m256; TOKS_256] {
    let nb = p.blocks;
    let wp = p.nibbles.as_ptr().add(g * nb * GROUP_BLOCK_BYTES + 32 * h);
    let ws = p.scales.as_ptr().add(g * nb * ROWS + ROWS_256 * h);
    let xp: [*const i8; TOKS_256] = toks.map(|t| x.qs.as_ptr().add(t * nb * QK));
    let xs: [*const f32; TOKS_256] = toks.map(|t| x.scales.as_ptr().add(t * nb));
    let xsum: [*const i32; TOKS_256] = toks.map(|t| x.sums.as_ptr().add(t * nb));
    let low = _mm256_set1_epi8(0x0F);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); TOKS_256];
    for b in 0..nb {
        let wb = wp.add(b * GROUP_BLOCK_BYTES);
        let mut s16 = [_mm256_setzero_si256(); TOKS_256];
        for k in 0..4 {
            let v = _mm256_loadu_si256(wb.add(k * 64) as *const __m256i);
            let lo = _mm256_and_si256(v, low);
            let hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
            for j in 0..TOKS_256 {
                let xb = xp[j].add(b * QK) as *const i32;
                let a = _mm256_maddubs_epi16(lo, _mm256_set1_epi32(xb.add(k).read_unaligned()));
                let c = _mm256_maddubs_epi16(hi, _mm256_set1_epi32(xb.add(4 + k).read_unaligned()));
                s16[j] = _mm256_add_epi16(s16[j], _mm256_add_epi16(a, c));
            }
        }
        let d = _mm256_loadu_ps(ws.add(b * ROWS));
        for j in 0..TOKS_256 {
            let s = _mm256_sub_epi32(
                _mm256_madd_epi16(s16[j], ones),
                _mm256_set1_epi32(8 * *xsum[j].add(b)),
            );
            let scale = _mm256_mul_ps(d, _mm256_set1_ps(*xs[j].add(b)));
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), scale, acc[j]);
        }
    }
    acc
}
