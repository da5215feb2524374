//! Pharaoh alignment files and their evaluation.
//!
//! One line per sentence pair, links separated by spaces, 0-based word indices, source
//! first: `0-0 1-2 3?4`. `i-j` is a sure link; `i?j` and the talp form `i-jp` are possible
//! links (gold files only; in predictions every link counts the same). Scores, where wanted,
//! go to a parallel file as awesome-align's `--output_prob_file` does: one line per sentence,
//! one number per link, in the order of the links line.
//!
//! Evaluation follows Och & Ney (2003): with predicted links A, sure gold links S and
//! possible gold links P (P includes S),
//! precision = |A∩P| / |A|, recall = |A∩S| / |S|,
//! AER = 1 − (|A∩S| + |A∩P|) / (|A| + |S|), micro-averaged over all lines of a file.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::align::WordLink;
use crate::error::{Error, Result};

/// One link of a Pharaoh line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PharaohLink {
    pub src: usize,
    pub tgt: usize,
    /// `false` for possible links (`i?j`, `i-jp`).
    pub sure: bool,
}

/// Parses one line; `line_no` (1-based) and `what` ("gold", "prediction") go into errors.
pub fn parse_line(line: &str, line_no: usize, what: &str) -> Result<Vec<PharaohLink>> {
    line.split_whitespace()
        .map(|tok| parse_link(tok).ok_or_else(|| bad_link(tok, line_no, what)))
        .collect()
}

fn bad_link(tok: &str, line_no: usize, what: &str) -> Error {
    Error::Input(format!(
        "{what} line {line_no}: malformed link `{tok}` (expected i-j, i?j or i-jp with 0-based word indices)"
    ))
}

fn parse_link(tok: &str) -> Option<PharaohLink> {
    let (sep, sure) = if tok.contains('?') {
        ('?', false)
    } else {
        ('-', true)
    };
    let (a, b) = tok.split_once(sep)?;
    let (b, sure) = match b.strip_suffix('p') {
        Some(b) if sep == '-' => (b, false),
        _ => (b, sure),
    };
    let index = |s: &str| -> Option<usize> {
        // `usize::from_str` would accept "+3"; indices are plain digits.
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    Some(PharaohLink {
        src: index(a)?,
        tgt: index(b)?,
        sure,
    })
}

/// Parses a whole file, one `Vec` per line (an empty line is a sentence without links).
pub fn parse(text: &str, what: &str) -> Result<Vec<Vec<PharaohLink>>> {
    text.lines()
        .enumerate()
        .map(|(k, line)| parse_line(line, k + 1, what))
        .collect()
}

/// Writes sure links as `i-j`, sorted and without duplicates.
pub fn write_line(pairs: impl IntoIterator<Item = (usize, usize)>) -> String {
    let set: BTreeSet<(usize, usize)> = pairs.into_iter().collect();
    let parts: Vec<String> = set.into_iter().map(|(i, j)| format!("{i}-{j}")).collect();
    parts.join(" ")
}

/// Writes links keeping their kind (`i-j` sure, `i?j` possible), in the given order.
pub fn write_marked_line(links: &[PharaohLink]) -> String {
    let parts: Vec<String> = links
        .iter()
        .map(|l| format!("{}{}{}", l.src, if l.sure { '-' } else { '?' }, l.tgt))
        .collect();
    parts.join(" ")
}

/// The links line for word links (assumed sorted, as [`crate::align::align_words`] returns
/// them; written in the given order so that [`scores_line`] stays parallel).
pub fn links_line(links: &[WordLink]) -> String {
    let parts: Vec<String> = links
        .iter()
        .map(|l| format!("{}-{}", l.src, l.tgt))
        .collect();
    parts.join(" ")
}

/// The parallel scores line: each link's probability where the method gives one (softmax,
/// entmax), its cosine otherwise.
pub fn scores_line(links: &[WordLink]) -> String {
    let parts: Vec<String> = links
        .iter()
        .map(|l| format!("{}", l.prob.unwrap_or(l.score)))
        .collect();
    parts.join(" ")
}

/// Parses a scores line, checking it has one number per link.
pub fn parse_scores_line(line: &str, n_links: usize, line_no: usize) -> Result<Vec<f32>> {
    let scores = line
        .split_whitespace()
        .map(|t| {
            t.parse::<f32>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    Error::Input(format!("scores line {line_no}: `{t}` is not a number"))
                })
        })
        .collect::<Result<Vec<f32>>>()?;
    if scores.len() != n_links {
        return Err(Error::Input(format!(
            "scores line {line_no}: {} scores for {n_links} links",
            scores.len()
        )));
    }
    Ok(scores)
}

