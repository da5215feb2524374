//! Option objects from JavaScript. Plain fields go through serde (unknown keys are refused,
//! so a typo like `{ backnd: "cpu" }` is an error rather than silently ignored); callbacks
//! and `AbortSignal`s are taken out by name first because serde cannot carry them.

use js_sys::{Function, Object, Reflect};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use xlalign_core::align::AlignOptions;
use xlalign_core::pipeline::{Aligner, EncodeOptions};
use xlalign_core::request::{AlignRequest, Part};
use xlalign_core::BackendChoice;

use crate::error::{Result, WasmError};

/// Splits `value` into its plain part (parsed as `T`) and the JS objects under `live_keys`.
pub fn parse<T: DeserializeOwned + Default>(
    value: &JsValue,
    what: &str,
    live_keys: &[&str],
) -> Result<(T, Vec<JsValue>)> {
    if value.is_undefined() || value.is_null() {
        return Ok((T::default(), vec![JsValue::UNDEFINED; live_keys.len()]));
    }
    if !value.is_object() || value.is_function() || js_sys::Array::is_array(value) {
        return Err(WasmError::input(format!("{what} must be an object")));
    }
    // A shallow copy, so deleting the live keys leaves the caller's object untouched.
    let plain = Object::assign(&Object::new(), value.unchecked_ref());
    let mut live = Vec::with_capacity(live_keys.len());
    for k in live_keys {
        let key = JsValue::from_str(k);
        live.push(Reflect::get(&plain, &key).unwrap_or(JsValue::UNDEFINED));
        let _ = Reflect::delete_property(&plain, &key);
    }
    reject_non_finite(&plain, what, "", 0)?;
    // Through a JSON value because serde-wasm-bindgen only reads the fields a struct names,
    // so `deny_unknown_fields` would never see a misspelt key.
    let json: serde_json::Value = serde_wasm_bindgen::from_value(plain.into())
        .map_err(|e| WasmError::input(format!("{what}: {e}")))?;
    let parsed =
        serde_json::from_value(json).map_err(|e| WasmError::input(format!("{what}: {e}")))?;
    Ok((parsed, live))
}

/// JSON has no NaN or Infinity: on the way to a JSON value they become `null`, which reads
/// as "option unset" (`threshold: NaN` would silently mean the default threshold) or as a
/// puzzling "invalid type: null". Named here instead, with the key that holds them.
fn reject_non_finite(v: &JsValue, what: &str, path: &str, depth: u32) -> Result<()> {
    if let Some(x) = v.as_f64() {
        if !x.is_finite() {
            let js = if x.is_nan() {
                "NaN"
            } else if x > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            };
            return Err(WasmError::input(format!(
                "{what}: `{path}` must be a finite number, got {js}"
            )));
        }
    } else if depth < 4 && v.is_object() && !v.is_function() {
        for entry in Object::entries(v.unchecked_ref()).iter() {
            let entry: js_sys::Array = entry.unchecked_into();
            let key = entry.get(0).as_string().unwrap_or_default();
            let path = if path.is_empty() {
                key
            } else {
                format!("{path}.{key}")
            };
            reject_non_finite(&entry.get(1), what, &path, depth + 1)?;
        }
    }
    Ok(())
}

/// Whether the options object `value` sets `key` (to anything but `undefined`).
pub fn is_set(value: &JsValue, key: &str) -> bool {
    value.is_object() && js_sys::Reflect::get(value, &key.into()).is_ok_and(|v| !v.is_undefined())
}

pub fn function(v: JsValue, what: &str) -> Result<Option<Function>> {
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    v.dyn_into::<Function>()
        .map(Some)
        .map_err(|_| WasmError::input(format!("{what} must be a function")))
}

pub fn signal(v: JsValue) -> Result<Option<web_sys::AbortSignal>> {
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    v.dyn_into::<web_sys::AbortSignal>()
        .map(Some)
        .map_err(|_| WasmError::input("`signal` must be an AbortSignal"))
}

