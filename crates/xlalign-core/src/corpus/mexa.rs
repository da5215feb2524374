//! MEXA: a corpus-level cross-lingual alignment score per encoder layer (Kargaran et al.,
//! "MEXA: Multilingual Evaluation of English-Centric LLMs via Cross-Lingual Alignment",
//! Findings of ACL 2025; reference code github.com/cisnlp/MEXA, `compute_mexa.py`).
//!
//! For parallel sentences `(s_i, t_i)` and a layer, embed every sentence (the mean of the
//! layer's token states) and count the pairs whose cosine beats every wrong pairing in both
//! directions: `cos(s_i, t_i) > cos(s_i, t_j)` and `cos(s_i, t_i) > cos(s_j, t_i)` for every
//! `j ≠ i` (strictly, as the reference does: the diagonal element must exceed the rest of its
//! row and of its column). The score is that count over the number of pairs, between 0 and 1.
//! The one-directional shares (sentence retrieval accuracy, P@1, each way) come with it.
//!
//! The score depends on how many sentences compete: more pairs, more chances of a wrong one
//! coming closer (the paper uses 100 FLORES sentences by default). A single pair has nothing
//! to beat and scores 1.

use ndarray::{s, Array2, ArrayView1, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use super::MAX_BLOCK;
use crate::align::WordOptions;
use crate::backend::Backend;
use crate::embed::{check_text, pool_layers};
use crate::error::{Error, Result};
use crate::pipeline::Aligner;
use crate::tokenize::Tokenized;

/// What to compute.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct MexaOptions {
    /// Layers to score (0 is the embedding output); `None`: all, `0..=layers`.
    pub layers: Option<Vec<usize>>,
    /// Input words are separated by spaces (gold-set style); they are joined naturally before
    /// encoding, as the aligner does.
    pub pretokenized: bool,
    /// Sentences per encoder batch.
    pub batch: usize,
}

impl Default for MexaOptions {
    fn default() -> Self {
        MexaOptions {
            layers: None,
            pretokenized: false,
            batch: 32,
        }
    }
}

/// One layer's alignment.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerAlignment {
    pub layer: usize,
    /// Share of pairs whose cosine beats every other in its row and its column.
    pub mexa: f32,
    /// Share of sources whose nearest target is their translation.
    pub src_to_tgt: f32,
    /// Share of targets whose nearest source is their translation.
    pub tgt_to_src: f32,
    pub pairs: usize,
}

/// Adds one block's scores to a running total over blocks (the pair-weighted mean, layer by
/// layer): how a corpus larger than one block gets one score per layer.
pub fn add_block(total: &mut Vec<LayerAlignment>, block: Vec<LayerAlignment>) {
    if total.is_empty() {
        *total = block;
        return;
    }
    for (r, g) in total.iter_mut().zip(block) {
        let (a, b) = (r.pairs as f32, g.pairs as f32);
        let mean = |x: f32, y: f32| {
            if a + b == 0.0 {
                0.0
            } else {
                (x * a + y * b) / (a + b)
            }
        };
        r.mexa = mean(r.mexa, g.mexa);
        r.src_to_tgt = mean(r.src_to_tgt, g.src_to_tgt);
        r.tgt_to_src = mean(r.tgt_to_src, g.tgt_to_src);
        r.pairs += g.pairs;
    }
}

/// MEXA from the cosine matrix of one layer: `cos[i][j]` is source i against target j.
pub fn mexa_from_cosines(cos: ArrayView2<f32>, layer: usize) -> Result<LayerAlignment> {
    let (n, m) = cos.dim();
    if n != m {
        return Err(Error::Input(format!(
            "MEXA: the cosine matrix must be square, got {n} × {m}"
        )));
    }
    let mut counts = Counts::new(n);
    counts.add_rows(cos, 0);
    counts.finish(layer)
}

