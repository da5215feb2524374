//! Small browser helpers: the address bar, downloads, file reading, text measurement.

use std::cell::RefCell;
use std::time::Duration;

use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, BlobPropertyBag, CanvasRenderingContext2d, HtmlAnchorElement, HtmlCanvasElement, Url,
    UrlSearchParams,
};
use xlalign_web::share::{self, Shared};

/// A thrown JavaScript value as a sentence.
pub fn describe(v: &JsValue) -> String {
    if let Some(e) = v.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    v.as_string().unwrap_or_else(|| format!("{v:?}"))
}

/// The pair and settings in the page's query string.
pub fn read_query() -> (Shared, Vec<String>) {
    let search = window().location().search().unwrap_or_default();
    let Ok(params) = UrlSearchParams::new_with_str(&search) else {
        return (Shared::default(), Vec::new());
    };
    let mut kv: Vec<(String, String)> = Vec::new();
    let entries = js_sys::try_iter(&params).ok().flatten();
    for e in entries.into_iter().flatten().flatten() {
        let a = js_sys::Array::from(&e);
        if let (Some(k), Some(v)) = (a.get(0).as_string(), a.get(1).as_string()) {
            kv.push((k, v));
        }
    }
    share::from_params(kv.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// The query string for these values (`?…`, or empty).
pub fn query_string(s: &Shared) -> String {
    let Ok(params) = UrlSearchParams::new() else {
        return String::new();
    };
    for (k, v) in share::to_params(s) {
        params.append(k, &v);
    }
    let q = String::from(params.to_string());
    if q.is_empty() {
        q
    } else {
        format!("?{q}")
    }
}

/// The full share link for these values.
pub fn share_url(s: &Shared) -> String {
    let loc = window().location();
    let base = format!(
        "{}{}",
        loc.origin().unwrap_or_default(),
        loc.pathname().unwrap_or_default()
    );
    base + &query_string(s)
}

thread_local! {
    static QUERY_TIMER: RefCell<Option<TimeoutHandle>> = const { RefCell::new(None) };
}

/// Replaces the address bar's query (no new history entry). Debounced: browsers throttle
/// rapid `replaceState` calls, and typing would make many.
pub fn write_query(s: &Shared) {
    let q = query_string(s);
    QUERY_TIMER.with_borrow_mut(|t| {
        if let Some(h) = t.take() {
            h.clear();
        }
        *t = set_timeout_with_handle(
            move || {
                let loc = window().location();
                if loc.search().unwrap_or_default() == q {
                    return;
                }
                let path = loc.pathname().unwrap_or_default();
                if let Ok(h) = window().history() {
                    let _ =
                        h.replace_state_with_url(&JsValue::NULL, "", Some(&format!("{path}{q}")));
                }
            },
            Duration::from_millis(400),
        )
        .ok();
    });
}

/// Saves `text` as a file through a temporary object URL.
pub fn download(name: &str, mime: &str, text: &str) -> Result<(), String> {
    let parts = js_sys::Array::of1(&JsValue::from_str(text));
    let opts = BlobPropertyBag::new();
    opts.set_type(mime);
    let blob = Blob::new_with_str_sequence_and_options(&parts, &opts).map_err(|e| describe(&e))?;
    let url = Url::create_object_url_with_blob(&blob).map_err(|e| describe(&e))?;
    let doc = document();
    let a: HtmlAnchorElement = doc
        .create_element("a")
        .map_err(|e| describe(&e))?
        .unchecked_into();
    a.set_href(&url);
    a.set_download(name);
    a.set_attribute("hidden", "").ok();
    if let Some(body) = doc.body() {
        body.append_child(&a).ok();
        a.click();
        body.remove_child(&a).ok();
    }
    // Revoked a little later: some browsers read the URL after `click` returns.
    set_timeout(
        move || Url::revoke_object_url(&url).unwrap_or(()),
        Duration::from_secs(10),
    );
    Ok(())
}

/// The text of an uploaded file (UTF-8).
pub async fn read_file(file: &web_sys::File) -> Result<String, String> {
    let text = JsFuture::from(file.text())
        .await
        .map_err(|e| format!("cannot read {}: {}", file.name(), describe(&e)))?;
    text.as_string()
        .ok_or_else(|| format!("{} is not a text file", file.name()))
}

thread_local! {
    static CANVAS: RefCell<Option<CanvasRenderingContext2d>> = const { RefCell::new(None) };
}

/// Rendered width of `text` in `font` (a CSS font shorthand), for laying out the SVG.
/// Falls back to an estimate if canvas text metrics are unavailable.
pub fn text_width(text: &str, font: &str) -> f64 {
    let measured = CANVAS.with_borrow_mut(|c| {
        if c.is_none() {
            let canvas: HtmlCanvasElement =
                document().create_element("canvas").ok()?.unchecked_into();
            *c = canvas
                .get_context("2d")
                .ok()
                .flatten()
                .map(|x| x.unchecked_into());
        }
        let ctx = c.as_ref()?;
        ctx.set_font(font);
        ctx.measure_text(text).ok().map(|m| m.width())
    });
    measured.unwrap_or_else(|| {
        let size = font
            .split("px")
            .next()
            .and_then(|s| s.rsplit(' ').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or(15.0);
        text.chars()
            .map(|c| if c as u32 > 0x2E80 { 1.0 } else { 0.6 })
            .sum::<f64>()
            * size
    })
}

/// Copies text to the clipboard; resolves to whether it worked (it needs a secure context).
pub async fn copy_text(text: &str) -> bool {
    let clip = window().navigator().clipboard();
    JsFuture::from(clip.write_text(text)).await.is_ok()
}

/// Registers the service worker that keeps the app for offline use (web/sw.js). Browsers
/// offer service workers only in secure contexts (https, localhost); elsewhere the page
/// works as before, online only.
pub fn register_service_worker() {
    let nav = window().navigator();
    let Ok(container) = js_sys::Reflect::get(&nav, &JsValue::from_str("serviceWorker")) else {
        return;
    };
    if container.is_undefined() || container.is_null() {
        return;
    }
    let container: web_sys::ServiceWorkerContainer = container.unchecked_into();
    let registered = container.register("./sw.js");
    leptos::task::spawn_local(async move {
        if let Err(e) = JsFuture::from(registered).await {
            // Not fatal: only offline use is lost.
            web_sys::console::warn_1(&JsValue::from_str(&format!(
                "xlalign: the page will not work offline (service worker: {})",
                describe(&e)
            )));
        }
    });
}
