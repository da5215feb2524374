//! `--backend` and `--threads`: which device runs the encoder.

use std::sync::Arc;

use anyhow::Result;
use xlalign_core::cpu::kernels::Isa;
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
    /// Instruction set of the CPU kernels, e.g. to compare paths (default: the best this CPU
    /// has; `bench` prints it): scalar, avx2, avxvnni, avx512vnni (x86-64, where the CPU has it).
    #[arg(long, value_parser = parse_isa)]
    pub isa: Option<Isa>,
}

fn parse_isa(name: &str) -> Result<Isa, String> {
    Isa::by_name(name).ok_or_else(|| {
        let have: Vec<&str> = Isa::available().iter().map(|i| i.name()).collect();
        format!(
            "`{name}` is not an instruction set this CPU has (it has: {})",
            have.join(", ")
        )
    })
}

pub type SelectedBackend = AnyBackend;

pub fn create(model: &Arc<Model>, args: &BackendArgs) -> Result<SelectedBackend> {
    let choice = args.backend;
    let cpu = |reason: String| -> Result<AnyBackend> {
        let mut backend = CpuBackend::new(model)?;
        if let Some(isa) = args.isa {
            backend = backend.with_isa(isa);
        }
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