/// MEXA from the sentence vectors of one layer (L2-normalised rows, pair i = row i of each),
/// without holding the whole cosine matrix: rows of it are computed in chunks.
pub fn mexa_from_vectors(
    src: ArrayView2<f32>,
    tgt: ArrayView2<f32>,
    layer: usize,
) -> Result<LayerAlignment> {
    if src.dim() != tgt.dim() {
        return Err(Error::Input(format!(
            "MEXA: {:?} source vectors against {:?} target vectors",
            src.dim(),
            tgt.dim()
        )));
    }
    const CHUNK: usize = 256;
    let n = src.nrows();
    let mut counts = Counts::new(n);
    for lo in (0..n).step_by(CHUNK) {
        let hi = (lo + CHUNK).min(n);
        let rows = src.slice(s![lo..hi, ..]).dot(&tgt.t());
        counts.add_rows(rows.view(), lo);
    }
    counts.finish(layer)
}

/// The diagonal and the largest off-diagonal value of each row and column, gathered over
/// chunks of rows.
struct Counts {
    diag: Vec<f32>,
    row_max: Vec<f32>,
    col_max: Vec<f32>,
    finite: bool,
}

impl Counts {
    fn new(n: usize) -> Counts {
        Counts {
            diag: vec![0.0; n],
            row_max: vec![f32::NEG_INFINITY; n],
            col_max: vec![f32::NEG_INFINITY; n],
            finite: true,
        }
    }

    /// Rows `first..first + rows.nrows()` of the cosine matrix.
    fn add_rows(&mut self, rows: ArrayView2<f32>, first: usize) {
        for (r, row) in rows.axis_iter(Axis(0)).enumerate() {
            let i = first + r;
            for (j, &c) in row.iter().enumerate() {
                self.finite &= c.is_finite();
                if j == i {
                    self.diag[i] = c;
                } else {
                    self.row_max[i] = self.row_max[i].max(c);
                    self.col_max[j] = self.col_max[j].max(c);
                }
            }
        }
    }

    fn finish(self, layer: usize) -> Result<LayerAlignment> {
        if !self.finite {
            return Err(Error::Input("MEXA: the cosines are not finite".into()));
        }
        let n = self.diag.len();
        let share = |ok: &dyn Fn(usize) -> bool| {
            if n == 0 {
                0.0
            } else {
                (0..n).filter(|&i| ok(i)).count() as f32 / n as f32
            }
        };
        let fwd = |i: usize| self.diag[i] > self.row_max[i];
        let bwd = |i: usize| self.diag[i] > self.col_max[i];
        Ok(LayerAlignment {
            layer,
            mexa: share(&|i| fwd(i) && bwd(i)),
            src_to_tgt: share(&fwd),
            tgt_to_src: share(&bwd),
            pairs: n,
        })
    }
}

/// MEXA's input must be parallel: as many targets as sources (checked on a whole corpus
/// before it is cut into blocks, and by [`mexa`] on each block).
pub fn check_parallel(sources: usize, targets: usize) -> Result<()> {
    if sources != targets {
        return Err(Error::Input(format!(
            "MEXA needs parallel sentences: {sources} sources, {targets} targets"
        )));
    }
    Ok(())
}

/// MEXA per layer for parallel sentences `src[i]`, `tgt[i]` (at most [`MAX_BLOCK`] pairs;
/// score a larger corpus in blocks). Every sentence is encoded once, with the model's
/// passage prefix, and pooled at every requested layer; `progress` is called with the number
/// of sentences encoded so far (of `2 × pairs`).
pub async fn mexa<B: Backend>(
    aligner: &Aligner<B>,
    src: &[&str],
    tgt: &[&str],
    opts: &MexaOptions,
    mut progress: impl FnMut(usize),
) -> Result<Vec<LayerAlignment>> {
    let model = &aligner.model;
    check_parallel(src.len(), tgt.len())?;
    if src.len() > MAX_BLOCK {
        return Err(Error::Input(format!(
            "{} pairs are over the {MAX_BLOCK}-pair limit of one MEXA block",
            src.len()
        )));
    }
    let last = model.config.layers;
    let layers = opts.layers.clone().unwrap_or_else(|| (0..=last).collect());
    if let Some(l) = layers.iter().find(|&&l| l > last) {
        return Err(Error::Input(format!(
            "layer {l} does not exist (the model has layers 0..={last})"
        )));
    }
    let mut done = 0;
    let mut tick = |k: usize| {
        done += k;
        progress(done)
    };
    let src = layer_vectors(aligner, src, "source", &layers, opts, &mut tick).await?;
    let tgt = layer_vectors(aligner, tgt, "target", &layers, opts, &mut tick).await?;
    layers
        .iter()
        .zip(src.iter().zip(&tgt))
        .map(|(&l, (s, t))| mexa_from_vectors(s.view(), t.view(), l))
        .collect()
}

