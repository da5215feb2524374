//! Option objects from JavaScript. Plain fields go through serde (unknown keys are refused,
//! so a typo like `{ backnd: "cpu" }` is an error rather than silently ignored); callbacks
//! and `AbortSignal`s are taken out by name first because serde cannot carry them.

use js_sys::{Function, Object, Reflect};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use serde_json::{Map, Value};
use xlalign_core::align::{AlignOptions, Method};
use xlalign_core::pipeline::{Aligner, EncodeOptions};

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

/// Which compute backend to run on.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, tsify::Tsify)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// WebGPU when the browser offers an adapter, else CPU (the reason is reported).
    #[default]
    Auto,
    #[serde(alias = "gpu")]
    Webgpu,
    Cpu,
}

impl BackendChoice {
    pub fn core(self) -> xlalign_gpu::BackendChoice {
        match self {
            BackendChoice::Auto => xlalign_gpu::BackendChoice::Auto,
            BackendChoice::Webgpu => xlalign_gpu::BackendChoice::Gpu,
            BackendChoice::Cpu => xlalign_gpu::BackendChoice::Cpu,
        }
    }
}

/// Options of `Aligner.load` (and `createAligner`).
#[derive(Debug, Deserialize, tsify::Tsify)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LoadOptions {
    pub backend: BackendChoice,
    /// Keep downloaded models in the Cache API (URL sources only; default true).
    pub cache: bool,
    /// Expected SHA-256 of the model file (hex); checked before the model is used.
    pub sha256: Option<String>,
    /// Become ready before the whole word-embedding table has arrived; fetch the rest in
    /// pages with HTTP Range requests when a text needs them.
    pub progressive: bool,
    /// Progressive loading: rows of the embedding table fetched up front (the tokenizer's
    /// ids are ordered by frequency, so the first rows cover most text).
    pub prefetch_rows: Option<u32>,
    /// Progressive loading: rows per on-demand page.
    pub page_rows: Option<u32>,
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
// (see `parse`). They extend the interfaces derived above, and the option objects of `align`,
// `alignBatch` and `encode` combine the core's `EncodeOptions` and `ExtractOptions`.
#[wasm_bindgen(typescript_custom_section)]
const LIVE_OPTIONS_TS: &'static str = r#"
/** An `AbortSignal` that cancels the call: it rejects with an `AbortError` (code `cancelled`). */
export interface Cancellable { signal?: AbortSignal; }
export interface LoadOptions extends Cancellable {
  /** Called as the model downloads, verifies, parses and the backend starts. */
  onProgress?: (p: LoadProgress) => void;
}
export interface EmbedOptions extends Cancellable {}
/** Options of `align`: how the pair is encoded and how links are extracted. Unset extraction options take the model's recommendation; `sentenceCosine` defaults to true. */
export interface AlignOptions extends EncodeOptions, ExtractOptions, Cancellable {}
export interface AlignBatchOptions extends AlignOptions {
  /** Pairs per encoder pass (default 8). */
  batchSize?: number;
}
"#;

/// Options of `align` / `alignBatch`: one flat object in JavaScript, split here into what
/// decides encoding (`pipeline::EncodeOptions`) and what decides extraction
/// (`align::AlignOptions`), both parsed by the core's own serde definitions.
pub struct AlignCall {
    pub encode: EncodeOptions,
    pub align: AlignOptions,
    pub signal: Option<web_sys::AbortSignal>,
    pub batch_size: usize,
}

const ENCODE_KEYS: &[&str] = &["layer", "pretokenized", "sentenceCosine", "words"];
const EXTRACT_KEYS: &[&str] = &[
    "method",
    "threshold",
    "temperature",
    "iterations",
    "alpha",
    "distortion",
    "direction",
    "level",
];
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
        let (map, live) = parse::<Map<String, Value>>(value, what, &["signal"])?;
        let signal = signal(live.into_iter().next().unwrap())?;
        let (mut enc, mut ext, mut batch_size) = (Map::new(), Map::new(), None);
        for (k, v) in map {
            if ENCODE_KEYS.contains(&k.as_str()) {
                enc.insert(k, v);
            } else if EXTRACT_KEYS.contains(&k.as_str()) {
                ext.insert(k, v);
            } else if batch && k == "batchSize" {
                batch_size = Some(v.as_u64().filter(|&n| (1..=1024).contains(&n)).ok_or_else(
                    || {
                        WasmError::input(format!(
                            "batchSize must be a whole number from 1 to 1024, got {v}"
                        ))
                    },
                )? as usize);
            } else {
                let mut known: Vec<&str> =
                    ENCODE_KEYS.iter().chain(EXTRACT_KEYS).copied().collect();
                known.push("signal");
                if batch {
                    known.push("batchSize");
                }
                return Err(WasmError::input(format!(
                    "{what}: unknown option `{k}` (known: {})",
                    known.join(", ")
                )));
            }
        }
        let encode = encode_options(enc, what)?;
        let align = extract_options(ext, core, what)?;
        Ok(AlignCall {
            encode,
            align,
            signal,
            batch_size: batch_size.unwrap_or(DEFAULT_BATCH),
        })
    }
}

