//! xlalign in the browser: a thin wasm-bindgen face over `xlalign-core` (and `xlalign-gpu`
//! for WebGPU). It turns JavaScript arguments into core calls and core results into
//! JavaScript values; model math and alignment live in the core.
//!
//! Data path: [`source`] (URL, bytes or [`cache`]; [`fetch`] streams with progress) →
//! `xlalign_core::Model::from_bytes` → [`engine`] (CPU or WebGPU) → [`aligner::Aligner`]
//! methods. Errors become thrown JS `Error`s with a `code` ([`error`]).

pub mod aligner;
pub mod cache;
pub mod engine;
pub mod error;
pub mod fetch;
pub mod options;
pub mod progressive;
pub mod source;

use wasm_bindgen::prelude::*;

pub use aligner::Aligner;

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

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
export interface LoadProgress {
  /** "download" | "cache" | "verify" | "parse" | "backend" | "ready" (progressive: "header" | "tensors" | "rows") */
  phase: string;
  loaded: number;
  total: number | null;
}
export interface LoadOptions {
  backend?: "auto" | "webgpu" | "cpu";
  onProgress?: (p: LoadProgress) => void;
  signal?: AbortSignal;
  /** Keep the downloaded model in the Cache API (default true). */
  cache?: boolean;
  /** Expected SHA-256 of the model file, hex (optionally "sha256-" prefixed). */
  sha256?: string;
  /** Ready before the whole word-embedding table has arrived; the rest comes in pages via HTTP Range. */
  progressive?: boolean;
  prefetchRows?: number;
  pageRows?: number;
}
export interface LoadingInfo {
  /** "full", or "progressive" (rows of the word-embedding table arrive on demand). */
  mode: string;
  /** Bytes that had to arrive (network or cache) before the aligner was ready. */
  readyBytes: number;
  /** Bytes downloaded so far in progressive mode, on-demand pages included. */
  networkBytes: number;
  requests: number;
  rowsPresent: number;
  rowsTotal: number;
  pageRows: number;
  pagesFetched: number;
  pagesFromCache: number;
}
export interface BackendInfo { kind: "cpu" | "webgpu"; device: string; reason: string; }
export interface ModelInfo {
  name: string; hidden: number; layers: number; heads: number; vocab: number; maxPositions: number;
  weightType: string; fileBytes: number;
  defaults: { alignLayer: number; alignMethod: string; alignThreshold: number; passagePrefix: string; queryPrefix: string };
}
export interface EmbedOptions { prefix?: "passage" | "query" | "none"; signal?: AbortSignal; }
export interface AlignOptions {
  /** Extraction method; unset = the model's recommendation (softmax for multilingual-e5-small). */
  method?: "softmax" | "entmax" | "argmax" | "itermax" | "match";
  /** softmax/entmax: minimum link probability, in [0, 1). */
  threshold?: number;
  /** softmax/entmax: divides the dot products before normalising. */
  temperature?: number;
  /** itermax: rounds (1 = argmax). */
  iterations?: number;
  /** itermax: discount for cells whose row or column is already aligned. */
  alpha?: number;
  /** Position prior in [0, 1]; 0 = off. */
  distortion?: number;
  direction?: "both" | "forward" | "reverse" | "union";
  level?: "subword" | "word-average";
  /** Hidden layer to align with; unset = the model's recommendation. */
  layer?: number;
  /** Sentences are words separated by spaces (gold-set style). */
  pretokenized?: boolean;
  /** Compute the pooled-embedding cosine (runs all layers). Default true. */
  sentenceCosine?: boolean;
  words?: { cjkJoin?: "auto" | "always" | "never"; kana?: "char" | "run" };
  signal?: AbortSignal;
}
export interface AlignBatchOptions extends AlignOptions {
  /** Pairs per encoder pass (default 8). */
  batchSize?: number;
}
export interface Word {
  text: string;
  /** Byte offsets (UTF-8) in the sentence. */
  start: number; end: number;
  /** Offsets in Unicode code points (use Array.from(text) to index). */
  charStart: number; charEnd: number;
}
export interface WordLink { src: number; tgt: number; score: number; prob: number | null; }
export interface PairAlignment {
  srcWords: Word[];
  tgtWords: Word[];
  links: WordLink[];
  similarity: {
    cosine: number | null;
    bertscore: { src: number; tgt: number; f1: number };
    coverage: { src: number; tgt: number; both: number };
  };
  /** wordSimilarity[i][j]: cosine of source word i and target word j. */
  wordSimilarity: number[][];
  layer: number;
  method: string;
}
export interface PairError { error: { message: string; code: string } }
"#;
