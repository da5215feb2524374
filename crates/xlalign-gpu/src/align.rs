//! The alignment step on the GPU: the similarity of two sequences' token vectors and the
//! links read off it, with only the links coming back.
//!
//! This is the GPU twin of [`xlalign_core::align::methods::extract`] for the methods that
//! decide cell by cell from row and column statistics: argmax (SimAlign) and softmax
//! (awesome-align), with every direction, temperature and distortion setting of
//! [`AlignOptions`]. The dot-product matrix is the matmul kernel with the target vectors as
//! an f32 "weight" (`dot = src · tgtᵀ`); `align.wgsl` then derives cosines from the row
//! norms, computes per-row and per-column maxima, first argmaxes and softmax denominators,
//! and one thread per cell decides whether it is a link. Itermax, matching and entmax need
//! sequential or sorting steps and stay on the CPU.

use ndarray::ArrayView2;

use xlalign_core::align::methods::UnitLink;
use xlalign_core::align::{AlignOptions, Direction, Method};
use xlalign_core::error::{Error, Result};
use xlalign_core::tensor::Tensor;

use crate::context::{ErrorScopes, GpuContext};
use crate::kernels::{
    bind_group, matmul_groups, AlignParams, Bind, Epilogue, MatmulParams, ALIGN_EXTRACT_SIDE,
    UNIFORM_SLOT,
};
use crate::weights::{storage, GpuMatrix};

/// Whether [`align_on_gpu`] runs `method` (the others are CPU-only).
pub fn runs_on_gpu(method: Method) -> bool {
    matches!(method, Method::Argmax | Method::Softmax)
}

