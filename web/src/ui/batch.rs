//! Batch mode: many pairs from pasted text or files, aligned in the worker with a progress
//! bar, shown in a sortable table with likely mistranslations flagged, exported as Pharaoh,
//! JSON and CSV.

use std::sync::Arc;

use js_sys::Reflect;
use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::HtmlInputElement;
use xlalign_web::examples::BATCH_EXAMPLE;
use xlalign_web::export::{self, FLAG_BELOW};
use xlalign_web::pairs::{self, Pair};
use xlalign_web::results::BatchItem;

use super::{bridge, dom, use_ctx, Mode};

/// Rows per table page: enough to scan, few enough that a page of a 20 000-pair batch renders
/// at once.
const PAGE: usize = 50;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchState {
    pub id: u64,
    pub pairs: Arc<Vec<Pair>>,
    /// Results by pair index (none yet for pairs still to come).
    pub items: Vec<Option<BatchItem>>,
    pub done: usize,
    pub ms: f64,
    pub running: bool,
    pub cancelled: bool,
    /// The package's id of the running `alignBatch` call (for `cancel`).
    pub request: f64,
}

impl BatchState {
    pub fn start(&mut self, id: u64, pairs: Vec<Pair>) {
        *self = BatchState {
            id,
            items: vec![None; pairs.len()],
            pairs: Arc::new(pairs),
            running: true,
            ..Default::default()
        };
    }

    pub fn progress(
        &mut self,
        id: u64,
        offset: usize,
        items: Vec<BatchItem>,
        done: usize,
        _total: usize,
        ms: f64,
    ) {
        if id != self.id {
            return;
        }
        for (k, it) in items.into_iter().enumerate() {
            if let Some(slot) = self.items.get_mut(offset + k) {
                *slot = Some(it);
            }
        }
        self.done = done;
        self.ms = ms;
    }

    /// Every result still missing, from `get` (by pair index): the batch is done.
    pub fn fill(&mut self, id: u64, get: impl Fn(usize) -> Option<BatchItem>) {
        if id != self.id {
            return;
        }
        for (i, slot) in self.items.iter_mut().enumerate() {
            if slot.is_none() {
                *slot = Some(get(i).unwrap_or_else(|| {
                    BatchItem::Err("the aligner gave no result for this pair".into())
                }));
            }
        }
        self.done = self.items.len();
    }

    pub fn finish(&mut self, id: u64, cancelled: bool, ms: f64) {
        if id == self.id {
            self.running = false;
            self.cancelled = cancelled;
            self.ms = ms;
        }
    }

