//! The alignment picture: source words on top, target words below, a line per link whose
//! width and opacity follow the link's score. Drawn as SVG so it is crisp at any zoom and each
//! link is an element (`data-src`, `data-tgt`, `data-score`, a `<title>`) that assistive
//! technology and tests can read.

use leptos::prelude::*;
use xlalign_core::align::{Word, WordLink};
use xlalign_core::pipeline::PairAlignment;

use super::{dom, use_ctx, Focus};

/// Must match `.aln text` in style.css: the layout measures words in this font.
const FONT: &str = "15px system-ui, -apple-system, \"Segoe UI\", Roboto, \"Noto Sans\", sans-serif";
const PAD_X: f64 = 7.0;
const GAP: f64 = 8.0;
const BOX_H: f64 = 28.0;
const ROW_GAP: f64 = 110.0;
const MARGIN: f64 = 10.0;

/// Left edge and width of each word box in a row.
fn place(words: &[Word], rtl: bool) -> (Vec<(f64, f64)>, f64) {
    let widths: Vec<f64> = words
        .iter()
        .map(|w| dom::text_width(&w.text, FONT) + 2.0 * PAD_X)
        .collect();
    let total = widths.iter().sum::<f64>() + GAP * widths.len().saturating_sub(1) as f64;
    let mut x = 0.0;
    let mut out = vec![(0.0, 0.0); words.len()];
    let order: Vec<usize> = if rtl {
        (0..words.len()).rev().collect()
    } else {
        (0..words.len()).collect()
    };
    for i in order {
        out[i] = (x, widths[i]);
        x += widths[i] + GAP;
    }
    (out, total)
}

/// Right-to-left scripts (Arabic, Hebrew, …) are laid out from the right, as they are read.
fn is_rtl(words: &[Word]) -> bool {
    words
        .iter()
        .flat_map(|w| w.text.chars())
        .find(|c| c.is_alphabetic())
        .is_some_and(|c| matches!(c as u32, 0x0590..=0x08FF | 0xFB1D..=0xFDFF | 0xFE70..=0xFEFF))
}

/// 0..1 strength of a link for drawing, from its cosine (links range from about 0.3 to 0.95).
pub fn strength(score: f32) -> f64 {
    (((score as f64) - 0.3) / 0.6).clamp(0.0, 1.0)
}

#[component]
pub fn AlignmentPanel() -> impl IntoView {
    let ctx = use_ctx();
    let busy = move || ctx.pending.get().is_some();
    let status = move || {
        if !ctx.ready() {
            return "The picture appears when the model has loaded.".to_string();
        }
        if busy() {
            return "Aligning…".to_string();
        }
        match ctx.shown.get() {
            None => "Type a sentence and its translation to see the alignment.".into(),
            Some(s) => {
                let t = s.timing;
                let n = s.result.links.len();
                if t.encoded {
                    format!(
                        "{n} links · encoder {:.0} ms, extraction {:.1} ms",
                        t.encode_ms, t.extract_ms
                    )
                } else {
                    format!(
                        "{n} links · extraction only (hidden states reused), {:.1} ms",
                        t.extract_ms
                    )
                }
            }
        }
    };
    view! {
        <section
            class="card picture"
            aria-labelledby="picture-h"
            data-busy=move || busy().to_string()
            data-result-id=move || ctx.shown.with(|s| s.as_ref().map(|s| s.id).unwrap_or(0))
        >
            <div class="card-head">
                <h2 id="picture-h">"Word alignment"</h2>
                <span class="timing" id="align-status" aria-live="polite">{status}</span>
            </div>
            <div class="svg-scroll">
                {move || ctx.shown.get().map(|s| view! { <AlignmentSvg result=s.result.clone() /> })}
            </div>
            <p class="legend-text">
                "Line width and colour follow the similarity of the two words. Hover a word, or move to it with Tab, to highlight its links and its row or column in the heatmap."
            </p>
        </section>
    }
}

