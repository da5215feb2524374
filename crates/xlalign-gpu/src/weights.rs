//! Model weights on the GPU, uploaded once per model (blocks that arrive later are uploaded
//! then, each once).
//!
//! Layout choice: GGUF's Q4_0 blocks are 18 bytes (`f16 d`, 16 nibble bytes) and Q8_0
//! blocks 34 bytes, so block starts are not 4-byte aligned and WGSL (which only loads u32)
//! would need unaligned double-word reads and shifts for every quant. Instead each matrix is
//! repacked at upload into two arrays:
//! - `quants`: the block's quant bytes, unchanged and in file order, as little-endian u32
//!   words (4 per Q4_0 block, 8 per Q8_0 block), so word `b·4 + i` holds bytes 4i…4i+3 of
//!   block b;
//! - `scales`: one f32 per block (the f16 scale widened, which is exact).
//!
//! That costs 2 bytes per block over the file (Q4_0: 20 instead of 18 bytes per 32 weights)
//! and makes every load an aligned word load. f16 matrices are stored as u32 pairs (element
//! 2i in the low half), f32 matrices as their bits.
//!
//! The query, key and value projections of a layer are stacked into one `[3·hidden, hidden]`
//! matrix, so one matmul produces q, k and v side by side.

use std::sync::{Arc, PoisonError, RwLock};

use half::f16;
use wgpu::util::DeviceExt;

use xlalign_core::error::{Error, Result};
use xlalign_core::model::{EncoderConfig, EncoderLayer, EncoderWeights, LayerNorm, Linear};
use xlalign_core::table::check_row_write;
use xlalign_core::tensor::{DType, Tensor, Q4_0_BLOCK_BYTES, Q8_0_BLOCK_BYTES, QK};

use crate::context::GpuContext;

/// How a matrix is stored on the GPU; the numbers are the `WT_*` codes in the shaders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeightType {
    F32 = 0,
    F16 = 1,
    Q8_0 = 2,
    Q4_0 = 3,
}

impl From<DType> for WeightType {
    fn from(d: DType) -> Self {
        match d {
            DType::F32 => WeightType::F32,
            DType::F16 => WeightType::F16,
            DType::Q8_0 => WeightType::Q8_0,
            DType::Q4_0 => WeightType::Q4_0,
        }
    }
}

/// A tensor's data repacked for the shaders (see the module comment).
pub struct Repacked {
    pub wtype: WeightType,
    pub quants: Vec<u32>,
    pub scales: Vec<f32>,
}

/// Repacks raw tensor bytes of `dtype` (whole blocks for the quantised types).
pub fn repack(dtype: DType, bytes: &[u8]) -> Repacked {
    let f16_at = |b: &[u8]| f16::from_le_bytes([b[0], b[1]]).to_f32();
    let words = |b: &[u8]| -> Vec<u32> {
        b.chunks(4)
            .map(|c| {
                let mut w = [0u8; 4];
                w[..c.len()].copy_from_slice(c);
                u32::from_le_bytes(w)
            })
            .collect()
    };
    match dtype {
        DType::F32 | DType::F16 => Repacked {
            wtype: dtype.into(),
            quants: words(bytes),
            scales: Vec::new(),
        },
        DType::Q4_0 | DType::Q8_0 => {
            let block = if dtype == DType::Q4_0 {
                Q4_0_BLOCK_BYTES
            } else {
                Q8_0_BLOCK_BYTES
            };
            let n = bytes.len() / block;
            let mut quants = Vec::with_capacity(n * (block - 2) / 4);
            let mut scales = Vec::with_capacity(n);
            for b in bytes.chunks_exact(block) {
                scales.push(f16_at(b));
                quants.extend(
                    b[2..]
                        .chunks_exact(4)
                        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                );
            }
            Repacked {
                wtype: dtype.into(),
                quants,
                scales,
            }
        }
    }
}

