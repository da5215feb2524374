//! Quantised matrix product: `out[t][o] = Σ_b d_w·d_x·(w_b · q_b) + bias[o]`, with the weight
//! matrix in its stored Q4_0/Q8_0 blocks and the activations as [`Q8Rows`].
//!
//! Integer dot products per 32-value block, one float multiply-add per block. The loops
//! work on register tiles of R weight rows × C tokens, so a weight block, once unpacked, is
//! reused for C tokens and an activation block for R rows. Threads (feature `parallel`)
//! take disjoint groups of tokens, so each writes its own rows of `out`.
//!
//! On x86-64 and in the wasm builds, Q4_0 runs on a copy of the matrix regrouped sixteen rows
//! wide (`grouped`, made on first use), where vector lanes are weight rows (`grouped_x86`,
//! `grouped_wasm`); Q8_0 and the scalar twin read the stored blocks.

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use half::f16;

use super::isa::Isa;
use super::quant::Q8Rows;
use crate::cpu::par;
use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor, Q4_0_BLOCK_BYTES, Q8_0_BLOCK_BYTES, QK};

/// Block formats the integer kernels read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QFormat {
    /// 18-byte blocks: f16 scale, 16 bytes of nibbles (low = values 0..16, high = 16..32),
    /// value = d·(nibble − 8).
    Q4_0,
    /// 34-byte blocks: f16 scale, 32 int8 values.
    Q8_0,
}

impl QFormat {
    fn block_bytes(self) -> usize {
        match self {
            QFormat::Q4_0 => Q4_0_BLOCK_BYTES,
            QFormat::Q8_0 => Q8_0_BLOCK_BYTES,
        }
    }
}

/// A `[rows, cols]` weight matrix kept in its ggml blocks, with the f16 block scales
/// widened to f32 once (4 bytes per 32 weights) so the inner loops need no conversion.
#[derive(Clone, Debug)]
pub struct QMatrix {
    format: QFormat,
    rows: usize,
    cols: usize,
    data: Bytes,
    scales: Vec<f32>,
    /// Q4_0 weights regrouped for the kernels whose lanes are rows, made on first use (and
    /// shared by clones): the scalar path and Q8_0 never pay for the copy.
    grouped: Arc<OnceLock<grouped::Q4Grouped>>,
}

impl QMatrix {
    /// Wraps a 2-D Q4_0 or Q8_0 tensor (shared bytes, no copy).
    pub fn from_tensor(t: &Tensor) -> Result<QMatrix> {
        let format = match t.dtype {
            DType::Q4_0 => QFormat::Q4_0,
            DType::Q8_0 => QFormat::Q8_0,
            other => {
                return Err(Error::Unsupported(format!(
                    "tensor `{}` is {}, not a block-quantised type",
                    t.name,
                    other.name()
                )))
            }
        };
        let [rows, cols] = t.shape[..] else {
            return Err(Error::Unsupported(format!(
                "tensor `{}` has shape {:?}, expected 2-D",
                t.name, t.shape
            )));
        };
        if cols % QK != 0 || t.data.len() != rows * cols / QK * format.block_bytes() {
            return Err(Error::Format(format!(
                "tensor `{}`: size does not match shape {:?}",
                t.name, t.shape
            )));
        }
        let scales = t
            .data
            .chunks_exact(format.block_bytes())
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect();
        Ok(QMatrix {
            format,
            rows,
            cols,
            data: t.data.clone(),
            scales,
            grouped: Arc::default(),
        })
    }

    /// The regrouped copy (Q4_0 only), made once.
    fn grouped(&self) -> &grouped::Q4Grouped {
        self.grouped.get_or_init(|| grouped::Q4Grouped::new(self))
    }

    pub fn format(&self) -> QFormat {
        self.format
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    fn blocks(&self) -> usize {
        self.cols / QK
    }

    /// The payload of block `b` of row `r` (nibbles or int8 values, scale skipped).
    #[inline(always)]
    fn payload(&self, r: usize, b: usize) -> &[u8] {
        let bb = self.format.block_bytes();
        let start = (r * self.blocks() + b) * bb + 2;
        &self.data[start..start + bb - 2]
    }

    /// Row `r` as f32.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        let dtype = match self.format {
            QFormat::Q4_0 => DType::Q4_0,
            QFormat::Q8_0 => DType::Q8_0,
        };
        let rb = self.blocks() * self.format.block_bytes();
        crate::tensor::dequantize_into(dtype, &self.data[r * rb..(r + 1) * rb], out);
    }
}

/// `out = x·wᵀ + bias` on the best instruction set: `x` is `T × cols` quantised,
/// `out` is `T × rows` (overwritten).
///
/// Panics if the shapes disagree.
pub fn qmatmul(w: &QMatrix, x: &Q8Rows, bias: Option<&[f32]>, out: &mut [f32]) {
    qmatmul_with(Isa::best(), w, x, bias, out)
}

/// [`qmatmul`] on a chosen instruction set. The integer parts are exact everywhere; the
/// float sum over blocks is ordered differently by the SIMD versions, so results agree
/// with the scalar version up to f32 rounding of that sum.
pub fn qmatmul_with(isa: Isa, w: &QMatrix, x: &Q8Rows, bias: Option<&[f32]>, out: &mut [f32]) {
    assert_eq!(
        x.cols(),
        w.cols,
        "qmatmul: activations have {} columns, weights {}",
        x.cols(),
        w.cols
    );
    assert_eq!(
        out.len(),
        x.rows() * w.rows,
        "qmatmul: out is not {}×{}",
        x.rows(),
        w.rows
    );
    if let Some(b) = bias {
        assert_eq!(
            b.len(),
            w.rows,
            "qmatmul: bias length differs from {} rows",
            w.rows
        );
    }
    let n = w.rows;
    let t = x.rows();
    if n == 0 || t == 0 {
        return;
    }
    let (tr, tc) = tile_shape(isa, w.format);
    if runs_grouped(isa, w.format) {
        // Regrouped here, before the work is split, so no thread waits for another's copy.
        w.grouped();
    }
    let threads = par::threads();
    if threads > 1 && t.div_ceil(tc) < 2 * threads {
        // Too few tokens to keep every thread busy: split the weight rows instead. Each
        // piece fills a private `T × rows` buffer, copied into place afterwards.
        let per = n.div_ceil(threads * 3).div_ceil(tr) * tr;
        let pieces = par::map(n.div_ceil(per), |i| {
            let rows = i * per..((i + 1) * per).min(n);
            let mut buf = vec![0f32; t * rows.len()];
            run(isa, w, x, bias, rows.clone(), 0, t, &mut buf);
            buf
        });
        for (i, buf) in pieces.iter().enumerate() {
            let width = buf.len() / t;
            for (tok, src) in buf.chunks_exact(width).enumerate() {
                out[tok * n + i * per..tok * n + i * per + width].copy_from_slice(src);
            }
        }
    } else {
        let chunk = par::token_chunk(t, tc);
        par::for_each_chunk_mut(out, chunk * n, |ci, o| {
            run(isa, w, x, bias, 0..n, ci * chunk, o.len() / n, o)
        });
    }
}

