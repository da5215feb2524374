//! The page's side of the model: the demo is a client of the xlalign JavaScript package, the
//! same `createAligner` web developers import (`pkg/client.js`, copied into the app by
//! scripts/build-web.sh). The package starts its worker, loads, caches and revalidates the
//! model, picks the backend and runs every request; this module calls its API and turns the
//! answers into signal updates.
//!
//! The pair on screen is encoded once (`aligner.encode`) and every change of method,
//! threshold, direction or level is an `extract` on that encoding; a few recent encodings are
//! kept, so going back to an earlier example is instant too.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use js_sys::{Function, Object, Promise, Reflect};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use xlalign_core::pipeline::PairAlignment;
use xlalign_core::request::Part;
use xlalign_core::BackendChoice;
use xlalign_web::pairs::check_sentence;
use xlalign_web::results::{BackendView, ModelSummary, Timing};
use xlalign_web::settings::Settings;

use super::{Ctx, Load, Shown, MODEL_URL};

#[wasm_bindgen(raw_module = "./pkg/client.js")]
extern "C" {
    /// `createAligner(source, options)`: starts the package's worker and loads the model.
    #[wasm_bindgen(js_name = createAligner)]
    fn create_aligner(source: &str, options: &JsValue) -> Promise;

    /// The package's `RemoteAligner`.
    #[derive(Clone)]
    pub type RemoteAligner;
    #[wasm_bindgen(method, getter)]
    fn backend(this: &RemoteAligner) -> JsValue;
    #[wasm_bindgen(method, getter)]
    fn model(this: &RemoteAligner) -> JsValue;
    #[wasm_bindgen(method)]
    fn encode(this: &RemoteAligner, src: &str, tgt: &str, options: &JsValue) -> Promise;
    #[wasm_bindgen(method, js_name = alignBatch)]
    pub fn align_batch(
        this: &RemoteAligner,
        pairs: &JsValue,
        options: &JsValue,
        on_progress: &Function,
    ) -> Promise;
    #[wasm_bindgen(method, js_name = alignDocument)]
    pub fn align_document(this: &RemoteAligner, src: &str, tgt: &str, options: &JsValue)
        -> Promise;
    #[wasm_bindgen(method, js_name = whenLoaded)]
    fn when_loaded(this: &RemoteAligner) -> Promise;
    #[wasm_bindgen(method, js_name = whenStored)]
    fn when_stored(this: &RemoteAligner) -> Promise;
    #[wasm_bindgen(method)]
    pub fn cancel(this: &RemoteAligner, id: f64) -> bool;
    #[wasm_bindgen(method)]
    fn dispose(this: &RemoteAligner) -> Promise;

    /// The package's `RemoteEncoded`: a pair encoded in the worker.
    #[derive(Clone)]
    type RemoteEncoded;
    #[wasm_bindgen(method)]
    fn extract(this: &RemoteEncoded, options: &JsValue) -> Promise;
    #[wasm_bindgen(method, js_name = dispose)]
    fn dispose_encoded(this: &RemoteEncoded) -> Promise;
}

/// Encodings kept for re-extraction: the current pair plus a few recent ones.
const KEPT_ENCODINGS: usize = 6;

struct Kept {
    src: String,
    tgt: String,
    layer: usize,
    /// The `encode` call's promise: a request made while the encoder still runs awaits the
    /// same promise instead of encoding the pair again.
    encoded: Promise,
}

thread_local! {
    /// The aligner lives as long as the page (a backend switch replaces it).
    static ALIGNER: RefCell<Option<RemoteAligner>> = const { RefCell::new(None) };
    static KEPT: RefCell<Vec<Kept>> = const { RefCell::new(Vec::new()) };
}

/// The loaded aligner (none while loading or after a failed load).
pub fn aligner() -> Option<RemoteAligner> {
    ALIGNER.with_borrow(|a| a.clone())
}

/// A rejected call of the package: its message, and its `code` (`input`, `model`,
/// `network`, `cancelled`, ...).
pub struct CallError {
    pub message: String,
    pub code: String,
}

impl CallError {
    fn from_js(e: JsValue) -> CallError {
        let code = Reflect::get(&e, &"code".into())
            .ok()
            .and_then(|c| c.as_string())
            .unwrap_or_default();
        CallError {
            message: super::dom::describe(&e),
            code,
        }
    }

    pub fn cancelled(&self) -> bool {
        self.code == "cancelled"
    }
}

