//! `--backend` and `--threads`: which device runs the encoder.

use std::sync::Arc;

use anyhow::Result;
use xlalign_core::cpu::CpuBackend;
use xlalign_core::Model;

#[derive(clap::Args, Clone)]
pub struct BackendArgs {
    /// Where the encoder runs.
    #[arg(long, default_value = "cpu", value_parser = ["auto", "cpu", "gpu"])]
    pub backend: String,
    /// CPU threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

pub type SelectedBackend = CpuBackend;

pub fn create(model: &Arc<Model>, args: &BackendArgs) -> Result<SelectedBackend> {
    match args.backend.as_str() {
        "cpu" | "auto" => {
            let cpu = CpuBackend::new(model)?;
            Ok(match args.threads {
                Some(n) => cpu.with_threads(n.max(1))?,
                None => cpu,
            })
        }
        other => anyhow::bail!("backend `{other}` is not available in this build"),
    }
}
