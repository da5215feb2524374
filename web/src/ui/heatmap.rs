//! The word×word similarity matrix as an SVG heatmap (rows: source words, columns: target
//! words), with the chosen links marked and a colour legend.

use std::sync::Arc;

use leptos::prelude::*;
use xlalign_core::pipeline::PairAlignment;

use super::{dom, use_ctx, Focus};

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
    view! {
        <section class="card heat" aria-labelledby="heat-h">
            <div class="card-head">
                <h2 id="heat-h">"Word similarity"</h2>
            </div>
            <div class="svg-scroll">
                {move || ctx.shown.get().map(|s| view! { <Heatmap result=s.result.clone() /> })}
            </div>
            <p class="legend-text">
                "Each cell is the cosine similarity of a source word (row) and a target word (column) at the chosen layer; rings mark the links. Similar words are bright, unrelated ones dark."
            </p>
        </section>
    }
}

#[component]
pub fn Heatmap(result: Arc<PairAlignment>) -> impl IntoView {
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

    let cell = (440.0 / n.max(k).max(1) as f64).clamp(16.0, 34.0);
    let row_label_w = result
        .src_words
        .iter()
        .map(|w| dom::text_width(&w.text, FONT))
        .fold(0.0, f64::max)
        + 12.0;
    let col_label_h = result
        .tgt_words
        .iter()
        .map(|w| dom::text_width(&w.text, FONT))
        .fold(0.0, f64::max)
        * 0.72
        + 16.0;
    let (x0, y0) = (row_label_w, col_label_h);
    let legend_y = y0 + n as f64 * cell + 18.0;
    let width = (x0 + k as f64 * cell + 12.0).max(x0 + 230.0);
    let height = legend_y + 40.0;

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
            let (x, y) = (x0 + j as f64 * cell, y0 + i as f64 * cell);
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
    let row_labels = result
        .src_words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let y = y0 + (i as f64 + 0.5) * cell;
            view! {
                <text
                    class="label"
                    class:focus=move || ctx.focus.get() == Some(Focus::Src(i))
                    x=x0 - 6.0
                    y=y
                    text-anchor="end"
                    dominant-baseline="central"
                >
                    {w.text.clone()}
                </text>
            }
        })
        .collect_view();
    let col_labels = result
        .tgt_words
        .iter()
        .enumerate()
        .map(|(j, w)| {
            let x = x0 + (j as f64 + 0.5) * cell;
            let y = y0 - 6.0;
            view! {
                <text
                    class="label"
                    class:focus=move || ctx.focus.get() == Some(Focus::Tgt(j))
                    transform=format!("translate({x:.1},{y:.1}) rotate(-45)")
                    text-anchor="start"
                    dominant-baseline="central"
                >
                    {w.text.clone()}
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

    view! {
        <svg
            class="heatmap"
            id="heatmap"
            role="img"
            aria-label=format!("Similarity matrix of {n} source and {k} target words, from {lo:.2} to {hi:.2}")
            viewBox=format!("0 0 {width:.0} {height:.0}")
            width=format!("{width:.0}")
            height=format!("{height:.0}")
        >
            <defs>
                <linearGradient id="heat-scale" x1="0" x2="1" y1="0" y2="0">{stops}</linearGradient>
            </defs>
            <g class="labels">{row_labels}{col_labels}</g>
            <g class="cells">{cells}</g>
            <g class="legend" transform=format!("translate({x0:.1},{legend_y:.1})")>
                <rect width="200" height="10" rx="2" fill="url(#heat-scale)"></rect>
                <text class="tick" x="0" y="26" text-anchor="start">{format!("{lo:.2}")}</text>
                <text class="tick" x="100" y="26" text-anchor="middle">{format!("{:.2}", (lo + hi) / 2.0)}</text>
                <text class="tick" x="200" y="26" text-anchor="end">{format!("{hi:.2}")}</text>
                <text class="tick" x="208" y="9" text-anchor="start">"cosine"</text>
            </g>
        </svg>
    }
}

#[cfg(test)]
mod tests {
    use super::colour;

    #[test]
    fn colour_ends_are_the_palette_ends() {
        assert_eq!(colour(0.0), "#440154");
        assert_eq!(colour(1.0), "#fde725");
        assert_eq!(colour(-3.0), colour(0.0));
    }
}
