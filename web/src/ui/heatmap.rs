//! The word×word similarity matrix as a heatmap (rows: source words, columns: target words),
//! with the chosen links marked and a colour legend. Cells shrink to fit the width down to a
//! readable size; a longer pair scrolls inside its frame with the words as sticky headers.

use std::sync::Arc;

use leptos::html::Div;
use leptos::prelude::*;
use xlalign_core::pipeline::PairAlignment;

use super::{dom, use_ctx, width, Focus};

const FONT: &str = "13px system-ui, -apple-system, \"Segoe UI\", Roboto, \"Noto Sans\", sans-serif";

/// Viridis at five stops (perceptually even, readable with colour-blindness, and in grey).
const STOPS: [(f64, f64, f64); 5] = [
    (68.0, 1.0, 84.0),
    (59.0, 82.0, 139.0),
    (33.0, 145.0, 140.0),
    (94.0, 201.0, 98.0),
    (253.0, 231.0, 37.0),
];

/// Colour for `t` in [0, 1].
pub fn colour(t: f64) -> String {
    let t = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let i = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |x: f64, y: f64| (x + (y - x) * f).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(a.0, b.0),
        mix(a.1, b.1),
        mix(a.2, b.2)
    )
}

#[component]
pub fn HeatmapPanel() -> impl IntoView {
    let ctx = use_ctx();
    let node = NodeRef::<Div>::new();
    let avail = width::track(node);
    view! {
        <section class="card heat" aria-labelledby="heat-h">
            <div class="card-head">
                <h2 id="heat-h">"Word similarity"</h2>
            </div>
            <div class="heat-room" node_ref=node>
                {move || match (ctx.shown.get(), avail.get()) {
                    (Some(s), Some(w)) => Some(view! { <Heatmap result=s.result.clone() avail=w /> }),
                    _ => None,
                }}
            </div>
            <p class="legend-text">
                "Each cell is the cosine similarity of a source word (row) and a target word (column) at the chosen layer; rings mark the links. Similar words are bright, unrelated ones dark. A long pair scrolls inside the frame, its words staying in view at the edges."
            </p>
        </section>
    }
}

/// Size of a cell: the columns share the width left of the row labels, within bounds that
/// keep a cell visible and a column label beside its neighbours.
fn cell_size(avail: f64, labels: f64, columns: usize) -> f64 {
    ((avail - labels - 2.0) / columns.max(1) as f64).clamp(MIN_CELL, 34.0)
}

/// Smallest cell: a label one font size high fits across it when turned upright.
const MIN_CELL: f64 = 15.0;
/// Labels longer than this are cut short with "…" (the whole word is in the tooltip and in
/// every cell's title).
const LABEL_MAX: f64 = 130.0;
/// Below this cell size, column labels stand upright; at 45° they would overlap.
const SLANT_MIN: f64 = 24.0;

/// A label that fits `LABEL_MAX`: the word, or its start and "…".
fn fit_label(word: &str) -> String {
    if dom::text_width(word, FONT) <= LABEL_MAX {
        return word.to_string();
    }
    let mut out = String::new();
    for c in word.chars() {
        out.push(c);
        if dom::text_width(&format!("{out}…"), FONT) > LABEL_MAX {
            out.pop();
            break;
        }
    }
    out + "…"
}

