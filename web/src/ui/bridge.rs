//! The page's side of the worker: starting it, sending requests, and turning its answers into
//! signal updates.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{ErrorEvent, MessageEvent, Worker};
use xlalign_web::pairs::check_sentence;
use xlalign_web::protocol::{FromWorker, ToWorker};
use xlalign_web::settings::Settings;

use super::{Ctx, Load, Shown, MODEL_URL};

thread_local! {
    /// The worker lives as long as the page; one per page.
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
}

/// Trunk's loader for the worker binary (`data-loader-shim` in index.html).
const WORKER_SCRIPT: &str = "./worker_loader.js";

pub fn send(ctx: Ctx, m: &ToWorker) {
    let sent = WORKER.with_borrow(|w| {
        w.as_ref()
            .map(|w| w.post_message(&JsValue::from_str(&m.to_json())))
    });
    match sent {
        Some(Ok(())) => {}
        Some(Err(e)) => ctx.error(format!(
            "cannot reach the worker: {}",
            super::dom::describe(&e)
        )),
        None => ctx.error("the worker is not running; reload the page"),
    }
}

pub fn start(ctx: Ctx) {
    let worker = match Worker::new(WORKER_SCRIPT) {
        Ok(w) => w,
        Err(e) => {
            ctx.load.set(Load::Failed(format!(
                "this browser cannot start the worker that runs the model ({}); use a current Chrome, Edge, Firefox or Safari",
                super::dom::describe(&e)
            )));
            return;
        }
    };
    let on_message = Closure::<dyn Fn(MessageEvent)>::new(move |ev: MessageEvent| {
        let Some(text) = ev.data().as_string() else {
            return;
        };
        match serde_json::from_str::<FromWorker>(&text) {
            Ok(m) => receive(ctx, m),
            Err(e) => ctx.error(format!("unreadable message from the worker: {e}")),
        }
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    let on_error = Closure::<dyn Fn(ErrorEvent)>::new(move |ev: ErrorEvent| {
        let msg = ev.message();
        // A crash (a bug, or the browser running out of memory) ends the worker; say so and
        // how to recover instead of leaving spinners.
        let text = format!(
            "the worker that runs the model stopped{}; reload the page to start it again",
            if msg.is_empty() {
                String::new()
            } else {
                format!(" ({msg})")
            }
        );
        if ctx.ready() {
            ctx.error(text);
        } else {
            ctx.load.set(Load::Failed(text));
        }
        ctx.pending.set(None);
    });
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
    WORKER.with_borrow_mut(|w| *w = Some(worker));
}

fn receive(ctx: Ctx, m: FromWorker) {
    match m {
        FromWorker::Started => {
            ctx.load.set(Load::Progress {
                phase: "download".into(),
                loaded: 0.0,
                total: None,
            });
            send(
                ctx,
                &ToWorker::Load {
                    url: MODEL_URL.into(),
                    backend: ctx.backend_pref.get_untracked(),
                },
            );
        }
        FromWorker::LoadProgress {
            phase,
            loaded,
            total,
        } => ctx.load.set(Load::Progress {
            phase,
            loaded,
            total,
        }),
        FromWorker::Loaded {
            model,
            backend,
            ms: _,
        } => {
            ctx.model.set(Some(model));
            ctx.backend.set(Some(backend));
            ctx.load.set(Load::Ready);
        }
        FromWorker::LoadFailed { message } => ctx.load.set(Load::Failed(message)),
        FromWorker::BackendChanged { backend } => {
            ctx.backend.set(Some(backend));
            ctx.switching.set(false);
            // Hidden states were dropped with the old backend: align again.
            request_align(ctx);
        }
        FromWorker::BackendFailed { message, backend } => {
            ctx.switching.set(false);
            ctx.backend_pref.set(backend.asked);
            ctx.backend.set(Some(backend));
            ctx.error(format!("cannot switch the backend: {message}"));
        }
        FromWorker::Aligned { id, result, timing } => {
            ctx.shown.set(Some(Shown {
                id,
                result: Arc::new(result),
                timing,
            }));
            if ctx.pending.get_untracked() == Some(id) {
                ctx.pending.set(None);
            }
        }
        FromWorker::BatchProgress {
            id,
            offset,
            items,
            done,
            total,
            ms,
        } => {
            ctx.batch
                .update(|b| b.progress(id, offset, items, done, total, ms));
        }
        FromWorker::BatchDone { id, cancelled, ms } => {
            ctx.batch.update(|b| b.finish(id, cancelled, ms))
        }
        FromWorker::DocumentAligned { id, result, ms } => {
            ctx.doc.update(|d| d.finish(id, result, ms))
        }
        FromWorker::Failed { id, message } => {
            if id.is_some() && id == ctx.pending.get_untracked() {
                ctx.pending.set(None);
                // The picture would describe other text or settings than the boxes now show.
                ctx.shown.set(None);
            }
            if let Some(id) = id {
                ctx.doc.update(|d| d.fail(id));
            }
            ctx.error(message);
        }
    }
}

/// Sends the current pair and settings (if both sides have text and the model is ready).
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
    let id = ctx.next_id();
    ctx.pending.set(Some(id));
    send(
        ctx,
        &ToWorker::Align {
            id,
            src,
            tgt,
            settings: ctx.settings.get_untracked(),
        },
    );
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
        let texts_changed =
            last.with_value(|l| l.as_ref().is_none_or(|(s, t, _)| *s != src || *t != tgt));
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
