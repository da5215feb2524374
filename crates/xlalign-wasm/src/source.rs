//! Where model bytes come from: bytes the caller already has, the Cache API, or the network.

use js_sys::{ArrayBuffer, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{AbortSignal, Request};

use crate::cache;
use crate::error::{describe_js, Code, Result, WasmError};
use crate::fetch::{self, Progress};

pub enum Source {
    Url(String),
    Bytes(Vec<u8>),
}

impl Source {
    /// Accepts a URL (string or `URL`), a `Uint8Array`, an `ArrayBuffer` or any other
    /// `ArrayBuffer` view.
    pub fn from_js(v: &JsValue) -> Result<Source> {
        if let Some(s) = v.as_string() {
            return Ok(Source::Url(s));
        }
        if let Some(a) = v.dyn_ref::<Uint8Array>() {
            return Ok(Source::Bytes(a.to_vec()));
        }
        if let Some(b) = v.dyn_ref::<ArrayBuffer>() {
            return Ok(Source::Bytes(Uint8Array::new(b).to_vec()));
        }
        if ArrayBuffer::is_view(v) {
            let get = |k: &str| Reflect::get(v, &k.into()).unwrap_or(JsValue::UNDEFINED);
            let buf = get("buffer");
            let off = get("byteOffset").as_f64().unwrap_or(0.0) as u32;
            let len = get("byteLength").as_f64().unwrap_or(0.0) as u32;
            return Ok(Source::Bytes(
                Uint8Array::new_with_byte_offset_and_length(&buf, off, len).to_vec(),
            ));
        }
        if v.is_object() {
            if let Some(href) = Reflect::get(v, &"href".into())
                .ok()
                .and_then(|h| h.as_string())
            {
                return Ok(Source::Url(href));
            }
        }
        Err(WasmError::input("model source must be a URL (string or URL) or the model bytes (Uint8Array or ArrayBuffer)"))
    }
}

/// The URL made absolute against the page (or worker) location; the cache key.
pub fn absolute_url(url: &str) -> Result<String> {
    Request::new_with_str(url)
        .map(|r| r.url())
        .map_err(|e| WasmError::input(format!("bad model URL `{url}`: {}", describe_js(&e))))
}

pub fn normalize_sha256(s: &str) -> Result<String> {
    let hex = s.trim().trim_start_matches("sha256-").to_ascii_lowercase();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(WasmError::input(format!(
            "sha256 must be 64 hex digits, got `{s}`"
        )));
    }
    Ok(hex)
}

/// Checks bytes the caller passed in against an expected hash.
pub async fn verify(bytes: &[u8], want: &str, progress: &mut Progress) -> Result<()> {
    progress.report("verify", 0, Some(bytes.len() as u64), true);
    let got = cache::sha256_hex(&Uint8Array::from(bytes)).await?;
    if got != want {
        return Err(WasmError::new(
            Code::Integrity,
            format!("model SHA-256 is {got}, expected {want}"),
        ));
    }
    Ok(())
}

/// Downloads `url` (or takes it from the cache), checking `sha256` when given.
pub async fn load_url(
    url: &str,
    use_cache: bool,
    sha256: Option<&str>,
    progress: &mut Progress,
    signal: Option<&AbortSignal>,
) -> Result<Vec<u8>> {
    let use_cache = use_cache && cache::available();
    if use_cache {
        if let Some(entry) = cache::lookup(url).await {
            let n = entry.data.length() as u64;
            // With a hash, the entry is the file asked for exactly when the hashes agree.
            // Without one, the server says whether the file is still the one cached.
            let current = match sha256 {
                Some(want) => want == entry.sha256,
                None => !fetch::changed_on_server(url, entry.version.as_deref(), n).await,
            };
            if current {
                progress.report("cache", n, Some(n), true);
                return Ok(entry.data.to_vec());
            }
            if sha256.is_none() {
                cache::forget(url).await;
            }
        }
    }
    let resp = fetch::get(url, None, signal).await?;
    let version = fetch::version(&resp);
    let bytes = fetch::read_all(&resp, "download", progress).await?;
    if use_cache || sha256.is_some() {
        progress.report("verify", 0, Some(bytes.len() as u64), true);
        let js = Uint8Array::from(&bytes[..]);
        let got = cache::sha256_hex(&js).await?;
        if let Some(want) = sha256 {
            if got != want {
                return Err(WasmError::new(
                    Code::Integrity,
                    format!("downloaded model SHA-256 is {got}, expected {want}"),
                ));
            }
        }
        if use_cache {
            cache::store(url, &js, &got, version.as_deref()).await;
        }
    }
    Ok(bytes)
}
