//! Q4_0 weights regrouped sixteen rows wide, for the kernels whose vector lanes are weight
//! rows (`grouped_x86`: AVX-512 VNNI and AVX2; `grouped_wasm`: SIMD128 and relaxed SIMD).
//!
//! The block-major kernels give each (row, token) its own vector accumulator whose lanes
//! are parts of one block, and pay, per block and per (row, token), a conversion, a scale
//! product and a multiply-add besides the integer dot product, then a horizontal sum. With
//! rows in the lanes, each 32-bit lane holds four bytes of one row's block, the matching four
//! activation bytes are broadcast, and an integer multiply-add over four bytes per lane
//! (`vpdpbusd`; `vpmaddubsw` then `vpmaddwd`) gives several rows at once: the float work is
//! paid once per block for all the register's rows, and no horizontal sum is left.
// Built everywhere, read only by the SIMD kernels.
#![cfg_attr(
    not(any(
        target_arch = "x86_64",
        all(target_arch = "wasm32", target_feature = "simd128")
    )),
    allow(dead_code)
)]

use std::ops::Range;

use super::{QFormat, QMatrix};
use crate::tensor::{Q4_0_BLOCK_BYTES, QK};

/// Weight rows per group: the i32 lanes of a 512-bit register (two 256-bit halves of 8,
/// four 128-bit quarters of 4).
pub(super) const ROWS: usize = 16;
/// Bytes of one block of one group: 16 rows × 16 bytes of nibbles.
pub(super) const GROUP_BLOCK_BYTES: usize = ROWS * QK / 2;

/// A Q4_0 matrix regrouped: for each group of 16 rows (the last one padded with zero rows,
/// scale 0) and each block, four 64-byte vectors, vector `k` holding bytes `4k..4k+4` of
/// every row's 16 bytes of nibbles (row `r` in bytes `4r..4r+4`). Its low nibbles are
/// values `4k..4k+4` of each row's block and its high nibbles values `16+4k..16+4k+4`,
/// which are activation bytes `4k..4k+4` and `16+4k..` of the block: activation word `k`
/// and word `4+k`. Then the group's 16 block scales per block, as f32.
#[derive(Debug)]
pub(crate) struct Q4Grouped {
    pub(super) blocks: usize,
    pub(super) nibbles: Vec<u8>,
    pub(super) scales: Vec<f32>,
}

impl Q4Grouped {
    /// Regroups `w`, which must be Q4_0.
    pub(super) fn new(w: &QMatrix) -> Q4Grouped {
        assert_eq!(w.format, QFormat::Q4_0, "only Q4_0 weights are regrouped");
        let nb = w.blocks();
        let groups = w.rows.div_ceil(ROWS);
        let mut nibbles = vec![0u8; groups * nb * GROUP_BLOCK_BYTES];
        let mut scales = vec![0f32; groups * nb * ROWS];
        for (g, (nib, sc)) in nibbles
            .chunks_exact_mut(nb * GROUP_BLOCK_BYTES)
            .zip(scales.chunks_exact_mut(nb * ROWS))
            .enumerate()
        {
            for r in 0..ROWS.min(w.rows - g * ROWS) {
                let row = g * ROWS + r;
                for b in 0..nb {
                    let src = &w.data[(row * nb + b) * Q4_0_BLOCK_BYTES + 2..][..QK / 2];
                    let dst = &mut nib[b * GROUP_BLOCK_BYTES..(b + 1) * GROUP_BLOCK_BYTES];
                    for k in 0..4 {
                        dst[k * 64 + 4 * r..k * 64 + 4 * r + 4]
                            .copy_from_slice(&src[4 * k..4 * k + 4]);
                    }
                    sc[b * ROWS + r] = w.scales[row * nb + b];
                }
            }
        }
        Q4Grouped {
            blocks: nb,
            nibbles,
            scales,
        }
    }
}

/// Walks `rows` in tiles of `R` rows × `C` tokens; `tile(r0, nr, toks, outs)` computes rows
/// `r0..r0+nr` for the tokens `toks` (the last valid one repeated past the end) and stores
/// them at `outs`, one pointer per valid token.
///
/// # Safety
/// `out` must hold `nt` rows of `rows.len()` values; `tile` gets pointers into it.
#[inline(always)]
pub(super) unsafe fn walk<const R: usize, const C: usize>(
    rows: Range<usize>,
    t0: usize,
    nt: usize,
    out: &mut [f32],
    tile: impl Fn(usize, usize, [usize; C], &[*mut f32]),
) {
    debug_assert!(rows.start.is_multiple_of(ROWS));
    debug_assert_eq!(out.len(), nt * rows.len());
    if nt == 0 || rows.is_empty() {
        return;
    }
    let ld = rows.len();
    let base = out.as_mut_ptr();
    for r0 in rows.clone().step_by(R) {
        let nr = R.min(rows.end - r0);
        let col = r0 - rows.start;
        for c0 in (0..nt).step_by(C) {
            let toks: [usize; C] = core::array::from_fn(|j| t0 + (c0 + j).min(nt - 1));
            let valid = C.min(nt - c0);
            let outs: [*mut f32; C] =
                core::array::from_fn(|j| base.add((c0 + j.min(valid - 1)) * ld + col));
            tile(r0, nr, toks, &outs[..valid]);
        }
    }
}
