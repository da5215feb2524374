//! Model loading (progress, errors) and the compute backend (what runs, why, and a switch).

use leptos::prelude::*;
use xlalign_core::BackendChoice;
use xlalign_web::settings::backend_label;

use super::{bridge, use_ctx, Load};

fn mb(bytes: f64) -> String {
    format!("{:.1} MB", bytes / 1e6)
}

fn phase_label(phase: &str) -> &'static str {
    match phase {
        "download" => "Downloading the model",
        "cache" => "Reading the model from the browser cache",
        "verify" => "Checking the model file",
        "parse" => "Reading the model",
        "backend" => "Preparing the compute backend",
        "ready" => "Ready",
        _ => "Loading the model",
    }
}

/// The reason the backend was chosen, without the adapter search log some browsers append
/// ("no WebGPU adapter: No suitable graphics adapter found; noop not requested, …"); the
/// whole text stays in the element's title.
fn why_summary(reason: &str) -> &str {
    match reason.split_once(": ") {
        Some((head, rest)) if rest.contains("not requested") => head,
        _ => reason,
    }
}

#[component]
pub fn ModelStatus() -> impl IntoView {
    let ctx = use_ctx();
    let loading = move || {
        match ctx.load.get() {
        Load::Starting => Some(view! {
            <div class="load">
                <span class="phase">"Starting…"</span>
                <progress aria-label="Model loading"></progress>
            </div>
        }
        .into_any()),
        Load::Progress { phase, loaded, total } => {
            let label = phase_label(&phase);
            let (value, text) = match total {
                Some(t) if t > 0.0 && phase != "backend" => {
                    (Some(loaded / t), format!("{label}: {} of {}", mb(loaded), mb(t)))
                }
                _ => (None, format!("{label}…")),
            };
            Some(view! {
                <div class="load">
                    <span class="phase" id="load-phase">{text}</span>
                    {match value {
                        Some(v) => view! { <progress aria-labelledby="load-phase" max="1" value=v></progress> }.into_any(),
                        None => view! { <progress aria-labelledby="load-phase"></progress> }.into_any(),
                    }}
                </div>
            }
            .into_any())
        }
        Load::Failed(msg) => Some(view! {
            <div class="load failed" id="load-error" role="alert">
                <strong>"The model could not be loaded. "</strong>
                <span>{msg}</span>
                <button type="button" id="reload" on:click=move |_| { let _ = window().location().reload(); }>"Reload"</button>
            </div>
        }
        .into_any()),
        Load::Ready => None,
    }
    };

    let on_backend = move |ev: leptos::ev::Event| {
        let Ok(b) = event_target_value(&ev).parse::<BackendChoice>() else {
            return;
        };
        ctx.backend_pref.set(b);
        if ctx.ready() {
            bridge::switch_backend(ctx, b);
        }
    };

    view! {
        <div class="status" aria-live="polite">
            {loading}
            <Show when=move || ctx.ready()>
                <div class="backend">
                    <span class="model-name">
                        {move || ctx.model.with(|m| m.as_ref().map(|m| format!("{} · {} · {}", m.name, m.weight_type, mb(m.file_bytes))))}
                    </span>
                    <span class="backend-now" id="backend-now" data-kind=move || ctx.backend.with(|b| b.as_ref().map(|b| b.kind.clone()))>
                        {move || ctx.backend.with(|b| b.as_ref().map(|b| {
                            let what = if b.kind == "webgpu" { "WebGPU" } else { "CPU (WebAssembly)" };
                            format!("Runs on {what}: {}", b.device)
                        }))}
                    </span>
                    <span
                        class="backend-why"
                        title=move || ctx.backend.with(|b| b.as_ref().map(|b| b.reason.clone()))
                    >
                        {move || ctx.backend.with(|b| b.as_ref().filter(|b| !b.reason.is_empty()).map(|b| format!("Why: {}", why_summary(&b.reason))))}
                    </span>
                    <span class="model-state" id="model-state">
                        {move || if ctx.stored.get() {
                            "Kept for offline use"
                        } else if ctx.complete.get() {
                            "Saving the model for offline use…"
                        } else {
                            "Loading the rest of the model…"
                        }}
                    </span>
                </div>
            </Show>
            <label class="backend-pick">
                "Backend "
                <select
                    id="backend"
                    on:change=on_backend
                    prop:value=move || ctx.backend_pref.get().web_name()
                    disabled=move || ctx.switching.get() || !ctx.ready()
                >
                    {[BackendChoice::Auto, BackendChoice::Gpu, BackendChoice::Cpu]
                        .into_iter()
                        .map(|b| view! { <option value=b.web_name()>{backend_label(b)}</option> })
                        .collect_view()}
                </select>
                <Show when=move || ctx.switching.get()>
                    <span class="spinner" aria-label="Switching backend"></span>
                </Show>
            </label>
        </div>
    }
}
