//! Per-pair quality scores for filtering parallel corpora: the pooled-embedding cosine, the
//! bitext-mining margin ([`super::margin`]) within a block of consecutive pairs, the share of
//! words the aligner links, and the length ratio, with thresholds that say which pairs to keep.
//!
//! Two stages, so that a caller can report progress and keep memory bounded:
//! [`measure_pairs`] runs the encoder on one batch (what needs no other pair), and
//! [`score_measured`] turns a block of measured pairs into scores (the margin compares each
//! pair with the rest of its block). [`score_block`] does both.

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::margin::margin_scores;
use super::MAX_BLOCK;
use crate::align::{AlignOptions, Coverage};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::pipeline::{Aligner, EncodeOptions, EncodedPair};

/// Which pairs to keep: a pair is kept when it passes every threshold that is set (and all
/// are kept when none is).
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Thresholds {
    /// Lowest pooled-embedding cosine.
    pub min_cosine: Option<f32>,
    /// Lowest ratio margin.
    pub min_margin: Option<f32>,
    /// Lowest share of linked words, on each side.
    pub min_coverage: Option<f32>,
    /// Highest length ratio (longer side's tokens / shorter side's, so at least 1).
    pub max_length_ratio: Option<f32>,
}

impl Thresholds {
    pub fn validate(&self) -> Result<()> {
        let set = [
            ("minCosine", self.min_cosine),
            ("minMargin", self.min_margin),
            ("minCoverage", self.min_coverage),
            ("maxLengthRatio", self.max_length_ratio),
        ];
        for (name, v) in set {
            if v.is_some_and(|v| !v.is_finite()) {
                return Err(Error::Input(format!("{name} must be a finite number")));
            }
        }
        if self.max_length_ratio.is_some_and(|r| r < 1.0) {
            return Err(Error::Input(
                "maxLengthRatio is longer / shorter, so it must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Whether a pair with these scores passes.
    pub fn keeps(&self, s: &PairScore) -> bool {
        self.min_cosine.is_none_or(|t| s.cosine >= t)
            && self.min_margin.is_none_or(|t| s.margin >= t)
            && self
                .min_coverage
                .is_none_or(|t| s.coverage.src >= t && s.coverage.tgt >= t)
            && self.max_length_ratio.is_none_or(|t| s.length_ratio <= t)
    }
}

/// How to score a block.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ScoreOptions {
    /// Neighbours per side in the margin (LASER's k = 4).
    pub k: usize,
    /// Pairs per encoder batch in [`score_block`].
    pub batch: usize,
    pub thresholds: Thresholds,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions {
            k: 4,
            batch: 32,
            thresholds: Thresholds::default(),
        }
    }
}

/// The scores of one pair.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairScore {
    /// Cosine of the pooled sentence embeddings (last layer), as `similarity` reports it.
    pub cosine: f32,
    /// Ratio margin against the pair's block (see [`super::margin`]); above 1: the two
    /// sides are closer to each other than to their nearest neighbours.
    pub margin: f32,
    /// Share of words with a link at the alignment layer.
    pub coverage: Coverage,
    /// Subword tokens of the longer side / of the shorter side (prefix and `<s>`/`</s>` not
    /// counted; an empty side counts as one token).
    pub length_ratio: f32,
    pub src_tokens: usize,
    pub tgt_tokens: usize,
    /// Whether the pair passes the thresholds.
    pub keep: bool,
}

/// What one pair gives on its own (stage one): its sentence vectors and the scores that need
/// no other pair.
#[derive(Clone, Debug, PartialEq)]
pub struct PairMeasure {
    /// Pooled, L2-normalised sentence vectors.
    pub src_vector: Vec<f32>,
    pub tgt_vector: Vec<f32>,
    pub cosine: f32,
    pub coverage: Coverage,
    pub src_tokens: usize,
    pub tgt_tokens: usize,
}

/// Stage one: encodes and aligns one batch of pairs (one forward pass for the alignment
/// layer and the pooled vectors). A pair that cannot be encoded (empty side, too long) gets
/// its own error; the others still succeed.
pub async fn measure_pairs<B: Backend>(
    aligner: &Aligner<B>,
    pairs: &[(&str, &str)],
    enc: &EncodeOptions,
    opts: &AlignOptions,
) -> Result<Vec<Result<PairMeasure>>> {
    let enc = EncodeOptions {
        sentence_cosine: true,
        ..*enc
    };
    let encoded = aligner.encode_pairs(pairs, &enc).await?;
    let ok: Vec<&EncodedPair> = encoded.iter().flatten().collect();
    let mut aligned = aligner.extract_batch(&ok, opts).await?.into_iter();
    Ok(encoded
        .into_iter()
        .map(|p| {
            let p = p?;
            let a = aligned.next().expect("one result per encoded pair")?;
            let vector = |v: Option<Vec<f32>>| {
                v.ok_or_else(|| Error::Backend("no pooled sentence vector came back".into()))
            };
            let content = |t: &crate::tokenize::Tokenized| t.len().saturating_sub(2 + t.n_prefix);
            let (src_vector, tgt_vector) = (vector(p.src.pooled)?, vector(p.tgt.pooled)?);
            Ok(PairMeasure {
                cosine: crate::embed::cosine(&src_vector, &tgt_vector),
                coverage: a.similarity.coverage,
                src_tokens: content(&p.src.tokenized),
                tgt_tokens: content(&p.tgt.tokenized),
                src_vector,
                tgt_vector,
            })
        })
        .collect())
}

/// Stage two: scores a block of measured pairs. The margin's neighbours are the block's
/// other pairs that measured well (at most [`MAX_BLOCK`]); a failed pair keeps its error.
pub fn score_measured(
    block: Vec<Result<PairMeasure>>,
    opts: &ScoreOptions,
) -> Result<Vec<Result<PairScore>>> {
    opts.thresholds.validate()?;
    let ok: Vec<&PairMeasure> = block.iter().flatten().collect();
    if ok.len() > MAX_BLOCK {
        return Err(Error::Input(format!(
            "a block of {} pairs is over the {MAX_BLOCK}-pair limit",
            ok.len()
        )));
    }
    let dim = ok.first().map_or(0, |m| m.src_vector.len());
    if ok
        .iter()
        .any(|m| m.src_vector.len() != dim || m.tgt_vector.len() != dim)
    {
        return Err(Error::Input(
            "the pairs' sentence vectors differ in length".into(),
        ));
    }
    let rows = |side: fn(&PairMeasure) -> &[f32]| {
        let flat: Vec<f32> = ok.iter().flat_map(|m| side(m).iter().copied()).collect();
        Array2::from_shape_vec((ok.len(), dim), flat).expect("rows of equal length")
    };
    let src = rows(|m| &m.src_vector);
    let tgt = rows(|m| &m.tgt_vector);
    let mut margins = margin_scores(src.view(), tgt.view(), opts.k)?.into_iter();
    Ok(block
        .into_iter()
        .map(|m| {
            let m = m?;
            let margin = margins.next().expect("one margin per measured pair");
            let (lo, hi) = (
                m.src_tokens.min(m.tgt_tokens).max(1),
                m.src_tokens.max(m.tgt_tokens).max(1),
            );
            let mut s = PairScore {
                cosine: m.cosine,
                margin,
                coverage: m.coverage,
                length_ratio: hi as f32 / lo as f32,
                src_tokens: m.src_tokens,
                tgt_tokens: m.tgt_tokens,
                keep: false,
            };
            s.keep = opts.thresholds.keeps(&s);
            Ok(s)
        })
        .collect())
}

/// Scores a block of consecutive pairs (both stages; encoder batches of `opts.batch`).
/// `progress` is called with the number of pairs measured so far.
pub async fn score_block<B: Backend>(
    aligner: &Aligner<B>,
    pairs: &[(&str, &str)],
    enc: &EncodeOptions,
    align: &AlignOptions,
    opts: &ScoreOptions,
    mut progress: impl FnMut(usize),
) -> Result<Vec<Result<PairScore>>> {
    opts.thresholds.validate()?;
    align.validate()?;
    if pairs.len() > MAX_BLOCK {
        return Err(Error::Input(format!(
            "a block of {} pairs is over the {MAX_BLOCK}-pair limit",
            pairs.len()
        )));
    }
    let mut measured = Vec::with_capacity(pairs.len());
    for batch in pairs.chunks(opts.batch.max(1)) {
        measured.extend(measure_pairs(aligner, batch, enc, align).await?);
        progress(measured.len());
    }
    score_measured(measured, opts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::align::AlignOptions;
    use crate::cpu::CpuBackend;
    use crate::test_support::{model, ready};

    fn measure(src: [f32; 2], tgt: [f32; 2], tokens: (usize, usize)) -> Result<PairMeasure> {
        Ok(PairMeasure {
            src_vector: src.to_vec(),
            tgt_vector: tgt.to_vec(),
            cosine: src[0] * tgt[0] + src[1] * tgt[1],
            coverage: Coverage {
                src: 0.5,
                tgt: 1.0,
                both: 0.75,
            },
            src_tokens: tokens.0,
            tgt_tokens: tokens.1,
        })
    }

    #[test]
    fn thresholds_decide_keep_and_errors_stay_in_place() {
        let block = || {
            vec![
                measure([1.0, 0.0], [1.0, 0.0], (10, 3)),
                Err(Error::Input("the source sentence has no words".into())),
                measure([0.0, 1.0], [0.6, 0.8], (0, 3)),
            ]
        };
        let opts = ScoreOptions {
            k: 2,
            ..Default::default()
        };
        let got = score_measured(block(), &opts).unwrap();
        assert!(got[1].is_err());
        let (a, b) = (got[0].as_ref().unwrap(), got[2].as_ref().unwrap());
        // The cosines of the two good pairs are [[1, 0.6], [0, 0.8]], k = 2 takes both
        // candidates: pair 0: row mean 0.8, column mean 0.5 → 1 / 0.65; pair 1: row mean 0.4,
        // column mean 0.7 → 0.8 / 0.55.
        assert!((a.margin - 1.0 / 0.65).abs() < 1e-6, "{a:?}");
        assert!((b.margin - 0.8 / 0.55).abs() < 1e-6, "{b:?}");
        assert_eq!(a.length_ratio, 10.0 / 3.0);
        assert_eq!(b.length_ratio, 3.0, "an empty side counts as one token");
        assert!(a.keep && b.keep, "no thresholds: everything is kept");

        let strict = |t: Thresholds| {
            let got = score_measured(
                block(),
                &ScoreOptions {
                    thresholds: t,
                    ..opts
                },
            );
            got.unwrap()
                .iter()
                .map(|r| r.as_ref().is_ok_and(|s| s.keep))
                .collect::<Vec<_>>()
        };
        let t = Thresholds::default();
        let keep_first = [true, false, false];
        let keep_last = [false, false, true];
        assert_eq!(
            strict(Thresholds {
                min_cosine: Some(0.9),
                ..t
            }),
            keep_first
        );
        assert_eq!(
            strict(Thresholds {
                min_margin: Some(1.5),
                ..t
            }),
            keep_first
        );
        assert_eq!(
            strict(Thresholds {
                max_length_ratio: Some(3.1),
                ..t
            }),
            keep_last
        );
        let both = Thresholds {
            min_cosine: Some(0.5),
            max_length_ratio: Some(3.5),
            ..t
        };
        assert_eq!(strict(both), [true, false, true]);
        assert_eq!(
            strict(Thresholds {
                min_coverage: Some(0.6),
                ..t
            }),
            [false, false, false],
            "coverage must reach the threshold on each side"
        );
        assert!(score_measured(
            block(),
            &ScoreOptions {
                thresholds: Thresholds {
                    max_length_ratio: Some(0.5),
                    ..t
                },
                ..opts
            }
        )
        .is_err());
    }

    #[test]
    fn score_block_on_the_model() {
        let model = model();
        let aligner = Aligner::new(model.clone(), CpuBackend::new(&model).unwrap());
        let pairs = [
            ("Das Haus ist klein.", "The house is small."),
            (
                "Ich trinke gern Kaffee am Morgen.",
                "I like to drink coffee in the morning.",
            ),
            ("", "Nothing on the left."),
            (
                "Der Zug fährt um acht Uhr ab.",
                "The train leaves at eight o'clock.",
            ),
        ];
        let mut seen = Vec::new();
        let opts = ScoreOptions {
            batch: 2,
            ..Default::default()
        };
        let got = ready(score_block(
            &aligner,
            &pairs,
            &EncodeOptions::default(),
            &AlignOptions::default(),
            &opts,
            |n| seen.push(n),
        ))
        .unwrap();
        assert_eq!(seen, [2, 4]);
        assert!(got[2].is_err());
        let ok: Vec<&PairScore> = got.iter().flatten().collect();
        assert_eq!(ok.len(), 3);
        for s in &ok {
            assert!(
                s.cosine > 0.8 && s.margin > 1.0 && s.coverage.both > 0.5,
                "{s:?}"
            );
        }
        // The same sentences paired wrongly: each has a better partner in its block.
        let wrong = [
            (pairs[0].0, pairs[1].1),
            (pairs[1].0, pairs[3].1),
            (pairs[3].0, pairs[0].1),
        ];
        let got = ready(score_block(
            &aligner,
            &wrong,
            &EncodeOptions::default(),
            &AlignOptions::default(),
            &opts,
            |_| {},
        ))
        .unwrap();
        for (s, r) in got.iter().flatten().zip(&ok) {
            assert!(s.cosine < r.cosine, "{s:?} {r:?}");
        }
    }
}
