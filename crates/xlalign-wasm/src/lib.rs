//! xlalign in the browser: a thin wasm-bindgen face over `xlalign-core` (and `xlalign-gpu`
//! for WebGPU). It turns JavaScript arguments into core calls and core results into
//! JavaScript values; model math and alignment live in the core.
//!
//! Data path: [`source`] (URL, bytes or [`cache`]; [`fetch`] streams with progress) →
//! `xlalign_core::Model::from_bytes` → [`engine`] (CPU or WebGPU) → [`aligner::Aligner`]
//! methods. Errors become thrown JS `Error`s with a `code` ([`error`]).
//!
//! The TypeScript declarations of option and result objects are derived from the serde types
//! they are parsed into or serialised from (`tsify`, here and in `xlalign-core` with its `ts`
//! feature), so the names in the `.d.ts` are the names serde reads and writes. What serde
//! cannot carry (callbacks, `AbortSignal`s) is declared in one small block in [`options`].

pub mod aligner;
pub mod cache;
pub mod encoded;
pub mod engine;
pub mod error;
pub mod fetch;
pub mod fill;
pub mod options;
pub mod progressive;
pub mod source;

use wasm_bindgen::prelude::*;

pub use aligner::Aligner;
pub use encoded::Encoded;

/// Panics (bugs, not bad input: input errors are thrown as `Error`s) print their message to
/// the console instead of a bare `unreachable`.
pub(crate) fn init() {
    console_error_panic_hook::set_once();
}

/// Deletes every model kept in the Cache API. Resolves to whether anything was deleted.
#[wasm_bindgen(js_name = clearCache)]
pub async fn clear_cache() -> Result<bool, JsValue> {
    init();
    Ok(cache::clear().await?)
}

/// Version of this package.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