/// Register tile (weight rows × tokens) of each instruction set. Wide tiles amortise
/// unpacking a weight block over many tokens and loading an activation block over many
/// rows. Measured on a 1536×384 Q4_0 matrix with 32 tokens (Zen 4): AVX2 4×2 32, 4×4 45,
/// 8×8 50 GMAC/s (the 64 accumulators partly live in L1, which costs less than reloading);
/// wasm simd128 in V8 2×2 20, 2×4 23, 4×4 19 GMAC/s (Q8_0 still runs those tiles). Q4_0 runs
/// the regrouped kernels (`grouped_x86`, `grouped_wasm`): rows are split in whole groups of
/// 16, tokens in tiles of 8 (AVX-512) or 4 (AVX2, wasm).
fn tile_shape(isa: Isa, format: QFormat) -> (usize, usize) {
    #[cfg(target_arch = "x86_64")]
    if runs_grouped(isa, format) {
        let toks = if isa.has_avx512vnni() {
            grouped_x86::TOKS_512
        } else {
            grouped_x86::TOKS_256
        };
        return (grouped::ROWS, toks);
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if runs_grouped(isa, format) {
        return (grouped::ROWS, grouped_wasm::TOKS);
    }
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx512vnni() {
        return (AVX512_R, AVX512_C);
    }
    let _ = format;
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        return (AVX2_R, AVX2_C);
    }
    #[cfg(all(
        target_arch = "wasm32",
        target_feature = "simd128",
        feature = "relaxed-simd"
    ))]
    if isa.has_relaxed_simd() {
        return (RELAXED_R, RELAXED_C);
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if isa.has_simd128() {
        return (WASM_R, WASM_C);
    }
    let _ = isa;
    (1, 1)
}

/// Whether `isa` runs `format` on the regrouped copy ([`grouped`]).
fn runs_grouped(isa: Isa, format: QFormat) -> bool {
    isa.has_row_kernels() && format == QFormat::Q4_0
}

#[cfg(target_arch = "x86_64")]
const AVX2_R: usize = 8;
#[cfg(target_arch = "x86_64")]
const AVX2_C: usize = 8;
#[cfg(target_arch = "x86_64")]
const AVX512_R: usize = 8;
#[cfg(target_arch = "x86_64")]
const AVX512_C: usize = 8;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
const WASM_R: usize = 2;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
const WASM_C: usize = 4;
#[cfg(all(
    target_arch = "wasm32",
    target_feature = "simd128",
    feature = "relaxed-simd"
))]
const RELAXED_R: usize = 2;
#[cfg(all(
    target_arch = "wasm32",
    target_feature = "simd128",
    feature = "relaxed-simd"
))]
const RELAXED_C: usize = 4;

/// Computes weight rows `rows` for tokens `t0..t0+nt` into `out`, which holds those
/// tokens' outputs for exactly those rows (`nt × rows.len()`), picking the kernel for
/// this instruction set and weight format.
#[allow(clippy::too_many_arguments)]
fn run(
    isa: Isa,
    w: &QMatrix,
    x: &Q8Rows,
    bias: Option<&[f32]>,
    rows: Range<usize>,
    t0: usize,
    nt: usize,
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx512vnni() {
        const R: usize = AVX512_R;
        const C: usize = AVX512_C;
        // SAFETY: an `Isa` with AVX-512 VNNI exists only when the CPU has it (and AVX2, FMA,
        // AVX512F/BW/VL); `tiles` passes in-range row and token indices.
        return match w.format {
            // SAFETY: as above; `rows` starts at a multiple of the group's 16 rows (the
            // callers split rows in multiples of `tile_shape`).
            QFormat::Q4_0 => unsafe {
                grouped_x86::run_avx512(w.grouped(), x, bias, rows, t0, nt, out)
            },
            QFormat::Q8_0 => tiles::<R, C>(bias, rows, t0, nt, out, |r, t| unsafe {
                avx512::q8::<R, C>(w, r, x, t)
            }),
        };
    }
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        const R: usize = AVX2_R;
        const C: usize = AVX2_C;
        let vnni = isa.has_avxvnni();
        // SAFETY (all three): an `Isa` with AVX2/AVX-VNNI exists only when the CPU has them;
        // `tiles` passes in-range row and token indices.
        return match (w.format, vnni) {
            // AVX-VNNI processors run the AVX2 kernel on Q4_0 (see `grouped_x86`). SAFETY: as
            // for AVX-512 above.
            (QFormat::Q4_0, _) => unsafe {
                grouped_x86::run_avx2(w.grouped(), x, bias, rows, t0, nt, out)
            },
            (QFormat::Q8_0, false) => tiles::<R, C>(bias, rows, t0, nt, out, |r, t| unsafe {
                avx2::q8::<R, C>(w, r, x, t)
            }),
            (QFormat::Q8_0, true) => tiles::<R, C>(bias, rows, t0, nt, out, |r, t| unsafe {
                avx2::q8_vnni::<R, C>(w, r, x, t)
            }),
        };
    }
    #[cfg(all(
        target_arch = "wasm32",
        target_feature = "simd128",
        feature = "relaxed-simd"
    ))]
    if isa.has_relaxed_simd() {
        const R: usize = RELAXED_R;
        const C: usize = RELAXED_C;
        // SAFETY: simd128 and relaxed-simd are enabled at compile time; `tiles` passes
        // in-range row indices and tokens within t0..t0+nt.
        return match w.format {
            // SAFETY: as for x86-64 above.
            QFormat::Q4_0 => unsafe {
                grouped_wasm::run_relaxed(w.grouped(), x, bias, rows, t0, nt, out)
            },
            QFormat::Q8_0 => {
                // Prepared once per call, not once per tile of weight rows.
                let xa = relaxed::prep_q8(x, t0, nt);
                tiles::<R, C>(bias, rows, t0, nt, out, |r, t| unsafe {
                    relaxed::q8::<R, C>(w, r, x, &xa, t.map(|t| t - t0), t0)
                })
            }
        };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if isa.has_simd128() {
        const R: usize = WASM_R;
        const C: usize = WASM_C;
        // SAFETY: simd128 is enabled at compile time; indices are in range.
        return match w.format {
            // SAFETY: as for x86-64 above.
            QFormat::Q4_0 => unsafe {
                grouped_wasm::run_simd128(w.grouped(), x, bias, rows, t0, nt, out)
            },
            QFormat::Q8_0 => tiles::<R, C>(bias, rows, t0, nt, out, |r, t| unsafe {
                simd128::q8::<R, C>(w, r, x, t)
            }),
        };
    }
    debug_assert!(
        isa.is_scalar() || cfg!(not(any(target_arch = "x86_64", target_arch = "wasm32")))
    );
    tiles::<1, 1>(bias, rows, t0, nt, out, |r, t| {
        [[scalar::dot(w, r[0], x, t[0])]]
    })
}

