//! The compute kernels: WGSL sources, the constants they share with Rust, their bind-group
//! layouts, uniform parameter blocks and compiled pipelines.
//!
//! Each `.wgsl` file in `shaders/` is one kernel family. Sizes that both sides must agree
//! on (tile shapes, workgroup sizes, weight-type codes) are defined here and prepended to
//! the shader text as WGSL `const`s, so the shader never hard-codes a number Rust also uses.
//! Pipelines are compiled once per variant and cached.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::num::NonZeroU64;
use std::sync::{Arc, Mutex};

use bytemuck::{Pod, Zeroable};

use crate::weights::WeightType;

/// Output rows (tokens) per matmul workgroup.
pub const MATMUL_TILE_M: u32 = 32;
/// Output columns (features) per matmul workgroup.
pub const MATMUL_TILE_N: u32 = 64;
/// Reduction slice staged per step: one quantisation block.
pub const MATMUL_TILE_K: u32 = 32;
/// Matmul threads: WG_X along columns, WG_Y along rows; each owns a 4 × 4 register block
/// (the shader asserts TILE_M = 4·WG_Y and TILE_N = 4·WG_X).
pub const MATMUL_WG_X: u32 = 16;
pub const MATMUL_WG_Y: u32 = 8;
/// Threads per row for LayerNorm (a power of two, for the tree reduction).
pub const LAYERNORM_WG: u32 = 128;
/// Threads per token for the embedding gather.
pub const EMBED_WG: u32 = 128;
/// Queries per attention workgroup (one thread each).
pub const ATTENTION_Q_TILE: u32 = 32;
/// Threads per sequence for pooling (a power of two).
pub const POOL_WG: u32 = 128;
/// Largest head size the attention kernel keeps in registers.
pub const MAX_HEAD_DIM: u32 = 256;
/// Uniform blocks are bound at offsets that are multiples of this (WebGPU's
/// minUniformBufferOffsetAlignment default and upper bound).
pub const UNIFORM_SLOT: u64 = 256;

/// Keys staged per attention step: K and V tiles together stay within 8 KiB.
pub fn attention_kv_tile(head_dim: u32) -> u32 {
    (1024 / head_dim.max(1)).clamp(1, 64)
}

/// What runs after the matmul's bias add.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Epilogue {
    None = 0,
    /// `0.5·x·(1 + erf(x/√2))` with an Abramowitz–Stegun erf (|error| ≤ 1.5e-7).
    GeluErf = 1,
    GeluTanh = 2,
}

const MATMUL_WGSL: &str = include_str!("shaders/matmul.wgsl");
const LAYERNORM_WGSL: &str = include_str!("shaders/layernorm.wgsl");
const EMBED_WGSL: &str = include_str!("shaders/embed.wgsl");
const ATTENTION_WGSL: &str = include_str!("shaders/attention.wgsl");
const POOL_WGSL: &str = include_str!("shaders/pool.wgsl");
const ALIGN_WGSL: &str = include_str!("shaders/align.wgsl");
const GATHER_WGSL: &str = include_str!("shaders/gather.wgsl");

/// Threads per unit when gathering alignment units from hidden states (a power of two).
pub const GATHER_WG: u32 = 128;

