//! Downloads with progress: `fetch` plus a `ReadableStream` reader, so bytes are counted as
//! they arrive instead of after `arrayBuffer()` resolves. Works in windows and workers
//! (both have a global `fetch`).

use js_sys::{Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, ReadableStreamDefaultReader, Request, RequestInit, Response};

use crate::error::{describe_js, is_abort, Result, WasmError};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(req: &Request) -> Promise;
}

/// One `onProgress` event of a load.
#[derive(Debug, serde::Serialize, tsify::Tsify)]
#[tsify(missing_as_null)]
pub struct LoadProgress {
    /// `"download"` | `"cache"` | `"verify"` | `"parse"` | `"backend"` | `"ready"`
    /// (progressive: `"header"` | `"tensors"` | `"rows"`).
    pub phase: String,
    /// Bytes so far.
    pub loaded: f64,
    /// Bytes in all; `null` when the server does not say.
    pub total: Option<f64>,
}

/// Forwards `{ loaded, total, phase }` to the caller's `onProgress`, at most once per
/// `STEP` bytes so a 70 MB download makes a few hundred calls, not thousands.
pub struct Progress {
    callback: Option<Function>,
    last_phase: String,
    last_loaded: f64,
    /// Reports `base + loaded` of `fixed_total` (a part of a larger transfer).
    base: u64,
    fixed_total: Option<u64>,
}

const STEP: f64 = 256.0 * 1024.0;

impl Progress {
    pub fn new(callback: Option<Function>) -> Progress {
        Progress {
            callback,
            last_phase: String::new(),
            last_loaded: -STEP,
            base: 0,
            fixed_total: None,
        }
    }

    /// Progress of a transfer that continues an earlier one: `loaded` counts from `base`,
    /// against `total` for the whole.
    pub fn offset(parent: &Progress, base: u64, total: u64) -> Progress {
        Progress {
            callback: parent.callback.clone(),
            base,
            fixed_total: Some(total),
            ..Progress::new(None)
        }
    }

    /// `force` reports even a small step (phase ends, final byte counts).
    pub fn report(&mut self, phase: &str, loaded: u64, total: Option<u64>, force: bool) {
        let Some(cb) = &self.callback else { return };
        let (loaded, total) = match self.fixed_total {
            Some(t) => ((self.base + loaded).min(t), Some(t)),
            None => (loaded, total),
        };
        let loaded = loaded as f64;
        if !force && phase == self.last_phase && loaded - self.last_loaded < STEP {
            return;
        }
        self.last_phase = phase.to_string();
        self.last_loaded = loaded;
        let event = LoadProgress {
            phase: phase.to_string(),
            loaded,
            total: total.map(|t| t as f64),
        };
        let Ok(o) = crate::aligner::to_js(&event) else {
            return;
        };
        // A failing progress callback must not fail the download it reports on.
        if let Err(e) = cb.call1(&JsValue::NULL, &o) {
            web_sys::console::warn_1(
                &format!("xlalign: onProgress threw: {}", describe_js(&e)).into(),
            );
        }
    }
}

/// A signal that aborts when `a` or `b` does (`AbortSignal.any`; without it, `a` alone).
pub fn any_signal(a: &AbortSignal, b: Option<&AbortSignal>) -> AbortSignal {
    let Some(b) = b else { return a.clone() };
    let any = Reflect::get(&js_sys::global(), &"AbortSignal".into())
        .and_then(|ctor| Reflect::get(&ctor, &"any".into()).map(|f| (ctor, f)));
    if let Ok((ctor, f)) = any {
        if let Some(f) = f.dyn_ref::<Function>() {
            let list: js_sys::Array = [a.clone(), b.clone()].into_iter().collect();
            if let Ok(s) = f.call1(&ctor, &list) {
                if let Ok(s) = s.dyn_into::<AbortSignal>() {
                    return s;
                }
            }
        }
    }
    a.clone()
}

/// Sends a GET, optionally for a byte range (`end` inclusive; `None` = to the end of file).
pub async fn get(
    url: &str,
    range: Option<(u64, Option<u64>)>,
    signal: Option<&AbortSignal>,
) -> Result<Response> {
    get_with(url, range, signal, Priority::Auto).await
}