/// Walks weight rows `rows` × tokens `t0..t0+nt` in R×C tiles, writing `out` (`nt` rows of
/// `rows.len()`). At the edges the index arrays repeat the last valid row/token; the
/// duplicates are computed but not stored.
#[inline(always)]
fn tiles<const R: usize, const C: usize>(
    bias: Option<&[f32]>,
    rows: Range<usize>,
    t0: usize,
    nt: usize,
    out: &mut [f32],
    kernel: impl Fn([usize; R], [usize; C]) -> [[f32; C]; R],
) {
    let ld = rows.len();
    for r0 in rows.clone().step_by(R) {
        let idx: [usize; R] = core::array::from_fn(|i| (r0 + i).min(rows.end - 1));
        let nr = R.min(rows.end - r0);
        let col = r0 - rows.start;
        for c0 in (0..nt).step_by(C) {
            let toks: [usize; C] = core::array::from_fn(|j| t0 + (c0 + j).min(nt - 1));
            let acc = kernel(idx, toks);
            for j in 0..C.min(nt - c0) {
                let o = &mut out[(c0 + j) * ld + col..(c0 + j) * ld + col + nr];
                for (i, v) in o.iter_mut().enumerate() {
                    *v = acc[i][j] + bias.map_or(0.0, |b| b[r0 + i]);
                }
            }
        }
    }
}

/// The reference for every SIMD kernel: exact integer block dot, then
/// `acc += sumi · (d_w·d_x)` block by block.
pub(crate) mod scalar {
    use super::*;

    pub fn dot(w: &QMatrix, r: usize, x: &Q8Rows, t: usize) -> f32 {
        let nb = w.blocks();
        let mut acc = 0f32;
        for b in 0..nb {
            let (xq, dx) = x.block(t, b);
            let p = w.payload(r, b);
            let sumi: i32 = match w.format {
                QFormat::Q4_0 => {
                    let mut s = 0i32;
                    for j in 0..QK / 2 {
                        s += (p[j] & 0x0F) as i32 * xq[j] as i32
                            + (p[j] >> 4) as i32 * xq[j + QK / 2] as i32;
                    }
                    s - 8 * x.sums[t * nb + b]
                }
                QFormat::Q8_0 => p
                    .iter()
                    .zip(xq)
                    .map(|(&wv, &xv)| wv as i8 as i32 * xv as i32)
                    .sum(),
            };
            acc += sumi as f32 * (w.scales[r * nb + b] * dx);
        }
        acc
    }
}

/// AVX2 (and AVX-VNNI) for Q8_0 weights (Q4_0 runs `grouped_x86`).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::*;
    use std::arch::x86_64::*;

    /// Horizontal sum of the eight lanes.
    #[inline(always)]
    pub(super) unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    /// Shared tile loop. `unpack` turns a weight block into 32 unsigned or signed bytes
    /// (plus, for Q8_0, their absolute values); `dot` gives eight i32 partial sums whose
    /// total is the block's exact integer dot product.
    #[inline(always)]
    unsafe fn tile<const R: usize, const C: usize, W: Copy>(
        w: &QMatrix,
        rows: [usize; R],
        x: &Q8Rows,
        toks: [usize; C],
        unpack: impl Fn(*const u8) -> W,
        dot: impl Fn(W, __m256i, i32) -> __m256i,
    ) -> [[f32; C]; R] {
        let nb = w.blocks();
        let bb = w.format.block_bytes();
        let wp: [*const u8; R] = rows.map(|r| w.data.as_ptr().add(r * nb * bb + 2));
        let ws: [*const f32; R] = rows.map(|r| w.scales.as_ptr().add(r * nb));
        let xp: [*const i8; C] = toks.map(|t| x.qs.as_ptr().add(t * nb * QK));
        let xs: [*const f32; C] = toks.map(|t| x.scales.as_ptr().add(t * nb));
        let xsum: [*const i32; C] = toks.map(|t| x.sums.as_ptr().add(t * nb));
        let mut acc = [[_mm256_setzero_ps(); C]; R];
        for b in 0..nb {
            let wv: [W; R] = core::array::from_fn(|i| unpack(wp[i].add(b * bb)));
            let wd: [__m256; R] = core::array::from_fn(|i| _mm256_broadcast_ss(&*ws[i].add(b)));
            for j in 0..C {
                let xv = _mm256_loadu_si256(xp[j].add(b * QK) as *const __m256i);
                let xd = _mm256_broadcast_ss(&*xs[j].add(b));
                let s = *xsum[j].add(b);
                for i in 0..R {
                    let p = dot(wv[i], xv, s);
                    acc[i][j] =
                        _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(wd[i], xd), acc[i][j]);
                }
            }
        }
        let mut out = [[0f32; C]; R];
        for i in 0..R {
            for j in 0..C {
                out[i][j] = hsum(acc[i][j]);
            }
        }
        out
    }

    /// Q8_0: both sides signed, so the sign moves onto the activations (`sign_epi8`) and
    /// maddubs multiplies |w| (≤ 128, fits u8) by ±q.
    #[inline(always)]
    pub(super) unsafe fn unpack_q8(p: *const u8) -> (__m256i, __m256i) {
        let v = _mm256_loadu_si256(p as *const __m256i);
        (_mm256_sign_epi8(v, v), v)
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn q8<const R: usize, const C: usize>(
        w: &QMatrix,
        rows: [usize; R],
        x: &Q8Rows,
        toks: [usize; C],
    ) -> [[f32; C]; R] {
        let ones = _mm256_set1_epi16(1);
        tile(
            w,
            rows,
            x,
            toks,
            |p| unpack_q8(p),
            |(aw, wv), xv, _| {
                _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(xv, wv)), ones)
            },
        )
    }

    #[target_feature(enable = "avx2,fma,avxvnni")]
    pub unsafe fn q8_vnni<const R: usize, const C: usize>(
        w: &QMatrix,
        rows: [usize; R],
        x: &Q8Rows,
        toks: [usize; C],
    ) -> [[f32; C]; R] {
        tile(
            w,
            rows,
            x,
            toks,
            |p| unpack_q8(p),
            |(aw, wv), xv, _| {
                _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), aw, _mm256_sign_epi8(xv, wv))
            },
        )
    }
}

