//! The pair to align: two text boxes and the built-in examples.

use leptos::prelude::*;
use xlalign_core::pairs::split_pair;
use xlalign_web::examples::EXAMPLES;

use super::use_ctx;

#[component]
pub fn PairInput() -> impl IntoView {
    let ctx = use_ctx();
    let on_example = move |ev: leptos::ev::Event| {
        if let Some(e) = event_target_value(&ev)
            .parse::<usize>()
            .ok()
            .and_then(|i| EXAMPLES.get(i))
        {
            ctx.src.set(e.src.into());
            ctx.tgt.set(e.tgt.into());
        }
    };
    // Pasting a whole `source ||| target` (or tab-separated) line into the source box, with
    // the target box empty, fills both.
    let on_src = move |ev: leptos::ev::Event| {
        let v = event_target_value(&ev);
        if ctx.tgt.get_untracked().trim().is_empty() {
            if let Ok((s, t)) = split_pair(v.trim_end_matches(['\n', '\r'])) {
                ctx.src.set(s.into());
                ctx.tgt.set(t.into());
                return;
            }
        }
        ctx.src.set(v);
    };
    let selected = move || {
        let (s, t) = (ctx.src.get(), ctx.tgt.get());
        EXAMPLES
            .iter()
            .position(|e| e.src == s && e.tgt == t)
            .map(|i| i.to_string())
            .unwrap_or_default()
    };
    view! {
        <section class="card input" aria-labelledby="input-h">
            <h2 id="input-h">"Sentence pair"</h2>
            <label class="field">
                <span>"Example"</span>
                <select id="example" on:change=on_example prop:value=selected>
                    <option value="">"— your own text —"</option>
                    {EXAMPLES
                        .iter()
                        .enumerate()
                        .map(|(i, e)| view! { <option value=i.to_string()>{e.label}</option> })
                        .collect_view()}
                </select>
            </label>
            <label class="field">
                <span>"Source sentence"</span>
                <textarea
                    id="src"
                    rows="3"
                    dir="auto"
                    spellcheck="false"
                    placeholder="A sentence in any language (or paste a whole “source ||| target” line)"
                    prop:value=move || ctx.src.get()
                    on:input=on_src
                ></textarea>
            </label>
            <label class="field">
                <span>"Target sentence (its translation)"</span>
                <textarea
                    id="tgt"
                    rows="3"
                    dir="auto"
                    spellcheck="false"
                    placeholder="Its translation"
                    prop:value=move || ctx.tgt.get()
                    on:input=move |ev| ctx.tgt.set(event_target_value(&ev))
                ></textarea>
            </label>
            <div class="row">
                <button
                    type="button"
                    id="swap"
                    on:click=move |_| {
                        let (s, t) = (ctx.src.get_untracked(), ctx.tgt.get_untracked());
                        ctx.src.set(t);
                        ctx.tgt.set(s);
                    }
                >
                    "⇅ Swap"
                </button>
                <button
                    type="button"
                    on:click=move |_| {
                        ctx.src.set(String::new());
                        ctx.tgt.set(String::new());
                    }
                >
                    "Clear"
                </button>
            </div>
        </section>
    }
}