/// Running totals for AER; add lines one by one, read [`Metrics`] at the end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AerCounts {
    pub sentences: usize,
    /// |A|: predicted links.
    pub predicted: usize,
    /// |S|: sure gold links.
    pub sure: usize,
    /// |P|: possible gold links, sure ones included.
    pub possible: usize,
    /// |A∩S|.
    pub hit_sure: usize,
    /// |A∩P|.
    pub hit_possible: usize,
}

impl AerCounts {
    /// Adds one sentence. Duplicate links count once; a link that is both sure and possible
    /// in the gold counts as sure; the kind of predicted links is ignored.
    pub fn add(&mut self, gold: &[PharaohLink], pred: &[PharaohLink]) {
        let sure: BTreeSet<(usize, usize)> = gold
            .iter()
            .filter(|l| l.sure)
            .map(|l| (l.src, l.tgt))
            .collect();
        let possible: BTreeSet<(usize, usize)> = gold.iter().map(|l| (l.src, l.tgt)).collect();
        let predicted: BTreeSet<(usize, usize)> = pred.iter().map(|l| (l.src, l.tgt)).collect();
        self.sentences += 1;
        self.predicted += predicted.len();
        self.sure += sure.len();
        self.possible += possible.len();
        self.hit_sure += predicted.intersection(&sure).count();
        self.hit_possible += predicted.intersection(&possible).count();
    }

    pub fn metrics(&self) -> Metrics {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let precision = ratio(self.hit_possible, self.predicted);
        let recall = ratio(self.hit_sure, self.sure);
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        let aer = if self.predicted + self.sure == 0 {
            0.0
        } else {
            1.0 - (self.hit_sure + self.hit_possible) as f64 / (self.predicted + self.sure) as f64
        };
        Metrics {
            precision,
            recall,
            f1,
            aer,
            counts: *self,
        }
    }
}

/// Scores of a prediction file against a gold file, as fractions (multiply by 100 for the
/// percentages papers print). Empty denominators give 0 (and AER 0 when both the prediction
/// and the sure gold are empty).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    /// |A∩P| / |A|.
    pub precision: f64,
    /// |A∩S| / |S|.
    pub recall: f64,
    /// Harmonic mean of the precision and recall above.
    pub f1: f64,
    /// Alignment error rate, lower is better.
    pub aer: f64,
    pub counts: AerCounts,
}

/// Evaluates prediction lines against gold lines (same count, same order).
pub fn evaluate(gold: &[&str], pred: &[&str]) -> Result<Metrics> {
    if gold.len() != pred.len() {
        return Err(Error::Input(format!(
            "the gold has {} lines but the prediction {}; they must be parallel",
            gold.len(),
            pred.len()
        )));
    }
    let mut counts = AerCounts::default();
    for (k, (g, p)) in gold.iter().zip(pred).enumerate() {
        counts.add(
            &parse_line(g, k + 1, "gold")?,
            &parse_line(p, k + 1, "prediction")?,
        );
    }
    Ok(counts.metrics())
}