    pub fn finished_rows(&self) -> Vec<(&Pair, &BatchItem)> {
        self.pairs
            .iter()
            .zip(&self.items)
            .filter_map(|(p, i)| i.as_ref().map(|i| (p, i)))
            .collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SortKey {
    Line,
    Cosine,
    F1,
    Coverage,
}

fn key_value(item: &BatchItem, key: SortKey) -> f32 {
    match item {
        BatchItem::Err(_) => f32::NEG_INFINITY,
        BatchItem::Ok(a) => match key {
            SortKey::Line => 0.0,
            SortKey::Cosine => a.similarity.cosine.unwrap_or(0.0),
            SortKey::F1 => a.similarity.bertscore.f1,
            SortKey::Coverage => a.similarity.coverage.both,
        },
    }
}

#[component]
pub fn BatchPanel() -> impl IntoView {
    let ctx = use_ctx();
    let text = RwSignal::new(String::new());
    let problems = RwSignal::new(Vec::<String>::new());
    let flag_below = RwSignal::new(FLAG_BELOW);
    let sort = RwSignal::new((SortKey::Line, false));
    let page = RwSignal::new(0usize);
    let src_file = RwSignal::new(None::<String>);
    let tgt_file = RwSignal::new(None::<String>);

    let run = move |_| {
        let parsed = pairs::parse_pairs(&text.get_untracked());
        problems.set(parsed.problems);
        if parsed.pairs.is_empty() {
            ctx.error("No pairs to align: paste one pair per line as “source ||| target” or source<TAB>target, or upload files.");
            return;
        }
        if !ctx.ready() {
            ctx.error("The model is still loading; start the batch when it is ready.");
            return;
        }
        let Some(aligner) = bridge::aligner() else {
            ctx.error("The model is not loaded; reload the page.");
            return;
        };
        let id = ctx.next_id();
        let list: Vec<(String, String)> = parsed
            .pairs
            .iter()
            .map(|p| (p.src.clone(), p.tgt.clone()))
            .collect();
        let total = list.len();
        ctx.batch.update(|b| b.start(id, parsed.pairs));
        page.set(0);
        let t0 = bridge::now_ms();
        // `{ done, total, offset, results }`: the pairs just finished, shown as they arrive.
        let on_progress = Closure::<dyn Fn(JsValue)>::new(move |p: JsValue| {
            let get = |k: &str| Reflect::get(&p, &k.into()).unwrap_or_default();
            let done = get("done").as_f64().unwrap_or(0.0) as usize;
            let offset = get("offset").as_f64().unwrap_or(0.0) as usize;
            let items: Vec<BatchItem> =
                serde_wasm_bindgen::from_value(get("results")).unwrap_or_default();
            let ms = bridge::now_ms() - t0;
            ctx.batch
                .update(|b| b.progress(id, offset, items, done, total, ms));
        });
        let options = bridge::to_js(&ctx.settings.get_untracked().request());
        let call = aligner.align_batch(
            &bridge::to_js(&list),
            &options,
            on_progress.as_ref().unchecked_ref(),
        );
        let request = bridge::request_id(&call);
        ctx.batch.update(|b| b.request = request);
        leptos::task::spawn_local(async move {
            let r = bridge::answer_js(call).await;
            drop(on_progress);
            let ms = bridge::now_ms() - t0;
            match r {
                // Progress reported every result as it came; the answer repeats them all,
                // and reading 10,000 of them again would freeze the page for seconds: only
                // a result progress did not bring is read from it.
                Ok(all) => ctx.batch.update(|b| {
                    b.fill(id, |i| bridge::entry::<BatchItem>(&all, i));
                    b.finish(id, false, ms);
                }),
                Err(e) if e.cancelled() => ctx.batch.update(|b| b.finish(id, true, ms)),
                Err(e) => {
                    ctx.batch.update(|b| b.finish(id, false, ms));
                    ctx.error(e.message);
                }
            }
        });
    };
    let cancel = move |_| {
        let request = ctx.batch.with_untracked(|b| b.request);
        if let Some(a) = bridge::aligner() {
            a.cancel(request);
        }
    };

    // Files: one TSV / `|||` file fills the box; two parallel files are paired line by line.
    let on_file = move |ev: leptos::ev::Event, which: u8| {
        let input: HtmlInputElement = ev
            .target()
            .expect("input event has a target")
            .unchecked_into();
        let Some(file) = input.files().and_then(|f| f.get(0)) else {
            return;
        };
        leptos::task::spawn_local(async move {
            match dom::read_file(&file).await {
                Err(e) => ctx.error(e),
                Ok(content) => match which {
                    0 => text.set(content),
                    1 => src_file.set(Some(content)),
                    _ => tgt_file.set(Some(content)),
                },
            }
            if let (Some(s), Some(t)) = (src_file.get_untracked(), tgt_file.get_untracked()) {
                let parsed = pairs::zip_files(&s, &t);
                problems.set(parsed.problems.clone());
                if !parsed.pairs.is_empty() {
                    // Tab-separated: `|||` could occur in a sentence, a tab cannot (lines are split at tabs only if there is no `|||`).
                    let sep = if parsed
                        .pairs
                        .iter()
                        .any(|p| p.src.contains("|||") || p.tgt.contains("|||"))
                    {
                        "\t"
                    } else {
                        " ||| "
                    };
                    text.set(
                        parsed
                            .pairs
                            .iter()
                            .map(|p| format!("{}{sep}{}", p.src, p.tgt))
                            .collect::<Vec<_>>()
                            .join("\n"),
                    );
                }
                src_file.set(None);
                tgt_file.set(None);
            }
        });
    };

    let export = move |kind: &'static str| {
        let flag = flag_below.get_untracked();
        let result = ctx.batch.with_untracked(|b| {
            let rows = b.finished_rows();
            match kind {
                "pharaoh" => dom::download(
                    "xlalign-batch.align.txt",
                    "text/plain;charset=utf-8",
                    &export::pharaoh(&rows),
                ),
                "json" => dom::download(
                    "xlalign-batch.json",
                    "application/json",
                    &export::json(&rows),
                ),
                _ => dom::download(
                    "xlalign-batch.csv",
                    "text/csv;charset=utf-8",
                    &export::csv(&rows, flag),
                ),
            }
        });
        if let Err(e) = result {
            ctx.error(format!("cannot save the file: {e}"));
        }
    };

    let progress_text = move || {
        ctx.batch.with(|b| {
            let total = b.pairs.len();
            if total == 0 {
                return String::new();
            }
            let rate = if b.ms > 0.0 {
                b.done as f64 / (b.ms / 1000.0)
            } else {
                0.0
            };
            let state = if b.running {
                "aligning"
            } else if b.cancelled {
                "stopped"
            } else {
                "done"
            };
            format!(
                "{} / {} pairs · {:.1} pairs/s · {:.1} s · {state}",
                b.done,
                total,
                rate,
                b.ms / 1000.0
            )
        })
    };
    let flagged = move || {
        let f = flag_below.get();
        ctx.batch.with(|b| {
            b.items
                .iter()
                .flatten()
                .filter(|i| matches!(i, BatchItem::Ok(a) if export::is_flagged(a, f)))
                .count()
        })
    };
    let failed = move || {
        ctx.batch.with(|b| {
            b.items
                .iter()
                .flatten()
                .filter(|i| matches!(i, BatchItem::Err(_)))
                .count()
        })
    };

    // Indices of finished rows in the chosen order.
    let order = Memo::new(move |_| {
        let (key, desc) = sort.get();
        ctx.batch.with(|b| {
            let mut idx: Vec<usize> = (0..b.items.len())
                .filter(|&i| b.items[i].is_some())
                .collect();
            if key != SortKey::Line {
                idx.sort_by(|&x, &y| {
                    let (a, c) = (
                        key_value(b.items[x].as_ref().unwrap(), key),
                        key_value(b.items[y].as_ref().unwrap(), key),
                    );
                    a.total_cmp(&c).then(x.cmp(&y))
                });
            }
            if desc {
                idx.reverse();
            }
            idx
        })
    });
    let pages = move || order.with(|o| o.len().div_ceil(PAGE)).max(1);

    let header = move |key: SortKey, label: &'static str| {
        let aria = move || {
            let (k, d) = sort.get();
            if k != key {
                "none"
            } else if d {
                "descending"
            } else {
                "ascending"
            }
        };
        view! {
            <th scope="col" aria-sort=aria>
                <button
                    type="button"
                    class="sort"
                    data-key=label
                    on:click=move |_| {
                        sort.update(|(k, d)| {
                            if *k == key {
                                *d = !*d;
                            } else {
                                *k = key;
                                // Scores: the lowest (most suspicious) first.
                                *d = false;
                            }
                        });
                        page.set(0);
                    }
                >
                    {label}
                    <span aria-hidden="true">
                        {move || match sort.get() {
                            (k, _) if k != key => "↕",
                            (_, true) => "↓",
                            _ => "↑",
                        }}
                    </span>
                </button>
            </th>
        }
    };

