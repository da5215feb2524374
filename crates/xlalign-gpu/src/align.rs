//! The alignment step on the GPU: the similarity of two sequences' token vectors and the
//! links read off it, with only the links and the cosines coming back.
//!
//! This is the GPU twin of [`xlalign_core::align::methods::extract`] for the methods that
//! decide from row and column statistics: argmax and itermax (SimAlign) and softmax
//! (awesome-align), with every direction, temperature, distortion, iteration and alpha
//! setting of [`AlignOptions`]. The dot-product matrix is the matmul kernel with the target
//! vectors as an f32 "weight" (`dot = src · tgtᵀ`); `align.wgsl` then derives cosines from
//! the row norms, computes per-row and per-column maxima, first argmaxes and softmax
//! denominators, and one thread per cell decides whether it is a link. Itermax records its
//! rounds back to back in the same submission (a gate, masked row/column statistics and a
//! per-row link step each), keeping which rows and columns are aligned on the GPU; a round
//! the CPU's loop would not have run does nothing there, so nothing is read back between
//! rounds. Matching and entmax need sorting or global steps and stay on the CPU.
//!
//! [`align_pairs_on_gpu`] takes a whole batch of pairs in one submission and one read back;
//! it is what [`crate::GpuBackend`] answers [`xlalign_core::Backend::align_units`] with, so
//! the pipeline's `align`/`align_batch` extract here.

use ndarray::{Array2, ArrayView2};

use xlalign_core::align::methods::UnitLink;
use xlalign_core::align::{AlignOptions, Direction, Method};
use xlalign_core::backend::{UnitAlignment, UnitPair};
use xlalign_core::error::{Error, Result};

use crate::context::{ErrorScopes, GpuContext};
use crate::kernels::{
    bind_group, matmul_groups, AlignParams, Bind, Epilogue, GatherParams, MatmulParams,
    ALIGN_COUNTER_WORDS, ALIGN_EXTRACT_SIDE, ALIGN_ROWS_WG, UNIFORM_SLOT,
};
use crate::weights::{storage, WeightType};

/// Whether [`align_on_gpu`] runs `method` (the others are CPU-only).
pub fn runs_on_gpu(method: Method) -> bool {
    matches!(method, Method::Argmax | Method::Softmax | Method::Itermax)
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
    let mut out = align_pairs_on_gpu(ctx, &[UnitPair { src, tgt }], opts).await?;
    Ok(out.pop().expect("one result per pair").links)
}

/// Bytes of results read back per submission at most; larger batches are split.
const READBACK_BYTES_PER_SUBMISSION: u64 = 64 << 20;

/// [`align_on_gpu`] for many pairs at once: every pair's dispatches go into one submission
/// and everything comes back in one read (batches whose results exceed
/// `READBACK_BYTES_PER_SUBMISSION` take several), so a batch costs one trip to the GPU and
/// back rather than one per pair. Besides the links, each pair gets its `[n, m]` cosine
/// matrix, computed from the GPU's dot products exactly as the extraction kernel computes
/// the cosines it decides on.
pub async fn align_pairs_on_gpu(
    ctx: &GpuContext,
    pairs: &[UnitPair<'_>],
    opts: &AlignOptions,
) -> Result<Vec<UnitAlignment>> {
    check_method(opts)?;
    let jobs = pairs
        .iter()
        .map(|p| Job::from_host(ctx, p, opts))
        .collect::<Result<Vec<Job>>>()?;
    run_batched(ctx, &jobs, opts, None).await
}

/// One pair whose units are gathered from hidden states kept on the GPU (see
/// [`align_kept`]): `n` source units listed from unit `src_first` of the index on, `m`
/// target units from `tgt_first` on.
pub(crate) struct KeptPair {
    pub n: usize,
    pub m: usize,
    pub src_first: u32,
    pub tgt_first: u32,
}

/// Hidden states left on the GPU by a forward pass, and which rows make up each unit.
pub(crate) struct Kept<'a> {
    /// `[rows, hidden]`.
    pub states: &'a wgpu::Buffer,
    pub hidden: usize,
    /// For unit g, its rows are listed at `index[index[g]..index[g + 1]]` (see `gather.wgsl`).
    pub index: &'a [u32],
}