pub fn check_signal(s: &Option<web_sys::AbortSignal>) -> Result<()> {
    match s {
        Some(s) if s.aborted() => Err(WasmError::cancelled()),
        _ => Ok(()),
    }
}

/// Options of `Aligner.load` (and `createAligner`).
#[derive(Debug, Deserialize, tsify::Tsify)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LoadOptions {
    /// `auto`, `webgpu` (or `gpu`) or `cpu`.
    pub backend: BackendChoice,
    /// Keep downloaded models in the Cache API (URL sources only; default true).
    pub cache: bool,
    /// Expected SHA-256 of the model file (hex); checked before the model is used.
    pub sha256: Option<String>,
    /// Become ready once the first alignment can run (the tokenizer, the blocks up to the
    /// alignment layer, the first rows of the word-embedding table); rows a text needs are
    /// fetched with HTTP Range requests when it needs them, the deeper blocks arrive right
    /// after (see `whenLoaded()`), and with the cache on the rest fills it in the background.
    pub progressive: bool,
    /// Progressive loading: rows of the embedding table fetched up front (default 1024: the
    /// first rows hold the pieces of almost every text).
    pub prefetch_rows: Option<u32>,
    /// Progressive loading: rows per on-demand page (default 16).
    pub page_rows: Option<u32>,
    /// Progressive loading: milliseconds without a call after ready before the deeper
    /// blocks and the cache fill start on their own (default 1500); a negative value: never
    /// on their own, only after the first call or when `whenLoaded()`/`whenStored()` is
    /// awaited. `createAligner` counts this time on the page's thread and gives its worker
    /// −1, so that a page busy right after ready does not lose its first call's bandwidth to
    /// a timer that ran in the worker.
    pub idle_start_ms: Option<i32>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            backend: BackendChoice::Auto,
            cache: true,
            sha256: None,
            progressive: false,
            prefetch_rows: None,
            page_rows: None,
            idle_start_ms: None,
        }
    }
}

/// Options of `embed`, `similarity` and `tokenize`.
#[derive(Debug, Default, Deserialize, tsify::Tsify)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct EmbedOptions {
    /// The model's prefix before the text: `passage` (default), `query` or `none`.
    #[tsify(type = "\"passage\" | \"query\" | \"none\"")]
    pub prefix: Option<String>,
}

// What serde cannot carry: callbacks and `AbortSignal`s, taken out by name before parsing
// (see `parse`). They extend the interfaces derived above and in the core: `AlignOptions` is
// the core's `AlignRequest`; `encode` takes its encoding part (the core's `EncodeOptions`)
// and `Encoded.extract` its extraction part (`ExtractOptions`, the core's `AlignOptions`).
#[wasm_bindgen(typescript_custom_section)]
const LIVE_OPTIONS_TS: &'static str = r#"
/** An `AbortSignal` that cancels the call: it rejects with an `AbortError` (code `cancelled`). */
export interface Cancellable { signal?: AbortSignal; }
export interface LoadOptions extends Cancellable {
  /** Called as the model downloads, verifies, parses and the backend starts. */
  onProgress?: (p: LoadProgress) => void;
}
export interface EmbedOptions extends Cancellable {}
/** Options of `align`: how the pair is encoded and how links are extracted. Unset extraction options take the model's recommendation; `sentenceCosine` defaults to true (after a progressive load, until `whenLoaded()` resolves, unset means it is left out rather than waited for). */
export interface AlignOptions extends Cancellable {}
export interface AlignBatchOptions extends AlignOptions {
  /** Pairs per encoder pass (default 8). */
  batchSize?: number;
}
"#;

