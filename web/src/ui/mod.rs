//! The page: Leptos components over one [`Ctx`] of signals (given to every component through
//! context). Components only wire signals to the view; the model work happens in the xlalign
//! package's worker, called through [`bridge`], and the logic in the library modules.
//!
//! Stages on screen: [`status`] (model and backend) → [`input`] (pair, examples) and
//! [`controls`] → [`alignment`] (links), [`heatmap`] (word similarity), [`scores`] (sentence
//! similarity); [`batch`] and [`document`] are the other two modes.

pub mod alignment;
pub mod batch;
pub mod bridge;
pub mod controls;
pub mod document;
pub mod dom;
pub mod heatmap;
pub mod input;
pub mod layout;
pub mod scores;
pub mod status;
pub mod width;

use std::sync::Arc;

use leptos::prelude::*;
use xlalign_core::pipeline::PairAlignment;
use xlalign_core::BackendChoice;
use xlalign_web::results::{BackendView, ModelSummary, Timing};
use xlalign_web::settings::Settings;
use xlalign_web::share;

/// Where the default model is served from (the build copies `public/models/` to `models/`).
/// The alignment-tuned model (README, "Alignment tuning"); the base model is served beside it.
pub const MODEL_URL: &str = "models/multilingual-e5-small-align-q4_0.gguf";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Pair,
    Batch,
    Document,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Load {
    /// The worker's code is still being fetched.
    Starting,
    Progress {
        phase: String,
        loaded: f64,
        total: Option<f64>,
    },
    Ready,
    Failed(String),
}

/// The word under the pointer or keyboard focus: its links and its heatmap row or column
/// are highlighted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Focus {
    Src(usize),
    Tgt(usize),
}

/// A message at the top of the page (an error with what to do, or a notice).
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub id: u64,
    pub text: String,
    pub error: bool,
}

/// The current single-pair result.
#[derive(Clone, Debug, PartialEq)]
pub struct Shown {
    /// The request this answers (increasing: tests wait for a newer one).
    pub id: u64,
    pub result: Arc<PairAlignment>,
    pub timing: Timing,
}

/// Every piece of page state, as signals (all `Copy`).
#[derive(Clone, Copy)]
pub struct Ctx {
    pub load: RwSignal<Load>,
    pub model: RwSignal<Option<ModelSummary>>,
    pub backend: RwSignal<Option<BackendView>>,
    pub backend_pref: RwSignal<BackendChoice>,
    /// A backend switch is under way.
    pub switching: RwSignal<bool>,
    /// Every layer of the model is loaded (progressive loading brings the deeper ones, for
    /// the sentence similarity, after the first picture).
    pub complete: RwSignal<bool>,
    /// The whole model is in the browser's cache: the page works offline.
    pub stored: RwSignal<bool>,
    pub mode: RwSignal<Mode>,
    pub src: RwSignal<String>,
    pub tgt: RwSignal<String>,
    pub settings: RwSignal<Settings>,
    pub shown: RwSignal<Option<Shown>>,
    /// Id of the newest `align` request that has no answer yet.
    pub pending: RwSignal<Option<u64>>,
    pub focus: RwSignal<Option<Focus>>,
    pub notices: RwSignal<Vec<Notice>>,
    pub batch: RwSignal<batch::BatchState>,
    pub doc: RwSignal<document::DocState>,
    next_id: StoredValue<u64>,
}

impl Ctx {
    fn new() -> Ctx {
        Ctx {
            load: RwSignal::new(Load::Starting),
            model: RwSignal::new(None),
            backend: RwSignal::new(None),
            backend_pref: RwSignal::new(BackendChoice::Auto),
            switching: RwSignal::new(false),
            complete: RwSignal::new(false),
            stored: RwSignal::new(false),
            mode: RwSignal::new(Mode::Pair),
            src: RwSignal::new(String::new()),
            tgt: RwSignal::new(String::new()),
            settings: RwSignal::new(Settings::default()),
            shown: RwSignal::new(None),
            pending: RwSignal::new(None),
            focus: RwSignal::new(None),
            notices: RwSignal::new(Vec::new()),
            batch: RwSignal::new(batch::BatchState::default()),
            doc: RwSignal::new(document::DocState::default()),
            next_id: StoredValue::new(1),
        }
    }

    pub fn next_id(&self) -> u64 {
        let id = self.next_id.get_value();
        self.next_id.set_value(id + 1);
        id
    }

    pub fn notify(&self, text: impl Into<String>, error: bool) {
        let id = self.next_id();
        let text = text.into();
        self.notices.update(|n| {
            // The same message twice (e.g. a failing request retried) is shown once.
            if !n.iter().any(|x| x.text == text) {
                n.push(Notice { id, text, error });
            }
        });
    }