/// As [`align_pairs_on_gpu`] with the units averaged from rows of `kept.states` on the GPU,
/// so the hidden states never come back; only links, dot products and norms do.
pub(crate) async fn align_kept(
    ctx: &GpuContext,
    kept: &Kept<'_>,
    pairs: &[KeptPair],
    opts: &AlignOptions,
) -> Result<Vec<UnitAlignment>> {
    check_method(opts)?;
    let index = storage(ctx, "unit index", bytemuck::cast_slice(kept.index))?;
    let jobs = pairs
        .iter()
        .map(|p| {
            Job::new(
                ctx,
                p.n,
                p.m,
                kept.hidden,
                opts,
                Inputs::Device {
                    src_first: p.src_first,
                    tgt_first: p.tgt_first,
                },
            )
        })
        .collect::<Result<Vec<Job>>>()?;
    run_batched(ctx, &jobs, opts, Some((kept.states, &index))).await
}

fn check_method(opts: &AlignOptions) -> Result<()> {
    opts.validate()?;
    if !runs_on_gpu(opts.method) {
        return Err(Error::Unsupported(format!(
            "{} alignment runs on the CPU only",
            opts.method
        )));
    }
    Ok(())
}

/// Runs `jobs` in as few submissions as the readback cap allows.
async fn run_batched(
    ctx: &GpuContext,
    jobs: &[Job],
    opts: &AlignOptions,
    kept: Option<(&wgpu::Buffer, &wgpu::Buffer)>,
) -> Result<Vec<UnitAlignment>> {
    let mut out = Vec::with_capacity(jobs.len());
    let mut start = 0;
    while start < jobs.len() {
        let mut end = start + 1;
        let mut bytes = jobs[start].readback_bytes();
        while end < jobs.len()
            && bytes + jobs[end].readback_bytes() <= READBACK_BYTES_PER_SUBMISSION
        {
            bytes += jobs[end].readback_bytes();
            end += 1;
        }
        out.extend(run_jobs(ctx, &jobs[start..end], opts, kept).await?);
        start = end;
    }
    Ok(out)
}

/// Where a pair's unit vectors come from.
enum Inputs {
    /// Uploaded from the host, with their norms (computed in f64 as the CPU's cosine matrix
    /// computes them).
    Host {
        src: Vec<f32>,
        tgt: Vec<f32>,
        norms: Vec<f32>,
    },
    /// Gathered on the GPU from kept states (units from these index positions on); the
    /// norms are computed there and read back.
    Device { src_first: u32, tgt_first: u32 },
}

/// One pair, checked.
struct Job {
    n: usize,
    m: usize,
    hidden: usize,
    capacity: usize,
    inputs: Inputs,
}

impl Job {
    fn from_host(ctx: &GpuContext, pair: &UnitPair<'_>, opts: &AlignOptions) -> Result<Job> {
        let (n, hidden) = pair.src.dim();
        let (m, hidden_t) = pair.tgt.dim();
        if hidden != hidden_t {
            return Err(Error::Input(format!(
                "source vectors have {hidden} dimensions, target vectors {hidden_t}"
            )));
        }
        let src: Vec<f32> = pair.src.iter().copied().collect();
        let tgt: Vec<f32> = pair.tgt.iter().copied().collect();
        if let Some(v) = src.iter().chain(&tgt).find(|v| !v.is_finite()) {
            return Err(Error::Input(format!(
                "token vectors contain the non-finite value {v}"
            )));
        }
        let norms: Vec<f32> = src
            .chunks(hidden.max(1))
            .chain(tgt.chunks(hidden.max(1)))
            .map(|r| r.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt() as f32)
            .collect();
        Job::new(ctx, n, m, hidden, opts, Inputs::Host { src, tgt, norms })
    }