/// Aligns the rows of `src` (`[n, hidden]`, source units) with the rows of `tgt`
/// (`[m, hidden]`) as [`xlalign_core::align::methods::extract`] would on
/// `cosine_matrix(src, tgt)` and `src · tgtᵀ`, returning links sorted by (row, col) with
/// their cosine and (softmax) probability.
pub async fn align_on_gpu(
    ctx: &GpuContext,
    src: ArrayView2<'_, f32>,
    tgt: ArrayView2<'_, f32>,
    opts: &AlignOptions,
) -> Result<Vec<UnitLink>> {
    opts.validate()?;
    if !runs_on_gpu(opts.method) {
        return Err(Error::Unsupported(format!(
            "{} alignment runs on the CPU only",
            opts.method
        )));
    }
    let (n, hidden) = src.dim();
    let (m, hidden_t) = tgt.dim();
    if hidden != hidden_t {
        return Err(Error::Input(format!(
            "source vectors have {hidden} dimensions, target vectors {hidden_t}"
        )));
    }
    if n == 0 || m == 0 {
        return Ok(Vec::new());
    }
    let groups_max = ctx.limits.max_compute_workgroups_per_dimension as usize;
    if n + m > groups_max {
        return Err(Error::Input(format!(
            "{n} × {m} units is too large to align in one go"
        )));
    }
    let a: Vec<f32> = src.iter().copied().collect();
    let b: Vec<f32> = tgt.iter().copied().collect();
    if let Some(v) = a.iter().chain(&b).find(|v| !v.is_finite()) {
        return Err(Error::Input(format!(
            "token vectors contain the non-finite value {v}"
        )));
    }
    // Norms in f64, as the CPU's cosine matrix computes them.
    let norms: Vec<f32> = a
        .chunks(hidden.max(1))
        .chain(b.chunks(hidden.max(1)))
        .map(|r| r.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt() as f32)
        .collect();

    let softmax = opts.method == Method::Softmax;
    let threshold = opts.effective_threshold();
    let capacity = link_bound(n, m, softmax, threshold, opts.direction);

    let d = &ctx.device;
    let k = &ctx.kernels;
    let scopes = ErrorScopes::push(d);
    let tgt_t = Tensor::from_f32("target vectors", vec![m, hidden], &b)?;
    let tgt_mat = GpuMatrix::upload(ctx, "target vectors", &[&tgt_t], &vec![0.0; m])?;
    let src_buf = storage(ctx, "source vectors", bytemuck::cast_slice(&a))?;
    let norms_buf = storage(ctx, "norms", bytemuck::cast_slice(&norms))?;
    let scratch = |label: &str, bytes: usize, extra: wgpu::BufferUsages| -> Result<wgpu::Buffer> {
        if bytes as u64 > ctx.max_binding_bytes() {
            return Err(Error::Input(format!(
                "{n} × {m} units is too large to align on this GPU"
            )));
        }
        Ok(d.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(4) as u64,
            usage: wgpu::BufferUsages::STORAGE | extra,
            mapped_at_creation: false,
        }))
    };
    let dots = scratch("dot products", n * m * 4, wgpu::BufferUsages::empty())?;
    let stats = scratch(
        "row/column statistics",
        (n + m) * 16,
        wgpu::BufferUsages::empty(),
    )?;
    let links = scratch("links", capacity * 16, wgpu::BufferUsages::COPY_SRC)?;
    let counter = scratch(
        "link count",
        4,
        wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
    )?;
    let readback_bytes = 4 + (capacity * 16) as u64;
    let readback = d.create_buffer(&wgpu::BufferDescriptor {
        label: Some("links readback"),
        size: readback_bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });

    let mm_params = MatmulParams {
        m: n as u32,
        n: m as u32,
        k: hidden as u32,
        _pad: 0,
    };
    let align_params = AlignParams {
        rows: n as u32,
        cols: m as u32,
        method: softmax as u32,
        direction: match opts.direction {
            Direction::Both => 0,
            Direction::Forward => 1,
            Direction::Reverse => 2,
            Direction::Union => 3,
        },
        threshold,
        inv_temperature: 1.0 / opts.temperature,
        distortion: opts.distortion,
        capacity: capacity as u32,
    };
    let params = d.create_buffer(&wgpu::BufferDescriptor {
        label: Some("align parameters"),
        size: UNIFORM_SLOT * 2,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    ctx.queue
        .write_buffer(&params, 0, bytemuck::bytes_of(&mm_params));
    ctx.queue
        .write_buffer(&params, UNIFORM_SLOT, bytemuck::bytes_of(&align_params));

    use Bind::Whole as W;
    let mm_group = bind_group(
        d,
        &k.matmul_layout,
        "dot products",
        &[
            Bind::Uniform(&params, 0, std::mem::size_of::<MatmulParams>() as u64),
            W(&src_buf),
            W(&tgt_mat.quants),
            W(&tgt_mat.scales),
            W(&tgt_mat.bias),
            W(&dots),
        ],
    );
    let align_group = bind_group(
        d,
        &k.align_layout,
        "align",
        &[
            Bind::Uniform(
                &params,
                UNIFORM_SLOT,
                std::mem::size_of::<AlignParams>() as u64,
            ),
            W(&dots),
            W(&norms_buf),
            W(&stats),
            W(&links),
            W(&counter),
        ],
    );

    let mut enc = d.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("align"),
    });
    enc.clear_buffer(&counter, 0, None);
    {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("align"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&k.matmul(tgt_mat.wtype, Epilogue::None));
        pass.set_bind_group(0, &mm_group, &[]);
        let (gx, gy) = matmul_groups(n as u32, m as u32);
        pass.dispatch_workgroups(gx, gy, 1);
        pass.set_pipeline(&k.align_stats());
        pass.set_bind_group(0, &align_group, &[]);
        pass.dispatch_workgroups((n + m) as u32, 1, 1);
        pass.set_pipeline(&k.align_extract());
        pass.dispatch_workgroups(
            (m as u32).div_ceil(ALIGN_EXTRACT_SIDE),
            (n as u32).div_ceil(ALIGN_EXTRACT_SIDE),
            1,
        );
    }
    enc.copy_buffer_to_buffer(&counter, 0, &readback, 0, 4);
    if capacity > 0 {
        enc.copy_buffer_to_buffer(&links, 0, &readback, 4, (capacity * 16) as u64);
    }
    ctx.queue.submit([enc.finish()]);
    scopes.check("aligning").await?;
    let data = ctx.read_back(&readback, readback_bytes).await?;
    if let Some(e) = ctx.take_uncaptured() {
        return Err(Error::Backend(format!("GPU error while aligning: {e}")));
    }

    let count = data[0].to_bits() as usize;
    if count > capacity {
        return Err(Error::Backend(format!(
            "{count} links found but room for {capacity} (link bound violated)"
        )));
    }
    let mut out: Vec<UnitLink> = data[1..1 + 4 * count]
        .chunks_exact(4)
        .map(|w| UnitLink {
            row: w[0].to_bits() as usize,
            col: w[1].to_bits() as usize,
            score: w[2],
            prob: softmax.then_some(w[3]),
        })
        .collect();
    out.sort_by_key(|l| (l.row, l.col));
    Ok(out)
}

/// Most links the method can produce, so the link buffer is sized without reading the
/// count back first. Argmax keeps at most one per row (forward), per column (reverse), or
/// both; a softmax row's probabilities sum to 1, so fewer than 1/t of them exceed t.
fn link_bound(n: usize, m: usize, softmax: bool, threshold: f32, direction: Direction) -> usize {
    let per_unit = if !softmax {
        1
    } else if threshold > 0.0 {
        // +1: the GPU's rounded probabilities may sum a hair above 1.
        (1.0 / threshold).floor().min(n.max(m) as f32) as usize + 1
    } else {
        n.max(m)
    };
    let bound = match direction {
        Direction::Both => n.min(m) * per_unit,
        Direction::Forward => n * per_unit,
        Direction::Reverse => m * per_unit,
        Direction::Union => (n + m) * per_unit,
    };
    bound.min(n * m)
}
