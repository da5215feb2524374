//! Choosing where the encoder runs: the GPU when a WebGPU adapter exists, the CPU otherwise,
//! with the reason recorded in [`Backend::info`].

use std::sync::Arc;

use xlalign_core::align::AlignOptions;
pub use xlalign_core::backend::BackendChoice;
use xlalign_core::backend::{
    Backend, BackendInfo, ForwardOutput, SequenceAlignment, SequencePair, UnitAlignment, UnitPair,
    WriteBlocks, WriteRows,
};
use xlalign_core::cpu::CpuBackend;
use xlalign_core::error::{Error, Result};
use xlalign_core::model::EncoderLayer;
use xlalign_core::Model;

use crate::context::GpuContext;
use crate::encoder::GpuBackend;

/// Either backend behind one type, so callers need no generics.
// One value per program: the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum AnyBackend {
    /// The CPU backend and why it was chosen.
    Cpu { backend: CpuBackend, reason: String },
    /// The GPU backend (it carries its own reason, see [`GpuBackend::set_reason`]).
    Gpu(GpuBackend),
}

impl AnyBackend {
    pub fn is_gpu(&self) -> bool {
        matches!(self, AnyBackend::Gpu(_))
    }

    pub fn as_gpu(&self) -> Option<&GpuBackend> {
        match self {
            AnyBackend::Gpu(g) => Some(g),
            AnyBackend::Cpu { .. } => None,
        }
    }
}

impl Backend for AnyBackend {
    fn info(&self) -> BackendInfo {
        match self {
            AnyBackend::Cpu { backend, reason } => BackendInfo {
                reason: reason.clone(),
                ..backend.info()
            },
            AnyBackend::Gpu(g) => g.info(),
        }
    }

    async fn forward(&self, sequences: &[&[u32]], layers: &[usize]) -> Result<Vec<ForwardOutput>> {
        match self {
            AnyBackend::Cpu { backend, .. } => backend.forward(sequences, layers).await,
            AnyBackend::Gpu(g) => g.forward(sequences, layers).await,
        }
    }

    async fn align_units(
        &self,
        pairs: &[UnitPair<'_>],
        opts: &AlignOptions,
    ) -> Result<Option<Vec<UnitAlignment>>> {
        match self {
            AnyBackend::Cpu { backend, .. } => backend.align_units(pairs, opts).await,
            AnyBackend::Gpu(g) => g.align_units(pairs, opts).await,
        }
    }

    async fn align_sequences(
        &self,
        sequences: &[&[u32]],
        layer: usize,
        pooled: bool,
        pairs: &[SequencePair<'_>],
        opts: &AlignOptions,
    ) -> Result<Option<SequenceAlignment>> {
        match self {
            AnyBackend::Cpu { backend, .. } => {
                backend
                    .align_sequences(sequences, layer, pooled, pairs, opts)
                    .await
            }
            AnyBackend::Gpu(g) => {
                g.align_sequences(sequences, layer, pooled, pairs, opts)
                    .await
            }
        }
    }
}

impl WriteRows for AnyBackend {
    fn write_token_rows(&self, first: usize, rows: &[u8]) -> Result<()> {
        match self {
            AnyBackend::Cpu { backend, .. } => backend.write_token_rows(first, rows),
            AnyBackend::Gpu(g) => g.write_token_rows(first, rows),
        }
    }
}

impl WriteBlocks for AnyBackend {
    fn blocks_present(&self) -> usize {
        match self {
            AnyBackend::Cpu { backend, .. } => backend.blocks_present(),
            AnyBackend::Gpu(g) => g.blocks_present(),
        }
    }

    fn add_block(&self, index: usize, block: &EncoderLayer) -> Result<()> {
        match self {
            AnyBackend::Cpu { backend, .. } => backend.add_block(index, block),
            AnyBackend::Gpu(g) => g.add_block(index, block),
        }
    }
}

/// How the CPU backend runs when it is the one chosen: threads (default: all cores) and
/// instruction set (default: the best this CPU has).
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSettings {
    pub threads: Option<usize>,
    pub isa: Option<xlalign_core::cpu::kernels::Isa>,
}

/// [`select`] for native programs (the CLI, the Python package): blocks until the device is
/// open, and runs the CPU backend with `cpu`'s settings when it is the one chosen.
#[cfg(not(target_arch = "wasm32"))]
pub fn open(model: &Arc<Model>, choice: BackendChoice, cpu: CpuSettings) -> Result<AnyBackend> {
    let configured = |reason: String| -> Result<AnyBackend> {
        let mut backend = CpuBackend::new(model)?;
        if let Some(isa) = cpu.isa {
            backend = backend.with_isa(isa);
        }
        let backend = match cpu.threads {
            Some(n) => backend.with_threads(n.max(1))?,
            None => backend,
        };
        Ok(AnyBackend::Cpu { backend, reason })
    };
    if choice == BackendChoice::Cpu {
        return configured("asked for".into());
    }
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // Mesa's Vulkan drivers complain on stderr without it; any private directory will do.
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    match pollster::block_on(select(model.clone(), choice))? {
        AnyBackend::Cpu { reason, .. } => configured(reason),
        gpu => Ok(gpu),
    }
}

/// Opens the backend `choice` asks for. `Auto` takes the GPU when a hardware WebGPU adapter
/// opens, and otherwise the CPU with the reason (no adapter, or only a software one such as
/// lavapipe or SwiftShader, which is much slower than the CPU backend).
/// `Gpu` fails if no GPU backend can be made; `Cpu` never touches WebGPU.
pub async fn select(model: Arc<Model>, choice: BackendChoice) -> Result<AnyBackend> {
    let cpu = |reason: String| -> Result<AnyBackend> {
        Ok(AnyBackend::Cpu {
            backend: CpuBackend::new(&model)?,
            reason,
        })
    };
    if choice == BackendChoice::Cpu {
        return cpu(String::new());
    }
    let opened = match GpuContext::open().await {
        Ok(ctx) => GpuBackend::with_context(ctx, model.clone()).await,
        Err(no) => Err(Error::Backend(no.0)),
    };
    match (opened, choice) {
        // A software adapter (lavapipe, SwiftShader) runs the shaders on the CPU, where the
        // CPU backend's SIMD kernels are far faster (about 30× on lavapipe): `Auto` prefers
        // the CPU then and says why. Asking for `Gpu` still gets it.
        (Ok(g), BackendChoice::Auto) if g.context().is_software() => cpu(format!(
            "only a software WebGPU adapter ({}); the CPU backend is faster",
            g.context().describe()
        )),
        (Ok(mut g), _) => {
            let reason = match choice {
                BackendChoice::Gpu => String::new(),
                _ => "WebGPU adapter found".to_string(),
            };
            g.set_reason(reason);
            Ok(AnyBackend::Gpu(g))
        }
        (Err(e), BackendChoice::Gpu) => Err(e),
        (Err(e), _) => cpu(e.detail()),
    }
}