    fn new(
        ctx: &GpuContext,
        n: usize,
        m: usize,
        hidden: usize,
        opts: &AlignOptions,
        inputs: Inputs,
    ) -> Result<Job> {
        let groups_max = ctx.limits.max_compute_workgroups_per_dimension as usize;
        if n + m > groups_max {
            return Err(Error::Input(format!(
                "{n} × {m} units is too large to align in one go"
            )));
        }
        let capacity = link_bound(n, m, opts);
        for bytes in [
            n * m * 4,
            capacity * 16,
            (n + m) * 16,
            n.max(m) * hidden * 4,
        ] {
            if bytes as u64 > ctx.max_binding_bytes() {
                return Err(Error::Input(format!(
                    "{n} × {m} units is too large to align on this GPU"
                )));
            }
        }
        Ok(Job {
            n,
            m,
            hidden,
            capacity,
            inputs,
        })
    }

    fn is_empty(&self) -> bool {
        self.n == 0 || self.m == 0
    }

    /// Link count, links, the dot products, then (for gathered units) the norms.
    fn readback_bytes(&self) -> u64 {
        if self.is_empty() {
            return 0;
        }
        let norms = match self.inputs {
            Inputs::Host { .. } => 0,
            Inputs::Device { .. } => self.n + self.m,
        };
        4 + (self.capacity * 16) as u64 + ((self.n * self.m + norms) * 4) as u64
    }

    /// The cosine of every cell as `align.wgsl`'s `cosine` computes it from the dot products.
    fn cosines(&self, dots: &[f32], norms: &[f32]) -> Array2<f32> {
        Array2::from_shape_fn((self.n, self.m), |(i, j)| {
            let norm = norms[i] * norms[self.n + j];
            if norm == 0.0 {
                0.0
            } else {
                (dots[i * self.m + j] / norm).clamp(-1.0, 1.0)
            }
        })
    }
}

/// Where one pair's data lives in the shared buffers of a submission: a byte offset per
/// role (see [`role_bytes`]), each aligned for a storage binding.
type Slots = [u64; ROLES];

/// Source and target vectors, norms, dot products, row/column statistics, links, link count
/// (with itermax's control words).
const ROLES: usize = 7;
const SRC: usize = 0;
const TGT: usize = 1;
const NORMS: usize = 2;
const DOTS: usize = 3;
const STATS: usize = 4;
const LINKS: usize = 5;
const COUNT: usize = 6;

/// Bytes each role of a job needs.
fn role_bytes(job: &Job) -> [u64; ROLES] {
    let (n, m, h) = (job.n as u64, job.m as u64, job.hidden as u64);
    [
        n * h * 4,
        m * h * 4,
        (n + m) * 4,
        n * m * 4,
        (n + m) * 16,
        (job.capacity as u64 * 16).max(4),
        ALIGN_COUNTER_WORDS as u64 * 4,
    ]
}