/// A linear layer `y = x·Wᵀ + b` ready for the matmul kernel.
pub struct GpuMatrix {
    pub rows: usize,
    pub cols: usize,
    pub wtype: WeightType,
    pub quants: wgpu::Buffer,
    /// Block scales; a 4-byte placeholder for float matrices.
    pub scales: wgpu::Buffer,
    pub bias: wgpu::Buffer,
}

impl GpuMatrix {
    /// Uploads `[rows, cols]` weights (`tensors` stacked by rows) and their bias.
    pub fn upload(
        ctx: &GpuContext,
        label: &str,
        tensors: &[&Tensor],
        bias: &[f32],
    ) -> Result<GpuMatrix> {
        let first = tensors
            .first()
            .ok_or_else(|| Error::Backend(format!("{label}: no weights")))?;
        let cols = first.row_len();
        let rows: usize = tensors.iter().map(|t| t.n_rows()).sum();
        if tensors
            .iter()
            .any(|t| t.row_len() != cols || t.shape.len() != 2)
        {
            return Err(Error::Unsupported(format!(
                "{label}: stacked matrices differ in width"
            )));
        }
        if bias.len() != rows {
            return Err(Error::Unsupported(format!(
                "{label}: {} bias values for {rows} rows",
                bias.len()
            )));
        }
        let same_type = tensors.iter().all(|t| t.dtype == first.dtype);
        let mut packed = if same_type {
            let mut acc = Repacked {
                wtype: first.dtype.into(),
                quants: Vec::new(),
                scales: Vec::new(),
            };
            for t in tensors {
                let r = repack(t.dtype, &t.data);
                acc.quants.extend(r.quants);
                acc.scales.extend(r.scales);
            }
            acc
        } else {
            // Mixed storage types cannot share one kernel variant; widen to f32 (rare, and
            // only the projections being stacked are affected).
            let mut all = Vec::with_capacity(rows * cols);
            for t in tensors {
                all.extend(t.to_f32_vec());
            }
            Repacked {
                wtype: WeightType::F32,
                quants: bytemuck::cast_slice(&all).to_vec(),
                scales: Vec::new(),
            }
        };
        if packed.wtype != WeightType::F32 && packed.wtype != WeightType::F16 && cols % QK != 0 {
            return Err(Error::Unsupported(format!(
                "{label}: quantised rows of {cols} are not whole blocks"
            )));
        }
        if packed.scales.is_empty() {
            packed.scales.push(0.0);
        }
        Ok(GpuMatrix {
            rows,
            cols,
            wtype: packed.wtype,
            quants: storage(
                ctx,
                &format!("{label}.quants"),
                bytemuck::cast_slice(&packed.quants),
            )?,
            scales: storage(
                ctx,
                &format!("{label}.scales"),
                bytemuck::cast_slice(&packed.scales),
            )?,
            bias: storage(ctx, &format!("{label}.bias"), bytemuck::cast_slice(bias))?,
        })
    }

    pub fn from_linear(ctx: &GpuContext, label: &str, l: &Linear) -> Result<GpuMatrix> {
        GpuMatrix::upload(ctx, label, &[&l.weight], &l.bias)
    }
}

/// One row range of the word-embedding table, small enough for a storage binding.
pub struct TablePart {
    pub row_start: u32,
    pub row_end: u32,
    pub quants: wgpu::Buffer,
    pub scales: wgpu::Buffer,
}

pub struct GpuNorm {
    pub weight: wgpu::Buffer,
    pub bias: wgpu::Buffer,
}

impl GpuNorm {
    fn upload(ctx: &GpuContext, label: &str, n: &LayerNorm) -> Result<GpuNorm> {
        Ok(GpuNorm {
            weight: storage(
                ctx,
                &format!("{label}.weight"),
                bytemuck::cast_slice(&n.weight),
            )?,
            bias: storage(ctx, &format!("{label}.bias"), bytemuck::cast_slice(&n.bias))?,
        })
    }
}

pub struct GpuLayer {
    /// q, k and v stacked: `[3·hidden, hidden]`.
    pub qkv: GpuMatrix,
    pub attn_output: GpuMatrix,
    pub attn_norm: GpuNorm,
    pub ffn_up: GpuMatrix,
    pub ffn_down: GpuMatrix,
    pub output_norm: GpuNorm,
}

