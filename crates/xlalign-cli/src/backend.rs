//! `--backend`, `--threads` and `--isa`: which device runs the encoder
//! ([`xlalign_gpu::open`]).

use std::sync::Arc;

use anyhow::Result;
use xlalign_core::cpu::kernels::Isa;
use xlalign_core::BackendChoice;
use xlalign_core::Model;
use xlalign_gpu::{AnyBackend, CpuSettings};

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
    let cpu = CpuSettings {
        threads: args.threads,
        isa: args.isa,
    };
    Ok(xlalign_gpu::open(model, args.backend, cpu)?)
}
