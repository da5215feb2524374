//! Method, layer, threshold and the other extraction knobs. Every change applies at once; only
//! the layer makes the worker run the encoder again.

use leptos::prelude::*;
use xlalign_core::align::{Direction, Level, Method};
use xlalign_core::request::Recommendation;
use xlalign_web::settings::Settings;
use xlalign_web::share::Shared;

use super::{dom, use_ctx};

fn method_help(m: Method) -> &'static str {
    match m {
        Method::Softmax => "awesome-align: turns the similarities into probabilities along each row and column; a link needs the threshold in both directions.",
        Method::Entmax => "awesome-align's sparse variant of softmax: weak candidates get exactly zero.",
        Method::Argmax => "SimAlign: two words link when each is the other's most similar word.",
        Method::Itermax => "SimAlign: argmax, then another round for the words still unaligned.",
        Method::Match => "SimAlign: the best one-to-one matching of all words (every word gets at most one link).",
    }
}

#[component]
pub fn Controls() -> impl IntoView {
    let ctx = use_ctx();
    let defaults = move || ctx.model.with(|m| m.as_ref().map(|m| m.recommendation));
    let set = move |f: &dyn Fn(&mut Settings)| ctx.settings.update(|s| f(s));
    let method = move || ctx.settings.get().method;
    let uses_threshold = move || method().uses_dot_products();
    let threshold = move || {
        let s = ctx.settings.get();
        defaults()
            .map(|d| s.effective_threshold(&d))
            .unwrap_or(s.threshold.unwrap_or(0.3))
    };
    let layer = move || {
        let s = ctx.settings.get();
        defaults()
            .map(|d| s.effective_layer(&d))
            .or(s.layer)
            .unwrap_or(7)
    };
    let max_layer = move || defaults().map(|d| d.layers).unwrap_or(12);
    let copied = RwSignal::new(false);
    let share = move |_| {
        let url = dom::share_url(&Shared {
            src: ctx.src.get_untracked(),
            tgt: ctx.tgt.get_untracked(),
            settings: ctx.settings.get_untracked(),
            backend: ctx.backend_pref.get_untracked(),
        });
        leptos::task::spawn_local(async move {
            if dom::copy_text(&url).await {
                copied.set(true);
                set_timeout(move || copied.set(false), std::time::Duration::from_secs(2));
            } else {
                use_ctx().notify(format!("Copy this link to share the view: {url}"), false);
            }
        });
    };
    let cli = move || {
        defaults()
            .map(|d: Recommendation| format!("xlalign align {}", ctx.settings.get().cli_flags(&d)))
    };

    view! {
        <section class="card controls" aria-labelledby="controls-h">
            <h2 id="controls-h">"Alignment settings"</h2>
            <label class="field">
                <span>"Method"</span>
                <select
                    id="method"
                    prop:value=move || method().name()
                    on:change=move |ev| {
                        if let Ok(m) = event_target_value(&ev).parse::<Method>() {
                            // A threshold belongs to a method (softmax and entmax read it differently).
                            set(&|s| {
                                s.method = m;
                                s.threshold = None;
                            });
                        }
                    }
                >
                    {Method::ALL.into_iter().map(|m| view! { <option value=m.name()>{m.name()}</option> }).collect_view()}
                </select>
                <small class="help">{move || method_help(method())}</small>
            </label>
            <label class="field">
                <span id="layer-label">
                    "Layer " <output id="layer-value">{layer}</output> <small>" (changing it runs the encoder again)"</small>
                </span>
                // The caption names the slider: an <output> inside a <label> would otherwise
                // take the label for itself (it is labelable and comes first).
                <input
                    id="layer"
                    aria-labelledby="layer-label"
                    type="range"
                    min="0"
                    max=max_layer
                    step="1"
                    prop:value=move || layer().to_string()
                    on:input=move |ev| {
                        if let Ok(l) = event_target_value(&ev).parse::<usize>() {
                            set(&|s| s.layer = Some(l));
                        }
                    }
                />
            </label>
            <label class="field" class:disabled=move || !uses_threshold()>
                <span id="threshold-label">
                    "Threshold " <output id="threshold-value">{move || format!("{:.2}", threshold())}</output>
                    <small>{move || if uses_threshold() { " (minimum link probability)" } else { " (softmax and entmax only)" }}</small>
                </span>
                <input
                    id="threshold"
                    aria-labelledby="threshold-label"
                    type="range"
                    min="0"
                    max="0.99"
                    step="0.01"
                    disabled=move || !uses_threshold()
                    prop:value=move || format!("{:.2}", threshold())
                    on:input=move |ev| {
                        if let Ok(t) = event_target_value(&ev).parse::<f32>() {
                            set(&|s| s.threshold = Some(t.clamp(0.0, 0.99)));
                        }
                    }
                />
            </label>
            <div class="two">
                <label class="field">
                    <span>"Direction"</span>
                    <select
                        id="direction"
                        disabled=move || !ctx.settings.get().method_has_direction()
                        prop:value=move || ctx.settings.get().direction.name()
                        on:change=move |ev| {
                            if let Ok(d) = event_target_value(&ev).parse::<Direction>() {
                                set(&|s| s.direction = d);
                            }
                        }
                    >
                        <option value="both">"both agree"</option>
                        <option value="forward">"source → target"</option>
                        <option value="reverse">"target → source"</option>
                        <option value="union">"either (union)"</option>
                    </select>
                </label>
                <label class="field">
                    <span>"Units"</span>
                    <select
                        id="level"
                        prop:value=move || ctx.settings.get().level.name()
                        on:change=move |ev| {
                            if let Ok(l) = event_target_value(&ev).parse::<Level>() {
                                set(&|s| s.level = l);
                            }
                        }
                    >
                        <option value="subword">"subwords"</option>
                        <option value="word-average">"word averages"</option>
                    </select>
                </label>
            </div>
            <label class="field">
                <span id="distortion-label">
                    "Distortion " <output>{move || format!("{:.2}", ctx.settings.get().distortion)}</output>
                    <small>" (prefers links near the diagonal; 0 = off)"</small>
                </span>
                <input
                    id="distortion"
                    aria-labelledby="distortion-label"
                    type="range"
                    min="0"
                    max="1"
                    step="0.05"
                    prop:value=move || format!("{:.2}", ctx.settings.get().distortion)
                    on:input=move |ev| {
                        if let Ok(x) = event_target_value(&ev).parse::<f32>() {
                            set(&|s| s.distortion = x.clamp(0.0, 1.0));
                        }
                    }
                />
            </label>
            <div class="row">
                <button type="button" id="reset" on:click=move |_| ctx.settings.set(Settings::default())>
                    "Model defaults"
                </button>
                <button type="button" id="share" on:click=share>
                    {move || if copied.get() { "Link copied ✓" } else { "Copy share link" }}
                </button>
            </div>
            <p class="cli">
                <span>"Same result on the command line:"</span>
                <code id="cli-flags">{cli}</code>
            </p>
        </section>
    }
}