pub struct GpuWeights {
    pub table_type: WeightType,
    pub table: Vec<TablePart>,
    /// The table's stored type and `[rows, width]`, for writing rows into it later.
    table_dtype: DType,
    table_shape: [usize; 2],
    pub position: wgpu::Buffer,
    /// Row 0 of the token-type table (every token has type 0).
    pub token_type: wgpu::Buffer,
    pub embd_norm: GpuNorm,
    /// The blocks uploaded so far, a prefix of the model's (blocks that arrive later are
    /// appended, see [`xlalign_core::backend::WriteBlocks`]). A pass runs from a snapshot.
    pub layers: RwLock<Vec<Arc<GpuLayer>>>,
}

impl GpuWeights {
    pub fn upload(
        ctx: &GpuContext,
        config: &EncoderConfig,
        w: &EncoderWeights,
    ) -> Result<GpuWeights> {
        let h = config.hidden;
        let table_type: WeightType = w.token_embd.dtype.into();
        let layers = w
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| upload_layer(ctx, i, l).map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        let t = &w.token_embd;
        Ok(GpuWeights {
            table_type,
            table: upload_table(ctx, &t.name, t.dtype, t.row_len(), t.read().bytes(), None)?,
            table_dtype: t.dtype,
            table_shape: [t.n_rows(), t.row_len()],
            position: storage(ctx, "position_embd", bytemuck::cast_slice(&w.position_embd))?,
            token_type: storage(
                ctx,
                "token_types[0]",
                bytemuck::cast_slice(&w.token_types[..h.min(w.token_types.len())]),
            )?,
            embd_norm: GpuNorm::upload(ctx, "token_embd_norm", &w.embd_norm)?,
            layers: RwLock::new(layers),
        })
    }
}

