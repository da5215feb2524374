//! Fuzz targets for xlalign's parsers: each takes the fuzzer's bytes to one of the project's
//! entry points for untrusted input (model files, tokenizers, text, alignment files, options)
//! and must return, never panic. `src/bin/<target>.rs` runs one under AFL++;
//! `make_seeds` writes the seed files that need the project's own writer (tiny GGUF models).

pub mod targets;
