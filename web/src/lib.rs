//! The xlalign demo app, minus the browser glue: what the page and its worker say to each
//! other, and the pure logic behind the UI (reading pasted or uploaded pairs, settings and the
//! share link, exports, sentence alignment for document mode). Everything here is plain Rust,
//! tested natively with `cargo test -p xlalign-web --lib`.
//!
//! Data path of the app: text boxes / files ([`pairs`]) → [`protocol::ToWorker`] → the
//! worker (`src/bin/worker/`: model, encoder, extraction) → [`protocol::FromWorker`] → the
//! UI (`src/ui/`: alignment picture, heatmap, scores, batch table) → [`export`] / [`share`].

pub mod document;
pub mod examples;
pub mod export;
pub mod pairs;
pub mod protocol;
pub mod settings;
pub mod share;