/// AVX-512 VNNI for Q8_0 weights (Q4_0 runs `grouped_x86`): `vpdpbusd` on 512-bit
/// registers, two weight blocks at a time (the lower half of each register holds block `b`,
/// the upper half block `b + 1`; the scales are per half).
/// An odd last block goes through the 256-bit EVEX form of the same instruction.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::avx2::{hsum, unpack_q8};
    use super::*;
    use std::arch::x86_64::*;

    // The helpers carry the instruction set themselves: a function without it that the
    // compiler declines to inline gets its intrinsics as calls (a build of the Python module
    // ran this path 5× slower that way).
    #[inline]
    #[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn pair(lo: __m256i, hi: __m256i) -> __m512i {
        _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn pair_ps(lo: f32, hi: f32) -> __m512 {
        _mm512_castpd_ps(_mm512_insertf64x4(
            _mm512_castps_pd(_mm512_set1_ps(lo)),
            _mm256_castps_pd(_mm256_set1_ps(hi)),
            1,
        ))
    }

    /// The shared tile loop (see `avx2::tile`): `unpack` gives a block's 32 bytes for the
    /// unsigned side of `vpdpbusd` and what the signed side needs; `dot` and `dot1` give the
    /// i32 lanes whose sum per block is its exact integer dot product, for a pair of blocks
    /// and for one.
    #[inline]
    #[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const R: usize, const C: usize, W: Copy>(
        w: &QMatrix,
        rows: [usize; R],
        x: &Q8Rows,
        toks: [usize; C],
        unpack: impl Fn(*const u8) -> W,
        join: impl Fn(W, W) -> (__m512i, __m512i),
        dot: impl Fn((__m512i, __m512i), __m512i, i32, i32) -> __m512i,
        dot1: impl Fn(W, __m256i, i32) -> __m256i,
    ) -> [[f32; C]; R] {
        let nb = w.blocks();
        let bb = w.format.block_bytes();
        let wp: [*const u8; R] = rows.map(|r| w.data.as_ptr().add(r * nb * bb + 2));
        let ws: [*const f32; R] = rows.map(|r| w.scales.as_ptr().add(r * nb));
        let xp: [*const i8; C] = toks.map(|t| x.qs.as_ptr().add(t * nb * QK));
        let xs: [*const f32; C] = toks.map(|t| x.scales.as_ptr().add(t * nb));
        let xsum: [*const i32; C] = toks.map(|t| x.sums.as_ptr().add(t * nb));
        // The first pair of blocks sets the accumulators (zeroing 64 registers' worth of
        // stack first took 5 % of a batch: a `memset` per tile).
        let first = |i: usize, j: usize| {
            if nb < 2 {
                return _mm512_setzero_ps();
            }
            let wv = join(unpack(wp[i]), unpack(wp[i].add(bb)));
            let xv = _mm512_loadu_si512(xp[j] as *const __m512i);
            let p = dot(wv, xv, *xsum[j], *xsum[j].add(1));
            let scale = _mm512_mul_ps(
                pair_ps(*ws[i], *ws[i].add(1)),
                pair_ps(*xs[j], *xs[j].add(1)),
            );
            _mm512_mul_ps(_mm512_cvtepi32_ps(p), scale)
        };
        let mut acc: [[__m512; C]; R] =
            core::array::from_fn(|i| core::array::from_fn(|j| first(i, j)));
        let mut b = if nb >= 2 { 2 } else { 0 };
        while b + 2 <= nb {
            let wv: [(__m512i, __m512i); R] = core::array::from_fn(|i| {
                join(unpack(wp[i].add(b * bb)), unpack(wp[i].add((b + 1) * bb)))
            });
            let wd: [__m512; R] =
                core::array::from_fn(|i| pair_ps(*ws[i].add(b), *ws[i].add(b + 1)));
            for j in 0..C {
                let xv = _mm512_loadu_si512(xp[j].add(b * QK) as *const __m512i);
                let xd = pair_ps(*xs[j].add(b), *xs[j].add(b + 1));
                let (s0, s1) = (*xsum[j].add(b), *xsum[j].add(b + 1));
                for i in 0..R {
                    let p = dot(wv[i], xv, s0, s1);
                    acc[i][j] =
                        _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(wd[i], xd), acc[i][j]);
                }
            }
            b += 2;
        }
        let mut out = [[0f32; C]; R];
        for i in 0..R {
            for j in 0..C {
                out[i][j] = _mm512_reduce_add_ps(acc[i][j]);
            }
        }
        if b < nb {
            for i in 0..R {
                let wv = unpack(wp[i].add(b * bb));
                let wd = *ws[i].add(b);
                for j in 0..C {
                    let xv = _mm256_loadu_si256(xp[j].add(b * QK) as *const __m256i);
                    let p = dot1(wv, xv, *xsum[j].add(b));
                    out[i][j] += hsum(_mm256_cvtepi32_ps(p)) * (wd * *xs[j].add(b));
                }
            }
        }
        out
    }

    /// Q8_0: both sides signed, so the sign moves onto the activations and `vpdpbusd`
    /// multiplies |w| (≤ 128, fits u8) by ±q.
    #[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")]
    pub unsafe fn q8<const R: usize, const C: usize>(
        w: &QMatrix,
        rows: [usize; R],
        x: &Q8Rows,
        toks: [usize; C],
    ) -> [[f32; C]; R] {
        tile(
            w,
            rows,
            x,
            toks,
            |p| unpack_q8(p),
            |(aa, va), (ab, vb)| (pair(aa, ab), pair(va, vb)),
            |(aw, wv), xv, _, _| {
                // Negate q where w is negative (and zero it where w is 0, which |w| = 0
                // makes irrelevant): `sign_epi8` has no 512-bit form.
                let neg = _mm512_movepi8_mask(wv);
                let xs = _mm512_mask_sub_epi8(xv, neg, _mm512_setzero_si512(), xv);
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), aw, xs)
            },
            |(aw, wv), xv, _| {
                _mm256_dpbusd_epi32(_mm256_setzero_si256(), aw, _mm256_sign_epi8(xv, wv))
            },
        )
    }
}

