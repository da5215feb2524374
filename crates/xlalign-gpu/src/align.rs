//! The alignment step on the GPU: similarity matrix between two sequences' token vectors,
//! then link extraction, with only the links coming back.
//!
//! The similarity matrix is the matmul kernel with the target vectors as an f32 "weight"
//! (`sim = src · tgtᵀ`); `align.wgsl` then computes per-row and per-column maxima, argmaxes
//! and softmax denominators, and one thread per cell decides whether it is a link.

use ndarray::ArrayView2;

use xlalign_core::error::{Error, Result};
use xlalign_core::tensor::Tensor;

use crate::context::{ErrorScopes, GpuContext};
use crate::kernels::{bind_group, matmul_groups, AlignParams, Bind, Epilogue, MatmulParams, ALIGN_EXTRACT_SIDE};
use crate::weights::{storage, GpuMatrix};

/// How links are read off the similarity matrix.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AlignMethod {
    /// A cell is a link when it is the maximum of both its row and its column (SimAlign's
    /// "argmax"/intersection). Score: the similarity.
    MutualArgmax,
    /// Softmax over each row and over each column; a link when both probabilities exceed
    /// `threshold` (awesome-align's extraction). Score: the smaller probability.
    Softmax { threshold: f32 },
}

/// What the similarity of two token vectors is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Similarity {
    /// Plain dot product (what softmax extraction is tuned for).
    Dot,
    /// Cosine: rows are L2-normalised on upload, then dot products.
    Cosine,
}

/// One link: source row, target row, score (see [`AlignMethod`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GpuLink {
    pub src: usize,
    pub tgt: usize,
    pub score: f32,
}