/// Options of `align` / `alignBatch`: one flat object in JavaScript, the core's
/// [`AlignRequest`] (its keys, its checks, its resolution against the model's
/// recommendation), plus `signal` and, for batches, `batchSize`.
pub struct AlignCall {
    pub encode: EncodeOptions,
    pub align: AlignOptions,
    pub signal: Option<web_sys::AbortSignal>,
    pub batch_size: usize,
}

const DEFAULT_BATCH: usize = 8;

impl AlignCall {
    pub fn parse<B: xlalign_core::Backend>(
        value: &JsValue,
        core: &Aligner<B>,
        batch: bool,
    ) -> Result<AlignCall> {
        let what = if batch {
            "alignBatch options"
        } else {
            "align options"
        };
        let live_keys: &[&str] = if batch {
            &["signal", "batchSize"]
        } else {
            &["signal"]
        };
        let (request, live) = parse::<AlignRequest>(value, what, live_keys)?;
        let mut live = live.into_iter();
        let signal = signal(live.next().unwrap_or_default())?;
        let batch_size = match live.next() {
            Some(v) if !v.is_undefined() => {
                let n = v
                    .as_f64()
                    .filter(|n| n.fract() == 0.0 && (1.0..=1024.0).contains(n));
                n.ok_or_else(|| {
                    WasmError::input(format!(
                        "batchSize must be a whole number from 1 to 1024, got {}",
                        v.as_f64()
                            .map(|n| n.to_string())
                            .unwrap_or_else(|| "a value that is not a number".into())
                    ))
                })? as usize
            }
            _ => DEFAULT_BATCH,
        };
        let rec = core.recommendation().map_err(WasmError::from)?;
        let (encode, align) = request
            .resolve(&rec)
            .map_err(|e| WasmError::input(format!("{what}: {}", e.detail())))?;
        Ok(AlignCall {
            encode,
            align,
            signal,
            batch_size,
        })
    }
}

/// Options of `encode` (the encoding part of `align`'s options) and of `Encoded.extract`
/// (the extraction part): the core's [`AlignRequest`], each call refusing the other part's
/// keys ([`Part`]) with a word on where they go.
pub struct SplitCall<T> {
    pub options: T,
    pub signal: Option<web_sys::AbortSignal>,
}

/// `encode`'s options: `layer`, `pretokenized`, `sentenceCosine` (default true), `words`,
/// resolved as `align` resolves them.
pub fn encode_call<B: xlalign_core::Backend>(
    value: &JsValue,
    core: &Aligner<B>,
) -> Result<SplitCall<EncodeOptions>> {
    let what = "encode options";
    let (request, signal) = split_call(value, what, Part::Encode)?;
    let rec = core.recommendation().map_err(WasmError::from)?;
    Ok(SplitCall {
        options: request
            .encode_options(&rec)
            .map_err(|e| WasmError::input(format!("{what}: {}", e.detail())))?,
        signal,
    })
}

/// `Encoded.extract`'s options, resolved as `align` resolves them.
pub fn extract_call<B: xlalign_core::Backend>(
    value: &JsValue,
    core: &Aligner<B>,
) -> Result<SplitCall<AlignOptions>> {
    let what = "extract options";
    let (request, signal) = split_call(value, what, Part::Extract)?;
    let rec = core.recommendation().map_err(WasmError::from)?;
    Ok(SplitCall {
        options: request
            .align_options(&rec)
            .map_err(|e| WasmError::input(format!("{what}: {}", e.detail())))?,
        signal,
    })
}

/// Parses the request and refuses a key of the other part ([`AlignRequest::check_only`]).
fn split_call(
    value: &JsValue,
    what: &str,
    part: Part,
) -> Result<(AlignRequest, Option<web_sys::AbortSignal>)> {
    let (request, live) = parse::<AlignRequest>(value, what, &["signal"])?;
    let signal = signal(live.into_iter().next().unwrap_or_default())?;
    request
        .check_only(part)
        .map_err(|e| WasmError::input(format!("{what}: {}", e.detail())))?;
    Ok((request, signal))
}
