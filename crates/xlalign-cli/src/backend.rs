//! `--backend` and `--threads`: which device runs the encoder.

use std::sync::Arc;

use anyhow::Result;
use xlalign_core::cpu::CpuBackend;
use xlalign_core::BackendChoice;
use xlalign_core::Model;
use xlalign_gpu::AnyBackend;

use crate::names;

#[derive(clap::Args, Clone)]
pub struct BackendArgs {
    /// Where the encoder runs: a WebGPU adapter (Vulkan/Metal/DX12) when there is a hardware
    /// one (`auto`), always the GPU (`gpu`, errors without one), or the CPU.
    #[arg(long, value_parser = names::core::<BackendChoice>(), default_value_t = BackendChoice::default())]
    pub backend: BackendChoice,
    /// CPU threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

pub type SelectedBackend = AnyBackend;

pub fn create(model: &Arc<Model>, args: &BackendArgs) -> Result<SelectedBackend> {
    let choice = args.backend;
    let cpu = |reason: String| -> Result<AnyBackend> {
        let backend = CpuBackend::new(model)?;
        let backend = match args.threads {
            Some(n) => backend.with_threads(n.max(1))?,
            None => backend,
        };
        Ok(AnyBackend::Cpu { backend, reason })
    };
    if choice == BackendChoice::Cpu {
        return cpu("asked for".into());
    }
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // Mesa's Vulkan drivers complain on stderr without it; any private directory will do.
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    match pollster::block_on(xlalign_gpu::select(model.clone(), choice))? {
        AnyBackend::Cpu { reason, .. } => cpu(reason),
        gpu => Ok(gpu),
    }
}
