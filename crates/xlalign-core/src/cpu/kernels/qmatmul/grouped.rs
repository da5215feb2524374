//! Q4_0 weights regrouped sixteen rows wide, for the kernels whose vector lanes are weight
//! rows (`grouped_x86`: AVX-512 VNNI and AVX2).
//!
//! The block-major kernels give each (row, token) its own vector accumulator whose lanes
//! are parts of one block, and pay, per block and per (row, token), a conversion, a scale
//! product and a multiply-add besides the integer dot product, then a horizontal sum. With
//! rows in the lanes, each 32-bit lane holds four bytes of one row's block, the matching four
//! activation bytes are broadcast, and an integer multiply-add over four bytes per lane
//! (`vpdpbusd`; `vpmaddubsw` then `vpmaddwd`) gives several rows at once: the float work is
//! paid once per block for all the register's rows, and no horizontal sum is left.

use super::{QFormat, QMatrix};
use crate::tensor::{Q4_0_BLOCK_BYTES, QK};

/// Weight rows per group: the i32 lanes of a 512-bit register (two 256-bit halves of 8).
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
