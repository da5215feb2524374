//! The encoder on the CPU: quantised weights used in place, int8 activation blocks,
//! SIMD where the machine has it (AVX2/AVX-VNNI natively, `simd128` in the browser), and
//! all cores with the `parallel` feature.
//!
//! Numerics follow the reference encoder: activations are quantised per 32-value block
//! before every quantised linear layer, everything else (attention, softmax, LayerNorm,
//! GELU) is f32. [`kernels`] holds the pieces, each with a scalar twin, for other backends
//! to test against.
//!
//! ```no_run
//! # async fn demo(model: &xlalign_core::Model) -> xlalign_core::Result<()> {
//! use xlalign_core::{cpu::CpuBackend, Backend};
//! let cpu = CpuBackend::new(model)?;
//! let ids = model.tokenizer.encode("Hello", "passage: ")?.ids;
//! let out = cpu.forward(&[&ids], &[model.config.layers]).await?;
//! # Ok(()) }
//! ```

mod encoder;
pub mod kernels;
mod par;

#[cfg(test)]
mod tests;

#[cfg(feature = "parallel")]
use std::sync::Arc;

use crate::align::AlignOptions;
use crate::backend::{
    Backend, BackendInfo, ForwardOutput, SequenceAlignment, SequencePair, UnitAlignment, UnitPair,
    WriteBlocks, WriteRows,
};
use crate::error::Result;
use crate::model::{EncoderConfig, EncoderLayer, EncoderWeights, Model};
use encoder::Encoder;
pub use kernels::Isa;

/// Runs the encoder on this machine's CPU.
///
/// Holds its own handles to the weights (the tensor bytes are shared, not copied), so it
/// does not borrow the [`Model`]. The word-embedding table is the model's own: rows written
/// through [`WriteRows`] (here or into the model's table) are seen by both. Blocks added
/// through [`WriteBlocks`] are run by every clone of the backend.
#[derive(Clone, Debug)]
pub struct CpuBackend {
    encoder: Encoder,
    isa: Isa,
    #[cfg(feature = "parallel")]
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl CpuBackend {
    /// Prepares the model's weights for the CPU kernels, using the best instruction set
    /// available and (with `parallel`) rayon's global thread pool.
    pub fn new(model: &Model) -> Result<CpuBackend> {
        CpuBackend::from_weights(&model.config, &model.weights)
    }

    /// As [`CpuBackend::new`], from a configuration and weights without a tokenizer
    /// (tests build small random encoders this way).
    pub fn from_weights(config: &EncoderConfig, weights: &EncoderWeights) -> Result<CpuBackend> {
        Ok(CpuBackend {
            encoder: Encoder::new(config, weights)?,
            isa: Isa::best(),
            #[cfg(feature = "parallel")]
            pool: None,
        })
    }

    /// Uses another instruction set, e.g. [`Isa::scalar`] to compare against.
    pub fn with_isa(mut self, isa: Isa) -> CpuBackend {
        self.isa = isa;
        self
    }

    /// Runs on a private pool of `n` threads instead of rayon's global pool.
    #[cfg(feature = "parallel")]
    pub fn with_threads(mut self, n: usize) -> Result<CpuBackend> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| crate::error::Error::Backend(format!("cannot start {n} threads: {e}")))?;
        self.pool = Some(Arc::new(pool));
        Ok(self)
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Threads a forward pass uses.
    pub fn threads(&self) -> usize {
        #[cfg(feature = "parallel")]
        if let Some(p) = &self.pool {
            return p.current_num_threads();
        }
        par::threads()
    }

    pub fn config(&self) -> &EncoderConfig {
        &self.encoder.config
    }

    /// [`Backend::forward`] without the `async` wrapper: the CPU finishes before returning.
    pub fn forward_sync(
        &self,
        sequences: &[&[u32]],
        layers: &[usize],
    ) -> Result<Vec<ForwardOutput>> {
        #[cfg(feature = "parallel")]
        if let Some(p) = &self.pool {
            return p.install(|| self.encoder.forward(self.isa, sequences, layers));
        }
        self.encoder.forward(self.isa, sequences, layers)
    }
}

impl Backend for CpuBackend {
    fn info(&self) -> BackendInfo {
        let t = self.threads();
        BackendInfo {
            kind: "cpu".into(),
            device: format!(
                "CPU ({}, {t} thread{})",
                self.isa,
                if t == 1 { "" } else { "s" }
            ),
            reason: String::new(),
        }
    }

    async fn forward(&self, sequences: &[&[u32]], layers: &[usize]) -> Result<Vec<ForwardOutput>> {
        self.forward_sync(sequences, layers)
    }

    /// The CPU extracts where the pipeline does: nothing to do here.
    async fn align_units(
        &self,
        _: &[UnitPair<'_>],
        _: &AlignOptions,
    ) -> Result<Option<Vec<UnitAlignment>>> {
        Ok(None)
    }

    async fn align_sequences(
        &self,
        _: &[&[u32]],
        _: usize,
        _: bool,
        _: &[SequencePair<'_>],
        _: &AlignOptions,
    ) -> Result<Option<SequenceAlignment>> {
        Ok(None)
    }
}

impl WriteRows for CpuBackend {
    fn write_token_rows(&self, first: usize, rows: &[u8]) -> Result<()> {
        self.encoder.token_embd.write_rows(first, rows)
    }
}

/// Blocks go into the list every clone of this backend runs (prepared once, here).
impl WriteBlocks for CpuBackend {
    fn blocks_present(&self) -> usize {
        self.encoder.blocks_present()
    }

    fn add_block(&self, index: usize, block: &EncoderLayer) -> Result<()> {
        self.encoder.add_block(index, block)
    }
}