    pub fn error(&self, text: impl Into<String>) {
        self.notify(text, true);
    }

    pub fn ready(&self) -> bool {
        self.load.with(|l| *l == Load::Ready)
    }
}

pub fn use_ctx() -> Ctx {
    expect_context::<Ctx>()
}

pub fn mount() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
    dom::register_service_worker();
}

#[component]
fn App() -> impl IntoView {
    let ctx = Ctx::new();
    provide_context(ctx);

    // A shared link opens the pair and settings it carries.
    let (shared, problems) = dom::read_query();
    let has_pair = !shared.src.is_empty() || !shared.tgt.is_empty();
    ctx.src.set(shared.src);
    ctx.tgt.set(shared.tgt);
    ctx.settings.set(shared.settings);
    ctx.backend_pref.set(shared.backend);
    for p in problems {
        ctx.notify(p, false);
    }
    if !has_pair {
        let e = &xlalign_web::examples::EXAMPLES[0];
        ctx.src.set(e.src.into());
        ctx.tgt.set(e.tgt.into());
    }

    bridge::start(ctx);
    bridge::auto_align(ctx);
    // The address bar follows the pair and settings (debounced in `dom::write_query`).
    Effect::new(move |_| {
        let s = share::Shared {
            src: ctx.src.get(),
            tgt: ctx.tgt.get(),
            settings: ctx.settings.get(),
            backend: ctx.backend_pref.get(),
        };
        dom::write_query(&s);
    });

    let tab = move |mode: Mode, label: &'static str, id: &'static str| {
        view! {
            <button
                type="button"
                role="tab"
                id=format!("tab-{id}")
                aria-controls=format!("panel-{id}")
                aria-selected=move || (ctx.mode.get() == mode).to_string()
                class:active=move || ctx.mode.get() == mode
                on:click=move |_| ctx.mode.set(mode)
            >
                {label}
            </button>
        }
    };

    view! {
        <header class="top">
            <div class="brand">
                <h1>"xlalign"</h1>
                <p class="tagline">
                    "Which words of a sentence and its translation belong together, and how similar the two are — computed in your browser; no text leaves this page."
                </p>
            </div>
            <status::ModelStatus />
        </header>
        <Notices />
        <nav class="tabs" role="tablist" aria-label="Mode">
            {tab(Mode::Pair, "Sentence pair", "pair")}
            {tab(Mode::Batch, "Batch", "batch")}
            {tab(Mode::Document, "Document", "document")}
        </nav>
        <main id="app" data-ready=move || ctx.ready().to_string() data-complete=move || ctx.complete.get().to_string() data-stored=move || ctx.stored.get().to_string()>
            <Show when=move || ctx.mode.get() == Mode::Pair>
                <section id="panel-pair" role="tabpanel" aria-labelledby="tab-pair" class="pair-layout">
                    <div class="side">
                        <input::PairInput />
                        <controls::Controls />
                    </div>
                    <div class="results">
                        <alignment::AlignmentPanel />
                        <scores::Scores />
                        <heatmap::HeatmapPanel />
                    </div>
                </section>
            </Show>
            <Show when=move || ctx.mode.get() == Mode::Batch>
                <section id="panel-batch" role="tabpanel" aria-labelledby="tab-batch">
                    <batch::BatchPanel />
                </section>
            </Show>
            <Show when=move || ctx.mode.get() == Mode::Document>
                <section id="panel-document" role="tabpanel" aria-labelledby="tab-document">
                    <document::DocumentPanel />
                </section>
            </Show>
        </main>
        <footer class="foot">
            <p>
                "Model: multilingual-e5-small (4-bit) with its first seven blocks fine-tuned for word alignment, run by xlalign in WebAssembly or WebGPU. Alignment methods after SimAlign (argmax, itermax, match) and awesome-align (softmax, entmax)."
            </p>
        </footer>
    }
}

#[component]
fn Notices() -> impl IntoView {
    let ctx = use_ctx();
    view! {
        <div class="notices" role="alert" aria-live="assertive">
            <For
                each=move || ctx.notices.get()
                key=|n| n.id
                children=move |n| {
                    let id = n.id;
                    view! {
                        <div class="notice" class:error=n.error>
                            <span>{n.text}</span>
                            <button
                                type="button"
                                class="dismiss"
                                aria-label="Dismiss this message"
                                on:click=move |_| ctx.notices.update(|v| v.retain(|x| x.id != id))
                            >
                                "×"
                            </button>
                        </div>
                    }
                }
            />
        </div>
    }
}
