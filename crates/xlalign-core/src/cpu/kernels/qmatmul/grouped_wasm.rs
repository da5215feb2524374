//! WebAssembly kernels on [`Q4Grouped`] weights (Q4_0 regrouped sixteen rows wide; see
//! `grouped`). A 128-bit register holds four bytes of four rows, so a tile is `QUADS` such
//! quarters of a group × [`TOKS`] tokens.
//!
//! - Relaxed SIMD: per block, `i16x8.relaxed_dot_i8x16_i7x16_s` of each quarter's low and
//!   high nibbles (0..15, the `b` operand every engine reads alike: see `relaxed` in
//!   `qmatmul`) with four activation bytes broadcast, added up in i16 over the whole block (at
//!   most 8·2·15·127 = 30,480 in magnitude: no overflow, the pair sums themselves within
//!   2·15·127), then one pairwise widening to i32 per block: the `vpmaddubsw` kernel of
//!   `grouped_x86`, which is also how x86 engines without VNNI lower the instruction.
//! - SIMD128: the nibbles widened to i16 (two rows per register) and `i32x4.dot_i16x8_s` with
//!   the four activation values twice over; each row's two lanes are added once per block.
//!
//! Both end each block exactly as the scalar twin does: the row's exact integer block dot,
//! converted, times `(d_w·d_x)`, added to the row's f32 sum, plus the bias at the end, each
//! a separate f32 operation with no fused multiply-add. So the two wasm builds give the
//! scalar kernel's bits, whatever the processor.
//!
//! Tiles of 8 rows × 4 tokens measured fastest in V8 (4 × 8 and 8 × 2 spill or amortise
//! less). Measured in headless Chromium on the 2-core AMD EPYC (Zen 3, AVX2): see README, "In
//! the browser".

use core::arch::wasm32::*;
use std::ops::Range;

use super::grouped::{walk, Q4Grouped, GROUP_BLOCK_BYTES, ROWS};
use crate::cpu::kernels::quant::Q8Rows;
use crate::tensor::QK;

/// Quarters of a group (four rows each) per tile.
const QUADS: usize = 2;
/// Tokens per tile.
pub(super) const TOKS: usize = 4;

/// One i32x4 or f32x4 per quarter and token: lane `r` is row `r` of the quarter.
type Tile = [[v128; TOKS]; QUADS];

/// Rows `rows` (starting at a multiple of [`ROWS`]) for tokens `t0..t0+nt` into `out`
/// (`nt` rows of `rows.len()` values), plus `bias`, with SIMD128 only.
///
/// # Safety
/// `p` must be the regrouped form of a matrix of at least `rows.end` rows whose columns are
/// `x`'s, and `t0 + nt ≤ x.rows()`.
pub(super) unsafe fn run_simd128(
    p: &Q4Grouped,
    x: &Q8Rows,
    bias: Option<&[f32]>,
    rows: Range<usize>,
    t0: usize,
    nt: usize,
    out: &mut [f32],
) {
    run(bias, rows, t0, nt, out, |g, q0, toks| {
        tile(p, g, q0, x, toks, |wb, xp| {
            let mut acc = [[[i32x4_splat(0); 2]; TOKS]; QUADS];
            for k in 0..4 {
                for (q, acc) in acc.iter_mut().enumerate() {
                    let v = v128_load(wb.add(k * 64 + 16 * q) as *const v128);
                    let lo = v128_and(v, u8x16_splat(0x0F));
                    let hi = u8x16_shr(v, 4);
                    // Rows 0–1 and 2–3 of the quarter, four values each.
                    let w = [
                        [u16x8_extend_low_u8x16(lo), u16x8_extend_high_u8x16(lo)],
                        [u16x8_extend_low_u8x16(hi), u16x8_extend_high_u8x16(hi)],
                    ];
                    for (j, acc) in acc.iter_mut().enumerate() {
                        for (half, w) in w.iter().enumerate() {
                            let a = i16x8_extend_low_i8x16(v128_load32_splat(
                                xp[j].add(16 * half + 4 * k) as *const u32,
                            ));
                            acc[0] = i32x4_add(acc[0], i32x4_dot_i16x8(w[0], a));
                            acc[1] = i32x4_add(acc[1], i32x4_dot_i16x8(w[1], a));
                        }
                    }
                }
            }
            // Each row's sum is split over two adjacent lanes.
            acc.map(|q| {
                q.map(|[r01, r23]| {
                    i32x4_add(
                        i32x4_shuffle::<0, 2, 4, 6>(r01, r23),
                        i32x4_shuffle::<1, 3, 5, 7>(r01, r23),
                    )
                })
            })
        })
    })
}

