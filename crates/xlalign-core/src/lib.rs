//! xlalign core: the data path from bytes to alignments.
//!
//! `gguf` (file format) → `model` (config + weights + tokenizer) → `tokenize` (subwords with
//! offsets) → `backend` (encoder forward pass; [`cpu`] here, WebGPU in `xlalign-gpu`) →
//! `embed` (pooled sentence vectors, windowing) → `align` (similarity matrices → word links);
//! `corpus` scores whole corpora (filtering scores per pair, MEXA per layer).
//!
//! Compiles for `wasm32-unknown-unknown`: no threads, files or native-only crates unless the
//! `parallel` feature is on.

pub mod align;
pub mod backend;
pub mod corpus;
pub mod cpu;
pub mod document;
pub mod embed;
pub mod error;
#[cfg(not(target_arch = "wasm32"))]
pub mod file;
pub mod gguf;
pub mod model;
pub mod pairs;
pub mod pharaoh;
pub mod pipeline;
pub mod request;
pub mod script;
pub mod table;
pub mod tensor;
#[cfg(test)]
mod test_support;
pub mod tokenize;

pub use backend::{Backend, BackendChoice, BackendInfo};
pub use error::{Error, Result};
pub use model::Model;
