//! Downloaded models kept in the Cache API, keyed by URL. Each entry records the size and
//! SHA-256 of its bytes; a read recomputes both and throws the entry away on a mismatch
//! (a partly evicted or tampered entry is downloaded again, never used). Each entry also
//! records the server's version of the file it came from (see [`crate::fetch::version`]),
//! so that a file replaced on the server is noticed (see `source` and `progressive`) and
//! its old entries are forgotten together.
//!
//! The Cache API exists only in secure contexts (https, localhost); elsewhere caching is
//! silently skipped.

use js_sys::{ArrayBuffer, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, CacheStorage, Headers, Response, ResponseInit};

use crate::error::{describe_js, Code, Result, WasmError};

/// Cache name; bump the suffix if the entry layout ever changes.
pub const CACHE_NAME: &str = "xlalign-models-v1";
const H_SHA256: &str = "x-xlalign-sha256";
const H_SIZE: &str = "x-xlalign-size";
const H_VERSION: &str = "x-xlalign-version";

/// A cached entry that passed its integrity check.
pub struct Entry {
    pub data: Uint8Array,
    pub sha256: String,
    /// The server's version of the file when the bytes were downloaded, if it gave one.
    pub version: Option<String>,
}

/// The cache key of a part of the file at `url` (progressive loading keeps the header, the
/// tail and pages of rows apart).
pub fn part_key(url: &str, part: &str) -> String {
    format!("{}{part}", part_prefix(url))
}

fn part_prefix(url: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}xlalign-part=")
}

fn storage() -> Option<CacheStorage> {
    Reflect::get(&js_sys::global(), &"caches".into())
        .ok()?
        .dyn_into()
        .ok()
}

fn subtle() -> Option<web_sys::SubtleCrypto> {
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into()).ok()?;
    Reflect::get(&crypto, &"subtle".into())
        .ok()?
        .dyn_into()
        .ok()
}

pub fn available() -> bool {
    storage().is_some() && subtle().is_some()
}

/// SHA-256 of `data` as lowercase hex, computed by the browser (`crypto.subtle`).
pub async fn sha256_hex(data: &Uint8Array) -> Result<String> {
    let subtle = subtle().ok_or_else(|| {
        WasmError::new(
            Code::Integrity,
            "crypto.subtle is unavailable (not a secure context), so the SHA-256 cannot be checked",
        )
    })?;
    let p = subtle
        .digest_with_str_and_buffer_source("SHA-256", data)
        .map_err(|e| WasmError::new(Code::Integrity, describe_js(&e)))?;
    let digest = JsFuture::from(p)
        .await
        .map_err(|e| WasmError::new(Code::Integrity, describe_js(&e)))?;
    let digest = Uint8Array::new(&digest.unchecked_into::<ArrayBuffer>()).to_vec();
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

async fn open() -> Option<Cache> {
    let p = storage()?.open(CACHE_NAME);
    JsFuture::from(p).await.ok()?.dyn_into().ok()
}

/// The entry for `url`, if one exists and passes its integrity check.
pub async fn lookup(url: &str) -> Option<Entry> {
    let cache = open().await?;
    let hit = JsFuture::from(cache.match_with_str(url)).await.ok()?;
    let resp: Response = hit.dyn_into().ok()?;
    let h = resp.headers();
    let want_sha = h.get(H_SHA256).ok().flatten();
    let want_size = h
        .get(H_SIZE)
        .ok()
        .flatten()
        .and_then(|s| s.parse::<u64>().ok());
    let buf = JsFuture::from(resp.array_buffer().ok()?).await.ok()?;
    let data = Uint8Array::new(&buf);
    let ok = match (&want_sha, want_size) {
        (Some(sha), Some(size)) => {
            data.length() as u64 == size && sha256_hex(&data).await.ok().as_ref() == Some(sha)
        }
        _ => false,
    };
    if !ok {
        let _ = JsFuture::from(cache.delete_with_str(url)).await;
        return None;
    }
    let version = h.get(H_VERSION).ok().flatten();
    Some(Entry {
        data,
        sha256: want_sha?,
        version,
    })
}

/// Stores `data` for `url` with its size, hash and the server's version of the file.
/// Failures (quota, private mode) are reported to the console and otherwise ignored: the
/// model still works, uncached.
pub async fn store(url: &str, data: &Uint8Array, sha256: &str, version: Option<&str>) {
    if let Err(e) = try_store(url, data, sha256, version).await {
        web_sys_warn(&format!("xlalign: could not cache {url}: {e}"));
    }
}

async fn try_store(
    url: &str,
    data: &Uint8Array,
    sha256: &str,
    version: Option<&str>,
) -> Result<()> {
    let cache = open()
        .await
        .ok_or_else(|| WasmError::network("Cache API unavailable"))?;
    let headers = Headers::new().map_err(|e| WasmError::network(describe_js(&e)))?;
    let set = |k: &str, v: &str| {
        headers
            .set(k, v)
            .map_err(|e| WasmError::network(describe_js(&e)))
    };
    set("Content-Type", "application/octet-stream")?;
    set(H_SHA256, sha256)?;
    set(H_SIZE, &data.length().to_string())?;
    if let Some(v) = version {
        set(H_VERSION, v)?;
    }
    let init = ResponseInit::new();
    init.set_headers(&headers);
    let resp = Response::new_with_opt_buffer_source_and_init(Some(data), &init)
        .map_err(|e| WasmError::network(describe_js(&e)))?;
    JsFuture::from(cache.put_with_str(url, &resp))
        .await
        .map_err(|e| WasmError::network(describe_js(&e)))?;
    Ok(())
}

/// Every key in the model cache (URLs).
pub async fn keys() -> Option<Vec<String>> {
    let cache = open().await?;
    let keys = JsFuture::from(cache.keys()).await.ok()?;
    Some(
        js_sys::Array::from(&keys)
            .iter()
            .filter_map(|r| r.dyn_into::<web_sys::Request>().ok().map(|r| r.url()))
            .collect(),
    )
}

/// Deletes every entry of the file at `url`: the whole file and all its parts.
pub async fn forget(url: &str) {
    let (Some(cache), Some(keys)) = (open().await, keys().await) else {
        return;
    };
    let prefix = part_prefix(url);
    for k in keys.iter().filter(|k| *k == url || k.starts_with(&prefix)) {
        let _ = JsFuture::from(cache.delete_with_str(k)).await;
    }
}

/// Deletes every cached model. Resolves to whether a cache existed.
pub async fn clear() -> Result<bool> {
    let Some(s) = storage() else { return Ok(false) };
    let p: Promise = s.delete(CACHE_NAME);
    let v = JsFuture::from(p)
        .await
        .map_err(|e| WasmError::network(describe_js(&e)))?;
    Ok(v.as_bool().unwrap_or(false))
}

fn web_sys_warn(msg: &str) {
    web_sys::console::warn_1(&JsValue::from_str(msg));
}