/// Awaits a call of the package and reads its answer as `T`.
pub async fn answer<T: DeserializeOwned>(p: Promise) -> Result<T, CallError> {
    read(answer_js(p).await?)
}

/// Awaits a call of the package and keeps its answer as it is (to read parts of it).
pub async fn answer_js(p: Promise) -> Result<JsValue, CallError> {
    JsFuture::from(p).await.map_err(CallError::from_js)
}

/// Entry `i` of a JavaScript array, read as `T`.
pub fn entry<T: DeserializeOwned>(array: &JsValue, i: usize) -> Option<T> {
    let v = Reflect::get_u32(array, u32::try_from(i).ok()?).ok()?;
    read(v).ok()
}

fn read<T: DeserializeOwned>(v: JsValue) -> Result<T, CallError> {
    serde_wasm_bindgen::from_value(v).map_err(|e| CallError {
        message: format!("unexpected answer from the aligner: {e}"),
        code: "internal".into(),
    })
}

/// A plain JavaScript object of `v` (options for the package).
pub fn to_js<T: Serialize>(v: &T) -> JsValue {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .unwrap_or(JsValue::UNDEFINED)
}

/// The `id` a package call's promise carries (for `cancel(id)`).
pub fn request_id(p: &Promise) -> f64 {
    Reflect::get(p, &"id".into())
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0)
}

/// Milliseconds since the page started (for timings and pairs/s).
pub fn now_ms() -> f64 {
    window()
        .performance()
        .map(|p| p.now())
        .unwrap_or_else(js_sys::Date::now)
}

/// Whether the browser says it has no network.
fn browser_offline() -> bool {
    !window().navigator().on_line()
}

/// Loads the model with the preferred backend; called once when the page opens.
pub fn start(ctx: Ctx) {
    ctx.load.set(Load::Progress {
        phase: "download".into(),
        loaded: 0.0,
        total: None,
    });
    spawn_local(async move {
        let asked = ctx.backend_pref.get_untracked();
        match open(ctx, asked, true).await {
            Ok((a, model, backend)) => {
                keep(&a);
                ctx.model.set(Some(model));
                ctx.backend.set(Some(backend));
                ctx.load.set(Load::Ready);
                watch_complete(ctx, a);
            }
            Err(e) => ctx.load.set(Load::Failed(load_advice(&e))),
        }
    });
}

/// `createAligner` for the demo's model on the `asked` backend, showing load progress when
/// `show_progress`.
async fn open(
    ctx: Ctx,
    asked: BackendChoice,
    show_progress: bool,
) -> Result<(RemoteAligner, ModelSummary, BackendView), CallError> {
    let on_progress = Closure::<dyn Fn(JsValue)>::new(move |o: JsValue| {
        if !show_progress {
            return;
        }
        let get = |k: &str| Reflect::get(&o, &k.into()).ok();
        ctx.load.set(Load::Progress {
            phase: get("phase").and_then(|v| v.as_string()).unwrap_or_default(),
            loaded: get("loaded").and_then(|v| v.as_f64()).unwrap_or(0.0),
            total: get("total").and_then(|v| v.as_f64()),
        });
    });
    let options = Object::new();
    let _ = Reflect::set(&options, &"backend".into(), &asked.web_name().into());
    // Ready once the tokenizer and the layers up to the alignment layer are here (and the
    // rows of the words on the page when they are asked for): the first picture comes after
    // about a seventh of the file (10 MB). The deeper layers, then the rest of the file,
    // follow in the background, into the cache for the next visit and offline use.
    let _ = Reflect::set(&options, &"progressive".into(), &true.into());
    let _ = Reflect::set(&options, &"onProgress".into(), on_progress.as_ref());
    let loaded = JsFuture::from(create_aligner(MODEL_URL, &options)).await;
    drop(on_progress);
    let a: RemoteAligner = loaded.map_err(CallError::from_js)?.unchecked_into();
    let model: ModelSummary = read(a.model())?;
    let mut backend: BackendView = read(a.backend())?;
    backend.asked = asked;
    Ok((a, model, backend))
}