    let rows = move || {
        let f = flag_below.get();
        let p = page.get();
        let idx: Vec<usize> = order.with(|o| o.iter().skip(p * PAGE).take(PAGE).copied().collect());
        ctx.batch.with(|b| {
            idx.into_iter()
                .map(|i| {
                    let pair = b.pairs[i].clone();
                    let item = b.items[i].clone().expect("finished rows only");
                    let (cos, f1, cov, links, flag, err) = match &item {
                        BatchItem::Ok(a) => (
                            a.similarity.cosine.map(|c| format!("{c:.3}")).unwrap_or_default(),
                            format!("{:.3}", a.similarity.bertscore.f1),
                            format!("{:.0} %", a.similarity.coverage.both * 100.0),
                            a.links.len().to_string(),
                            export::is_flagged(a, f),
                            None,
                        ),
                        BatchItem::Err(e) => (String::new(), String::new(), String::new(), String::new(), true, Some(e.clone())),
                    };
                    let (src, tgt) = (pair.src.clone(), pair.tgt.clone());
                    view! {
                        <tr class:flagged=flag data-line=pair.line>
                            <td class="num">{pair.line}</td>
                            <td class="text" dir="auto">{pair.src.clone()}</td>
                            <td class="text" dir="auto">{pair.tgt.clone()}{err.map(|e| view! { <div class="row-error">{e}</div> })}</td>
                            <td class="num">{cos}</td>
                            <td class="num">{f1}</td>
                            <td class="num">{cov}</td>
                            <td class="num">{links}</td>
                            <td class="flag">
                                {flag.then(|| view! { <span class="warn" title="Low similarity: check this translation">"⚠ check"</span> })}
                            </td>
                            <td>
                                <button
                                    type="button"
                                    class="small"
                                    aria-label=format!("Show the alignment of line {}", pair.line)
                                    on:click=move |_| {
                                        ctx.src.set(src.clone());
                                        ctx.tgt.set(tgt.clone());
                                        ctx.mode.set(Mode::Pair);
                                    }
                                >
                                    "Show"
                                </button>
                            </td>
                        </tr>
                    }
                })
                .collect_view()
        })
    };

