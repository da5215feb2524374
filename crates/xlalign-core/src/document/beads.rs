//! Sentence pairing for document mode, Bertalign-style (Liu & Zhu 2022):
//! similarity of sentence embeddings plus dynamic programming over "beads" of 1–1, 1–2 and
//! 2–1 sentences, or a sentence with no counterpart (1–0, 0–1).
//!
//! The cost of a bead follows Vecalign (Thompson & Koehn 2019): `1 − cosine`, divided by how
//! dissimilar its sentences are to the rest of the other text, times the sentences it
//! joins on each side. The division matters for multilingual-e5: its cosines are compressed
//! (translations ≈ 0.85–0.95, unrelated sentences on the same topic ≈ 0.75–0.85), so a raw
//! cosine cannot tell "a translation plus an extra sentence" from "a translation"; relative to
//! the text's own background the difference is large. The product penalises merges, so a 1–2
//! bead wins only when the second sentence really belongs to the pair. A skipped sentence
//! costs [`SKIP_COST`]; the DP takes the order-preserving path of least total cost.

use std::ops::Range;

use crate::script::no_space_after;
use unicode_segmentation::UnicodeSegmentation;

/// Cost of leaving one sentence unpaired, in units of a bead's normalised cost: a
/// translation costs about 0.2–0.6, an unrelated pair about 1, so two skips (0.9) are cheaper
/// than pairing two unrelated sentences and dearer than any real pair. Chosen on hand-written
/// documents with merges and omissions (0.3–0.6 gave the same pairing on all of them).
pub const SKIP_COST: f32 = 0.45;

/// The background dissimilarity when a text has too few sentences to measure it: `1 −` the
/// cosine multilingual-e5-small gives unrelated sentences (≈ 0.8).
const PRIOR_BACKGROUND: f32 = 0.2;

/// Largest number of sentences per side (the DP is quadratic, the embeddings linear).
pub const MAX_SENTENCES: usize = 400;

/// A group of source sentences paired with a group of target sentences; one range is empty
/// for a sentence without a counterpart.
#[derive(Clone, Debug, PartialEq)]
pub struct Bead {
    pub src: Range<usize>,
    pub tgt: Range<usize>,
    /// Cosine of the two groups (0 for a skip).
    pub score: f32,
}