impl GpuWeights {
    /// The blocks uploaded so far.
    pub fn layers(&self) -> Vec<Arc<GpuLayer>> {
        self.layers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Overwrites rows `first..` of the uploaded word table with `rows` (whole rows as
    /// stored in the model file): each part they touch gets one `write_buffer` of its quants
    /// at the rows' offset, and one of its scales for the quantised types. The queue orders
    /// the writes after every pass already submitted and before every later one.
    pub fn write_table_rows(&self, ctx: &GpuContext, first: usize, rows: &[u8]) -> Result<()> {
        let row_len = self.table_shape[1];
        let dtype = self.table_dtype;
        check_row_write("token_embd", dtype, self.table_shape, first, rows.len())?;
        let row_bytes = dtype.row_bytes(row_len)?;
        let n = rows.len() / row_bytes;
        // Bytes per row in the repacked quant and scale arrays (see the module comment).
        let (quant_row, scale_row) = match dtype {
            DType::F32 => (row_len * 4, 0),
            // Two values per word: rows start on a word only when they hold an even count.
            DType::F16 if row_len.is_multiple_of(2) => (row_len * 2, 0),
            DType::F16 => {
                return Err(Error::Unsupported(format!(
                    "writing rows of {row_len} f16 values into a GPU table (rows must be an even number of values)"
                )))
            }
            DType::Q8_0 => (row_len / QK * 32, row_len / QK * 4),
            DType::Q4_0 => (row_len / QK * 16, row_len / QK * 4),
        };
        let end = first + n;
        for part in &self.table {
            let (start, stop) = (part.row_start as usize, part.row_end as usize);
            let (a, b) = (first.max(start), end.min(stop));
            if a >= b {
                continue;
            }
            let r = repack(
                dtype,
                &rows[(a - first) * row_bytes..(b - first) * row_bytes],
            );
            let at = (a - start) as u64;
            ctx.queue.write_buffer(
                &part.quants,
                at * quant_row as u64,
                bytemuck::cast_slice(&r.quants),
            );
            if scale_row > 0 {
                ctx.queue.write_buffer(
                    &part.scales,
                    at * scale_row as u64,
                    bytemuck::cast_slice(&r.scales),
                );
            }
        }
        Ok(())
    }
}

pub(crate) fn upload_layer(ctx: &GpuContext, i: usize, l: &EncoderLayer) -> Result<GpuLayer> {
    let p = |n: &str| format!("blk.{i}.{n}");
    let mut qkv_bias = Vec::with_capacity(l.query.bias.len() * 3);
    qkv_bias.extend_from_slice(&l.query.bias);
    qkv_bias.extend_from_slice(&l.key.bias);
    qkv_bias.extend_from_slice(&l.value.bias);
    Ok(GpuLayer {
        qkv: GpuMatrix::upload(
            ctx,
            &p("attn_qkv"),
            &[&l.query.weight, &l.key.weight, &l.value.weight],
            &qkv_bias,
        )?,
        attn_output: GpuMatrix::from_linear(ctx, &p("attn_output"), &l.attn_output)?,
        attn_norm: GpuNorm::upload(ctx, &p("attn_output_norm"), &l.attn_norm)?,
        ffn_up: GpuMatrix::from_linear(ctx, &p("ffn_up"), &l.ffn_up)?,
        ffn_down: GpuMatrix::from_linear(ctx, &p("ffn_down"), &l.ffn_down)?,
        output_norm: GpuNorm::upload(ctx, &p("layer_output_norm"), &l.output_norm)?,
    })
}

/// Splits the word table into row ranges that each fit one storage binding (or hold at most
/// `rows_per_part` rows, which tests use to exercise the split on any device).
pub(crate) fn upload_table(
    ctx: &GpuContext,
    name: &str,
    dtype: DType,
    row_len: usize,
    data: &[u8],
    rows_per_part: Option<usize>,
) -> Result<Vec<TablePart>> {
    let row_bytes = dtype.row_bytes(row_len)?;
    let rows = data.len() / row_bytes.max(1);
    // The quant array is the larger of the two after repacking; f16 parts are packed from
    // their own first element, so any row count works.
    let gpu_row_bytes = match dtype {
        DType::F32 => row_len * 4,
        DType::F16 => row_len.div_ceil(2) * 4 + 4,
        DType::Q8_0 => row_len / QK * 32,
        DType::Q4_0 => row_len / QK * 16,
    };
    let max = ctx.max_binding_bytes() as usize;
    let rows_per_part = (max / gpu_row_bytes.max(1))
        .min(rows_per_part.unwrap_or(rows))
        .max(1);
    if gpu_row_bytes > max {
        return Err(Error::Backend(format!(
            "one row of `{name}` needs {gpu_row_bytes} bytes, over the adapter's storage-binding limit of {max}"
        )));
    }
    let mut parts = Vec::new();
    let mut start = 0;
    while start < rows {
        let end = (start + rows_per_part).min(rows);
        let mut r = repack(dtype, &data[start * row_bytes..end * row_bytes]);
        if r.scales.is_empty() {
            r.scales.push(0.0);
        }
        let label = format!("{name}[{start}..{end}]");
        parts.push(TablePart {
            row_start: start as u32,
            row_end: end as u32,
            quants: storage(
                ctx,
                &format!("{label}.quants"),
                bytemuck::cast_slice(&r.quants),
            )?,
            scales: storage(
                ctx,
                &format!("{label}.scales"),
                bytemuck::cast_slice(&r.scales),
            )?,
        });
        start = end;
    }
    Ok(parts)
}

/// A read-only storage buffer holding `bytes`, checked against the binding limit.
pub(crate) fn storage(ctx: &GpuContext, label: &str, bytes: &[u8]) -> Result<wgpu::Buffer> {
    let max = ctx.max_binding_bytes();
    if bytes.len() as u64 > max {
        return Err(Error::Backend(format!(
            "`{label}` needs {} bytes in one GPU buffer, the adapter allows {max}; this model cannot run on this GPU",
            bytes.len()
        )));
    }
    // Zero-sized bindings are invalid; a placeholder word keeps every binding legal.
    let contents: &[u8] = if bytes.is_empty() { &[0u8; 4] } else { bytes };
    Ok(ctx
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        }))
}
