//! The app's Web Worker: owns the model and runs every encoder pass, so the page stays
//! responsive even during a batch of thousands of pairs.
//!
//! Messages ([`xlalign_web::protocol`]) are queued and handled one at a time by [`pump`].
//! A batch runs in chunks; between chunks the worker yields to its event loop and serves
//! queued interactive requests first, so a pair typed during a batch still aligns at once.
//! Of several queued `align` requests only the newest runs (a dragged slider sends many).

mod session;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};
use xlalign_web::protocol::{FromWorker, ToWorker};
use xlalign_web::settings::Settings;

use session::{now_ms, Session};

/// Pairs per encoder pass in a batch: large enough to batch the matrix products, small enough
/// that progress, cancelling and interleaved requests stay prompt.
const BATCH_CHUNK: usize = 8;

struct BatchJob {
    id: u64,
    pairs: Vec<(String, String)>,
    next: usize,
    settings: Settings,
    started: f64,
}

#[derive(Default)]
struct State {
    session: Option<Rc<Session>>,
    queue: VecDeque<ToWorker>,
    batch: Option<BatchJob>,
    running: bool,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

fn send(m: &FromWorker) {
    if let Err(e) = scope().post_message(&JsValue::from_str(&m.to_json())) {
        web_sys::console::error_2(&"xlalign worker: postMessage failed".into(), &e);
    }
}

fn main() {
    #[cfg(target_arch = "wasm32")]
    start();
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("this is the xlalign web app's worker; build it for the browser with trunk (see web/README.md)");
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn start() {
    console_error_panic_hook::set_once();
    let on_message = Closure::<dyn Fn(MessageEvent)>::new(|ev: MessageEvent| {
        let Some(text) = ev.data().as_string() else {
            send(&FromWorker::Failed {
                id: None,
                message: "the worker got a message that is not text".into(),
            });
            return;
        };
        match serde_json::from_str::<ToWorker>(&text) {
            Ok(m) => receive(m),
            Err(e) => send(&FromWorker::Failed {
                id: None,
                message: format!("the worker cannot read a message: {e}"),
            }),
        }
    });
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The handler lives as long as the worker.
    on_message.forget();
    send(&FromWorker::Started);
}

fn receive(m: ToWorker) {
    let start = STATE.with_borrow_mut(|st| {
        match m {
            // Cancelling acts at once, not after the queue: the batch stops before its next chunk.
            ToWorker::Cancel { id } => {
                if let Some(b) = st.batch.take_if(|b| b.id == id) {
                    send(&FromWorker::BatchDone {
                        id,
                        cancelled: true,
                        ms: now_ms() - b.started,
                    });
                }
                st.queue
                    .retain(|q| !matches!(q, ToWorker::Batch { id: i, .. } if *i == id));
            }
            m => st.queue.push_back(m),
        }
        !std::mem::replace(&mut st.running, true)
    });
    if start {
        wasm_bindgen_futures::spawn_local(pump());
    }
}

enum Job {
    Message(ToWorker),
    BatchChunk,
}

fn next_job(st: &mut State) -> Option<Job> {
    while let Some(m) = st.queue.pop_front() {
        // A newer `align` in the queue replaces this one: its answer would be stale.
        if matches!(m, ToWorker::Align { .. })
            && st.queue.iter().any(|q| matches!(q, ToWorker::Align { .. }))
        {
            continue;
        }
        return Some(Job::Message(m));
    }
    st.batch.is_some().then_some(Job::BatchChunk)
}

/// Runs queued work until there is none. Only one pump runs at a time (`State::running`).
async fn pump() {
    loop {
        let job = STATE.with_borrow_mut(|st| {
            let job = next_job(st);
            if job.is_none() {
                st.running = false;
            }
            job
        });
        match job {
            None => return,
            Some(Job::Message(m)) => handle(m).await,
            Some(Job::BatchChunk) => batch_chunk().await,
        }
        yield_now().await;
    }
}

fn session() -> Option<Rc<Session>> {
    STATE.with_borrow(|st| st.session.clone())
}

const NOT_LOADED: &str = "the model is not loaded yet; wait for it to finish loading (or reload the page if loading failed)";

/// The loaded session, or `None` after telling the page (for request `id`) that there is none.
fn loaded_session(id: Option<u64>) -> Option<Rc<Session>> {
    let s = session();
    if s.is_none() {
        send(&FromWorker::Failed {
            id,
            message: NOT_LOADED.into(),
        });
    }
    s
}

async fn handle(m: ToWorker) {
    match m {
        ToWorker::Load { url, backend } => {
            let t0 = now_ms();
            let progress = |phase: &str, loaded: f64, total: Option<f64>| {
                send(&FromWorker::LoadProgress {
                    phase: phase.to_string(),
                    loaded,
                    total,
                })
            };
            match Session::load(&url, backend, progress).await {
                Ok((s, model)) => {
                    let backend = s.view().clone();
                    STATE.with_borrow_mut(|st| st.session = Some(Rc::new(s)));
                    send(&FromWorker::Loaded {
                        model,
                        backend,
                        ms: now_ms() - t0,
                    });
                }
                Err(message) => send(&FromWorker::LoadFailed { message }),
            }
        }
        ToWorker::SetBackend { backend } => {
            let Some(s) = loaded_session(None) else {
                return;
            };
            match s.with_backend(backend).await {
                Ok(new) => {
                    let view = new.view().clone();
                    STATE.with_borrow_mut(|st| st.session = Some(Rc::new(new)));
                    send(&FromWorker::BackendChanged { backend: view });
                }
                Err(message) => send(&FromWorker::BackendFailed {
                    message,
                    backend: s.view().clone(),
                }),
            }
        }
        ToWorker::Align {
            id,
            src,
            tgt,
            settings,
        } => {
            let Some(s) = loaded_session(Some(id)) else {
                return;
            };
            match s.align(&src, &tgt, &settings).await {
                Ok((result, timing)) => send(&FromWorker::Aligned { id, result, timing }),
                Err(message) => send(&FromWorker::Failed {
                    id: Some(id),
                    message,
                }),
            }
        }
        ToWorker::Batch {
            id,
            pairs,
            settings,
        } => {
            if loaded_session(Some(id)).is_none() {
                return;
            }
            let total = pairs.len();
            let job = BatchJob {
                id,
                pairs,
                next: 0,
                settings,
                started: now_ms(),
            };
            let old = STATE.with_borrow_mut(|st| st.batch.replace(job));
            if let Some(old) = old {
                send(&FromWorker::BatchDone {
                    id: old.id,
                    cancelled: true,
                    ms: now_ms() - old.started,
                });
            }
            send(&FromWorker::BatchProgress {
                id,
                offset: 0,
                items: Vec::new(),
                done: 0,
                total,
                ms: 0.0,
            });
        }
        ToWorker::Document {
            id,
            src,
            tgt,
            settings,
        } => {
            let Some(s) = loaded_session(Some(id)) else {
                return;
            };
            let t0 = now_ms();
            match s.align_document(&src, &tgt, &settings).await {
                Ok(result) => send(&FromWorker::DocumentAligned {
                    id,
                    result,
                    ms: now_ms() - t0,
                }),
                Err(message) => send(&FromWorker::Failed {
                    id: Some(id),
                    message,
                }),
            }
        }
        // Handled on arrival (see `receive`).
        ToWorker::Cancel { .. } => {}
    }
}

async fn batch_chunk() {
    let Some(s) = session() else { return };
    let Some((id, chunk, offset, settings)) = STATE.with_borrow(|st| {
        st.batch.as_ref().map(|b| {
            let end = (b.next + BATCH_CHUNK).min(b.pairs.len());
            (b.id, b.pairs[b.next..end].to_vec(), b.next, b.settings)
        })
    }) else {
        return;
    };
    let result = s.align_chunk(&chunk, &settings).await;
    // The batch may have been cancelled or replaced while this chunk ran.
    let current = STATE.with_borrow_mut(|st| match st.batch.as_mut() {
        Some(b) if b.id == id => {
            b.next = offset + chunk.len();
            Some((b.next, b.pairs.len(), b.started))
        }
        _ => None,
    });
    let Some((done, total, started)) = current else {
        return;
    };
    match result {
        Ok(items) => {
            send(&FromWorker::BatchProgress {
                id,
                offset,
                items,
                done,
                total,
                ms: now_ms() - started,
            });
            if done >= total {
                STATE.with_borrow_mut(|st| st.batch = None);
                send(&FromWorker::BatchDone {
                    id,
                    cancelled: false,
                    ms: now_ms() - started,
                });
            }
        }
        Err(message) => {
            // A settings error or a failed backend affects every pair: stop here.
            STATE.with_borrow_mut(|st| st.batch = None);
            send(&FromWorker::Failed {
                id: Some(id),
                message,
            });
            send(&FromWorker::BatchDone {
                id,
                cancelled: true,
                ms: now_ms() - started,
            });
        }
    }
}

/// One turn of the worker's event loop, so messages that arrived meanwhile are received.
pub async fn yield_now() {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        if scope()
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0)
            .is_err()
        {
            let _ = resolve.call0(&JsValue::NULL);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(p).await;
}