/// Records and runs `jobs` in one submission. Each role has one buffer for the whole
/// submission with every pair in its own aligned range, so a batch costs a handful of
/// allocations rather than a dozen per pair.
async fn run_jobs(
    ctx: &GpuContext,
    jobs: &[Job],
    opts: &AlignOptions,
    kept: Option<(&wgpu::Buffer, &wgpu::Buffer)>,
) -> Result<Vec<UnitAlignment>> {
    use wgpu::BufferUsages as U;
    let d = &ctx.device;
    let k = &ctx.kernels;
    let softmax = opts.method == Method::Softmax;
    let total: u64 = jobs.iter().map(Job::readback_bytes).sum();
    let empty = |j: &Job| UnitAlignment {
        links: Vec::new(),
        cosine: Array2::zeros((j.n, j.m)),
    };
    if total == 0 {
        return Ok(jobs.iter().map(empty).collect());
    }
    let scopes = ErrorScopes::push(d);

    let align_to = (ctx.limits.min_storage_buffer_offset_alignment as u64).max(4);
    let mut sizes = [0u64; ROLES];
    let slots: Vec<Slots> = jobs
        .iter()
        .map(|job| {
            let mut at = [0u64; ROLES];
            if !job.is_empty() {
                for (r, bytes) in role_bytes(job).into_iter().enumerate() {
                    at[r] = sizes[r];
                    sizes[r] += bytes.next_multiple_of(align_to);
                }
            }
            at
        })
        .collect();
    let buffer = |label: &str, role: usize, usage: U| {
        d.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: sizes[role].max(4),
            usage: U::STORAGE | usage,
            mapped_at_creation: false,
        })
    };
    let all = [
        buffer("source units", SRC, U::COPY_DST),
        buffer("target units", TGT, U::COPY_DST),
        buffer("unit norms", NORMS, U::COPY_DST | U::COPY_SRC),
        buffer("dot products", DOTS, U::COPY_SRC),
        buffer("row/column statistics", STATS, U::empty()),
        buffer("links", LINKS, U::COPY_SRC),
        buffer("link counts", COUNT, U::COPY_SRC | U::COPY_DST),
    ];
    let widest = jobs.iter().map(|j| j.m).max().unwrap_or(0);
    let zero_bias = storage(ctx, "zero bias", bytemuck::cast_slice(&vec![0f32; widest]))?;
    let no_scales = storage(ctx, "no scales", &[0u8; 4])?;
    // Per pair: matmul, align, and the two gathers' parameters.
    let params = d.create_buffer(&wgpu::BufferDescriptor {
        label: Some("align parameters"),
        size: UNIFORM_SLOT * 4 * jobs.len() as u64,
        usage: U::UNIFORM | U::COPY_DST,
        mapped_at_creation: false,
    });
    let readback = d.create_buffer(&wgpu::BufferDescriptor {
        label: Some("alignment readback"),
        size: total,
        usage: U::MAP_READ | U::COPY_DST,
        mapped_at_creation: false,
    });

    // Host vectors and their norms go up in one write per role.
    let mut uploads: [Vec<u8>; 3] = Default::default();
    for (job, at) in jobs.iter().zip(&slots) {
        if let (false, Inputs::Host { src, tgt, norms }) = (job.is_empty(), &job.inputs) {
            for (role, data) in [(SRC, src), (TGT, tgt), (NORMS, norms)] {
                uploads[role].resize(at[role] as usize, 0);
                uploads[role].extend_from_slice(bytemuck::cast_slice(data));
            }
        }
    }
    for (role, data) in uploads.iter().enumerate() {
        if !data.is_empty() {
            ctx.queue.write_buffer(&all[role], 0, data);
        }
    }

    let part = |role: usize, at: &Slots, bytes: &[u64; ROLES]| {
        Bind::Range(&all[role], at[role], bytes[role].max(4))
    };
    let mut bound: Vec<Option<Bound>> = Vec::with_capacity(jobs.len());
    for (p, (job, at)) in jobs.iter().zip(&slots).enumerate() {
        if job.is_empty() {
            bound.push(None);
            continue;
        }
        let (n, m, h) = (job.n, job.m, job.hidden);
        let bytes = role_bytes(job);
        let base = p as u64 * 4 * UNIFORM_SLOT;
        let mm_params = MatmulParams {
            m: n as u32,
            n: m as u32,
            k: h as u32,
            _pad: 0,
        };
        let align_params = AlignParams {
            rows: n as u32,
            cols: m as u32,
            method: match opts.method {
                Method::Softmax => 1,
                Method::Itermax => 2,
                _ => 0,
            },
            direction: match opts.direction {
                Direction::Both => 0,
                Direction::Forward => 1,
                Direction::Reverse => 2,
                Direction::Union => 3,
            },
            threshold: opts.effective_threshold(),
            inv_temperature: 1.0 / opts.temperature,
            distortion: opts.distortion,
            capacity: job.capacity as u32,
            iterations: opts.iterations.min(u32::MAX as usize) as u32,
            alpha: opts.alpha,
            _pad: [0; 2],
        };
        let q = &ctx.queue;
        q.write_buffer(&params, base, bytemuck::bytes_of(&mm_params));
        q.write_buffer(
            &params,
            base + UNIFORM_SLOT,
            bytemuck::bytes_of(&align_params),
        );
        let gather = match (&job.inputs, kept) {
            (
                Inputs::Device {
                    src_first,
                    tgt_first,
                },
                Some((states, index)),
            ) => {
                let side =
                    |first: u32, units: usize, norm_offset: usize, slot: u64, role: usize| {
                        let gp = GatherParams {
                            units: units as u32,
                            hidden: h as u32,
                            first,
                            norm_offset: norm_offset as u32,
                        };
                        let offset = base + slot * UNIFORM_SLOT;
                        q.write_buffer(&params, offset, bytemuck::bytes_of(&gp));
                        bind_group(
                            d,
                            &k.gather_layout,
                            "gather units",
                            &[
                                Bind::Uniform(
                                    &params,
                                    offset,
                                    std::mem::size_of::<GatherParams>() as u64,
                                ),
                                Bind::Whole(states),
                                Bind::Whole(index),
                                part(role, at, &bytes),
                                part(NORMS, at, &bytes),
                            ],
                        )
                    };
                Some([
                    side(*src_first, n, 0, 2, SRC),
                    side(*tgt_first, m, n, 3, TGT),
                ])
            }
            (Inputs::Device { .. }, None) => {
                return Err(Error::Backend("gathered units without kept states".into()))
            }
            (Inputs::Host { .. }, _) => None,
        };
        let mm_group = bind_group(
            d,
            &k.matmul_layout,
            "dot products",
            &[
                Bind::Uniform(&params, base, std::mem::size_of::<MatmulParams>() as u64),
                part(SRC, at, &bytes),
                part(TGT, at, &bytes),
                Bind::Whole(&no_scales),
                Bind::Whole(&zero_bias),
                part(DOTS, at, &bytes),
            ],
        );
        let align_group = bind_group(
            d,
            &k.align_layout,
            "align",
            &[
                Bind::Uniform(
                    &params,
                    base + UNIFORM_SLOT,
                    std::mem::size_of::<AlignParams>() as u64,
                ),
                part(DOTS, at, &bytes),
                part(NORMS, at, &bytes),
                part(STATS, at, &bytes),
                part(LINKS, at, &bytes),
                part(COUNT, at, &bytes),
            ],
        );
        bound.push(Some(Bound {
            gather,
            mm_group,
            align_group,
        }));
    }

    let mut enc = d.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("align"),
    });
    enc.clear_buffer(&all[COUNT], 0, None);
    {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("align"),
            timestamp_writes: None,
        });
        // Target vectors are an f32 "weight" matrix for the matmul kernel: dot = src · tgtᵀ.
        let matmul = k.matmul(WeightType::F32, Epilogue::None);
        for (job, b) in jobs.iter().zip(&bound) {
            let Some(b) = b else { continue };
            let (n, m) = (job.n as u32, job.m as u32);
            if let Some([src, tgt]) = &b.gather {
                pass.set_pipeline(&k.gather());
                pass.set_bind_group(0, src, &[]);
                pass.dispatch_workgroups(n, 1, 1);
                pass.set_bind_group(0, tgt, &[]);
                pass.dispatch_workgroups(m, 1, 1);
            }
            pass.set_pipeline(&matmul);
            pass.set_bind_group(0, &b.mm_group, &[]);
            let (gx, gy) = matmul_groups(n, m);
            pass.dispatch_workgroups(gx, gy, 1);
            pass.set_bind_group(0, &b.align_group, &[]);
            if opts.method == Method::Itermax {
                for round in 0..itermax_rounds(job.n, job.m, opts.iterations) {
                    if round > 0 {
                        pass.set_pipeline(&k.align_itermax_gate());
                        pass.dispatch_workgroups(1, 1, 1);
                    }
                    pass.set_pipeline(&k.align_stats());
                    pass.dispatch_workgroups(n + m, 1, 1);
                    pass.set_pipeline(&k.align_itermax_links());
                    pass.dispatch_workgroups(n.div_ceil(ALIGN_ROWS_WG), 1, 1);
                }
                continue;
            }
            pass.set_pipeline(&k.align_stats());
            pass.dispatch_workgroups(n + m, 1, 1);
            pass.set_pipeline(&k.align_extract());
            pass.dispatch_workgroups(
                m.div_ceil(ALIGN_EXTRACT_SIDE),
                n.div_ceil(ALIGN_EXTRACT_SIDE),
                1,
            );
        }
    }
    let mut offset = 0u64;
    for (job, at) in jobs.iter().zip(&slots) {
        if job.is_empty() {
            continue;
        }
        let bytes = role_bytes(job);
        let links_bytes = (job.capacity * 16) as u64;
        let mut to = offset;
        let mut copy = |role: usize, len: u64| {
            if len > 0 {
                enc.copy_buffer_to_buffer(&all[role], at[role], &readback, to, len);
            }
            to += len;
        };
        copy(COUNT, 4);
        copy(LINKS, links_bytes);
        copy(DOTS, bytes[DOTS]);
        if let Inputs::Device { .. } = job.inputs {
            copy(NORMS, bytes[NORMS]);
        }
        offset += job.readback_bytes();
    }
    ctx.queue.submit([enc.finish()]);
    scopes.check("aligning").await?;
    let data = ctx.read_back(&readback, total).await?;
    if let Some(e) = ctx.take_uncaptured() {
        return Err(Error::Backend(format!("GPU error while aligning: {e}")));
    }
    // The buffers the bind groups use must outlive the submission (on the web a dropped
    // buffer is destroyed at once); they are dropped only here.
    drop((bound, all, zero_bias, no_scales, params));

    let mut out = Vec::with_capacity(jobs.len());
    let mut at = 0usize;
    for job in jobs {
        if job.is_empty() {
            out.push(empty(job));
            continue;
        }
        let count = data[at].to_bits() as usize;
        if count > job.capacity {
            return Err(Error::Backend(format!(
                "{count} links found but room for {} (link bound violated)",
                job.capacity
            )));
        }
        let links_at = at + 1;
        let dots_at = links_at + 4 * job.capacity;
        let norms_at = dots_at + job.n * job.m;
        let dots = &data[dots_at..norms_at];
        let cosine = match &job.inputs {
            Inputs::Host { norms, .. } => {
                at = norms_at;
                job.cosines(dots, norms)
            }
            Inputs::Device { .. } => {
                at = norms_at + job.n + job.m;
                job.cosines(dots, &data[norms_at..at])
            }
        };
        let mut links: Vec<UnitLink> = data[links_at..links_at + 4 * count]
            .chunks_exact(4)
            .map(|w| UnitLink {
                row: w[0].to_bits() as usize,
                col: w[1].to_bits() as usize,
                score: w[2],
                prob: softmax.then_some(w[3]),
            })
            .collect();
        if links.iter().any(|l| l.row >= job.n || l.col >= job.m) {
            return Err(Error::Backend(
                "the GPU returned a link outside the matrix".into(),
            ));
        }
        links.sort_by_key(|l| (l.row, l.col));
        out.push(UnitAlignment { links, cosine });
    }
    Ok(out)
}