/// The matrix in a frame that scrolls both ways for a long pair, with the row labels (source
/// words) and column labels (target words) as sticky headers at its left and top edges.
#[component]
pub fn Heatmap(result: Arc<PairAlignment>, avail: f64) -> impl IntoView {
    let ctx = use_ctx();
    let m = &result.word_similarity;
    let (n, k) = (result.src_words.len(), result.tgt_words.len());
    let (lo, hi) = m
        .iter()
        .flatten()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo as f64, hi as f64)
    } else {
        (0.0, 1.0)
    };
    let norm = move |v: f32| (v as f64 - lo) / (hi - lo);

    let row_text: Vec<String> = result
        .src_words
        .iter()
        .map(|w| fit_label(&w.text))
        .collect();
    let col_text: Vec<String> = result
        .tgt_words
        .iter()
        .map(|w| fit_label(&w.text))
        .collect();
    let widest = |t: &[String]| {
        t.iter()
            .map(|s| dom::text_width(s, FONT))
            .fold(0.0, f64::max)
    };
    let row_label_w = widest(&row_text) + 12.0;
    let cell = cell_size(avail, row_label_w, k);
    let slanted = cell >= SLANT_MIN;
    let col_w = widest(&col_text);
    // Height of the column labels' band; slanted labels also reach past the last column.
    let (col_label_h, overhang) = if slanted {
        (col_w * 0.72 + 16.0, (col_w * 0.72 - cell / 2.0).max(0.0))
    } else {
        (col_w + 12.0, 0.0)
    };
    let (body_w, body_h) = (k as f64 * cell, n as f64 * cell);

    let linked = |i: usize, j: usize| result.links.iter().any(|l| l.src == i && l.tgt == j);
    let in_focus = move |i: usize, j: usize| match ctx.focus.get() {
        Some(Focus::Src(a)) => a == i,
        Some(Focus::Tgt(b)) => b == j,
        None => false,
    };

    let mut cells = Vec::with_capacity(n * k);
    for i in 0..n {
        for j in 0..k {
            let v = m.get(i).and_then(|r| r.get(j)).copied().unwrap_or(0.0);
            let (x, y) = (j as f64 * cell, i as f64 * cell);
            let title = format!(
                "{} × {}: {:.2}",
                result.src_words[i].text, result.tgt_words[j].text, v
            );
            let is_link = linked(i, j);
            cells.push(view! {
                <g class="cell" class:focus=move || in_focus(i, j) data-i=i data-j=j>
                    <title>{title}</title>
                    <rect x=x y=y width=cell height=cell fill=colour(norm(v))></rect>
                    {is_link.then(|| view! {
                        // Dark rings on the bright end of the scale, white ones elsewhere.
                        <circle class="mark" class:dark={norm(v) > 0.62} cx=x + cell / 2.0 cy=y + cell / 2.0 r=cell * 0.28></circle>
                    })}
                </g>
            });
        }
    }
    let row_labels = row_text
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let y = (i as f64 + 0.5) * cell;
            let full = result.src_words[i].text.clone();
            view! {
                <text
                    class="label"
                    class:focus=move || ctx.focus.get() == Some(Focus::Src(i))
                    x=row_label_w - 6.0
                    y=y
                    text-anchor="end"
                    dominant-baseline="central"
                >
                    <title>{full}</title>
                    {t}
                </text>
            }
        })
        .collect_view();
    let col_labels = col_text
        .into_iter()
        .enumerate()
        .map(|(j, t)| {
            let x = (j as f64 + 0.5) * cell;
            let y = col_label_h - 6.0;
            let angle = if slanted { -45 } else { -90 };
            let full = result.tgt_words[j].text.clone();
            view! {
                <text
                    class="label"
                    class:focus=move || ctx.focus.get() == Some(Focus::Tgt(j))
                    transform=format!("translate({x:.1},{y:.1}) rotate({angle})")
                    text-anchor="start"
                    dominant-baseline="central"
                >
                    <title>{full}</title>
                    {t}
                </text>
            }
        })
        .collect_view();
    let stops = (0..=10)
        .map(|s| {
            let t = s as f64 / 10.0;
            view! { <stop offset=format!("{}%", s * 10) stop-color=colour(t)></stop> }
        })
        .collect_view();
    let px = |v: f64| format!("{:.0}", v.ceil());

    view! {
        <div class="heatmap" id="heatmap">
            // A region the keyboard can scroll; what it shows is said in its name (the cells'
            // titles are tooltips for the pointer).
            <div
                class="heat-scroll"
                role="region"
                tabindex="0"
                aria-label=format!("Similarity matrix of {n} source and {k} target words, from {lo:.2} to {hi:.2}")
            >
                <div class="heat-grid" style=format!("grid-template-columns: {}px {}px", px(row_label_w), px(body_w + overhang))>
                    <div class="heat-corner" aria-hidden="true"></div>
                    <svg class="heat-cols" aria-hidden="true" width=px(body_w + overhang) height=px(col_label_h)>
                        {col_labels}
                    </svg>
                    <svg class="heat-rows" aria-hidden="true" width=px(row_label_w) height=px(body_h)>
                        {row_labels}
                    </svg>
                    <svg class="heat-cells" aria-hidden="true" width=px(body_w) height=px(body_h)>
                        {cells}
                    </svg>
                </div>
            </div>
            <svg class="heat-legend" role="img" aria-label=format!("Colour scale: cosine from {lo:.2} (dark) to {hi:.2} (bright)") width="250" height="34" viewBox="0 0 250 34">
                <defs>
                    <linearGradient id="heat-scale" x1="0" x2="1" y1="0" y2="0">{stops}</linearGradient>
                </defs>
                <rect x="2" y="2" width="200" height="10" rx="2" fill="url(#heat-scale)"></rect>
                <text class="tick" x="2" y="28" text-anchor="start">{format!("{lo:.2}")}</text>
                <text class="tick" x="102" y="28" text-anchor="middle">{format!("{:.2}", (lo + hi) / 2.0)}</text>
                <text class="tick" x="202" y="28" text-anchor="end">{format!("{hi:.2}")}</text>
                <text class="tick" x="210" y="11" text-anchor="start">"cosine"</text>
            </svg>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::{cell_size, colour, MIN_CELL, SLANT_MIN};

    #[test]
    fn colour_ends_are_the_palette_ends() {
        assert_eq!(colour(0.0), "#440154");
        assert_eq!(colour(1.0), "#fde725");
        assert_eq!(colour(-3.0), colour(0.0));
    }

    #[test]
    fn cells_share_the_width_within_readable_bounds() {
        // A short pair: big cells, slanted labels; a long one: small cells, upright labels.
        assert_eq!(cell_size(800.0, 100.0, 8), 34.0);
        let long = cell_size(800.0, 100.0, 50);
        assert!((MIN_CELL..SLANT_MIN).contains(&long));
        assert!((cell_size(800.0, 100.0, 30) - 698.0 / 30.0).abs() < 1e-9);
        // A phone: the cells keep their smallest size and the frame scrolls.
        assert_eq!(cell_size(330.0, 100.0, 50), MIN_CELL);
        assert_eq!(cell_size(330.0, 100.0, 0), 34.0);
    }
}