/// The encoding part of `align`'s options (the keys in `ENCODE_KEYS`).
fn encode_options(mut enc: Map<String, Value>, what: &str) -> Result<EncodeOptions> {
    // The pooled-embedding cosine is part of every result unless turned off.
    enc.entry("sentenceCosine").or_insert(Value::Bool(true));
    serde_json::from_value(Value::Object(enc)).map_err(|e| WasmError::input(format!("{what}: {e}")))
}

/// The extraction part of `align`'s options (the keys in `EXTRACT_KEYS`): unset ones take
/// the model's recommendation; the result is checked.
fn extract_options<B: xlalign_core::Backend>(
    ext: Map<String, Value>,
    core: &Aligner<B>,
    what: &str,
) -> Result<AlignOptions> {
    // The model's recommended threshold and temperature belong to its recommended method;
    // another method starts from that method's own defaults.
    let defaults = core.default_options();
    let base = match ext.get("method") {
        Some(m) => {
            let m: Method = serde_json::from_value(m.clone())
                .map_err(|e| WasmError::input(format!("{what}: method: {e}")))?;
            if m == defaults.method {
                defaults
            } else {
                AlignOptions::new(m)
            }
        }
        None => defaults,
    };
    let mut merged = match serde_json::to_value(base) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    merged.extend(ext);
    let align: AlignOptions = serde_json::from_value(Value::Object(merged))
        .map_err(|e| WasmError::input(format!("{what}: {e}")))?;
    align.validate().map_err(|e| {
        WasmError::input(format!(
            "{what}: {}",
            e.to_string().trim_start_matches("invalid input: ")
        ))
    })?;
    Ok(align)
}

/// Options of `encode` (the encoding keys of `align`'s options) and of `Encoded.extract`
/// (the extraction keys), each refusing the other's keys with a word on where they go.
pub struct SplitCall<T> {
    pub options: T,
    pub signal: Option<web_sys::AbortSignal>,
}

/// `encode`'s options: `layer`, `pretokenized`, `sentenceCosine` (default true), `words`.
pub fn encode_call(value: &JsValue) -> Result<SplitCall<EncodeOptions>> {
    let what = "encode options";
    let (map, signal) = split_call(value, what, ENCODE_KEYS, |k| {
        EXTRACT_KEYS.contains(&k).then(|| {
            format!("`{k}` is an extraction option: pass it to extract() on the encoded pair")
        })
    })?;
    Ok(SplitCall {
        options: encode_options(map, what)?,
        signal,
    })
}

/// `Encoded.extract`'s options, resolved as `align` resolves them.
pub fn extract_call<B: xlalign_core::Backend>(
    value: &JsValue,
    core: &Aligner<B>,
) -> Result<SplitCall<AlignOptions>> {
    let what = "extract options";
    let (map, signal) = split_call(value, what, EXTRACT_KEYS, |k| {
        ENCODE_KEYS.contains(&k).then(|| {
            format!("`{k}` changes the encoding, which extract() reuses: pass it to encode() and extract from the new encoding")
        })
    })?;
    Ok(SplitCall {
        options: extract_options(map, core, what)?,
        signal,
    })
}

fn split_call(
    value: &JsValue,
    what: &str,
    keys: &[&str],
    elsewhere: impl Fn(&str) -> Option<String>,
) -> Result<(Map<String, Value>, Option<web_sys::AbortSignal>)> {
    let (map, live) = parse::<Map<String, Value>>(value, what, &["signal"])?;
    let signal = signal(live.into_iter().next().unwrap())?;
    for k in map.keys() {
        if let Some(why) = elsewhere(k) {
            return Err(WasmError::input(format!("{what}: {why}")));
        }
        if !keys.contains(&k.as_str()) {
            return Err(WasmError::input(format!(
                "{what}: unknown option `{k}` (known: {}, signal)",
                keys.join(", ")
            )));
        }
    }
    Ok((map, signal))
}