/// `[n, hidden]` pooled vectors of `texts` at each of `layers`, in batches.
async fn layer_vectors<B: Backend>(
    aligner: &Aligner<B>,
    texts: &[&str],
    side: &str,
    layers: &[usize],
    opts: &MexaOptions,
    tick: &mut impl FnMut(usize),
) -> Result<Vec<Array2<f32>>> {
    let model = &aligner.model;
    let batch = opts.batch.max(1);
    let mut vectors = vec![Array2::<f32>::zeros((texts.len(), model.config.hidden)); layers.len()];
    for (b, chunk) in texts.chunks(batch).enumerate() {
        let toks = chunk
            .iter()
            .enumerate()
            .map(|(k, t)| {
                tokenize(aligner, t, opts.pretokenized).map_err(|e| {
                    Error::Input(format!(
                        "{side} sentence {}: {}",
                        b * batch + k + 1,
                        e.detail()
                    ))
                })
            })
            .collect::<Result<Vec<Tokenized>>>()?;
        let refs: Vec<&Tokenized> = toks.iter().collect();
        let pooled = pool_layers(model, &aligner.backend, &refs, layers).await?;
        for (k, text) in pooled.into_iter().enumerate() {
            for (m, v) in vectors.iter_mut().zip(text) {
                m.row_mut(b * batch + k).assign(&ArrayView1::from(&v));
            }
        }
        tick(chunk.len());
    }
    Ok(vectors)
}