    view! {
        <div class="batch-layout">
            <section class="card" aria-labelledby="batch-in-h">
                <h2 id="batch-in-h">"Pairs"</h2>
                <label class="field">
                    <span>"One pair per line: " <code>"source ||| target"</code> " or source and target separated by a tab"</span>
                    <textarea
                        id="batch-input"
                        rows="8"
                        dir="auto"
                        spellcheck="false"
                        placeholder="Das ist ein Test. ||| This is a test."
                        prop:value=move || text.get()
                        on:input=move |ev| text.set(event_target_value(&ev))
                    ></textarea>
                </label>
                <div class="files">
                    <label class="field">
                        <span>"Or a file of pairs (TSV or " <code>"|||"</code> ")"</span>
                        <input id="batch-file" type="file" accept=".tsv,.txt,.csv,text/plain" on:change=move |ev| on_file(ev, 0) />
                    </label>
                    <label class="field">
                        <span>"Or two parallel files: source…"</span>
                        <input id="batch-src-file" type="file" accept=".txt,text/plain" on:change=move |ev| on_file(ev, 1) />
                    </label>
                    <label class="field">
                        <span>"…and target (one sentence a line)"</span>
                        <input id="batch-tgt-file" type="file" accept=".txt,text/plain" on:change=move |ev| on_file(ev, 2) />
                    </label>
                </div>
                <div class="row">
                    <button type="button" id="batch-run" class="primary" on:click=run disabled=move || ctx.batch.with(|b| b.running)>
                        "Align all pairs"
                    </button>
                    <button type="button" id="batch-cancel" on:click=cancel disabled=move || !ctx.batch.with(|b| b.running)>
                        "Stop"
                    </button>
                    <button type="button" id="batch-example" on:click=move |_| text.set(BATCH_EXAMPLE.into())>
                        "Example batch"
                    </button>
                </div>
                <p class="help">"Uses the method, layer and threshold set in the sentence-pair view."</p>
                <ul class="problems">{move || problems.get().into_iter().map(|p| view! { <li>{p}</li> }).collect_view()}</ul>
            </section>

            <section class="card" aria-labelledby="batch-out-h">
                <div class="card-head">
                    <h2 id="batch-out-h">"Results"</h2>
                    <span id="batch-status" aria-live="polite" data-running=move || ctx.batch.with(|b| b.running).to_string()>
                        {progress_text}
                    </span>
                </div>
                <progress
                    id="batch-progress"
                    aria-label="Batch progress"
                    max=move || ctx.batch.with(|b| b.pairs.len().max(1))
                    value=move || ctx.batch.with(|b| b.done)
                ></progress>
                <div class="row summary">
                    <label class="inline">
                        "Flag pairs with sentence similarity below "
                        <input
                            id="flag-below"
                            type="number"
                            min="0"
                            max="1"
                            step="0.01"
                            prop:value=move || format!("{:.2}", flag_below.get())
                            on:change=move |ev| {
                                if let Ok(v) = event_target_value(&ev).parse::<f32>() {
                                    flag_below.set(v.clamp(0.0, 1.0));
                                }
                            }
                        />
                    </label>
                    <span id="flagged-count">{move || format!("{} flagged", flagged())}</span>
                    <Show when=move || { failed() > 0 }>
                        <span class="row-error">{move || format!("{} failed", failed())}</span>
                    </Show>
                </div>
                <div class="row exports">
                    <span>"Export:"</span>
                    <button type="button" id="export-pharaoh" on:click=move |_| export("pharaoh") disabled=move || ctx.batch.with(|b| b.done == 0)>
                        "Pharaoh links"
                    </button>
                    <button type="button" id="export-json" on:click=move |_| export("json") disabled=move || ctx.batch.with(|b| b.done == 0)>
                        "JSON"
                    </button>
                    <button type="button" id="export-csv" on:click=move |_| export("csv") disabled=move || ctx.batch.with(|b| b.done == 0)>
                        "Scores (CSV)"
                    </button>
                </div>
                <div class="table-wrap">
                    <table id="batch-table">
                        <thead>
                            <tr>
                                {header(SortKey::Line, "Line")}
                                <th scope="col">"Source"</th>
                                <th scope="col">"Target"</th>
                                {header(SortKey::Cosine, "Similarity")}
                                {header(SortKey::F1, "BERTScore")}
                                {header(SortKey::Coverage, "Aligned")}
                                <th scope="col">"Links"</th>
                                <th scope="col">"Flag"</th>
                                <th scope="col"><span class="sr-only">"Open"</span></th>
                            </tr>
                        </thead>
                        <tbody>{rows}</tbody>
                    </table>
                </div>
                <Show when=move || { pages() > 1 }>
                    <nav class="pager" aria-label="Result pages">
                        <button type="button" on:click=move |_| page.update(|p| *p = p.saturating_sub(1)) disabled=move || page.get() == 0>
                            "‹ Previous"
                        </button>
                        <span>{move || format!("Page {} of {}", page.get() + 1, pages())}</span>
                        <button
                            type="button"
                            on:click=move |_| page.update(|p| *p = (*p + 1).min(pages() - 1))
                            disabled=move || page.get() + 1 >= pages()
                        >
                            "Next ›"
                        </button>
                    </nav>
                </Show>
            </section>
        </div>
    }
}
