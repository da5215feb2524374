//! WebGPU backend for xlalign: the encoder forward pass ([`GpuBackend`]) and the alignment
//! step ([`align`]) as WGSL compute shaders, running natively through wgpu (Vulkan, Metal,
//! DX12) and in the browser through `navigator.gpu`.
//!
//! Data path: model weights are uploaded once ([`weights`], repacked so quantised blocks are
//! word-aligned), token ids go in, and each pass runs embedding gather → LayerNorm → per
//! block (fused q/k/v matmul → attention → output matmul → residual LayerNorm → FFN up with
//! GELU → FFN down → residual LayerNorm), all recorded into one submission ([`encoder`]).
//! Each kernel family is one file in `src/shaders/`; [`ops`] runs any of them alone, which
//! is how the tests compare every kernel with a CPU twin.
//!
//! The alignment step runs here too: [`GpuBackend`] answers the pipeline's
//! `Backend::align_units` (unit vectors in, links and cosines out, a whole batch per
//! submission) and `Backend::align_sequences` (token ids in: the alignment layer is copied
//! into a buffer that stays on the GPU, `gather.wgsl` averages the units from it, and only
//! links, dot products and norms come back).
//!
//! [`select`] picks the GPU when an adapter exists and falls back to the CPU backend
//! otherwise, saying why.

pub mod align;
pub mod context;
pub mod encoder;
pub mod kernels;
pub mod ops;
pub mod select;
pub mod weights;

pub use align::{align_on_gpu, align_pairs_on_gpu, runs_on_gpu};
pub use context::GpuContext;
pub use encoder::GpuBackend;
#[cfg(not(target_arch = "wasm32"))]
pub use select::open;
pub use select::{select, AnyBackend, BackendChoice, CpuSettings};

// Natively the backends can be shared across threads (a server or the CLI's worker pool);
// this fails to compile if a field ever breaks that.
#[cfg(not(target_arch = "wasm32"))]
const _: fn() = || {
    fn shareable<T: Send + Sync>() {}
    shareable::<GpuContext>();
    shareable::<GpuBackend>();
    shareable::<AnyBackend>();
};