#[component]
pub fn AlignmentSvg(#[prop(into)] result: std::sync::Arc<PairAlignment>) -> impl IntoView {
    let ctx = use_ctx();
    let (sp, sw) = place(&result.src_words, is_rtl(&result.src_words));
    let (tp, tw) = place(&result.tgt_words, is_rtl(&result.tgt_words));
    let width = sw.max(tw) + 2.0 * MARGIN;
    let (sx0, tx0) = (
        MARGIN + (width - 2.0 * MARGIN - sw) / 2.0,
        MARGIN + (width - 2.0 * MARGIN - tw) / 2.0,
    );
    let (sy, ty) = (MARGIN, MARGIN + BOX_H + ROW_GAP);
    let height = ty + BOX_H + MARGIN;

    let linked_src: Vec<bool> = (0..result.src_words.len())
        .map(|i| result.links.iter().any(|l| l.src == i))
        .collect();
    let linked_tgt: Vec<bool> = (0..result.tgt_words.len())
        .map(|j| result.links.iter().any(|l| l.tgt == j))
        .collect();
    let links = result.links.clone();
    let links_for = links.clone();
    // A word is highlighted when it is focused or linked to the focused word.
    let hl = move |f: Option<Focus>, me: Focus| -> bool {
        match (f, me) {
            (None, _) => false,
            (Some(a), b) if a == b => true,
            (Some(Focus::Src(i)), Focus::Tgt(j)) | (Some(Focus::Tgt(j)), Focus::Src(i)) => {
                links_for.iter().any(|l| l.src == i && l.tgt == j)
            }
            _ => false,
        }
    };

    let word = move |w: &Word,
                     x: f64,
                     wd: f64,
                     y: f64,
                     me: Focus,
                     linked: bool,
                     partners: String| {
        let (side, i) = match me {
            Focus::Src(i) => ("source", i),
            Focus::Tgt(i) => ("target", i),
        };
        let label = if partners.is_empty() {
            format!("{side} word {}: {}, not aligned", i + 1, w.text)
        } else {
            format!("{side} word {}: {}, aligned to {partners}", i + 1, w.text)
        };
        let hl = hl.clone();
        view! {
            <g
                class="word"
                class:src=matches!(me, Focus::Src(_))
                class:tgt=matches!(me, Focus::Tgt(_))
                class:unlinked=!linked
                class:hl=move || hl(ctx.focus.get(), me)
                data-i=i
                tabindex="0"
                role="img"
                aria-label=label
                on:mouseenter=move |_| ctx.focus.set(Some(me))
                on:mouseleave=move |_| ctx.focus.set(None)
                on:focus=move |_| ctx.focus.set(Some(me))
                on:blur=move |_| ctx.focus.set(None)
            >
                <rect x=x y=y width=wd height=BOX_H rx="6"></rect>
                <text x=x + wd / 2.0 y=y + BOX_H / 2.0 text-anchor="middle" dominant-baseline="central">
                    {w.text.clone()}
                </text>
            </g>
        }
    };
    let partners = |side_src: bool, i: usize| -> String {
        let names: Vec<&str> = result
            .links
            .iter()
            .filter(|l| if side_src { l.src == i } else { l.tgt == i })
            .map(|l| {
                if side_src {
                    result.tgt_words[l.tgt].text.as_str()
                } else {
                    result.src_words[l.src].text.as_str()
                }
            })
            .collect();
        names.join(", ")
    };

    let link_view = |l: &WordLink| {
        let (x1, y1) = (sx0 + sp[l.src].0 + sp[l.src].1 / 2.0, sy + BOX_H);
        let (x2, y2) = (tx0 + tp[l.tgt].0 + tp[l.tgt].1 / 2.0, ty);
        let ym = (y1 + y2) / 2.0;
        let d = format!("M{x1:.1},{y1:.1} C{x1:.1},{ym:.1} {x2:.1},{ym:.1} {x2:.1},{y2:.1}");
        let t = strength(l.score);
        let stroke_w = 1.2 + 4.0 * t;
        let opacity = 0.35 + 0.65 * t;
        let title = match l.prob {
            Some(p) => format!(
                "{} ↔ {} · similarity {:.2} · probability {:.2}",
                result.src_words[l.src].text, result.tgt_words[l.tgt].text, l.score, p
            ),
            None => format!(
                "{} ↔ {} · similarity {:.2}",
                result.src_words[l.src].text, result.tgt_words[l.tgt].text, l.score
            ),
        };
        let (src, tgt) = (l.src, l.tgt);
        let active = move || match ctx.focus.get() {
            None => None,
            Some(Focus::Src(i)) => Some(i == src),
            Some(Focus::Tgt(j)) => Some(j == tgt),
        };
        view! {
            <g
                class="link"
                class:hl=move || active() == Some(true)
                class:dim=move || active() == Some(false)
                data-src=src
                data-tgt=tgt
                data-score=format!("{:.4}", l.score)
            >
                <title>{title}</title>
                <path class="hit" d=d.clone()></path>
                <path class="stroke" d=d stroke-width=format!("{stroke_w:.2}") stroke-opacity=format!("{opacity:.2}")></path>
            </g>
        }
    };

    let src_words = result
        .src_words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            word(
                w,
                sx0 + sp[i].0,
                sp[i].1,
                sy,
                Focus::Src(i),
                linked_src[i],
                partners(true, i),
            )
        })
        .collect_view();
    let tgt_words = result
        .tgt_words
        .iter()
        .enumerate()
        .map(|(j, w)| {
            word(
                w,
                tx0 + tp[j].0,
                tp[j].1,
                ty,
                Focus::Tgt(j),
                linked_tgt[j],
                partners(false, j),
            )
        })
        .collect_view();
    let link_views = links.iter().map(link_view).collect_view();
    let summary = format!(
        "Alignment of {} source words and {} target words with {} links",
        result.src_words.len(),
        result.tgt_words.len(),
        result.links.len()
    );

    view! {
        <svg
            class="aln"
            id="alignment"
            role="group"
            aria-label=summary
            viewBox=format!("0 0 {width:.0} {height:.0}")
            width=format!("{width:.0}")
            height=format!("{height:.0}")
            data-method=result.method.name()
            data-layer=result.layer
            data-links=result.links.len()
        >
            <g class="links">{link_views}</g>
            <g class="words src-row">{src_words}</g>
            <g class="words tgt-row">{tgt_words}</g>
        </svg>
    }
}
