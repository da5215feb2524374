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
}

pub type SelectedBackend = CpuBackend;

pub fn create(model: &Arc<Model>, args: &BackendArgs) -> Result<SelectedBackend> {
    match args.backend.as_str() {
        "cpu" | "auto" => Ok(CpuBackend::new(model)?),
        other => anyhow::bail!("backend `{other}` is not available in this build"),
    }
}