/// Threads per row / column for the alignment statistics (a power of two).
pub const ALIGN_WG: u32 = 128;
/// Link extraction runs on square workgroups of this side (one thread per cell).
pub const ALIGN_EXTRACT_SIDE: u32 = 16;
/// Threads per workgroup of itermax's link step (one thread per row).
pub const ALIGN_ROWS_WG: u32 = 64;
/// Words of the per-pair counter block of the alignment kernels: the link count and
/// itermax's control words (see `align.wgsl`).
pub const ALIGN_COUNTER_WORDS: u32 = 6;

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct MatmulParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct LayerNormParams {
    pub rows: u32,
    pub n: u32,
    pub eps: f32,
    pub has_residual: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct EmbedParams {
    pub tokens: u32,
    pub hidden: u32,
    pub seq_len: u32,
    pub pos_offset: u32,
    pub row_start: u32,
    pub row_end: u32,
    pub _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct AttentionParams {
    pub batch: u32,
    pub seq_len: u32,
    pub heads: u32,
    pub hidden: u32,
    pub scale: f32,
    pub _pad: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct PoolParams {
    pub batch: u32,
    pub seq_len: u32,
    pub hidden: u32,
    /// 0: mean over the real tokens, 1: first token.
    pub mode: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct AlignParams {
    pub rows: u32,
    pub cols: u32,
    /// 0: argmax, 1: softmax, 2: itermax.
    pub method: u32,
    /// 0: both, 1: forward (rows), 2: reverse (columns), 3: union.
    pub direction: u32,
    pub threshold: f32,
    pub inv_temperature: f32,
    pub distortion: f32,
    pub capacity: u32,
    /// Itermax: total rounds, the first being argmax.
    pub iterations: u32,
    /// Itermax: the discount of cells whose row or column is already aligned.
    pub alpha: f32,
    pub _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct GatherParams {
    pub units: u32,
    pub hidden: u32,
    /// Index of the dispatch's first unit in the index buffer.
    pub first: u32,
    /// Where the dispatch's norms start in the norm buffer.
    pub norm_offset: u32,
}

/// Pipelines that depend on the model are keyed by what they are specialised for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Variant {
    Matmul(WeightType, Epilogue),
    Embed(WeightType),
    LayerNorm,
    Attention { head_dim: u32 },
    Pool,
    AlignStats,
    AlignExtract,
    AlignItermaxGate,
    AlignItermaxLinks,
    Gather,
}

/// What the kernels ask of a device (checked against the adapter before opening it).
pub struct Needs {
    pub workgroup_storage: u32,
    pub invocations: u32,
    pub storage_buffers: u32,
}

/// Bind-group layouts (created once per device) and the pipeline cache.
pub struct Kernels {
    pub(crate) matmul_layout: wgpu::BindGroupLayout,
    pub(crate) layernorm_layout: wgpu::BindGroupLayout,
    pub(crate) embed_layout: wgpu::BindGroupLayout,
    pub(crate) attention_layout: wgpu::BindGroupLayout,
    pub(crate) pool_layout: wgpu::BindGroupLayout,
    pub(crate) align_layout: wgpu::BindGroupLayout,
    pub(crate) gather_layout: wgpu::BindGroupLayout,
    pipelines: Mutex<HashMap<Variant, Arc<wgpu::ComputePipeline>>>,
    device: wgpu::Device,
}

/// How a kernel sees one binding.
#[derive(Clone, Copy)]
enum Slot {
    Uniform,
    Read,
    ReadWrite,
}

impl Kernels {
    pub fn needs() -> Needs {
        let matmul_bytes = (MATMUL_TILE_M + MATMUL_TILE_N) * (MATMUL_TILE_K + 1) * 4;
        let attention_bytes = 2 * 1024 * 4;
        Needs {
            workgroup_storage: matmul_bytes.max(attention_bytes),
            invocations: (MATMUL_WG_X * MATMUL_WG_Y)
                .max(LAYERNORM_WG)
                .max(EMBED_WG)
                .max(POOL_WG)
                .max(GATHER_WG)
                .max(ALIGN_WG)
                .max(ALIGN_ROWS_WG)
                .max(ALIGN_EXTRACT_SIDE * ALIGN_EXTRACT_SIDE),
            storage_buffers: 6,
        }
    }

    /// Creates the layouts and compiles the model-independent pipelines, so that a broken
    /// driver shows up when the device is opened rather than mid-forward.
    pub(crate) fn new(device: &wgpu::Device) -> Kernels {
        use Slot::*;
        let k = Kernels {
            matmul_layout: layout(
                device,
                "matmul",
                &[Uniform, Read, Read, Read, Read, ReadWrite],
            ),
            layernorm_layout: layout(device, "layernorm", &[Uniform, ReadWrite, Read, Read, Read]),
            embed_layout: layout(
                device,
                "embed",
                &[Uniform, Read, Read, Read, Read, Read, ReadWrite],
            ),
            attention_layout: layout(device, "attention", &[Uniform, Read, Read, ReadWrite]),
            pool_layout: layout(device, "pool", &[Uniform, Read, Read, ReadWrite]),
            align_layout: layout(
                device,
                "align",
                &[Uniform, Read, Read, ReadWrite, ReadWrite, ReadWrite],
            ),
            gather_layout: layout(
                device,
                "gather",
                &[Uniform, Read, Read, ReadWrite, ReadWrite],
            ),
            pipelines: Mutex::new(HashMap::new()),
            device: device.clone(),
        };
        k.layernorm();
        k.pool();
        k.matmul(WeightType::F32, Epilogue::None);
        k
    }

    pub(crate) fn matmul(&self, wt: WeightType, epi: Epilogue) -> Arc<wgpu::ComputePipeline> {
        self.get(Variant::Matmul(wt, epi))
    }
    pub(crate) fn embed(&self, wt: WeightType) -> Arc<wgpu::ComputePipeline> {
        self.get(Variant::Embed(wt))
    }
    pub(crate) fn layernorm(&self) -> Arc<wgpu::ComputePipeline> {
        self.get(Variant::LayerNorm)
    }
    pub(crate) fn attention(&self, head_dim: u32) -> Arc<wgpu::ComputePipeline> {
        self.get(Variant::Attention { head_dim })
    }
    pub(crate) fn pool(&self) -> Arc<wgpu::ComputePipeline> {
        self.get(Variant::Pool)
    }
    pub(crate) fn align_stats(&self) -> Arc<wgpu::ComputePipeline> {
        self.get(Variant::AlignStats)
    }
    pub(crate) fn align_extract(&self) -> Arc<wgpu::ComputePipeline> {
        self.get(Variant::AlignExtract)
    }
    pub(crate) fn align_itermax_gate(&self) -> Arc<wgpu::ComputePipeline> {
        self.get(Variant::AlignItermaxGate)
    }
    pub(crate) fn align_itermax_links(&self) -> Arc<wgpu::ComputePipeline> {
        self.get(Variant::AlignItermaxLinks)
    }
    pub(crate) fn gather(&self) -> Arc<wgpu::ComputePipeline> {
        self.get(Variant::Gather)
    }

    fn get(&self, v: Variant) -> Arc<wgpu::ComputePipeline> {
        let mut cache = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(v)
            .or_insert_with(|| Arc::new(self.build(v)))
            .clone()
    }

    fn build(&self, v: Variant) -> wgpu::ComputePipeline {
        let type_codes = [
            ("WT_F32", WeightType::F32 as u32),
            ("WT_F16", WeightType::F16 as u32),
            ("WT_Q8_0", WeightType::Q8_0 as u32),
            ("WT_Q4_0", WeightType::Q4_0 as u32),
        ];
        let align = |label: &str, entry: &'static str| {
            (
                label.to_string(),
                ALIGN_WGSL,
                &self.align_layout,
                entry,
                vec![
                    ("WG", ALIGN_WG),
                    ("EXTRACT_SIDE", ALIGN_EXTRACT_SIDE),
                    ("ROWS_WG", ALIGN_ROWS_WG),
                    ("COUNTER_WORDS", ALIGN_COUNTER_WORDS),
                ],
            )
        };
        let (label, body, layout, entry, mut consts): (
            String,
            &str,
            &wgpu::BindGroupLayout,
            &str,
            Vec<(&str, u32)>,
        ) = match v {
            Variant::Matmul(wt, epi) => (
                format!("matmul {wt:?} {epi:?}"),
                MATMUL_WGSL,
                &self.matmul_layout,
                "main",
                vec![
                    ("TILE_M", MATMUL_TILE_M),
                    ("TILE_N", MATMUL_TILE_N),
                    ("TILE_K", MATMUL_TILE_K),
                    ("WG_X", MATMUL_WG_X),
                    ("WG_Y", MATMUL_WG_Y),
                    ("WEIGHT_TYPE", wt as u32),
                    ("EPILOGUE", epi as u32),
                    ("EPI_NONE", Epilogue::None as u32),
                    ("EPI_GELU_ERF", Epilogue::GeluErf as u32),
                    ("EPI_GELU_TANH", Epilogue::GeluTanh as u32),
                ],
            ),
            Variant::Embed(wt) => (
                format!("embed {wt:?}"),
                EMBED_WGSL,
                &self.embed_layout,
                "main",
                vec![("WG", EMBED_WG), ("TABLE_TYPE", wt as u32)],
            ),
            Variant::LayerNorm => (
                "layernorm".into(),
                LAYERNORM_WGSL,
                &self.layernorm_layout,
                "main",
                vec![("WG", LAYERNORM_WG)],
            ),
            Variant::Attention { head_dim } => (
                format!("attention d={head_dim}"),
                ATTENTION_WGSL,
                &self.attention_layout,
                "main",
                vec![
                    ("HEAD_DIM", head_dim),
                    ("Q_TILE", ATTENTION_Q_TILE),
                    ("KV_TILE", attention_kv_tile(head_dim)),
                ],
            ),
            Variant::Pool => (
                "pool".into(),
                POOL_WGSL,
                &self.pool_layout,
                "main",
                vec![("WG", POOL_WG)],
            ),
            Variant::AlignStats => align("align stats", "row_col_stats"),
            Variant::AlignExtract => align("align extract", "extract_links"),
            Variant::AlignItermaxGate => align("itermax gate", "itermax_gate"),
            Variant::AlignItermaxLinks => align("itermax links", "itermax_links"),
            Variant::Gather => (
                "gather units".into(),
                GATHER_WGSL,
                &self.gather_layout,
                "main",
                vec![("WG", GATHER_WG)],
            ),
        };
        if matches!(v, Variant::Matmul(..) | Variant::Embed(_)) {
            consts.extend(type_codes);
        }
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(&label),
                source: wgpu::ShaderSource::Wgsl(with_constants(body, &consts).into()),
            });
        let pipeline_layout = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(&label),
                bind_group_layouts: &[Some(layout)],
                immediate_size: 0,
            });
        self.device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&label),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
    }
}