/// Sentences of a text by the Unicode sentence rules (UAX #29, which also ends sentences at
/// `。`, `？`, `।` and at line breaks), trimmed, empty ones dropped.
pub fn split_sentences(text: &str) -> Vec<String> {
    text.split_sentence_bounds()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// How a group of sentences is written as one text: with a space between them, except after
/// Chinese and Japanese ([`no_space_after`]).
pub fn join(sentences: &[String]) -> String {
    let mut out = String::new();
    for s in sentences {
        if out.chars().last().is_some_and(|c| !no_space_after(c)) {
            out.push(' ');
        }
        out += s;
    }
    out
}

/// Bead shapes the DP considers: (source sentences, target sentences).
const SHAPES: [(usize, usize); 5] = [(1, 1), (1, 2), (2, 1), (1, 0), (0, 1)];

/// How dissimilar a sentence is to the sentences of the other text that are not its best
/// match: the mean of `1 − cosine` without the smallest value (likely its translation).
fn background(mut dissimilarities: Vec<f32>) -> f32 {
    dissimilarities.sort_by(f32::total_cmp);
    let rest = dissimilarities.get(1..).unwrap_or(&[]);
    if rest.is_empty() {
        return PRIOR_BACKGROUND;
    }
    (rest.iter().sum::<f32>() / rest.len() as f32).max(1e-3)
}

/// The best monotone path of beads. `score(src, tgt)` is the cosine of two non-empty groups
/// of at most two sentences each.
pub fn align_sentences(
    n_src: usize,
    n_tgt: usize,
    score: impl Fn(Range<usize>, Range<usize>) -> f32,
) -> Vec<Bead> {
    let single: Vec<f32> = (0..n_src)
        .flat_map(|i| (0..n_tgt).map(move |j| (i, j)))
        .map(|(i, j)| score(i..i + 1, j..j + 1))
        .collect();
    let bg_src: Vec<f32> = (0..n_src)
        .map(|i| background((0..n_tgt).map(|j| 1.0 - single[i * n_tgt + j]).collect()))
        .collect();
    let bg_tgt: Vec<f32> = (0..n_tgt)
        .map(|j| background((0..n_src).map(|i| 1.0 - single[i * n_tgt + j]).collect()))
        .collect();
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    let cost = |s: Range<usize>, t: Range<usize>, cos: f32| -> f32 {
        let norm = (mean(&bg_src[s.clone()]) + mean(&bg_tgt[t.clone()])) / 2.0;
        (1.0 - cos) / norm * (s.len() * t.len()) as f32
    };

    // best[i][j]: the least total cost for the first i source and j target sentences;
    // from[i][j] the shape that got there and its cosine.
    let w = n_tgt + 1;
    let mut best = vec![f32::INFINITY; (n_src + 1) * w];
    let mut from = vec![(0usize, 0usize, 0.0f32); (n_src + 1) * w];
    best[0] = 0.0;
    for i in 0..=n_src {
        for j in 0..=n_tgt {
            let here = best[i * w + j];
            if here == f32::INFINITY {
                continue;
            }
            for (a, b) in SHAPES {
                let (ni, nj) = (i + a, j + b);
                if ni > n_src || nj > n_tgt {
                    continue;
                }
                let (c, s) = if a == 0 || b == 0 {
                    (SKIP_COST, 0.0)
                } else {
                    let s = if a == 1 && b == 1 {
                        single[i * n_tgt + j]
                    } else {
                        score(i..ni, j..nj)
                    };
                    (cost(i..ni, j..nj, s), s)
                };
                let total = here + c;
                // `<` keeps the first shape on ties: 1–1 before merges, merges before skips.
                if total < best[ni * w + nj] {
                    best[ni * w + nj] = total;
                    from[ni * w + nj] = (a, b, s);
                }
            }
        }
    }
    let mut beads = Vec::new();
    let (mut i, mut j) = (n_src, n_tgt);
    while i > 0 || j > 0 {
        let (a, b, s) = from[i * w + j];
        beads.push(Bead {
            src: i - a..i,
            tgt: j - b..j,
            score: s,
        });
        i -= a;
        j -= b;
    }
    beads.reverse();
    beads
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_latin_cjk_and_devanagari() {
        assert_eq!(
            split_sentences("Hallo Welt. Wie geht's?\n\nGut!"),
            vec!["Hallo Welt.", "Wie geht's?", "Gut!"]
        );
        assert_eq!(
            split_sentences("我很好。你呢？"),
            vec!["我很好。", "你呢？"]
        );
        assert_eq!(split_sentences("मैं ठीक हूँ। तुम?"), vec!["मैं ठीक हूँ।", "तुम?"]);
        assert!(split_sentences("  \n ").is_empty());
    }

    #[test]
    fn join_spaces_only_between_spaced_scripts() {
        assert_eq!(join(&["A b.".into(), "C d.".into()]), "A b. C d.");
        assert_eq!(
            join(&["我很好。".into(), "你呢？".into()]),
            "我很好。你呢？"
        );
        // Han extension B, and Thai, which puts a space between sentences.
        assert_eq!(join(&["𠀀".into(), "好。".into()]), "𠀀好。");
        assert_eq!(join(&["สวัสดีครับ".into(), "ขอบคุณ".into()]), "สวัสดีครับ ขอบคุณ");
    }

    /// Scores from a table of "true" links: groups that exactly match a true bead score
    /// high, anything else low.
    fn table(
        truth: &[(Range<usize>, Range<usize>)],
    ) -> impl Fn(Range<usize>, Range<usize>) -> f32 + '_ {
        move |s, t| {
            if truth.iter().any(|(a, b)| *a == s && *b == t) {
                0.9
            } else {
                0.74
            }
        }
    }

    #[test]
    fn finds_one_to_one() {
        let truth = [(0..1, 0..1), (1..2, 1..2), (2..3, 2..3)];
        let beads = align_sentences(3, 3, table(&truth));
        let got: Vec<_> = beads
            .iter()
            .map(|b| (b.src.clone(), b.tgt.clone()))
            .collect();
        assert_eq!(got, truth.to_vec());
        assert!(beads.iter().all(|b| b.score == 0.9));
    }

    #[test]
    fn finds_merges_and_skips() {
        // src 0+1 ↔ tgt 0; src 2 ↔ tgt 1+2; tgt 3 has no source; src 3 ↔ tgt 4; src 4 alone.
        let truth = [(0..2, 0..1), (2..3, 1..3), (3..4, 4..5)];
        let beads = align_sentences(5, 5, table(&truth));
        let got: Vec<_> = beads
            .iter()
            .map(|b| (b.src.clone(), b.tgt.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (0..2, 0..1),
                (2..3, 1..3),
                (3..3, 3..4),
                (3..4, 4..5),
                (4..5, 5..5)
            ]
        );
    }

    #[test]
    fn empty_sides() {
        assert!(align_sentences(0, 0, |_, _| 1.0).is_empty());
        let b = align_sentences(2, 0, |_, _| 1.0);
        assert_eq!(b.len(), 2);
        assert!(b.iter().all(|b| b.tgt.is_empty()));
    }
}
