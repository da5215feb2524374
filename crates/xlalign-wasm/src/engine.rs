//! Opening the compute backend: `xlalign-gpu` decides between WebGPU and the CPU (and says
//! why); this module only maps its errors to the JavaScript error codes.

use std::sync::Arc;

use xlalign_core::Model;
use xlalign_gpu::AnyBackend;

use crate::error::{Code, Result, WasmError};
use crate::options::BackendChoice;

pub type Engine = AnyBackend;

pub async fn create(model: Arc<Model>, choice: BackendChoice) -> Result<Engine> {
    xlalign_gpu::select(model, choice.core())
        .await
        .map_err(|e| {
            let mut err = WasmError::from(e);
            if choice == BackendChoice::Webgpu {
                err.code = Code::Backend;
                err.message = format!(
                    "{} (use backend: \"auto\" to fall back to the CPU)",
                    err.message
                );
            }
            err
        })
}
