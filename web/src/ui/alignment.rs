//! The alignment picture: source and target words, a line per link whose width and opacity
//! follow the link's score. Two rows (source on top) when the pair fits the width, else two
//! columns (source down the left, target down the right), so a sentence of any length shows
//! whole; the reader can also pick either layout ([`layout`](super::layout)). Drawn as SVG so
//! it is crisp at any zoom and each link is an element (`data-src`, `data-tgt`, `data-score`,
//! a `<title>`) that assistive technology and tests can read.

use std::sync::Arc;

use leptos::html::Div;
use leptos::prelude::*;
use xlalign_core::align::Word;
use xlalign_core::pipeline::PairAlignment;

use super::layout::{self, Geometry, LayoutPref, Side, WordBox, BOX_H, LINE_H};
use super::{dom, use_ctx, width, Focus};

/// Must match `.aln text` in style.css: the layout measures words in this font.
const FONT: &str = "15px system-ui, -apple-system, \"Segoe UI\", Roboto, \"Noto Sans\", sans-serif";

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
    let result = Signal::derive(move || ctx.shown.with(|s| s.as_ref().map(|s| s.result.clone())));
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
            <AlignmentPicture result=result />
            <p class="legend-text">
                "Line width and colour follow the similarity of the two words. Hover a word, or move to it with Tab, to highlight its links and its row or column in the heatmap."
            </p>
        </section>
    }
}

thread_local! {
    /// The reader's choice of layout, shared by every picture on the page (pair and
    /// document mode) for the whole visit.
    static PREF: ArcRwSignal<LayoutPref> = ArcRwSignal::new(LayoutPref::Auto);
}

fn layout_pref() -> ArcRwSignal<LayoutPref> {
    PREF.with(|p| p.clone())
}

/// The picture of `result` laid out for the width of its container, with the layout switch.
/// Every picture of a pair (pair mode, document mode) is this component.
#[component]
pub fn AlignmentPicture(#[prop(into)] result: Signal<Option<Arc<PairAlignment>>>) -> impl IntoView {
    let node = NodeRef::<Div>::new();
    let avail = width::track(node);
    let pref = layout_pref();
    let pref_for_svg = pref.clone();
    let switch = LayoutPref::ALL
        .into_iter()
        .map(|p| {
            let (read, write) = (pref.clone(), pref.clone());
            view! {
                <button
                    type="button"
                    class="small"
                    data-layout=p.label().to_lowercase()
                    aria-pressed=move || (read.get() == p).to_string()
                    on:click=move |_| write.set(p)
                >
                    {p.label()}
                </button>
            }
        })
        .collect_view();
    view! {
        <div class="layout-switch" role="group" aria-label="Layout of the picture">
            <span aria-hidden="true">"Layout"</span>
            {switch}
        </div>
        <div class="svg-scroll" node_ref=node>
            // Drawn once the width is known, so the first picture already fits it.
            {move || match (result.get(), avail.get()) {
                (Some(r), Some(w)) => Some(view! { <AlignmentSvg result=r pref=pref_for_svg.get() avail=w /> }),
                _ => None,
            }}
        </div>
    }
}

/// A side's words as text with their measured widths.
fn measured(words: &[Word]) -> (Vec<&str>, Vec<f64>) {
    let text: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
    let widths = text.iter().map(|t| dom::text_width(t, FONT)).collect();
    (text, widths)
}

/// The geometry of `result` for `avail` pixels of width.
fn geometry(result: &PairAlignment, pref: LayoutPref, avail: f64) -> Geometry {
    let (st, sw) = measured(&result.src_words);
    let (tt, tw) = measured(&result.tgt_words);
    let src = Side {
        words: &st,
        widths: &sw,
        rtl: is_rtl(&result.src_words),
    };
    let tgt = Side {
        words: &tt,
        widths: &tw,
        rtl: is_rtl(&result.tgt_words),
    };
    let chosen = layout::choose(pref, &src, &tgt, avail);
    layout::lay_out(chosen, &src, &tgt, avail, &|t| dom::text_width(t, FONT))
}

#[component]
pub fn AlignmentSvg(
    #[prop(into)] result: Arc<PairAlignment>,
    pref: LayoutPref,
    avail: f64,
) -> impl IntoView {
    let ctx = use_ctx();
    let g = geometry(&result, pref, avail);

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

    let word = move |w: &Word, b: &WordBox, me: Focus, linked: bool, partners: String| {
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
        let cx = b.x + b.w / 2.0;
        // One line: centred in the box. A word broken over lines: one <tspan> a line, the
        // block centred (the lines joined are the word, so the text reads as it did).
        let text = if b.lines.len() == 1 {
            view! {
                <text x=cx y=b.y + BOX_H / 2.0 text-anchor="middle" dominant-baseline="central">
                    {w.text.clone()}
                </text>
            }
            .into_any()
        } else {
            let spans = b
                .lines
                .iter()
                .enumerate()
                .map(|(k, line)| {
                    view! {
                        <tspan x=cx y=b.y + BOX_H / 2.0 + k as f64 * LINE_H>{line.clone()}</tspan>
                    }
                })
                .collect_view();
            view! { <text text-anchor="middle" dominant-baseline="central">{spans}</text> }
                .into_any()
        };
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
                <rect x=b.x y=b.y width=b.w height=b.h rx="6"></rect>
                {text}
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

    let link_views = links
        .iter()
        .map(|l| {
            let d = g.link_path(l.src, l.tgt);
            let t = strength(l.score);
            let stroke_w = 1.2 + 4.0 * t;
            let opacity = 0.35 + 0.65 * t;
            let (s, tw) = (&result.src_words[l.src].text, &result.tgt_words[l.tgt].text);
            let title = match l.prob {
                Some(p) => format!("{s} ↔ {tw} · similarity {:.2} · probability {p:.2}", l.score),
                None => format!("{s} ↔ {tw} · similarity {:.2}", l.score),
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
        })
        .collect_view();

    let src_words = result
        .src_words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            word(
                w,
                &g.src[i],
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
                &g.tgt[j],
                Focus::Tgt(j),
                linked_tgt[j],
                partners(false, j),
            )
        })
        .collect_view();
    let summary = format!(
        "Alignment of {} source words and {} target words with {} links",
        result.src_words.len(),
        result.tgt_words.len(),
        result.links.len()
    );
    let (width, height) = (g.width.ceil(), g.height.ceil());

    view! {
        <svg
            class="aln"
            class:fit=g.fitted
            id="alignment"
            role="group"
            aria-label=summary
            viewBox=format!("0 0 {width:.0} {height:.0}")
            width=format!("{width:.0}")
            height=format!("{height:.0}")
            data-layout=g.layout.name()
            data-method=result.method.name()
            data-layer=result.layer
            data-links=result.links.len()
        >
            <g class="links">{link_views}</g>
            <g class="words src-col">{src_words}</g>
            <g class="words tgt-col">{tgt_words}</g>
        </svg>
    }
}