/// What a failed load says, with what to do about it.
fn load_advice(e: &CallError) -> String {
    if e.code == "network" && browser_offline() {
        format!("{} — this browser is offline and the model is not in its cache yet: connect to the internet and reload (once downloaded, the model is kept for offline use)", e.message)
    } else if e.code == "network" || e.code == "integrity" {
        format!("{} — check that the model file is served next to the page (run scripts/setup.sh), then reload", e.message)
    } else if e.code == "model" {
        format!(
            "the model file cannot be used: {} (download it again: clear the site data and reload)",
            e.message
        )
    } else {
        e.message.clone()
    }
}

/// Opens the model on another backend (from the package's cache: no new download). The
/// previous aligner keeps serving until the new one is ready, and stays when it fails.
pub fn switch_backend(ctx: Ctx, asked: BackendChoice) {
    ctx.switching.set(true);
    spawn_local(async move {
        match open(ctx, asked, false).await {
            Ok((a, _, backend)) => {
                forget_encodings();
                if let Some(old) = keep(&a) {
                    let _ = old.dispose();
                }
                ctx.backend.set(Some(backend));
                ctx.switching.set(false);
                ctx.complete.set(false);
                ctx.stored.set(false);
                // The old backend's encodings are gone with it: align again.
                request_align(ctx);
                watch_complete(ctx, a);
            }
            Err(e) => {
                ctx.switching.set(false);
                let now = ctx.backend.get_untracked();
                if let Some(b) = now {
                    ctx.backend_pref.set(b.asked);
                }
                let hint = if asked == BackendChoice::Gpu {
                    " (choose Automatic or CPU instead)"
                } else {
                    ""
                };
                ctx.error(format!("cannot switch the backend: {}{hint}", e.message));
            }
        }
    });
}

/// Once every layer of the model is there (`whenLoaded`), the pair is encoded again, now with
/// its sentence cosine, and the similarity card appears.
fn watch_complete(ctx: Ctx, a: RemoteAligner) {
    spawn_local(async move {
        if JsFuture::from(a.when_loaded()).await.is_err() {
            // The aligner was replaced or disposed; its successor has its own watch.
            return;
        }
        let current = ALIGNER.with_borrow(|slot| slot.as_ref().is_some_and(|x| Object::is(x, &a)));
        if !current {
            return;
        }
        ctx.complete.set(true);
        // Encodings made before have no cosine (the package leaves it out until the deeper
        // layers are there): encode the pair again.
        forget_encodings();
        request_align(ctx);
        // Then the rest of the file fills the cache in the background: say when the page
        // works offline.
        if JsFuture::from(a.when_stored()).await.is_ok()
            && ALIGNER.with_borrow(|slot| slot.as_ref().is_some_and(|x| Object::is(x, &a)))
        {
            ctx.stored.set(true);
        }
    });
}

/// Makes `a` the page's aligner, and returns the one it replaces. The page also shows it as
/// `window.xlalignAligner`, the package's own object: a developer can try the API on the
/// demo's loaded model from the console, and the end-to-end test reads the pool's state
/// (`workerStatus()`) through it.
fn keep(a: &RemoteAligner) -> Option<RemoteAligner> {
    let _ = Reflect::set(&js_sys::global(), &"xlalignAligner".into(), a);
    ALIGNER.with_borrow_mut(|slot| slot.replace(a.clone()))
}

fn forget_encodings() {
    for k in KEPT.take() {
        release(k.encoded);
    }
}

/// Frees an encoding in the worker once its `encode` call has answered.
fn release(encoded: Promise) {
    spawn_local(async move {
        if let Ok(e) = JsFuture::from(encoded).await {
            let _ = e.unchecked_into::<RemoteEncoded>().dispose_encoded();
        }
    });
}

/// The encoding of the pair at `layer` from those kept, or a new one.
async fn encoding(
    a: &RemoteAligner,
    src: &str,
    tgt: &str,
    layer: usize,
    settings: &Settings,
    timing: &mut Timing,
) -> Result<RemoteEncoded, CallError> {
    let hit = KEPT.with_borrow_mut(|kept| {
        let i = kept
            .iter()
            .position(|k| k.layer == layer && k.src == src && k.tgt == tgt)?;
        // Most recent last, so the oldest entry is the one dropped.
        let k = kept.remove(i);
        let p = k.encoded.clone();
        kept.push(k);
        Some(p)
    });
    let t0 = now_ms();
    let p = match hit {
        Some(p) => p,
        None => {
            let options = to_js(&settings.request().part(Part::Encode));
            let p = a.encode(src, tgt, &options);
            timing.encoded = true;
            KEPT.with_borrow_mut(|kept| {
                if kept.len() >= KEPT_ENCODINGS {
                    release(kept.remove(0).encoded);
                }
                kept.push(Kept {
                    src: src.into(),
                    tgt: tgt.into(),
                    layer,
                    encoded: p.clone(),
                });
            });
            p
        }
    };
    match JsFuture::from(p.clone()).await {
        Ok(e) => {
            timing.encode_ms = now_ms() - t0;
            Ok(e.unchecked_into())
        }
        Err(e) => {
            // Not kept: the next request tries again.
            KEPT.with_borrow_mut(|kept| kept.retain(|k| !Object::is(&k.encoded, &p)));
            Err(CallError::from_js(e))
        }
    }
}

