//! Document mode: two texts, their sentences paired (1–1, 1–2, 2–1 or left alone), and the
//! word links inside each sentence pair.

use std::sync::Arc;

use leptos::prelude::*;
use xlalign_core::document::DocumentAlignment;
use xlalign_web::examples::DOCUMENT_EXAMPLE;

use super::alignment::AlignmentPicture;
use super::{bridge, use_ctx};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct DocState {
    pub id: u64,
    pub running: bool,
    pub result: Option<Arc<DocumentAlignment>>,
    pub ms: f64,
}

impl DocState {
    pub fn finish(&mut self, id: u64, result: DocumentAlignment, ms: f64) {
        if id == self.id {
            self.running = false;
            self.result = Some(Arc::new(result));
            self.ms = ms;
        }
    }

    pub fn fail(&mut self, id: u64) {
        if id == self.id {
            self.running = false;
        }
    }
}

#[component]
pub fn DocumentPanel() -> impl IntoView {
    let ctx = use_ctx();
    let src = RwSignal::new(String::new());
    let tgt = RwSignal::new(String::new());
    let open = RwSignal::new(None::<usize>);
    let run = move |_| {
        if !ctx.ready() {
            ctx.error("The model is still loading; try again when it is ready.");
            return;
        }
        let (s, t) = (src.get_untracked(), tgt.get_untracked());
        if s.trim().is_empty() || t.trim().is_empty() {
            ctx.error("Paste a text in both boxes (the same content in two languages).");
            return;
        }
        let Some(aligner) = bridge::aligner() else {
            ctx.error("The model is not loaded; reload the page.");
            return;
        };
        let id = ctx.next_id();
        ctx.doc.update(|d| {
            d.id = id;
            d.running = true;
        });
        open.set(None);
        let t0 = bridge::now_ms();
        let options = bridge::to_js(&ctx.settings.get_untracked().request());
        let call = aligner.align_document(&s, &t, &options);
        leptos::task::spawn_local(async move {
            match bridge::answer::<DocumentAlignment>(call).await {
                Ok(r) => ctx.doc.update(|d| d.finish(id, r, bridge::now_ms() - t0)),
                Err(e) => {
                    ctx.doc.update(|d| d.fail(id));
                    ctx.error(e.message);
                }
            }
        });
    };

    let results = move || {
        ctx.doc.get().result.map(|r| {
            let rows = r
                .pairs
                .iter()
                .enumerate()
                .map(|(k, p)| {
                    let shape = format!("{}–{}", p.src.len(), p.tgt.len());
                    let join = |ids: &[usize], sents: &[String]| ids.iter().map(|&i| sents[i].clone()).collect::<Vec<_>>().join(" ");
                    let s = join(&p.src, &r.src_sentences);
                    let t = join(&p.tgt, &r.tgt_sentences);
                    let skipped = p.src.is_empty() || p.tgt.is_empty();
                    let (has_words, error) = (p.words.is_some(), p.error.clone());
                    view! {
                        <tr class:skipped=skipped>
                            <td class="num">{shape}</td>
                            <td class="text" dir="auto">{s}</td>
                            <td class="text" dir="auto">{t}</td>
                            <td class="num">{if skipped { "—".to_string() } else { format!("{:.3}", p.score) }}</td>
                            <td>
                                {match (has_words, error) {
                                    (true, _) => Some(view! {
                                        <button
                                            type="button"
                                            class="small"
                                            aria-expanded=move || (open.get() == Some(k)).to_string()
                                            on:click=move |_| open.update(|o| *o = if *o == Some(k) { None } else { Some(k) })
                                        >
                                            "Words"
                                        </button>
                                    }.into_any()),
                                    (false, Some(e)) => Some(view! { <span class="row-error">{e}</span> }.into_any()),
                                    (false, None) => None,
                                }}
                            </td>
                        </tr>
                    }
                })
                .collect_view();
            let summary = format!(
                "{} source and {} target sentences → {} pairs, {} left unpaired",
                r.src_sentences.len(),
                r.tgt_sentences.len(),
                r.pairs.iter().filter(|p| !p.src.is_empty() && !p.tgt.is_empty()).count(),
                r.pairs.iter().filter(|p| p.src.is_empty() || p.tgt.is_empty()).count(),
            );
            let r2 = r.clone();
            let picture = move || {
                open.get().and_then(|k| match r2.pairs.get(k).and_then(|p| p.words.clone()) {
                    Some(a) => {
                        let a = Some(Arc::new(a));
                        Some(view! {
                            <div class="doc-words">
                                <AlignmentPicture result=Signal::derive(move || a.clone()) />
                            </div>
                        })
                    }
                    None => None,
                })
            };
            view! {
                <p id="doc-summary">{summary}</p>
                {picture}
                <div class="table-wrap">
                    <table id="doc-table">
                        <thead>
                            <tr>
                                <th scope="col">"Shape"</th>
                                <th scope="col">"Source"</th>
                                <th scope="col">"Target"</th>
                                <th scope="col">"Similarity"</th>
                                <th scope="col"><span class="sr-only">"Word links"</span></th>
                            </tr>
                        </thead>
                        <tbody>{rows}</tbody>
                    </table>
                </div>
            }
        })
    };

    view! {
        <div class="batch-layout">
            <section class="card" aria-labelledby="doc-in-h">
                <h2 id="doc-in-h">"Two texts"</h2>
                <p class="help">
                    "Paste a text and its translation. The page splits both into sentences, pairs them by the similarity of their embeddings (allowing one sentence to match two, and sentences without a counterpart), then aligns the words of each pair."
                </p>
                <label class="field">
                    <span>"Source text"</span>
                    <textarea id="doc-src" rows="7" dir="auto" prop:value=move || src.get() on:input=move |ev| src.set(event_target_value(&ev))></textarea>
                </label>
                <label class="field">
                    <span>"Target text"</span>
                    <textarea id="doc-tgt" rows="7" dir="auto" prop:value=move || tgt.get() on:input=move |ev| tgt.set(event_target_value(&ev))></textarea>
                </label>
                <div class="row">
                    <button type="button" id="doc-run" class="primary" on:click=run disabled=move || ctx.doc.with(|d| d.running)>
                        "Align the texts"
                    </button>
                    <button
                        type="button"
                        id="doc-example"
                        on:click=move |_| {
                            src.set(DOCUMENT_EXAMPLE.0.into());
                            tgt.set(DOCUMENT_EXAMPLE.1.into());
                        }
                    >
                        "Example texts"
                    </button>
                </div>
            </section>
            <section class="card" aria-labelledby="doc-out-h">
                <div class="card-head">
                    <h2 id="doc-out-h">"Sentence pairs"</h2>
                    <span id="doc-status" aria-live="polite">
                        {move || ctx.doc.with(|d| if d.running { "Aligning…".to_string() } else if d.result.is_some() { format!("done in {:.1} s", d.ms / 1000.0) } else { String::new() })}
                    </span>
                </div>
                {results}
            </section>
        </div>
    }
}