/// Aligns the rows of `src` (`[n, hidden]`) with the rows of `tgt` (`[m, hidden]`) and
/// returns the links sorted by (src, tgt). Pass only the rows that may be linked (e.g.
/// without `<s>`, `</s>` or bare `▁` tokens); indices refer to the rows given.
pub async fn align_on_gpu(
    ctx: &GpuContext,
    src: ArrayView2<'_, f32>,
    tgt: ArrayView2<'_, f32>,
    method: AlignMethod,
    similarity: Similarity,
) -> Result<Vec<GpuLink>> {
    let (n, hidden) = src.dim();
    let (m, hidden_t) = tgt.dim();
    if hidden != hidden_t {
        return Err(Error::Input(format!("source vectors have {hidden} dimensions, target vectors {hidden_t}")));
    }
    if n == 0 || m == 0 {
        return Ok(Vec::new());
    }
    if hidden == 0 {
        return Err(Error::Input("token vectors have no dimensions".into()));
    }
    let threshold = match method {
        AlignMethod::MutualArgmax => 0.0,
        AlignMethod::Softmax { threshold } if threshold.is_finite() => threshold,
        AlignMethod::Softmax { threshold } => {
            return Err(Error::Input(format!("softmax threshold {threshold} is not a number")))
        }
    };
    let groups_max = ctx.limits.max_compute_workgroups_per_dimension as usize;
    if n + m > groups_max || n.div_ceil(ALIGN_EXTRACT_SIDE as usize) > groups_max {
        return Err(Error::Input(format!("{n} × {m} tokens is too large to align in one go")));
    }
    let rows = |a: ArrayView2<'_, f32>| -> Vec<f32> {
        let mut v: Vec<f32> = a.iter().copied().collect();
        if similarity == Similarity::Cosine {
            for r in v.chunks_mut(hidden) {
                let norm = r.iter().map(|x| x * x).sum::<f32>().max(1e-12).sqrt();
                r.iter_mut().for_each(|x| *x /= norm);
            }
        }
        v
    };
    let a = rows(src);
    let b = rows(tgt);
    if a.iter().chain(&b).any(|v| !v.is_finite()) {
        return Err(Error::Input("token vectors contain NaN or infinity".into()));
    }

    // Every link of the softmax method has probability > t in its row, and a row's
    // probabilities sum to 1, so a row holds fewer than 1/t links; argmax gives at most
    // one per row. This bounds the link buffer without reading the count back first.
    let per_row = match method {
        AlignMethod::MutualArgmax => 1,
        AlignMethod::Softmax { .. } if threshold > 0.0 => (1.0 / threshold).floor().min(m as f32) as usize + 1,
        AlignMethod::Softmax { .. } => m,
    };
    let capacity = (n.min(m) * per_row).min(n * m);

    let d = &ctx.device;
    let k = &ctx.kernels;
    let scopes = ErrorScopes::push(d);
    let tgt_t = Tensor::from_f32("target vectors", vec![m, hidden], &b)?;
    let tgt_mat = GpuMatrix::upload(ctx, "target vectors", &[&tgt_t], &vec![0.0; m])?;
    let src_buf = storage(ctx, "source vectors", bytemuck::cast_slice(&a))?;
    let scratch = |label: &str, bytes: usize, extra: wgpu::BufferUsages| -> Result<wgpu::Buffer> {
        if bytes as u64 > ctx.max_binding_bytes() {
            return Err(Error::Input(format!("{n} × {m} tokens is too large to align on this GPU")));
        }
        Ok(d.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(4) as u64,
            usage: wgpu::BufferUsages::STORAGE | extra,
            mapped_at_creation: false,
        }))
    };
    let sim = scratch("similarity", n * m * 4, wgpu::BufferUsages::empty())?;
    let stats = scratch("row/column statistics", (n + m) * 16, wgpu::BufferUsages::empty())?;
    let links = scratch("links", capacity * 12, wgpu::BufferUsages::COPY_SRC)?;
    let counter = scratch("link count", 4, wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST)?;
    let readback_bytes = 4 + (capacity * 12) as u64;
    let readback = d.create_buffer(&wgpu::BufferDescriptor {
        label: Some("links readback"),
        size: readback_bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });

    let mm_params = MatmulParams { m: n as u32, n: m as u32, k: hidden as u32, _pad: 0 };
    let align_params = AlignParams {
        rows: n as u32,
        cols: m as u32,
        method: match method {
            AlignMethod::MutualArgmax => 0,
            AlignMethod::Softmax { .. } => 1,
        },
        capacity: capacity as u32,
        threshold,
        _pad: [0; 3],
    };
    let params = d.create_buffer(&wgpu::BufferDescriptor {
        label: Some("align parameters"),
        size: crate::kernels::UNIFORM_SLOT * 2,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    ctx.queue.write_buffer(&params, 0, bytemuck::bytes_of(&mm_params));
    ctx.queue.write_buffer(&params, crate::kernels::UNIFORM_SLOT, bytemuck::bytes_of(&align_params));
    let mm_size = std::mem::size_of::<MatmulParams>() as u64;
    let align_size = std::mem::size_of::<AlignParams>() as u64;

    use Bind::Whole as W;
    let mm_group = bind_group(d, &k.matmul_layout, "similarity", &[
        Bind::Uniform(&params, 0, mm_size),
        W(&src_buf),
        W(&tgt_mat.quants),
        W(&tgt_mat.scales),
        W(&tgt_mat.bias),
        W(&sim),
    ]);
    let align_group = bind_group(d, &k.align_layout, "align", &[
        Bind::Uniform(&params, crate::kernels::UNIFORM_SLOT, align_size),
        W(&sim),
        W(&stats),
        W(&links),
        W(&counter),
    ]);

    let mut enc = d.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("align") });
    enc.clear_buffer(&counter, 0, None);
    {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("align"), timestamp_writes: None });
        pass.set_pipeline(&k.matmul(tgt_mat.wtype, Epilogue::None));
        pass.set_bind_group(0, &mm_group, &[]);
        let (gx, gy) = matmul_groups(n as u32, m as u32);
        pass.dispatch_workgroups(gx, gy, 1);
        pass.set_pipeline(&k.align_stats());
        pass.set_bind_group(0, &align_group, &[]);
        pass.dispatch_workgroups((n + m) as u32, 1, 1);
        pass.set_pipeline(&k.align_extract());
        pass.dispatch_workgroups((m as u32).div_ceil(ALIGN_EXTRACT_SIDE), (n as u32).div_ceil(ALIGN_EXTRACT_SIDE), 1);
    }
    enc.copy_buffer_to_buffer(&counter, 0, &readback, 0, 4);
    if capacity > 0 {
        enc.copy_buffer_to_buffer(&links, 0, &readback, 4, (capacity * 12) as u64);
    }
    ctx.queue.submit([enc.finish()]);
    scopes.check("aligning").await?;
    let data = ctx.read_back(&readback, readback_bytes).await?;
    if let Some(e) = ctx.take_uncaptured() {
        return Err(Error::Backend(format!("GPU error while aligning: {e}")));
    }

    let count = data[0].to_bits() as usize;
    if count > capacity {
        return Err(Error::Backend(format!("{count} links found but room for {capacity} (link bound violated)")));
    }
    let mut out: Vec<GpuLink> = data[1..1 + 3 * count]
        .chunks_exact(3)
        .map(|w| GpuLink { src: w[0].to_bits() as usize, tgt: w[1].to_bits() as usize, score: w[2] })
        .collect();
    out.sort_by_key(|l| (l.src, l.tgt));
    Ok(out)
}