/// A request's `priority` (Fetch Priority): background fills ask for `low` so that the
/// browser serves the requests a page waits for first; browsers without it ignore it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    High,
    Low,
    Auto,
}

/// [`get`] with a priority.
pub async fn get_with(
    url: &str,
    range: Option<(u64, Option<u64>)>,
    signal: Option<&AbortSignal>,
    priority: Priority,
) -> Result<Response> {
    let init = RequestInit::new();
    init.set_method("GET");
    if let Some(s) = signal {
        init.set_signal(Some(s));
    }
    let priority = match priority {
        Priority::High => "high",
        Priority::Low => "low",
        Priority::Auto => "auto",
    };
    // Set by name: `RequestInit.priority` is newer than the web-sys bindings' stable set.
    let _ = Reflect::set(&init, &"priority".into(), &priority.into());
    if range.is_some() {
        // Range requests bypass the HTTP cache: Chromium lets one request at a time use a
        // URL's cache entry, which would serialise a text's page requests (23 pages took
        // 0.8 s at 40 ms latency instead of a few round trips), and the parts are kept in
        // the Cache API anyway.
        init.set_cache(web_sys::RequestCache::NoStore);
    }
    let req = Request::new_with_str_and_init(url, &init)
        .map_err(|e| WasmError::input(format!("bad model URL `{url}`: {}", describe_js(&e))))?;
    if let Some((start, end)) = range {
        let value = match end {
            Some(e) => format!("bytes={start}-{e}"),
            None => format!("bytes={start}-"),
        };
        req.headers()
            .set("Range", &value)
            .map_err(|e| WasmError::network(describe_js(&e)))?;
    }
    let resp = JsFuture::from(global_fetch(&req))
        .await
        .map_err(|e| fetch_error(url, &e))?;
    let resp: Response = resp
        .dyn_into()
        .map_err(|_| WasmError::network("fetch did not return a Response"))?;
    if !resp.ok() {
        return Err(WasmError::network(format!(
            "GET {url}: HTTP {} {}",
            resp.status(),
            resp.status_text()
        )));
    }
    Ok(resp)
}

fn fetch_error(url: &str, e: &JsValue) -> WasmError {
    if is_abort(e) {
        WasmError::cancelled()
    } else {
        WasmError::network(format!("cannot download {url}: {}", describe_js(e)))
    }
}

/// The server's version of the file a response came from: its `ETag`, else its
/// `Last-Modified` (tagged with which, since only like compares with like: a cross-origin
/// server that does not expose `ETag` still shows `Last-Modified`).
pub fn version(resp: &Response) -> Option<String> {
    let h = resp.headers();
    let get = |k: &str| h.get(k).ok().flatten().filter(|v| !v.trim().is_empty());
    get("ETag")
        .map(|v| format!("etag {}", v.trim()))
        .or_else(|| get("Last-Modified").map(|v| format!("modified {}", v.trim())))
}

/// Size of the whole file a response speaks of: the total of a `Content-Range`, or the
/// `Content-Length` of a whole-file answer.
pub fn file_size(resp: &Response) -> Option<u64> {
    match content_range(resp) {
        Some((_, _, total)) => total,
        None => content_length(resp),
    }
}

/// Whether `resp` shows that the file at its URL is no longer the one whose `version` and
/// `size` were recorded: versions of the same kind that differ, or sizes that differ. A
/// server that says nothing comparable is taken at its word that nothing changed.
pub fn replaced(version_then: Option<&str>, size_then: Option<u64>, resp: &Response) -> bool {
    let kind = |v: &str| v.split_once(' ').map(|(k, _)| k.to_string());
    let by_version = match (version_then, version(resp)) {
        (Some(a), Some(b)) => kind(a) == kind(&b) && a != b,
        _ => false,
    };
    let by_size = matches!((size_then, file_size(resp)), (Some(a), Some(b)) if a != b);
    by_version || by_size
}