/// The bind groups of one pair's dispatches.
struct Bound {
    /// Source then target gathering, for units gathered on the GPU.
    gather: Option<[wgpu::BindGroup; 2]>,
    mm_group: wgpu::BindGroup,
    align_group: wgpu::BindGroup,
}

/// Itermax rounds recorded for an `n × m` pair, the first being argmax. The CPU loop runs
/// later rounds only when both sides have more than two units, and stops once all rows or
/// all columns are aligned; every round that adds a link aligns at least one more row or
/// column, so rounds beyond `n + m` can never run and are not recorded. The GPU skips the
/// recorded rounds the CPU loop would not have run.
fn itermax_rounds(n: usize, m: usize, iterations: usize) -> u32 {
    if n.min(m) > 2 {
        iterations.clamp(1, n + m) as u32
    } else {
        1
    }
}

/// Most links the method can produce, so the link buffer is sized without reading the
/// count back first. Argmax keeps at most one per row (forward), per column (reverse), or
/// both; a softmax row's probabilities sum to 1, so fewer than 1/t of them exceed t; each
/// itermax link aligns a row or a column that had none.
fn link_bound(n: usize, m: usize, opts: &AlignOptions) -> usize {
    if opts.method == Method::Itermax {
        let bound = if itermax_rounds(n, m, opts.iterations) > 1 {
            n + m
        } else {
            n.min(m)
        };
        return bound.min(n * m);
    }
    let softmax = opts.method == Method::Softmax;
    let threshold = opts.effective_threshold();
    let direction = opts.direction;
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
