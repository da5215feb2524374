//! Sentence-level scores read off an alignment: a BERTScore-style greedy match and coverage.
//!
//! These complement the pooled sentence embedding: the embedding says whether two sentences
//! are about the same thing, these say how much of each sentence has a counterpart.

use ndarray::{ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use super::extract::WordLink;
use super::methods::check_finite;
use crate::error::Result;

/// BERTScore-style greedy matching (Zhang et al. 2020, without IDF weights or baseline
/// rescaling): every unit is matched to its most similar unit on the other side.
///
/// How to read it: `src` is the mean, over source units, of the best cosine found in the
/// target (how much of the source is expressed in the target, "recall" when the source is
/// the reference); `tgt` the same from the target side ("precision"); `f1` their harmonic
/// mean. Contextual vectors share a large common direction, so unrelated sentences still
/// score well above 0 — compare scores across pairs from the same model and layer rather
/// than reading them as absolute percentages. A side much lower than the other points to
/// content present on one side only (an omission or an addition).
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GreedyMatch {
    pub src: f32,
    pub tgt: f32,
    pub f1: f32,
}

/// Greedy matching over a cosine matrix (rows source, columns target), e.g.
/// [`super::Alignment::word_similarity`] or a subword matrix. An empty side scores 0.
/// Non-finite input is an [`crate::Error::Input`].
pub fn greedy_match(cos: ArrayView2<f32>) -> Result<GreedyMatch> {
    check_finite(cos, "the similarity matrix")?;
    let (m, n) = cos.dim();
    if m == 0 || n == 0 {
        return Ok(GreedyMatch {
            src: 0.0,
            tgt: 0.0,
            f1: 0.0,
        });
    }
    let mean_of_max = |axis: Axis| {
        let sum: f64 = cos
            .axis_iter(axis)
            .map(|line| line.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64)
            .sum();
        (sum / cos.len_of(axis) as f64) as f32
    };
    let src = mean_of_max(Axis(0));
    let tgt = mean_of_max(Axis(1));
    let f1 = if src + tgt > 0.0 {
        2.0 * src * tgt / (src + tgt)
    } else {
        0.0
    };
    Ok(GreedyMatch { src, tgt, f1 })
}

/// Share of words that have at least one link.
///
/// How to read it: with a precision-oriented method (softmax 0.3, argmax) an unaligned word
/// usually has no translation on the other side, so low coverage on one side flags
/// omissions/additions; function words that languages express differently (articles,
/// particles, case endings) are often left unaligned even in good translations. For scale:
/// the human gold alignments of the six test sets cover 72–95 % of the words on each side
/// (lowest on the English side of Japanese and Chinese pairs), and automatic links, whose
/// recall is lower, cover less.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Coverage {
    /// Aligned source words / source words (0 when there are none).
    pub src: f32,
    pub tgt: f32,
    /// Aligned words on both sides / all words.
    pub both: f32,
}

/// Coverage of `links` over sentences of `n_src` and `n_tgt` words. Links pointing past those
/// counts are ignored.
pub fn coverage(links: &[WordLink], n_src: usize, n_tgt: usize) -> Coverage {
    let mut src = vec![false; n_src];
    let mut tgt = vec![false; n_tgt];
    for l in links {
        if let Some(s) = src.get_mut(l.src) {
            *s = true;
        }
        if let Some(t) = tgt.get_mut(l.tgt) {
            *t = true;
        }
    }
    let count = |v: &[bool]| v.iter().filter(|&&b| b).count();
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f32 / b as f32 };
    let (cs, ct) = (count(&src), count(&tgt));
    Coverage {
        src: ratio(cs, n_src),
        tgt: ratio(ct, n_tgt),
        both: ratio(cs + ct, n_src + n_tgt),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    #[test]
    fn greedy_match_by_hand() {
        let cos = array![[0.9, 0.1, 0.2], [0.3, 0.5, 0.4]];
        let g = greedy_match(cos.view()).unwrap();
        // Rows: max 0.9, 0.5 → 0.7. Columns: max 0.9, 0.5, 0.4 → 0.6.
        assert!((g.src - 0.7).abs() < 1e-6);
        assert!((g.tgt - 0.6).abs() < 1e-6);
        assert!((g.f1 - 2.0 * 0.7 * 0.6 / 1.3).abs() < 1e-6);
    }

    #[test]
    fn greedy_match_edge_cases() {
        let empty = Array2::<f32>::zeros((0, 3));
        assert_eq!(
            greedy_match(empty.view()).unwrap(),
            GreedyMatch {
                src: 0.0,
                tgt: 0.0,
                f1: 0.0
            }
        );
        let neg = array![[-0.5f32]];
        assert_eq!(greedy_match(neg.view()).unwrap().f1, 0.0);
        let nan = array![[f32::NAN]];
        assert!(greedy_match(nan.view()).is_err());
        let same = Array2::from_elem((2, 2), 1.0f32);
        assert_eq!(greedy_match(same.view()).unwrap().f1, 1.0);
    }

    #[test]
    fn coverage_counts_words_once() {
        let l = |src, tgt| WordLink {
            src,
            tgt,
            score: 0.5,
            prob: None,
        };
        let c = coverage(&[l(0, 0), l(0, 1), l(2, 1), l(9, 9)], 4, 2);
        assert_eq!(c.src, 0.5);
        assert_eq!(c.tgt, 1.0);
        assert!((c.both - 4.0 / 6.0).abs() < 1e-6);
        assert_eq!(
            coverage(&[], 0, 0),
            Coverage {
                src: 0.0,
                tgt: 0.0,
                both: 0.0
            }
        );
    }
}