/// Asks the server about the file at `url` (`HEAD`, bypassing the HTTP cache). `None` when
/// it cannot be reached or does not answer `2xx`: offline, a cached model is still usable.
pub async fn probe(url: &str) -> Option<Response> {
    let init = RequestInit::new();
    init.set_method("HEAD");
    init.set_cache(web_sys::RequestCache::NoStore);
    let req = Request::new_with_str_and_init(url, &init).ok()?;
    let resp: Response = JsFuture::from(global_fetch(&req))
        .await
        .ok()?
        .dyn_into()
        .ok()?;
    resp.ok().then_some(resp)
}

/// Whether the server now has another file at `url` than the cached one (`version`, `size`
/// bytes). Unreachable (offline) or silent servers leave the cache in use.
pub async fn changed_on_server(url: &str, version: Option<&str>, size: u64) -> bool {
    match probe(url).await {
        Some(resp) => replaced(version, Some(size), &resp),
        None => false,
    }
}

/// `Content-Length`, when the server sent one and no content coding changes the length.
pub fn content_length(resp: &Response) -> Option<u64> {
    let h = resp.headers();
    if h.get("Content-Encoding")
        .ok()
        .flatten()
        .is_some_and(|v| !v.eq_ignore_ascii_case("identity"))
    {
        return None;
    }
    h.get("Content-Length").ok().flatten()?.trim().parse().ok()
}

/// `(start, end inclusive, total)` from a 206 response's `Content-Range`.
pub fn content_range(resp: &Response) -> Option<(u64, u64, Option<u64>)> {
    let v = resp.headers().get("Content-Range").ok().flatten()?;
    parse_content_range(&v)
}

pub fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let (a, b) = span.split_once('-')?;
    let total = if total.trim() == "*" {
        None
    } else {
        Some(total.trim().parse().ok()?)
    };
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?, total))
}

/// A response body read chunk by chunk, so a caller can stop part-way (progressive loading
/// reads the header and the first embedding rows, then cancels the rest).
pub struct BodyReader {
    reader: ReadableStreamDefaultReader,
    pub done: bool,
}

impl BodyReader {
    pub fn new(resp: &Response) -> Result<BodyReader> {
        let body = resp
            .body()
            .ok_or_else(|| WasmError::network("the response has no body"))?;
        let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
        Ok(BodyReader {
            reader,
            done: false,
        })
    }

    /// Appends the next chunk to `out`; returns false at the end of the stream.
    pub async fn next_into(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        let r = JsFuture::from(self.reader.read()).await.map_err(|e| {
            if is_abort(&e) {
                WasmError::cancelled()
            } else {
                WasmError::network(format!("download interrupted: {}", describe_js(&e)))
            }
        })?;
        if Reflect::get(&r, &"done".into())
            .ok()
            .and_then(|d| d.as_bool())
            .unwrap_or(true)
        {
            self.done = true;
            return Ok(false);
        }
        let chunk: Uint8Array = Reflect::get(&r, &"value".into())
            .map_err(|e| WasmError::network(describe_js(&e)))?
            .dyn_into()
            .map_err(|_| {
                WasmError::network("the response body yielded something other than bytes")
            })?;
        let start = out.len();
        out.resize(start + chunk.length() as usize, 0);
        chunk.copy_to(&mut out[start..]);
        Ok(true)
    }

    /// Stops the transfer; the rest of the body is never downloaded.
    pub async fn cancel(mut self) {
        if !self.done {
            self.done = true;
            let _ = JsFuture::from(self.reader.cancel()).await;
        }
    }
}

/// Downloads a whole body into memory with progress.
pub async fn read_all(resp: &Response, phase: &str, progress: &mut Progress) -> Result<Vec<u8>> {
    let total = content_length(resp);
    // Capacity from an untrusted header is capped so a bogus length cannot exhaust memory up front.
    let mut out = Vec::with_capacity(total.unwrap_or(0).min(1 << 30) as usize);
    let mut reader = BodyReader::new(resp)?;
    progress.report(phase, 0, total, true);
    while reader.next_into(&mut out).await? {
        let t = total.filter(|&t| t >= out.len() as u64);
        progress.report(phase, out.len() as u64, t, false);
    }
    if let Some(t) = total {
        if (out.len() as u64) < t {
            return Err(WasmError::network(format!(
                "download ended after {} of {t} bytes",
                out.len()
            )));
        }
    }
    progress.report(phase, out.len() as u64, Some(out.len() as u64), true);
    Ok(out)
}