/// The shader text with `const NAME: u32 = V;` lines for the shared constants in front.
pub fn with_constants(body: &str, consts: &[(&str, u32)]) -> String {
    let mut s = String::from("// Generated by kernels.rs: constants shared with the Rust side.\n");
    for (name, value) in consts {
        let _ = writeln!(s, "const {name}: u32 = {value}u;");
    }
    s.push('\n');
    s.push_str(body);
    s
}

fn layout(device: &wgpu::Device, label: &str, slots: &[Slot]) -> wgpu::BindGroupLayout {
    let entries: Vec<wgpu::BindGroupLayoutEntry> = slots
        .iter()
        .enumerate()
        .map(|(i, s)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: match s {
                    Slot::Uniform => wgpu::BufferBindingType::Uniform,
                    Slot::Read => wgpu::BufferBindingType::Storage { read_only: true },
                    Slot::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        })
        .collect();
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(label),
        entries: &entries,
    })
}

/// A buffer binding: a whole buffer, a uniform slot of a parameter buffer, or a byte range
/// (offset, size) of a storage buffer holding several jobs' data.
pub(crate) enum Bind<'a> {
    Whole(&'a wgpu::Buffer),
    Uniform(&'a wgpu::Buffer, u64, u64),
    Range(&'a wgpu::Buffer, u64, u64),
}

pub(crate) fn bind_group(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    label: &str,
    binds: &[Bind<'_>],
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> = binds
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: match b {
                Bind::Whole(buf) => buf.as_entire_binding(),
                Bind::Uniform(buf, offset, size) | Bind::Range(buf, offset, size) => {
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: buf,
                        offset: *offset,
                        size: NonZeroU64::new(*size),
                    })
                }
            },
        })
        .collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout,
        entries: &entries,
    })
}

/// Workgroups for a matmul producing `m × n`.
pub(crate) fn matmul_groups(m: u32, n: u32) -> (u32, u32) {
    (n.div_ceil(MATMUL_TILE_N), m.div_ceil(MATMUL_TILE_M))
}

/// Parameter blocks for one submission, each in its own 256-byte uniform slot.
#[derive(Default)]
pub(crate) struct UniformSlots {
    bytes: Vec<u8>,
}

impl UniformSlots {
    /// Appends a block; returns its (offset, size) for [`Bind::Uniform`].
    pub(crate) fn push<T: Pod>(&mut self, value: &T) -> (u64, u64) {
        let offset = self.bytes.len() as u64;
        let data = bytemuck::bytes_of(value);
        self.bytes.extend_from_slice(data);
        self.bytes.resize((offset + UNIFORM_SLOT) as usize, 0);
        (offset, data.len() as u64)
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}
