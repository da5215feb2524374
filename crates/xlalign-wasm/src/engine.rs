//! Opening the compute backend: `xlalign-gpu` decides between WebGPU and the CPU (and says
//! why); this module only maps its errors to the JavaScript error codes.

use std::rc::Rc;
use std::sync::Arc;

use xlalign_core::align::AlignOptions;
use xlalign_core::backend::{
    ForwardOutput, SequenceAlignment, SequencePair, UnitAlignment, UnitPair, WriteBlocks, WriteRows,
};
use xlalign_core::{Backend, BackendChoice, BackendInfo, Model};
use xlalign_gpu::AnyBackend;

use crate::error::{Code, Result, WasmError};
use crate::progressive::ProgressiveBackend;

/// The backend an aligner runs on: the selected one as is, or behind progressive
/// loading's row filling. Cheap to clone (calls take their own handle).
#[derive(Clone)]
pub enum Engine {
    Direct(Rc<AnyBackend>),
    Progressive(ProgressiveBackend),
}

impl Backend for Engine {
    fn info(&self) -> BackendInfo {
        match self {
            Engine::Direct(b) => b.info(),
            Engine::Progressive(p) => p.info(),
        }
    }

    async fn forward(
        &self,
        sequences: &[&[u32]],
        layers: &[usize],
    ) -> xlalign_core::Result<Vec<ForwardOutput>> {
        match self {
            Engine::Direct(b) => b.forward(sequences, layers).await,
            Engine::Progressive(p) => p.forward(sequences, layers).await,
        }
    }

    async fn align_units(
        &self,
        pairs: &[UnitPair<'_>],
        opts: &AlignOptions,
    ) -> xlalign_core::Result<Option<Vec<UnitAlignment>>> {
        match self {
            Engine::Direct(b) => b.align_units(pairs, opts).await,
            Engine::Progressive(p) => p.align_units(pairs, opts).await,
        }
    }

    async fn align_sequences(
        &self,
        sequences: &[&[u32]],
        layer: usize,
        pooled: bool,
        pairs: &[SequencePair<'_>],
        opts: &AlignOptions,
    ) -> xlalign_core::Result<Option<SequenceAlignment>> {
        match self {
            Engine::Direct(b) => {
                b.align_sequences(sequences, layer, pooled, pairs, opts)
                    .await
            }
            Engine::Progressive(p) => {
                p.align_sequences(sequences, layer, pooled, pairs, opts)
                    .await
            }
        }
    }
}

impl WriteRows for Engine {
    fn write_token_rows(&self, first: usize, rows: &[u8]) -> xlalign_core::Result<()> {
        match self {
            Engine::Direct(b) => b.write_token_rows(first, rows),
            Engine::Progressive(p) => p.write_token_rows(first, rows),
        }
    }
}

impl WriteBlocks for Engine {
    fn blocks_present(&self) -> usize {
        match self {
            Engine::Direct(b) => b.blocks_present(),
            Engine::Progressive(p) => p.blocks_present(),
        }
    }

    fn add_block(
        &self,
        index: usize,
        block: &xlalign_core::model::EncoderLayer,
    ) -> xlalign_core::Result<()> {
        match self {
            Engine::Direct(b) => b.add_block(index, block),
            Engine::Progressive(p) => p.add_block(index, block),
        }
    }
}

pub async fn create(model: Arc<Model>, choice: BackendChoice) -> Result<AnyBackend> {
    xlalign_gpu::select(model, choice).await.map_err(|e| {
        let mut err = WasmError::from(e);
        if choice == BackendChoice::Gpu {
            err.code = Code::Backend;
            err.message = format!(
                "{} (use backend: \"auto\" to fall back to the CPU)",
                err.message
            );
        }
        err
    })
}