/// Tokens of one sentence with the passage prefix; pre-tokenised words are joined as the
/// aligner joins them (no space before punctuation, CJK without spaces).
fn tokenize<B: Backend>(aligner: &Aligner<B>, text: &str, pretokenized: bool) -> Result<Tokenized> {
    check_text(text)?;
    let joined;
    let text = if pretokenized {
        joined = crate::align::words::pretokenized(text, &WordOptions::default())?.text;
        &joined
    } else {
        text
    };
    let model = &aligner.model;
    model.tokenizer.encode(text, &model.defaults.passage_prefix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::CpuBackend;
    use crate::test_support::{model, ready};
    use ndarray::array;

    #[test]
    fn mexa_by_hand() {
        // Pair 0 wins its row and column; pair 1 wins its row (0.8 > 0.7) but source 2 is
        // closer to target 1 (0.85); pair 2 wins its column (0.6 > 0.3, 0.5) but not its row
        // (0.85 > 0.6); a tie does not count (pair 3: 0.4 = 0.4 in its row).
        let cos = array![
            [0.9f32, 0.1, 0.3, 0.2],
            [0.2, 0.8, 0.5, 0.7],
            [0.1, 0.85, 0.6, 0.0],
            [0.0, 0.4, 0.1, 0.4],
        ];
        let got = mexa_from_cosines(cos.view(), 7).unwrap();
        assert_eq!(got.layer, 7);
        assert_eq!(got.pairs, 4);
        // Rows: 0 yes, 1 yes (0.8 > 0.7), 2 no (0.85), 3 no (tie) → 2/4.
        assert_eq!(got.src_to_tgt, 0.5);
        // Columns: 0 yes (0.9 > 0.2), 1 no (0.85 > 0.8), 2 yes (0.6 > 0.5), 3 no (0.7 > 0.4).
        assert_eq!(got.tgt_to_src, 0.5);
        // Both: only pair 0.
        assert_eq!(got.mexa, 0.25);
        assert_eq!(
            mexa_from_cosines(array![[0.1f32]].view(), 0).unwrap().mexa,
            1.0
        );
        let empty = Array2::<f32>::zeros((0, 0));
        assert_eq!(mexa_from_cosines(empty.view(), 0).unwrap().mexa, 0.0);
        assert!(mexa_from_cosines(array![[0.1f32, 0.2]].view(), 0).is_err());
        assert!(mexa_from_cosines(array![[f32::NAN]].view(), 0).is_err());
    }

    #[test]
    fn chunked_vectors_give_the_matrix_result() {
        // 600 pairs (three chunks) of pseudo-random unit vectors, targets a noisy copy.
        let (n, d) = (600, 8);
        let mut x = 1u64;
        let mut rnd = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let mut src = Array2::from_shape_simple_fn((n, d), &mut rnd);
        let mut tgt = &src + &Array2::from_shape_simple_fn((n, d), || 0.6 * rnd());
        for m in [&mut src, &mut tgt] {
            for mut r in m.rows_mut() {
                let norm = r.dot(&r).sqrt();
                r /= norm;
            }
        }
        let chunked = mexa_from_vectors(src.view(), tgt.view(), 3).unwrap();
        let whole = mexa_from_cosines(src.dot(&tgt.t()).view(), 3).unwrap();
        assert_eq!(chunked, whole);
        assert!(chunked.mexa > 0.0 && chunked.mexa < 1.0, "{chunked:?}");
        assert!(chunked.mexa <= chunked.src_to_tgt.min(chunked.tgt_to_src));
    }

    #[test]
    fn mexa_on_the_model() {
        let model = model();
        let aligner = Aligner::new(model.clone(), CpuBackend::new(&model).unwrap());
        let src = [
            "Das Haus ist klein .",
            "Ich trinke gern Kaffee am Morgen .",
            "Der Zug fährt um acht Uhr ab .",
            "Meine Schwester wohnt in Berlin .",
        ];
        let tgt = [
            "The house is small .",
            "I like to drink coffee in the morning .",
            "The train leaves at eight o'clock .",
            "My sister lives in Berlin .",
        ];
        let opts = MexaOptions {
            pretokenized: true,
            batch: 3,
            ..Default::default()
        };
        let mut seen = Vec::new();
        let got = ready(mexa(&aligner, &src, &tgt, &opts, |n| seen.push(n))).unwrap();
        assert_eq!(seen, [3, 4, 7, 8]);
        assert_eq!(got.len(), model.config.layers + 1);
        assert_eq!(got[12].mexa, 1.0, "{got:?}");
        // The last layer's vectors are the sentence embeddings.
        let one = ready(mexa(
            &aligner,
            &src[..2],
            &tgt[..2],
            &MexaOptions {
                layers: Some(vec![12, 0]),
                ..Default::default()
            },
            |_| {},
        ))
        .unwrap();
        assert_eq!((one[0].layer, one[1].layer), (12, 0));
        assert!(ready(mexa(&aligner, &src, &tgt[..3], &opts, |_| {})).is_err());
        let too_deep = MexaOptions {
            layers: Some(vec![13]),
            ..Default::default()
        };
        assert!(ready(mexa(&aligner, &src, &tgt, &too_deep, |_| {})).is_err());
    }

    #[test]
    fn blocks_add_up_weighted_by_their_pairs() {
        let layer = |mexa: f32, pairs: usize| LayerAlignment {
            layer: 3,
            mexa,
            src_to_tgt: mexa,
            tgt_to_src: 1.0,
            pairs,
        };
        let mut total = Vec::new();
        add_block(&mut total, vec![layer(1.0, 30)]);
        add_block(&mut total, vec![layer(0.5, 10)]);
        assert_eq!(total.len(), 1);
        assert!((total[0].mexa - 35.0 / 40.0).abs() < 1e-6, "{:?}", total[0]);
        assert_eq!(
            (total[0].pairs, total[0].layer, total[0].tgt_to_src),
            (40, 3, 1.0)
        );
    }
}