mod grouped;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod grouped_wasm;
#[cfg(target_arch = "x86_64")]
mod grouped_x86;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128 {
    use super::*;
    use core::arch::wasm32::*;

    /// A weight block as four i16x8 vectors (signed values).
    type Wide = [v128; 4];

    #[inline(always)]
    fn widen(lo: v128, hi: v128) -> Wide {
        [
            i16x8_extend_low_i8x16(lo),
            i16x8_extend_high_i8x16(lo),
            i16x8_extend_low_i8x16(hi),
            i16x8_extend_high_i8x16(hi),
        ]
    }

    #[inline(always)]
    unsafe fn tile<const R: usize, const C: usize>(
        w: &QMatrix,
        rows: [usize; R],
        x: &Q8Rows,
        toks: [usize; C],
        unpack: impl Fn(*const u8) -> Wide,
    ) -> [[f32; C]; R] {
        let nb = w.blocks();
        let bb = w.format.block_bytes();
        let wp: [*const u8; R] = rows.map(|r| w.data.as_ptr().add(r * nb * bb + 2));
        let ws: [*const f32; R] = rows.map(|r| w.scales.as_ptr().add(r * nb));
        let xp: [*const i8; C] = toks.map(|t| x.qs.as_ptr().add(t * nb * QK));
        let xs: [*const f32; C] = toks.map(|t| x.scales.as_ptr().add(t * nb));
        let mut acc = [[f32x4_splat(0.0); C]; R];
        for b in 0..nb {
            let wv: [Wide; R] = core::array::from_fn(|i| unpack(wp[i].add(b * bb)));
            for j in 0..C {
                let p = xp[j].add(b * QK) as *const v128;
                let xv = widen(v128_load(p), v128_load(p.add(1)));
                let xd = *xs[j].add(b);
                for i in 0..R {
                    let s = i32x4_add(
                        i32x4_add(
                            i32x4_dot_i16x8(wv[i][0], xv[0]),
                            i32x4_dot_i16x8(wv[i][1], xv[1]),
                        ),
                        i32x4_add(
                            i32x4_dot_i16x8(wv[i][2], xv[2]),
                            i32x4_dot_i16x8(wv[i][3], xv[3]),
                        ),
                    );
                    let scale = f32x4_splat(*ws[i].add(b) * xd);
                    acc[i][j] = f32x4_add(acc[i][j], f32x4_mul(f32x4_convert_i32x4(s), scale));
                }
            }
        }
        let mut out = [[0f32; C]; R];
        for i in 0..R {
            for j in 0..C {
                let v = acc[i][j];
                out[i][j] = (f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<1>(v))
                    + (f32x4_extract_lane::<2>(v) + f32x4_extract_lane::<3>(v));
            }
        }
        out
    }

    pub unsafe fn q8<const R: usize, const C: usize>(
        w: &QMatrix,
        rows: [usize; R],
        x: &Q8Rows,
        toks: [usize; C],
    ) -> [[f32; C]; R] {
        tile(w, rows, x, toks, |p| {
            widen(
                v128_load(p as *const v128),
                v128_load((p as *const v128).add(1)),
            )
        })
    }
}

/// WebAssembly relaxed SIMD: `i32x4.relaxed_dot_i8x16_i7x16_add_s(a, b, c)` adds to each i32
/// lane of `c` the products of four signed bytes of `a` with four bytes of `b`. Only bytes
/// of `b` below 128 give the same answer everywhere: x86 engines (pmaddubsw) read `b` as
/// unsigned, ARM (sdot) as signed, and the first pairwise sums in i16 may saturate or wrap.
/// So `b` only ever holds values in 0..=127, where the signed and unsigned readings agree and
/// a pair of products stays within ±2·128·127 = ±32,512 (no i16 overflow): each block's
/// integer dot product is exact, as in the scalar twin, on any processor.
///
/// - Q4_0 (`grouped_wasm`): the nibbles (0..15) are `b`, the activations `a`, through
///   `i16x8.relaxed_dot_i8x16_i7x16_s` (the i16 form of the same instruction: pair sums),
///   summed in i16 over the block; the −8 offset is `−8·Σq`. Each i32 lane is one row's
///   exact block dot and the float side is the scalar twin's, so the two wasm builds give
///   the scalar kernel's bits.
/// - Q8_0 (here): both sides are signed, so the activations (within −127..=127) are split
///   into their positive and negative parts, each 0..=127 and so fit for `b`, and the weights
///   (any int8) are `a`: `w·q = w·max(q, 0) − w·max(−q, 0)`. Beyond exact block sums, each
///   i32 lane holds the very products it holds in the `simd128` kernel (both sides' bytes are
///   first shuffled by `lanes`), and the float side (scales, accumulation, horizontal sum) is
///   that kernel's, with no relaxed (fused or not) multiply-add. So the two wasm builds give
///   bit-identical results, and the same links.
///
/// `relaxed_lanes` in the tests is this lane arithmetic in plain Rust, checked natively under
/// every lowering against the scalar block dot (and, for Q8_0, the `simd128` lanes).
#[cfg(all(
    target_arch = "wasm32",
    target_feature = "simd128",
    feature = "relaxed-simd"
))]
mod relaxed {
    use super::*;
    use core::arch::wasm32::*;

    /// Shuffles 16 values so that the four bytes a relaxed dot product sums into lane `k`
    /// (`4k..4k+3`) are the four that `i32x4.dot_i16x8_s` on their widened halves sums into
    /// lane `k` in the `simd128` kernel: `2k, 2k+1` and `8+2k, 9+2k`.
    #[inline(always)]
    fn lanes(v: v128) -> v128 {
        i8x16_shuffle::<0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15>(v, v)
    }

