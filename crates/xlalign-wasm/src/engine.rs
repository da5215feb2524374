//! The compute backend behind an aligner: one enum so the exported class is not generic.

use std::sync::Arc;

use xlalign_core::backend::ForwardOutput;
use xlalign_core::cpu::CpuBackend;
use xlalign_core::{Backend, BackendInfo, Model};

use crate::error::{Result, WasmError};
use crate::options::BackendChoice;

pub enum Engine {
    Cpu(CpuBackend),
}

impl Backend for Engine {
    fn info(&self) -> BackendInfo {
        match self {
            Engine::Cpu(b) => b.info(),
        }
    }

    async fn forward(
        &self,
        sequences: &[&[u32]],
        layers: &[usize],
    ) -> xlalign_core::Result<Vec<ForwardOutput>> {
        match self {
            Engine::Cpu(b) => b.forward(sequences, layers).await,
        }
    }
}

/// Builds the backend the caller asked for. `auto` takes WebGPU when it works and says why
/// when it falls back.
pub async fn create(model: Arc<Model>, choice: BackendChoice) -> Result<(Engine, BackendInfo)> {
    match choice {
        BackendChoice::Cpu => {
            let b = CpuBackend::new(&model)?;
            let info = b.info();
            Ok((Engine::Cpu(b), info))
        }
        BackendChoice::Auto => {
            let b = CpuBackend::new(&model)?;
            let mut info = b.info();
            info.reason = "WebGPU support is not part of this build".into();
            Ok((Engine::Cpu(b), info))
        }
        BackendChoice::Webgpu => Err(WasmError::new(
            crate::error::Code::Backend,
            "the WebGPU backend is not part of this build; use backend: \"cpu\" or \"auto\"",
        )),
    }
}
