//! Sentence-level scores of the shown pair, with how to read them.

use leptos::prelude::*;
use xlalign_web::export::FLAG_BELOW;

use super::use_ctx;

/// A reading of the sentence cosine for multilingual-e5-small (see README: translations score
/// 0.82–0.95, unrelated sentences 0.72–0.80 on the built-in examples).
pub fn verdict(cosine: f32) -> (&'static str, &'static str) {
    if cosine >= 0.86 {
        ("good", "very likely translations of each other")
    } else if cosine >= FLAG_BELOW {
        ("fair", "probably a translation, perhaps a loose one")
    } else {
        ("poor", "probably not a translation (or a very free one)")
    }
}

#[component]
fn Meter(
    label: &'static str,
    value: f32,
    id: &'static str,
    #[prop(optional)] help: &'static str,
) -> impl IntoView {
    let pct = (value.clamp(0.0, 1.0) * 100.0) as u32;
    view! {
        <div class="meter">
            <div class="meter-top">
                <span class="meter-label">{label}</span>
                <span class="meter-value" id=id>{format!("{value:.2}")}</span>
            </div>
            <div class="bar" role="presentation"><div class="fill" style=format!("width:{pct}%")></div></div>
            {(!help.is_empty()).then(|| view! { <small class="help">{help}</small> })}
        </div>
    }
}

#[component]
pub fn Scores() -> impl IntoView {
    let ctx = use_ctx();
    let body = move || {
        ctx.shown.get().map(|s| {
            let sim = s.result.similarity;
            // No cosine yet while the model's deeper layers are still arriving (progressive
            // loading): the first picture does not wait for them, and the page aligns again
            // once they are there.
            let verdict_view = match sim.cosine {
                Some(cosine) => {
                    let (class, text) = verdict(cosine);
                    view! {
                        <div class=format!("verdict {class}") id="verdict">
                            <strong>{format!("{cosine:.2}")}</strong>
                            <span>{format!(" sentence similarity — {text}")}</span>
                        </div>
                    }
                    .into_any()
                }
                None => view! {
                    <p class="verdict pending" id="verdict-pending">
                        "The sentence similarity appears when the rest of the model has arrived (the word links need only its first layers)."
                    </p>
                }
                .into_any(),
            };
            let cosine_meter = sim.cosine.map(|cosine| {
                view! {
                    <Meter
                        label="Sentence embeddings (cosine)"
                        value=cosine
                        id="score-cosine"
                        help="Whole-sentence meaning. This model puts almost all pairs between 0.7 and 1: translations usually score above 0.82, unrelated sentences below 0.80."
                    />
                }
            });
            view! {
                {verdict_view}
                <div class="meters">
                    {cosine_meter}
                    <Meter
                        label="Word matching (BERTScore F1)"
                        value=sim.bertscore.f1
                        id="score-f1"
                        help="How well each word finds a similar word on the other side. Above about 0.6 for translations; one side much lower than the other points to something added or left out."
                    />
                    <Meter
                        label="Words aligned"
                        value=sim.coverage.both
                        id="score-coverage"
                        help="Share of words with at least one link. Function words (articles, particles) often stay unaligned even in good translations."
                    />
                </div>
                <p class="detail">
                    {format!(
                        "BERTScore: source {:.2}, target {:.2} · aligned: {:.0} % of source words, {:.0} % of target words",
                        sim.bertscore.src,
                        sim.bertscore.tgt,
                        sim.coverage.src * 100.0,
                        sim.coverage.tgt * 100.0
                    )}
                </p>
            }
        })
    };
    view! {
        <section class="card scores" aria-labelledby="scores-h">
            <h2 id="scores-h">"Sentence similarity"</h2>
            {body}
        </section>
    }
}