    #[inline]
    #[target_feature(enable = "relaxed-simd")]
    fn dot(a: v128, b: v128, c: v128) -> v128 {
        i32x4_relaxed_dot_i8x16_i7x16_add(a, b, c)
    }

    /// Each block of tokens `t0..t0+nt`, as `prep` makes it from the block's two halves.
    #[inline]
    #[target_feature(enable = "relaxed-simd")]
    fn prepare<A>(x: &Q8Rows, t0: usize, nt: usize, prep: impl Fn(v128, v128) -> A) -> Vec<A> {
        x.qs[t0 * x.cols()..(t0 + nt) * x.cols()]
            .chunks_exact(QK)
            .map(|b| {
                // SAFETY: a block is 32 bytes; unaligned loads.
                let p = b.as_ptr() as *const v128;
                unsafe { prep(v128_load(p), v128_load(p.add(1))) }
            })
            .collect()
    }

    /// Q8_0's side: the positive and negative parts of both halves, shuffled.
    #[target_feature(enable = "relaxed-simd")]
    pub fn prep_q8(x: &Q8Rows, t0: usize, nt: usize) -> Vec<[v128; 4]> {
        let zero = i8x16_splat(0);
        let parts = |v: v128| {
            let v = lanes(v);
            (i8x16_max(v, zero), i8x16_max(i8x16_neg(v), zero))
        };
        prepare(x, t0, nt, |lo, hi| {
            let ((pl, nl), (ph, nh)) = (parts(lo), parts(hi));
            [pl, nl, ph, nh]
        })
    }

