//! The xlalign demo app, minus the browser glue: the pure logic behind the UI (reading pasted
//! or uploaded pairs, settings and the share link, the package's answers as the page keeps
//! them, exports). Everything here is plain Rust, tested natively with
//! `cargo test -p xlalign-web --lib`.
//!
//! Data path of the app: text boxes / files ([`pairs`]) → the xlalign JavaScript package
//! (`createAligner`: its worker loads the model and runs encoder and extraction; called from
//! `src/ui/bridge.rs`) → [`results`] → the UI (`src/ui/`: alignment picture, heatmap,
//! scores, batch table) → [`export`] / [`share`].

pub mod examples;
pub mod export;
pub mod pairs;
pub mod results;
pub mod settings;
pub mod share;