/// One pair with the current settings: encoded (or the kept encoding), then extracted.
async fn align_pair(
    src: String,
    tgt: String,
    settings: Settings,
    layer: usize,
) -> Result<(PairAlignment, Timing), CallError> {
    let a = aligner().ok_or_else(|| CallError {
        message: "the model is not loaded; reload the page".into(),
        code: "disposed".into(),
    })?;
    let mut timing = Timing::default();
    let encoded = encoding(&a, &src, &tgt, layer, &settings, &mut timing).await?;
    let t0 = now_ms();
    let options = to_js(&settings.request().part(Part::Extract));
    let result: PairAlignment = answer(encoded.extract(&options)).await?;
    timing.extract_ms = now_ms() - t0;
    Ok((result, timing))
}

/// Aligns the current pair and settings (if both sides have text and the model is ready).
pub fn request_align(ctx: Ctx) {
    if !ctx.ready() {
        return;
    }
    let (src, tgt) = (ctx.src.get_untracked(), ctx.tgt.get_untracked());
    if src.trim().is_empty() || tgt.trim().is_empty() {
        ctx.shown.set(None);
        ctx.pending.set(None);
        return;
    }
    if let Err(e) =
        check_sentence("source sentence", &src).and(check_sentence("target sentence", &tgt))
    {
        ctx.shown.set(None);
        ctx.pending.set(None);
        ctx.error(e);
        return;
    }
    let Some(layer) = ctx.model.with_untracked(|m| {
        m.as_ref().map(|m| {
            ctx.settings
                .with_untracked(|s| s.effective_layer(&m.recommendation))
        })
    }) else {
        return;
    };
    let id = ctx.next_id();
    ctx.pending.set(Some(id));
    let settings = ctx.settings.get_untracked();
    spawn_local(async move {
        let r = align_pair(src, tgt, settings, layer).await;
        // Answers come back in request order (the package's worker runs them one at a
        // time), so the newest answer is the last one shown.
        let newest = ctx.pending.get_untracked() == Some(id);
        match r {
            Ok((result, timing)) => {
                ctx.shown.set(Some(Shown {
                    id,
                    result: Arc::new(result),
                    timing,
                }));
                if newest {
                    ctx.pending.set(None);
                }
            }
            Err(e) => {
                if newest {
                    ctx.pending.set(None);
                    // The picture would describe other text or settings than the boxes show.
                    ctx.shown.set(None);
                }
                ctx.error(e.message);
            }
        }
    });
}

/// Aligns whenever the pair, the settings or the model change: settings at once (extraction
/// is cheap), typing after a short pause (each new text is a forward pass).
pub fn auto_align(ctx: Ctx) {
    let timer: StoredValue<Option<TimeoutHandle>, LocalStorage> = StoredValue::new_local(None);
    let last: StoredValue<Option<(String, String, Settings)>> = StoredValue::new(None);
    Effect::new(move |_| {
        let ready = ctx.ready();
        let (src, tgt, settings) = (ctx.src.get(), ctx.tgt.get(), ctx.settings.get());
        let switching = ctx.switching.get();
        if !ready || switching {
            return;
        }
        // The first pair once the model is ready goes at once (the first picture); later
        // typing waits for a pause.
        let first = last.with_value(|l| l.is_none());
        let texts_changed = !first
            && last.with_value(|l| l.as_ref().is_some_and(|(s, t, _)| *s != src || *t != tgt));
        last.set_value(Some((src, tgt, settings)));
        if let Some(h) = timer.get_value() {
            h.clear();
        }
        if texts_changed {
            let h = set_timeout_with_handle(move || request_align(ctx), Duration::from_millis(300))
                .ok();
            timer.set_value(h);
        } else {
            request_align(ctx);
        }
    });
}