/// [`evaluate`] on whole file contents.
pub fn evaluate_text(gold: &str, pred: &str) -> Result<Metrics> {
    let gold: Vec<&str> = gold.lines().collect();
    let pred: Vec<&str> = pred.lines().collect();
    evaluate(&gold, &pred)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sure(src: usize, tgt: usize) -> PharaohLink {
        PharaohLink {
            src,
            tgt,
            sure: true,
        }
    }
    fn possible(src: usize, tgt: usize) -> PharaohLink {
        PharaohLink {
            src,
            tgt,
            sure: false,
        }
    }

    #[test]
    fn parses_all_link_forms() {
        let links = parse_line(" 0-1  2?3 4-5p 10-0\r", 1, "gold").unwrap();
        assert_eq!(
            links,
            vec![sure(0, 1), possible(2, 3), possible(4, 5), sure(10, 0)]
        );
        assert!(parse_line("", 1, "gold").unwrap().is_empty());
    }

    #[test]
    fn malformed_links_name_the_line() {
        for bad in [
            "0-", "-1", "a-1", "1-2-3", "1?2p", "+1-2", "1--2", "1:2", "-1-2", "1-2q", "1-2 3",
        ] {
            let text = format!("0-0\n{bad}");
            let e = parse(&text, "gold");
            if bad == "1-2 3" {
                let e = e.unwrap_err().to_string();
                assert!(e.contains("`3`"), "{e}");
                continue;
            }
            let e = e.unwrap_err();
            assert!(matches!(e, Error::Input(_)));
            let msg = e.to_string();
            assert!(
                msg.contains("gold line 2") && msg.contains(bad),
                "{bad}: {msg}"
            );
        }
    }

    #[test]
    fn writes_sorted_unique_and_marked() {
        assert_eq!(write_line([(2, 3), (0, 1), (2, 3)]), "0-1 2-3");
        assert_eq!(write_line(std::iter::empty()), "");
        let marked = write_marked_line(&[sure(0, 1), possible(2, 3)]);
        assert_eq!(marked, "0-1 2?3");
        assert_eq!(
            parse_line(&marked, 1, "x").unwrap(),
            vec![sure(0, 1), possible(2, 3)]
        );
    }

    #[test]
    fn scores_round_trip() {
        let links = [
            WordLink {
                src: 0,
                tgt: 0,
                score: 0.8,
                prob: Some(0.25),
            },
            WordLink {
                src: 1,
                tgt: 2,
                score: 0.61,
                prob: None,
            },
        ];
        assert_eq!(links_line(&links), "0-0 1-2");
        let line = scores_line(&links);
        assert_eq!(line, "0.25 0.61");
        assert_eq!(parse_scores_line(&line, 2, 1).unwrap(), vec![0.25, 0.61]);
        assert!(parse_scores_line(&line, 3, 4)
            .unwrap_err()
            .to_string()
            .contains("2 scores for 3 links"));
        assert!(parse_scores_line("0.1 x", 2, 1).is_err());
        assert!(parse_scores_line("NaN", 1, 1).is_err());
    }

    #[test]
    fn aer_by_hand() {
        // Line 1: S = {0-0, 1-1}, P = S ∪ {2-2}, A = {0-0, 1-2, 2-2}:
        //   |A∩S| = 1, |A∩P| = 2, |A| = 3, |S| = 2 → P = 2/3, R = 1/2, AER = 1 − 3/5 = 0.4.
        let m = evaluate(&["0-0 1-1 2?2"], &["0-0 1-2 2-2"]).unwrap();
        assert!((m.precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.recall - 0.5).abs() < 1e-12);
        assert!((m.aer - 0.4).abs() < 1e-12);
        assert!((m.f1 - 4.0 / 7.0).abs() < 1e-12);
        // Line 2: S = {1-0}, P = {0-1, 1-0}, A = {1-0, 0-1} (duplicate 0-1 counts once):
        //   |A∩S| = 1, |A∩P| = 2. Micro totals: |A| = 5, |S| = 3, |A∩S| = 2, |A∩P| = 4
        //   → P = 4/5, R = 2/3, AER = 1 − 6/8 = 0.25. Line 3 is empty on both sides.
        let m = evaluate_text("0-0 1-1 2?2\n0-1p 1-0\n\n", "0-0 1-2 2-2\n1-0 0-1 0-1\n\n").unwrap();
        assert_eq!(
            m.counts,
            AerCounts {
                sentences: 3,
                predicted: 5,
                sure: 3,
                possible: 5,
                hit_sure: 2,
                hit_possible: 4
            }
        );
        assert!((m.precision - 0.8).abs() < 1e-12);
        assert!((m.recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.aer - 0.25).abs() < 1e-12);
    }

    #[test]
    fn perfect_and_empty_predictions() {
        let m = evaluate(&["0-0 1?1"], &["0-0"]).unwrap();
        assert_eq!((m.precision, m.recall, m.aer), (1.0, 1.0, 0.0));
        // Adding the possible link keeps AER at 0 (it is in P) — AER does not punish it.
        let m = evaluate(&["0-0 1?1"], &["0-0 1-1"]).unwrap();
        assert_eq!(m.aer, 0.0);
        let m = evaluate(&["0-0"], &[""]).unwrap();
        assert_eq!((m.precision, m.recall, m.f1, m.aer), (0.0, 0.0, 0.0, 1.0));
        let m = evaluate(&[""], &[""]).unwrap();
        assert_eq!(m.aer, 0.0);
        // Sure-and-possible duplicates in the gold count as sure.
        let m = evaluate(&["0-0 0?0"], &["0-0"]).unwrap();
        assert_eq!((m.counts.sure, m.counts.possible), (1, 1));
    }

    #[test]
    fn line_count_mismatch_is_an_error() {
        let e = evaluate_text("0-0\n1-1\n", "0-0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 lines") && e.contains("prediction 1"), "{e}");
        let e = evaluate_text("0-0\n", "0-x\n").unwrap_err().to_string();
        assert!(e.contains("prediction line 1"), "{e}");
    }
}