/// [`run_simd128`] with relaxed SIMD.
///
/// # Safety
/// As [`run_simd128`].
#[cfg(feature = "relaxed-simd")]
#[target_feature(enable = "relaxed-simd")]
pub(super) unsafe fn run_relaxed(
    p: &Q4Grouped,
    x: &Q8Rows,
    bias: Option<&[f32]>,
    rows: Range<usize>,
    t0: usize,
    nt: usize,
    out: &mut [f32],
) {
    run(bias, rows, t0, nt, out, |g, q0, toks| {
        tile(p, g, q0, x, toks, |wb, xp| {
            let mut acc = [[i16x8_splat(0); TOKS]; QUADS];
            for k in 0..4 {
                for (q, acc) in acc.iter_mut().enumerate() {
                    let v = v128_load(wb.add(k * 64 + 16 * q) as *const v128);
                    let lo = v128_and(v, u8x16_splat(0x0F));
                    let hi = u8x16_shr(v, 4);
                    for (j, acc) in acc.iter_mut().enumerate() {
                        let al = v128_load32_splat(xp[j].add(4 * k) as *const u32);
                        let ah = v128_load32_splat(xp[j].add(16 + 4 * k) as *const u32);
                        *acc = i16x8_add(
                            *acc,
                            i16x8_add(
                                i16x8_relaxed_dot_i8x16_i7x16(al, lo),
                                i16x8_relaxed_dot_i8x16_i7x16(ah, hi),
                            ),
                        );
                    }
                }
            }
            acc.map(|q| q.map(|s| i32x4_extadd_pairwise_i16x8(s)))
        })
    })
}

/// Walks the tiles, adds the bias and stores the valid rows. `tile(g, q0, toks)` gives the
/// rows of quarters `q0..q0+QUADS` of group `g` for the tokens `toks`.
#[inline(always)]
unsafe fn run(
    bias: Option<&[f32]>,
    rows: Range<usize>,
    t0: usize,
    nt: usize,
    out: &mut [f32],
    tile: impl Fn(usize, usize, [usize; TOKS]) -> Tile,
) {
    walk::<{ 4 * QUADS }, TOKS>(rows, t0, nt, out, |r0, nr, toks, o| {
        let acc = tile(r0 / ROWS, (r0 % ROWS) / 4, toks);
        for (q, acc) in acc.iter().enumerate() {
            let r = r0 + 4 * q;
            let valid = nr.saturating_sub(4 * q).min(4);
            if valid == 0 {
                break;
            }
            let b: v128 = match bias {
                Some(b) if valid == 4 => v128_load(b.as_ptr().add(r) as *const v128),
                Some(b) => {
                    let mut v = [0f32; 4];
                    v[..valid].copy_from_slice(&b[r..r + valid]);
                    v128_load(v.as_ptr() as *const v128)
                }
                None => f32x4_splat(0.0),
            };
            for (a, o) in acc.iter().zip(o) {
                let v = f32x4_add(*a, b);
                let dst = o.add(4 * q);
                if valid == 4 {
                    v128_store(dst as *mut v128, v);
                } else {
                    let mut lanes = [0f32; 4];
                    v128_store(lanes.as_mut_ptr() as *mut v128, v);
                    core::ptr::copy_nonoverlapping(lanes.as_ptr(), dst, valid);
                }
            }
        }
    })
}

/// Quarters `q0..q0+QUADS` of group `g` × the tokens `toks`: one vector of four row results
/// per quarter and token. `sums(wb, xp)` gives the block's exact integer dot products without
/// the nibbles' −8 offset, for the group's block at `wb` and the tokens' blocks at `xp`.
#[inline(always)]
unsafe fn tile(
    p: &Q4Grouped,
    g: usize,
    q0: usize,
    x: &Q8Rows,
    toks: [usize; TOKS],
    sums: impl Fn(*const u8, [*const i8; TOKS]) -> Tile,
) -> Tile {
    let nb = p.blocks;
    let wp = p.nibbles.as_ptr().add(g * nb * GROUP_BLOCK_BYTES + 16 * q0);
    let ws = p.scales.as_ptr().add(g * nb * ROWS + 4 * q0);
    let xp: [*const i8; TOKS] = toks.map(|t| x.qs.as_ptr().add(t * nb * QK));
    let xs: [*const f32; TOKS] = toks.map(|t| x.scales.as_ptr().add(t * nb));
    let xsum: [*const i32; TOKS] = toks.map(|t| x.sums.as_ptr().add(t * nb));
    let mut acc = [[f32x4_splat(0.0); TOKS]; QUADS];
    for b in 0..nb {
        let s = sums(wp.add(b * GROUP_BLOCK_BYTES), xp.map(|p| p.add(b * QK)));
        for (q, (acc, s)) in acc.iter_mut().zip(s).enumerate() {
            let d = v128_load(ws.add(b * ROWS + 4 * q) as *const v128);
            for j in 0..TOKS {
                // The nibbles are 0..15; their −8 offset is −8·Σq of the activations.
                let s = i32x4_sub(s[j], i32x4_splat(8 * *xsum[j].add(b)));
                let scale = f32x4_mul(d, f32x4_splat(*xs[j].add(b)));
                acc[j] = f32x4_add(acc[j], f32x4_mul(f32x4_convert_i32x4(s), scale));
            }
        }
    }
    acc
}