    /// `toks` index the prepared blocks `xa` (`nb` per token); `x` gives the scales.
    #[inline]
    #[target_feature(enable = "relaxed-simd")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const R: usize, const C: usize, W: Copy, A: Copy>(
        w: &QMatrix,
        rows: [usize; R],
        x: &Q8Rows,
        xa: &[A],
        toks: [usize; C],
        t0: usize,
        unpack: impl Fn(*const u8) -> W,
        sum: impl Fn(W, A) -> v128,
    ) -> [[f32; C]; R] {
        let nb = w.blocks();
        let bb = w.format.block_bytes();
        let wp: [*const u8; R] = rows.map(|r| w.data.as_ptr().add(r * nb * bb + 2));
        let ws: [*const f32; R] = rows.map(|r| w.scales.as_ptr().add(r * nb));
        let xp: [*const A; C] = toks.map(|t| xa.as_ptr().add(t * nb));
        let xs: [*const f32; C] = toks.map(|t| x.scales.as_ptr().add((t0 + t) * nb));
        let mut acc = [[f32x4_splat(0.0); C]; R];
        for b in 0..nb {
            let wv: [W; R] = core::array::from_fn(|i| unpack(wp[i].add(b * bb)));
            for j in 0..C {
                let xv = *xp[j].add(b);
                let xd = *xs[j].add(b);
                for i in 0..R {
                    let s = sum(wv[i], xv);
                    let scale = f32x4_splat(*ws[i].add(b) * xd);
                    acc[i][j] = f32x4_add(acc[i][j], f32x4_mul(f32x4_convert_i32x4(s), scale));
                }
            }
        }
        let mut out = [[0f32; C]; R];
        for i in 0..R {
            for j in 0..C {
                let v = acc[i][j];
                out[i][j] = (f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<1>(v))
                    + (f32x4_extract_lane::<2>(v) + f32x4_extract_lane::<3>(v));
            }
        }
        out
    }

    /// `toks`: tokens relative to the `t0` the activations `xa` were prepared from.
    #[target_feature(enable = "relaxed-simd")]
    pub unsafe fn q8<const R: usize, const C: usize>(
        w: &QMatrix,
        rows: [usize; R],
        x: &Q8Rows,
        xa: &[[v128; 4]],
        toks: [usize; C],
        t0: usize,
    ) -> [[f32; C]; R] {
        tile(
            w,
            rows,
            x,
            xa,
            toks,
            t0,
            |p| {
                let p = p as *const v128;
                (lanes(v128_load(p)), lanes(v128_load(p.add(1))))
            },
            |(wl, wh), [pl, nl, ph, nh]| {
                let z = i32x4_splat(0);
                i32x4_sub(dot(wh, ph, dot(wl, pl, z)), dot(wh, nh, dot(wl, nl, z)))
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::quantize;
    use proptest::prelude::*;

    fn weight(dtype: DType, rows: usize, cols: usize, seed: u64) -> (Tensor, Vec<f32>) {
        // A small LCG keeps the matrices reproducible without another dependency.
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let vals: Vec<f32> = (0..rows * cols)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
            })
            .collect();
        let bytes = quantize(dtype, &vals).unwrap();
        let t = Tensor::new("w", dtype, vec![rows, cols], Bytes::from(bytes)).unwrap();
        let deq = t.to_f32_vec();
        (t, deq)
    }

    fn case() -> impl Strategy<Value = (usize, usize, usize, u64, Vec<f32>)> {
        (1usize..41, 1usize..4, 1usize..40, any::<u64>()).prop_flat_map(|(n, blocks, t, seed)| {
            let cols = blocks * QK;
            (
                Just(n),
                Just(cols),
                Just(t),
                Just(seed),
                proptest::collection::vec(-4.0f32..4.0, t * cols),
            )
        })
    }

    proptest! {
        #[test]
        fn simd_matches_scalar(case in case(), q8 in any::<bool>()) {
            let (n, cols, t, seed, x) = case;
            let dtype = if q8 { DType::Q8_0 } else { DType::Q4_0 };
            let (wt, deq) = weight(dtype, n, cols, seed);
            let w = QMatrix::from_tensor(&wt).unwrap();
            let xq = Q8Rows::quantize(&x, cols);
            let bias: Vec<f32> = (0..n).map(|i| i as f32 * 0.25 - 1.0).collect();
            let mut want = vec![0f32; t * n];
            qmatmul_with(Isa::scalar(), &w, &xq, Some(&bias), &mut want);
            let xd = xq.dequantize();
            for isa in Isa::available() {
                let mut got = vec![f32::NAN; t * n];
                qmatmul_with(isa, &w, &xq, Some(&bias), &mut got);
                for ti in 0..t {
                    for o in 0..n {
                        // Σ|terms| bounds the rounding of a differently ordered f32 sum.
                        let mag: f32 = (0..cols).map(|k| (deq[o * cols + k] * xd[ti * cols + k]).abs()).sum();
                        let tol = 1e-5 * mag + 1e-6;
                        let (g, s) = (got[ti * n + o], want[ti * n + o]);
                        prop_assert!((g - s).abs() <= tol, "{} {:?} [{},{}]: {} vs {}", isa, dtype, ti, o, g, s);
                    }
                }
            }
        }

        #[test]
        fn integer_path_matches_dequantised_f32(case in case(), q8 in any::<bool>()) {
            let (n, cols, t, seed, x) = case;
            let dtype = if q8 { DType::Q8_0 } else { DType::Q4_0 };
            let (wt, deq) = weight(dtype, n, cols, seed);
            let w = QMatrix::from_tensor(&wt).unwrap();
            let xq = Q8Rows::quantize(&x, cols);
            let mut got = vec![0f32; t * n];
            qmatmul(&w, &xq, None, &mut got);
            for ti in 0..t {
                for o in 0..n {
                    let xr = &x[ti * cols..(ti + 1) * cols];
                    let wr = &deq[o * cols..(o + 1) * cols];
                    let exact: f64 = xr.iter().zip(wr).map(|(&a, &b)| a as f64 * b as f64).sum();
                    // Activation rounding moves each value by at most amax_b/254, so a block's
                    // dot moves by at most amax_b/254·Σ|w_b|; plus f32 rounding.
                    let mut bound = 0f64;
                    for b in 0..cols / QK {
                        let amax = xr[b * QK..(b + 1) * QK].iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
                        let wsum: f64 = wr[b * QK..(b + 1) * QK].iter().map(|v| v.abs() as f64).sum();
                        bound += amax / 254.0 * wsum * (1.0 + 1e-4);
                    }
                    let mag: f64 = xr.iter().zip(wr).map(|(&a, &b)| (a as f64 * b as f64).abs()).sum();
                    let g = got[ti * n + o] as f64;
                    prop_assert!((g - exact).abs() <= bound + 1e-5 * mag + 1e-6, "[{},{}] {} vs {} (bound {})", ti, o, g, exact, bound);
                }
            }
        }
    }

    /// The relaxed-SIMD kernels' lane arithmetic (`grouped_wasm::run_relaxed` for Q4_0, module
    /// `relaxed` for Q8_0) in plain Rust, under the ways engines may lower the relaxed dot
    /// products, checked against the scalar twin's exact block dot per row (Q4_0) and the
    /// `simd128` kernel's i32 lanes (Q8_0: they must be equal, lane by lane, for the two wasm
    /// builds to give the same bits). Runs natively, so it holds whatever processor the
    /// browser later runs on; the browser suites run the real instructions
    /// (tests/browser/variants.test.mjs).
    mod relaxed_lanes {
        use super::*;

        #[derive(Clone, Copy, Debug)]
        enum Lowering {
            /// x86 without VNNI (pmaddubsw + pmaddwd): `b` unsigned, pair sums saturated to i16.
            SaturatingUnsigned,
            /// ARM sdot: `b` signed, exact sums.
            ExactSigned,
            /// x86 vpdpbusd: `b` unsigned, exact sums.
            ExactUnsigned,
            /// A pairwise i16 sum that wraps instead of saturating.
            Wrapping,
        }
        const ALL: [Lowering; 4] = [
            Lowering::SaturatingUnsigned,
            Lowering::ExactSigned,
            Lowering::ExactUnsigned,
            Lowering::Wrapping,
        ];

        /// `i16x8.relaxed_dot_i8x16_i7x16_s`: the pair sums, as the lowering leaves them (an
        /// exact lowering keeps them whole, for the i32 form; the i16 form then wraps).
        fn pairs(how: Lowering, a: [i8; 16], b: [u8; 16]) -> [i32; 8] {
            let bv = |k: usize| match how {
                Lowering::ExactSigned => b[k] as i8 as i32,
                _ => b[k] as i32,
            };
            core::array::from_fn(|m| {
                let p = a[2 * m] as i32 * bv(2 * m) + a[2 * m + 1] as i32 * bv(2 * m + 1);
                match how {
                    Lowering::SaturatingUnsigned => p.clamp(i16::MIN as i32, i16::MAX as i32),
                    Lowering::Wrapping => p as i16 as i32,
                    _ => p,
                }
            })
        }

        /// `i32x4.relaxed_dot_i8x16_i7x16_add_s`.
        fn dot_add(how: Lowering, a: [i8; 16], b: [u8; 16], c: [i32; 4]) -> [i32; 4] {
            let p = pairs(how, a, b);
            core::array::from_fn(|l| c[l].wrapping_add(p[2 * l] + p[2 * l + 1]))
        }

        /// `relaxed::lanes`.
        const LANES: [usize; 16] = [0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15];

        fn half<T: Copy>(v: &[T], h: usize) -> [T; 16] {
            core::array::from_fn(|k| v[16 * h + LANES[k]])
        }

        /// The `simd128` kernel's i32 lanes: lane `k` sums the values at `2k, 2k+1` of each
        /// eight-value quarter of the block (`i32x4.dot_i16x8_s` on the widened halves).
        fn simd128_lanes(w: &[i32], x: &[i8]) -> [i32; 4] {
            core::array::from_fn(|k| {
                (0..4)
                    .flat_map(|q| [8 * q + 2 * k, 8 * q + 2 * k + 1])
                    .map(|e| w[e] * x[e] as i32)
                    .sum()
            })
        }

        /// `grouped_wasm::run_relaxed` on one quarter of a group: `rows` holds four rows' 16
        /// bytes of nibbles; vector `k` is bytes `4k..4k+4` of each row, its low nibbles meet
        /// activation word `k` broadcast and its high ones word `4+k`, as `a`; the pair sums
        /// add up in i16 over the block, then pairwise to i32, less `8·Σq`.
        fn q4_lanes(how: Lowering, rows: &[u8], xq: &[i8]) -> [i32; 4] {
            let mut p16 = [0i16; 8];
            for k in 0..4 {
                let v: [u8; 16] = core::array::from_fn(|i| rows[16 * (i / 4) + 4 * k + i % 4]);
                let word = |w: usize| -> [i8; 16] { core::array::from_fn(|i| xq[4 * w + i % 4]) };
                let (pl, ph) = (
                    pairs(how, word(k), v.map(|b| b & 0x0F)),
                    pairs(how, word(4 + k), v.map(|b| b >> 4)),
                );
                for m in 0..8 {
                    p16[m] = p16[m].wrapping_add(pl[m] as i16).wrapping_add(ph[m] as i16);
                }
            }
            let sum: i32 = xq.iter().map(|&v| v as i32).sum();
            core::array::from_fn(|l| p16[2 * l] as i32 + p16[2 * l + 1] as i32 - 8 * sum)
        }

        /// `relaxed::q8`: weights as `a`, the activations' positive and negative parts as `b`.
        fn q8_lanes(how: Lowering, p: &[u8], xq: &[i8]) -> [i32; 4] {
            let w: Vec<i8> = p.iter().map(|&v| v as i8).collect();
            let pos: Vec<u8> = xq.iter().map(|&v| v.max(0) as u8).collect();
            let neg: Vec<u8> = xq.iter().map(|&v| v.wrapping_neg().max(0) as u8).collect();
            let run = |part: &[u8]| {
                let acc = dot_add(how, half(&w, 0), half(part, 0), [0; 4]);
                dot_add(how, half(&w, 1), half(part, 1), acc)
            };
            let (p, n) = (run(&pos), run(&neg));
            core::array::from_fn(|l| p[l] - n[l])
        }

        /// `p`: 64 bytes, four rows of Q4_0 nibbles or (the first 32) one Q8_0 block.
        fn check(p: &[u8], xq: &[i8]) -> std::result::Result<(), TestCaseError> {
            // The scalar twin's block dots.
            let exact4: [i32; 4] = core::array::from_fn(|r| {
                (0..QK)
                    .map(|e| {
                        let b = p[16 * r + e % (QK / 2)];
                        let w = (if e < QK / 2 { b & 0x0F } else { b >> 4 }) as i32 - 8;
                        w * xq[e] as i32
                    })
                    .sum()
            });
            let w8: Vec<i32> = p[..QK].iter().map(|&v| v as i8 as i32).collect();
            let want8 = simd128_lanes(&w8, xq);
            let exact8: i32 = w8.iter().zip(xq).map(|(&w, &x)| w * x as i32).sum();
            prop_assert_eq!(want8.iter().sum::<i32>(), exact8);
            for how in ALL {
                prop_assert_eq!(q4_lanes(how, p, xq), exact4, "q4 {:?}", how);
                prop_assert_eq!(q8_lanes(how, &p[..QK], xq), want8, "q8 {:?}", how);
            }
            Ok(())
        }

        /// Bytes biased to the extremes (−128, −127, 0, 127, 0x0F/0xF0 nibbles), where
        /// saturation or a signed/unsigned reading would show.
        fn byte() -> impl Strategy<Value = u8> {
            prop_oneof![
                any::<u8>(),
                Just(0x80),
                Just(0x81),
                Just(0x7F),
                Just(0xFF),
                Just(0x0F),
                Just(0xF0),
                Just(0)
            ]
        }

        fn act() -> impl Strategy<Value = i8> {
            prop_oneof![-127i8..=127, Just(-127i8), Just(127i8), Just(0i8)]
        }

        proptest! {
            #[test]
            fn every_lowering_gives_the_exact_lanes(
                p in proptest::collection::vec(byte(), 2 * QK),
                xq in proptest::collection::vec(act(), QK),
            ) {
                check(&p, &xq)?;
            }
        }

        #[test]
        fn extremes_give_the_exact_lanes() {
            for (w, x) in [
                (0x80u8, -127i8),
                (0x80, 127),
                (0x7F, 127),
                (0x7F, -127),
                (0xFF, 127),
                (0x00, -127),
            ] {
                check(&[w; 2 * QK], &[x; QK]).unwrap();
            }
        }

        #[test]
        fn a_byte_over_127_in_b_would_differ_between_lowerings() {
            // What the operand rule protects against: with 0x80 in `b` the lowerings disagree.
            let a = [1i8; 16];
            let b = [0x80u8; 16];
            let x86 = dot_add(Lowering::SaturatingUnsigned, a, b, [0; 4]);
            let arm = dot_add(Lowering::ExactSigned, a, b, [0; 4]);
            assert_ne!(x86, arm);
        }
    }

    #[test]
    fn rejects_unquantised_and_misshapen_tensors() {
        let t = Tensor::from_f32("w", vec![2, 32], &[0.0; 64]).unwrap();
        assert!(QMatrix::from_tensor(&t).is_err());
        let (t, _) = weight(DType::Q4_0, 2, 64, 1);
        let flat = Tensor {
            shape: vec![128],
            ..t
        };
        assert!(QMatrix::from_tensor(&flat).is_err());
    }

    #[test]
    fn a_token_gets_the_same_bits_in_any_batch() {
        // Few tokens split the work by weight rows, many by tokens; tiles differ too. The
        // per-(row, token) arithmetic must not depend on any of that.
        let (t, _) = weight(DType::Q4_0, 45, 96, 11);
        let w = QMatrix::from_tensor(&t).unwrap();
        let x: Vec<f32> = (0..70 * 96)
            .map(|i| ((i * 37 % 101) as f32 / 101.0 - 0.5) * 3.0)
            .collect();
        for isa in Isa::available() {
            let all = Q8Rows::quantize_with(isa, &x, 96);
            let mut big = vec![0f32; 70 * 45];
            qmatmul_with(isa, &w, &all, None, &mut big);
            for start in [0, 13, 67] {
                let few = Q8Rows::quantize_with(isa, &x[start * 96..(start + 3) * 96], 96);
                let mut small = vec![0f32; 3 * 45];
                qmatmul_with(isa, &w, &few, None, &mut small);
                assert_eq!(
                    &small[..],
                    &big[start * 45..(start + 3) * 45],
                    "{isa} at {start}"
                );
            }
        }
    }

    #[test]
    fn dequantize_row_matches_tensor() {
        let (t, deq) = weight(DType::Q8_0, 3, 64, 7);
        let w = QMatrix::from_tensor(&t).unwrap();
        let mut row = vec![0f32; 64];
        w.dequantize_row(2, &mut row);
        assert_eq!(&row[..], &deq[128..192]);
    }
}
