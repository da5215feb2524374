//! Text pairs in, word alignments and similarity scores out: the one entry point the CLI,
//! the wasm bindings and the web app share.
//!
//! The work is split so a UI can change the extraction (method, threshold, …) without
//! re-running the encoder: [`Aligner::encode_pairs`] does tokenising and the forward pass and
//! returns [`EncodedPair`]s; [`Aligner::extract`] turns one into a [`PairAlignment`].
//!
//! Where the backend can, the links are extracted where the vectors were computed, and the
//! result is the same as on the CPU:
//! - [`Aligner::align`] and [`Aligner::align_batch`] first offer the whole step to
//!   [`Backend::align_sequences`] (encoder, unit averaging and extraction on the device; on
//!   the GPU no hidden state comes back; the pooled sentence vectors do, when asked for).
//!   That applies when every text fits one encoder window.
//! - Otherwise they encode (states read back, as [`Aligner::encode_pairs`]) and extract with
//!   [`Aligner::extract_batch`], which offers the unit vectors to [`Backend::align_units`]
//!   (links and cosines come back) before extracting on the CPU.
//! - [`Aligner::extract`] always runs on the CPU: callers that keep [`EncodedPair`]s (for a
//!   heatmap, or to re-extract with other options) have the states anyway.

use std::sync::Arc;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::align::extract::{lift, side_units, unit_groups, word_cosines, UnitGroups, Units};
use crate::align::{
    self, AlignOptions, Level, Method, Segmented, Word, WordLink, WordMap, WordOptions,
};
use crate::backend::{Backend, SequencePair, UnitAlignment, UnitPair};
use crate::embed::{check_text, encode_tokenized};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::request::{check_layer, Recommendation};
use crate::tokenize::Tokenized;

/// Most subword × subword cells of one pair's similarity matrix (4096 × 4096, 64 MB as
/// `f32`; extraction holds a few matrices of that size). A longer pair, such as two pasted
/// books, would ask for gigabytes: it is refused with an error saying to align sentence by
/// sentence, which document mode does.
pub const MAX_PAIR_CELLS: usize = 1 << 24;

/// How texts become encoder input; changing any of these means encoding again. Users set
/// them through [`crate::request::AlignRequest`].
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct EncodeOptions {
    /// Hidden layer to align with (`None` = the model's recommendation).
    pub layer: Option<usize>,
    /// Input words are separated by spaces (gold-set style) rather than raw text.
    pub pretokenized: bool,
    /// Also compute the pooled sentence embeddings (runs the remaining layers). On by
    /// default: it is the score most people read first; `xlalign align` turns it off unless
    /// asked (its output has no use for it, and it costs the layers past the alignment layer).
    pub sentence_cosine: bool,
    pub words: WordOptions,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            layer: None,
            pretokenized: false,
            sentence_cosine: true,
            words: WordOptions::default(),
        }
    }
}

/// One side of a pair, ready for extraction.
#[derive(Clone, Debug)]
pub struct EncodedSide {
    pub words: Vec<Word>,
    /// The string that was encoded (equal to the input for raw text; pre-tokenised words
    /// joined naturally otherwise). Word offsets point into it.
    pub text: String,
    pub tokenized: Tokenized,
    pub map: WordMap,
    /// `[n_tokens, hidden]` at the alignment layer.
    pub states: Array2<f32>,
    pub pooled: Option<Vec<f32>>,
}

#[derive(Clone, Debug)]
pub struct EncodedPair {
    pub src: EncodedSide,
    pub tgt: EncodedSide,
    pub layer: usize,
}

/// Sentence-level scores of a pair. See [`align::GreedyMatch`] and [`align::Coverage`] for
/// how to read them.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[cfg_attr(feature = "ts", tsify(missing_as_null))]
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SentenceScores {
    /// Cosine of the pooled sentence embeddings (when asked for).
    pub cosine: Option<f32>,
    /// BERTScore-style greedy matching over word similarities at the alignment layer.
    pub bertscore: align::GreedyMatch,
    /// Share of words with at least one link.
    pub coverage: align::Coverage,
}

/// The result for one pair: words (with offsets), links, scores and the word×word matrix.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairAlignment {
    pub src_words: Vec<Word>,
    pub tgt_words: Vec<Word>,
    pub links: Vec<WordLink>,
    pub similarity: SentenceScores,
    /// `word_similarity[i][j]`: cosine between source word i and target word j.
    pub word_similarity: Vec<Vec<f32>>,
    pub layer: usize,
    pub method: Method,
}

/// A model plus the backend that runs it.
pub struct Aligner<B: Backend> {
    pub model: Arc<Model>,
    pub backend: B,
}

impl<B: Backend> Aligner<B> {
    pub fn new(model: Arc<Model>, backend: B) -> Self {
        Aligner { model, backend }
    }

    /// What the model file recommends (layer, method with its threshold and temperature);
    /// [`crate::request::AlignRequest::resolve`] fills a user's unset options from it.
    pub fn recommendation(&self) -> Result<Recommendation> {
        Recommendation::of(&self.model)
    }

    fn layer(&self, opts: &EncodeOptions) -> Result<usize> {
        let l = opts.layer.unwrap_or(self.model.defaults.align_layer);
        check_layer(l, self.model.config.layers)
    }

    /// Words, the string to encode and its tokens for one side.
    fn prepare(
        &self,
        text: &str,
        side: &str,
        opts: &EncodeOptions,
    ) -> Result<(Segmented, Tokenized, WordMap)> {
        check_text(text).map_err(|e| Error::Input(format!("{side}: {e}")))?;
        let prefix = &self.model.defaults.passage_prefix;
        let seg = if opts.pretokenized {
            align::words::pretokenized(text, &opts.words)?
        } else {
            align::words::segment(text, &opts.words)
        };
        if seg.words.is_empty() {
            return Err(Error::Input(format!("the {side} sentence has no words")));
        }
        let tok = self.model.tokenizer.encode(&seg.text, prefix)?;
        let seg = if opts.pretokenized {
            seg
        } else {
            align::words::merge_by_tokens(&seg, &tok.offsets)
        };
        let map = WordMap::from_offsets(&tok.offsets, &seg.words)?;
        Ok((seg, tok, map))
    }

    /// Both sides of a pair, prepared; a pair whose similarity matrix would be too large to
    /// hold is refused here, before the encoder runs ([`MAX_PAIR_CELLS`]).
    #[allow(clippy::type_complexity)]
    fn prepare_pair(
        &self,
        src: &str,
        tgt: &str,
        opts: &EncodeOptions,
    ) -> Result<(
        (Segmented, Tokenized, WordMap),
        (Segmented, Tokenized, WordMap),
    )> {
        let s = self.prepare(src, "source", opts)?;
        let t = self.prepare(tgt, "target", opts)?;
        let (n, m) = (s.1.ids.len(), t.1.ids.len());
        if n.saturating_mul(m) > MAX_PAIR_CELLS {
            return Err(Error::Input(format!(
                "the pair is too long to align as one: {n} × {m} subwords is over the limit of \
                 {MAX_PAIR_CELLS} similarity cells; align it sentence by sentence (document mode)"
            )));
        }
        Ok((s, t))
    }

    /// Tokenises and encodes a batch of pairs in one forward pass. A pair that cannot be
    /// encoded (empty side, too long) gets its own error; the others still succeed.
    pub async fn encode_pairs(
        &self,
        pairs: &[(&str, &str)],
        opts: &EncodeOptions,
    ) -> Result<Vec<Result<EncodedPair>>> {
        let layer = self.layer(opts)?;
        let multi = self.encode_pairs_at(pairs, opts, &[layer]).await?;
        Ok(multi
            .into_iter()
            .map(|r| r.map(|mut v| v.swap_remove(0)))
            .collect())
    }

    /// As [`Self::encode_pairs`], keeping several layers from the same forward pass (one
    /// [`EncodedPair`] per layer, in the order given) — for layer sweeps.
    pub async fn encode_pairs_at(
        &self,
        pairs: &[(&str, &str)],
        opts: &EncodeOptions,
        layers: &[usize],
    ) -> Result<Vec<Result<Vec<EncodedPair>>>> {
        for &l in layers {
            self.layer(&EncodeOptions {
                layer: Some(l),
                ..*opts
            })?;
        }
        let prepared: Vec<Result<_>> = pairs
            .iter()
            .map(|(s, t)| self.prepare_pair(s, t, opts))
            .collect();
        let mut toks: Vec<&Tokenized> = Vec::new();
        for (s, t) in prepared.iter().flatten() {
            toks.push(&s.1);
            toks.push(&t.1);
        }
        let mut want = layers.to_vec();
        let last = self.model.config.layers;
        if opts.sentence_cosine && !want.contains(&last) {
            want.push(last);
        }
        let states = encode_tokenized(&self.model, &self.backend, &toks, &want).await?;
        let mut states = states.into_iter();
        let n = layers.len();
        let mut side = |(seg, tok, map): (Segmented, Tokenized, WordMap)| -> Vec<EncodedSide> {
            let st = states.next().expect("one state per side");
            let pooled = if opts.sentence_cosine {
                st.pooled
            } else {
                None
            };
            st.layers
                .into_iter()
                .take(n)
                .map(|states| EncodedSide {
                    words: seg.words.clone(),
                    text: seg.text.clone(),
                    tokenized: tok.clone(),
                    map: map.clone(),
                    states,
                    pooled: pooled.clone(),
                })
                .collect()
        };
        Ok(prepared
            .into_iter()
            .map(|p| {
                p.map(|(s, t)| {
                    side(s)
                        .into_iter()
                        .zip(side(t))
                        .zip(layers)
                        .map(|((src, tgt), &layer)| EncodedPair { src, tgt, layer })
                        .collect()
                })
            })
            .collect())
    }

    /// Links and scores for an encoded pair, on the CPU (cheap: no encoder work).
    pub fn extract(&self, pair: &EncodedPair, opts: &AlignOptions) -> Result<PairAlignment> {
        let a = align::align_words(
            pair.src.states.view(),
            pair.tgt.states.view(),
            &pair.src.map,
            &pair.tgt.map,
            opts,
        )?;
        self.finish(pair, a.links, a.word_similarity, opts)
    }

    /// As [`Self::extract`] for many pairs, on the backend's device when it extracts there
    /// (one batch, one trip back for all pairs) and on the CPU otherwise. The links are those
    /// [`Self::extract`] gives from the same states (the device's rounding aside); each pair
    /// gets its own result.
    pub async fn extract_batch(
        &self,
        pairs: &[&EncodedPair],
        opts: &AlignOptions,
    ) -> Result<Vec<Result<PairAlignment>>> {
        opts.validate()?;
        let on_cpu = || pairs.iter().map(|p| self.extract(p, opts)).collect();
        // A pair whose states or maps are unusable gets the CPU path, which says what is wrong.
        let units: Vec<Option<(Units, Units)>> = pairs
            .iter()
            .map(|p| pair_units(p, opts.level).ok())
            .collect();
        let jobs: Vec<UnitPair> = units
            .iter()
            .flatten()
            .map(|(s, t)| UnitPair {
                src: s.vectors.view(),
                tgt: t.vectors.view(),
            })
            .collect();
        if jobs.is_empty() {
            return Ok(on_cpu());
        }
        let Some(done) = self.backend.align_units(&jobs, opts).await? else {
            return Ok(on_cpu());
        };
        if done.len() != jobs.len() {
            return Err(Error::Backend(format!(
                "the backend aligned {} of {} pairs",
                done.len(),
                jobs.len()
            )));
        }
        let mut done = done.into_iter();
        Ok(pairs
            .iter()
            .zip(units)
            .map(|(pair, u)| match u {
                Some((s, t)) => {
                    let n_words = (pair.src.map.n_words, pair.tgt.map.n_words);
                    let (links, word_similarity) = lift_device(
                        &s.words,
                        &t.words,
                        n_words,
                        done.next().expect("one per job"),
                    )?;
                    self.finish(pair, links, word_similarity, opts)
                }
                None => self.extract(pair, opts),
            })
            .collect())
    }

    /// Sentence scores and the result record from word links and the word×word cosines.
    fn finish(
        &self,
        pair: &EncodedPair,
        links: Vec<WordLink>,
        word_similarity: Array2<f32>,
        opts: &AlignOptions,
    ) -> Result<PairAlignment> {
        let cosine = match (&pair.src.pooled, &pair.tgt.pooled) {
            (Some(a), Some(b)) => Some(crate::embed::cosine(a, b)),
            _ => None,
        };
        let words = (pair.src.words.clone(), pair.tgt.words.clone());
        result(words, links, word_similarity, cosine, pair.layer, opts)
    }

    /// Encoder, unit averaging and extraction on the backend's device in one go
    /// ([`Backend::align_sequences`]), so that no hidden state comes back. `None` when that
    /// does not apply: the backend declines, or a text needs more than one encoder window.
    async fn align_on_device(
        &self,
        pairs: &[(&str, &str)],
        enc: &EncodeOptions,
        opts: &AlignOptions,
    ) -> Result<Option<Vec<Result<PairAlignment>>>> {
        let layer = self.layer(enc)?;
        let prepared: Vec<Result<_>> = pairs
            .iter()
            .map(|(s, t)| self.prepare_pair(s, t, enc))
            .collect();
        let (cfg, tok) = (&self.model.config, &self.model.tokenizer);
        let mut sequences: Vec<&[u32]> = Vec::new();
        let mut units: Vec<[UnitGroups; 2]> = Vec::new();
        for (s, t) in prepared.iter().flatten() {
            for (_, tokens, _) in [s, t] {
                // The encoder must see exactly what `encode_tokenized` would give it.
                let w =
                    crate::embed::windows(&tokens.ids, cfg.max_content_tokens(), tok.bos, tok.eos);
                if w.len() != 1 || w[0].0 != tokens.ids {
                    return Ok(None);
                }
                sequences.push(&tokens.ids);
            }
            units.push([unit_groups(&s.2, opts.level), unit_groups(&t.2, opts.level)]);
        }
        if sequences.is_empty() {
            return Ok(None);
        }
        let jobs: Vec<SequencePair> = units
            .iter()
            .enumerate()
            .map(|(k, [s, t])| SequencePair {
                src: 2 * k,
                tgt: 2 * k + 1,
                src_units: &s.0,
                tgt_units: &t.0,
            })
            .collect();
        let pooled = enc.sentence_cosine;
        let Some(done) = self
            .backend
            .align_sequences(&sequences, layer, pooled, &jobs, opts)
            .await?
        else {
            return Ok(None);
        };
        if done.pairs.len() != jobs.len()
            || done.pooled.len() != if pooled { sequences.len() } else { 0 }
        {
            return Err(Error::Backend(format!(
                "the backend aligned {} of {} pairs and pooled {} sequences",
                done.pairs.len(),
                jobs.len(),
                done.pooled.len()
            )));
        }
        let mut cosines = done
            .pooled
            .chunks(2)
            .map(|p| crate::embed::cosine(&p[0], &p[1]));
        let mut done = done.pairs.into_iter().zip(&units);
        Ok(Some(
            prepared
                .into_iter()
                .map(|p| {
                    let ((s, _, s_map), (t, _, t_map)) = p?;
                    let (one, [su, tu]) = done.next().expect("one per prepared pair");
                    let cosine = if pooled { cosines.next() } else { None };
                    let (links, word_similarity) =
                        lift_device(&su.1, &tu.1, (s_map.n_words, t_map.n_words), one)?;
                    result(
                        (s.words, t.words),
                        links,
                        word_similarity,
                        cosine,
                        layer,
                        opts,
                    )
                })
                .collect(),
        ))
    }

    pub async fn align(
        &self,
        src: &str,
        tgt: &str,
        enc: &EncodeOptions,
        opts: &AlignOptions,
    ) -> Result<PairAlignment> {
        opts.validate()?;
        if let Some(mut done) = self.align_on_device(&[(src, tgt)], enc, opts).await? {
            return done.pop().expect("one result");
        }
        let pair = self
            .encode_pairs(&[(src, tgt)], enc)
            .await?
            .pop()
            .expect("one pair")?;
        self.extract_batch(&[&pair], opts)
            .await?
            .pop()
            .expect("one result")
    }

    /// Aligns many pairs; each gets its own result so one bad pair loses nothing else.
    pub async fn align_batch(
        &self,
        pairs: &[(&str, &str)],
        enc: &EncodeOptions,
        opts: &AlignOptions,
    ) -> Result<Vec<Result<PairAlignment>>> {
        opts.validate()?;
        if let Some(done) = self.align_on_device(pairs, enc, opts).await? {
            return Ok(done);
        }
        let encoded = self.encode_pairs(pairs, enc).await?;
        let ok: Vec<&EncodedPair> = encoded.iter().flatten().collect();
        let mut extracted = self.extract_batch(&ok, opts).await?.into_iter();
        Ok(encoded
            .into_iter()
            .map(|p| p.and_then(|_| extracted.next().expect("one result per encoded pair")))
            .collect())
    }
}

/// Sentence scores and the result record from word links and the word×word cosines.
fn result(
    (src_words, tgt_words): (Vec<Word>, Vec<Word>),
    links: Vec<WordLink>,
    word_similarity: Array2<f32>,
    cosine: Option<f32>,
    layer: usize,
    opts: &AlignOptions,
) -> Result<PairAlignment> {
    let similarity = SentenceScores {
        cosine,
        bertscore: align::greedy_match(word_similarity.view())?,
        coverage: align::coverage(&links, src_words.len(), tgt_words.len()),
    };
    Ok(PairAlignment {
        src_words,
        tgt_words,
        links,
        similarity,
        word_similarity: word_similarity
            .rows()
            .into_iter()
            .map(|r| r.to_vec())
            .collect(),
        layer,
        method: opts.method,
    })
}

// A device extracts between exactly the units `align::extract::align_words` would (same
// selection, same checks) and its links are lifted to words the same way; the tests compare
// the two paths on the real model.

fn pair_units(pair: &EncodedPair, level: Level) -> Result<(Units, Units)> {
    Ok((
        side_units(pair.src.states.view(), &pair.src.map, level, "source")?,
        side_units(pair.tgt.states.view(), &pair.tgt.map, level, "target")?,
    ))
}

/// A device's unit links and cosines → word links and the word×word cosines: a word pair is
/// linked when any of its unit pairs is (score and probability the largest among those), and
/// its cosine is the largest of its unit pairs'.
fn lift_device(
    src_words: &[Vec<usize>],
    tgt_words: &[Vec<usize>],
    (n_src, n_tgt): (usize, usize),
    done: UnitAlignment,
) -> Result<(Vec<WordLink>, Array2<f32>)> {
    let (n, m) = (src_words.len(), tgt_words.len());
    if done.cosine.dim() != (n, m) || done.links.iter().any(|l| l.row >= n || l.col >= m) {
        return Err(Error::Backend(format!(
            "the backend's alignment of {n} × {m} units came back as {:?} cosines with links {:?}",
            done.cosine.dim(),
            done.links
                .iter()
                .map(|l| (l.row, l.col))
                .collect::<Vec<_>>()
        )));
    }
    let word_similarity = word_cosines(done.cosine.view(), src_words, tgt_words, (n_src, n_tgt));
    Ok((lift(&done.links, src_words, tgt_words), word_similarity))
}

#[cfg(test)]
mod tests {
    use ndarray::Axis;

    use super::*;
    use crate::align::methods::extract;
    use crate::align::{cosine_matrix, Direction};
    use crate::backend::{BackendInfo, ForwardOutput, SequenceAlignment};
    use crate::cpu::CpuBackend;
    use crate::test_support::{model, ready, workspace};

    /// The CPU backend with a "device" extraction that is the CPU's own: the pipeline's
    /// device paths (unit selection, lifting, scores) must then give exactly its CPU path.
    struct DeviceTwin(CpuBackend, std::cell::Cell<usize>);

    impl DeviceTwin {
        fn new(model: &Model) -> DeviceTwin {
            DeviceTwin(CpuBackend::new(model).unwrap(), std::cell::Cell::new(0))
        }
    }

    impl Backend for DeviceTwin {
        fn info(&self) -> BackendInfo {
            self.0.info()
        }

        async fn forward(
            &self,
            sequences: &[&[u32]],
            layers: &[usize],
        ) -> Result<Vec<ForwardOutput>> {
            self.0.forward(sequences, layers).await
        }

        async fn align_units(
            &self,
            pairs: &[UnitPair<'_>],
            opts: &AlignOptions,
        ) -> Result<Option<Vec<UnitAlignment>>> {
            pairs
                .iter()
                .map(|p| {
                    let cosine = cosine_matrix(p.src, p.tgt);
                    let dot = opts
                        .method
                        .uses_dot_products()
                        .then(|| p.src.dot(&p.tgt.t()));
                    let links = extract(cosine.view(), dot.as_ref().map(|d| d.view()), opts)?;
                    Ok(UnitAlignment { links, cosine })
                })
                .collect::<Result<Vec<_>>>()
                .map(Some)
        }

        async fn align_sequences(
            &self,
            sequences: &[&[u32]],
            layer: usize,
            pooled: bool,
            pairs: &[SequencePair<'_>],
            opts: &AlignOptions,
        ) -> Result<Option<SequenceAlignment>> {
            self.1.set(self.1.get() + 1);
            let last = self.0.config().layers;
            let states = self.0.forward(sequences, &[layer, last]).await?;
            // As `embed::encode_tokenized` pools a text of one window (weighted by its
            // content tokens, then normalised).
            let pooled = if pooled {
                sequences
                    .iter()
                    .zip(&states)
                    .map(|(ids, s)| {
                        let wt = ids.len().saturating_sub(2).max(1) as f32;
                        let mean = s.layers[1].mean_axis(Axis(0)).unwrap();
                        let mut v: Vec<f32> =
                            mean.iter().map(|&x| 0.0 + wt * x).map(|x| x / wt).collect();
                        crate::embed::l2_normalize(&mut v);
                        v
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let mean = |seq: usize, units: &[Vec<usize>]| {
                let s = &states[seq].layers[0];
                let mut out = Array2::<f32>::zeros((units.len(), s.ncols()));
                for (r, rows) in units.iter().enumerate() {
                    out.row_mut(r)
                        .assign(&s.select(Axis(0), rows).mean_axis(Axis(0)).unwrap());
                }
                out
            };
            let units: Vec<_> = pairs
                .iter()
                .map(|p| (mean(p.src, p.src_units), mean(p.tgt, p.tgt_units)))
                .collect();
            let jobs: Vec<UnitPair> = units
                .iter()
                .map(|(s, t)| UnitPair {
                    src: s.view(),
                    tgt: t.view(),
                })
                .collect();
            let pairs = self
                .align_units(&jobs, opts)
                .await?
                .expect("the twin aligns units");
            Ok(Some(SequenceAlignment { pairs, pooled }))
        }
    }

    fn lines(path: &str, n: usize) -> Vec<String> {
        let p = workspace().join(path);
        let s = std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("cannot read {} ({e})", p.display()));
        s.lines().take(n).map(str::to_string).collect()
    }

    /// Gold pairs with CJK pieces shared between words (jaen, zhen) and plain European ones.
    fn gold_pairs() -> Vec<(String, String)> {
        let mut out = Vec::new();
        for set in ["enfr", "jaen", "zhen"] {
            let src = lines(&format!("tests/data/gold/{set}/{set}.src"), 40);
            let tgt = lines(&format!("tests/data/gold/{set}/{set}.tgt"), 40);
            // Skip the one-word warm-up lines at the top of some sets.
            out.extend(
                src.into_iter()
                    .zip(tgt)
                    .filter(|(s, _)| s.split(' ').count() > 4)
                    .take(3),
            );
        }
        out
    }

    #[test]
    fn a_pair_too_long_to_align_is_refused_before_the_encoder() {
        let model = model();
        let cpu = Aligner::new(model.clone(), CpuBackend::new(&model).unwrap());
        // About 126,000 × 162,000 subwords (1 MB of text): the similarity matrix alone would
        // be 80 GB.
        let src = "The old lighthouse keeper walked along the rocky shore. ".repeat(9000);
        let tgt = "Der alte Leuchtturmwärter ging am felsigen Ufer entlang. ".repeat(9000);
        let opts = AlignOptions::default();
        let enc = EncodeOptions::default();
        let pairs = [(src.as_str(), tgt.as_str()), ("Das Haus", "the house")];
        let got = ready(cpu.align_batch(&pairs, &enc, &opts)).unwrap();
        match &got[0] {
            Err(Error::Input(m)) => assert!(m.contains("too long to align"), "{m}"),
            other => panic!("{:?}", other.as_ref().map(|a| a.links.len())),
        }
        assert!(got[1].is_ok(), "the other pair of the batch still aligns");
        // A long text (three encoder windows) against a short one is fine.
        let long = "The old lighthouse keeper walked along the rocky shore. ".repeat(100);
        let err = ready(cpu.align(&long, "the house", &enc, &opts)).map(|_| ());
        assert!(err.is_ok(), "{err:?}");
    }

    #[test]
    fn device_extraction_gives_the_cpu_result() {
        let model = model();
        let cpu = Aligner::new(model.clone(), CpuBackend::new(&model).unwrap());
        let twin = Aligner::new(model.clone(), DeviceTwin::new(&model));
        let gold = gold_pairs();
        let gold: Vec<(&str, &str)> = gold.iter().map(|(s, t)| (s.as_str(), t.as_str())).collect();
        // Raw text with a bare ▁ before the digits and CJK against English, and a pair long
        // enough to be encoded window by window.
        let long_src = "The old lighthouse keeper walked along the rocky shore. ".repeat(50);
        let long_tgt = "Der alte Leuchtturmwärter ging am felsigen Ufer entlang. ".repeat(50);
        let raw = [
            (
                "He paid 1,234.50 € for 3 books.",
                "Il a payé 1 234,50 € pour 3 livres.",
            ),
            (
                "The old lighthouse keeper walked along the shore.",
                "年老的灯塔看守人沿着海岸散步。",
            ),
            (long_src.as_str(), long_tgt.as_str()),
        ];
        let enc = EncodeOptions {
            sentence_cosine: true,
            ..Default::default()
        };
        let pre = EncodeOptions {
            pretokenized: true,
            ..Default::default()
        };
        let encoded_raw = ready(cpu.encode_pairs(&raw, &enc)).unwrap();
        let encoded_gold = ready(cpu.encode_pairs(&gold, &pre)).unwrap();
        let encoded: Vec<&EncodedPair> = encoded_raw
            .iter()
            .chain(&encoded_gold)
            .map(|p| p.as_ref().expect("pair encodes"))
            .collect();
        assert!(
            encoded[2].src.states.nrows() > model.config.max_positions,
            "the long pair needs windows"
        );
        let mut compared = 0;
        for method in Method::ALL {
            for level in [Level::Subword, Level::WordAverage] {
                for direction in [Direction::Both, Direction::Union] {
                    let opts = AlignOptions {
                        level,
                        direction,
                        ..AlignOptions::new(method)
                    };
                    if opts.validate().is_err() {
                        // Union is for the directional methods only.
                        continue;
                    }
                    let want: Vec<PairAlignment> = encoded
                        .iter()
                        .map(|p| cpu.extract(p, &opts).unwrap())
                        .collect();
                    let got = ready(twin.extract_batch(&encoded, &opts)).unwrap();
                    for (g, w) in got.into_iter().zip(&want) {
                        assert_eq!(&g.unwrap(), w, "{opts:?}");
                        compared += 1;
                    }
                    // The CPU backend has no device path: extract_batch is extract.
                    let plain = ready(cpu.extract_batch(&encoded, &opts)).unwrap();
                    assert!(plain.into_iter().zip(&want).all(|(g, w)| &g.unwrap() == w));
                }
            }
        }
        assert!(encoded.iter().all(|p| !p.src.words.is_empty()));
        // Itermax and match have no union: 3 methods × 2 directions + 2 × 1, at both levels.
        assert_eq!(compared, (3 * 2 + 2) * 2 * encoded.len());
    }

    #[test]
    fn alignment_without_states_leaving_the_device_gives_the_cpu_result() {
        let model = model();
        let cpu = Aligner::new(model.clone(), CpuBackend::new(&model).unwrap());
        let twin = Aligner::new(model.clone(), DeviceTwin::new(&model));
        let gold = gold_pairs();
        let gold: Vec<(&str, &str)> = gold.iter().map(|(s, t)| (s.as_str(), t.as_str())).collect();
        let raw = [
            (
                "He paid 1,234.50 € for 3 books.",
                "Il a payé 1 234,50 € pour 3 livres.",
            ),
            (
                "The old lighthouse keeper walked along the shore.",
                "年老的灯塔看守人沿着海岸散步。",
            ),
            ("", "An empty side is this pair's own error."),
        ];
        let pre = EncodeOptions {
            pretokenized: true,
            layer: Some(5),
            ..Default::default()
        };
        let plain = EncodeOptions::default();
        for method in Method::ALL {
            for level in [Level::Subword, Level::WordAverage] {
                let opts = AlignOptions {
                    level,
                    ..AlignOptions::new(method)
                };
                for (pairs, enc) in [(&gold[..], &pre), (&raw[..], &plain)] {
                    let calls = twin.backend.1.get();
                    let want = ready(cpu.align_batch(pairs, enc, &opts)).unwrap();
                    let got = ready(twin.align_batch(pairs, enc, &opts)).unwrap();
                    assert_eq!(twin.backend.1.get(), calls + 1, "the device path ran");
                    for (g, w) in got.iter().zip(&want) {
                        match (g, w) {
                            (Ok(g), Ok(w)) => assert_eq!(g, w, "{opts:?}"),
                            (Err(g), Err(w)) => assert_eq!(g.to_string(), w.to_string()),
                            other => panic!("{other:?}"),
                        }
                    }
                    assert!(got.iter().flatten().any(|a| !a.links.is_empty()));
                }
            }
        }
        let one = ready(twin.align(raw[0].0, raw[0].1, &plain, &AlignOptions::default())).unwrap();
        assert_eq!(
            one,
            ready(cpu.align(raw[0].0, raw[0].1, &plain, &AlignOptions::default())).unwrap()
        );

        // With the pooled cosine too.
        let with_cosine = EncodeOptions {
            sentence_cosine: true,
            ..plain
        };
        let want = ready(cpu.align_batch(&raw, &with_cosine, &AlignOptions::default())).unwrap();
        let got = ready(twin.align_batch(&raw, &with_cosine, &AlignOptions::default())).unwrap();
        assert_eq!(got[0].as_ref().unwrap(), want[0].as_ref().unwrap());
        assert_eq!(got[1].as_ref().unwrap(), want[1].as_ref().unwrap());
        assert!(got[0].as_ref().unwrap().similarity.cosine.is_some());

        // Texts longer than one window take the two-step path.
        let calls = twin.backend.1.get();
        let long = "The old lighthouse keeper walked along the rocky shore. ".repeat(50);
        let got = ready(twin.align_batch(
            &[(raw[0].0, raw[0].1), (&long, &long)],
            &plain,
            &AlignOptions::default(),
        ));
        assert!(got.unwrap().iter().all(|r| r.is_ok()));
        assert_eq!(
            twin.backend.1.get(),
            calls,
            "no single-pass alignment for these"
        );
    }

    #[test]
    fn align_batch_on_a_device_keeps_per_pair_errors() {
        let model = model();
        let cpu = Aligner::new(model.clone(), CpuBackend::new(&model).unwrap());
        let twin = Aligner::new(model.clone(), DeviceTwin::new(&model));
        let pairs = [
            ("Das Haus ist groß.", "The house is big."),
            ("  ", "Nothing on the left."),
            ("Ja.", "Yes."),
        ];
        let opts = AlignOptions::new(Method::Softmax);
        let enc = EncodeOptions::default();
        let want = ready(cpu.align_batch(&pairs, &enc, &opts)).unwrap();
        let got = ready(twin.align_batch(&pairs, &enc, &opts)).unwrap();
        assert_eq!(got.len(), 3);
        assert!(got[1].is_err() && want[1].is_err());
        assert_eq!(got[0].as_ref().unwrap(), want[0].as_ref().unwrap());
        assert_eq!(got[2].as_ref().unwrap(), want[2].as_ref().unwrap());
        assert!(!got[0].as_ref().unwrap().links.is_empty());
        let one = ready(twin.align(pairs[0].0, pairs[0].1, &enc, &opts)).unwrap();
        assert_eq!(&one, want[0].as_ref().unwrap());
    }

    #[test]
    fn a_device_answer_of_the_wrong_shape_is_an_error() {
        let model = model();
        struct Broken(CpuBackend);
        impl Backend for Broken {
            fn info(&self) -> BackendInfo {
                self.0.info()
            }
            async fn forward(
                &self,
                sequences: &[&[u32]],
                layers: &[usize],
            ) -> Result<Vec<ForwardOutput>> {
                self.0.forward(sequences, layers).await
            }
            async fn align_units(
                &self,
                pairs: &[UnitPair<'_>],
                _: &AlignOptions,
            ) -> Result<Option<Vec<UnitAlignment>>> {
                Ok(Some(
                    pairs
                        .iter()
                        .map(|p| UnitAlignment {
                            links: vec![align::UnitLink {
                                row: p.src.nrows(),
                                col: 0,
                                score: 1.0,
                                prob: None,
                            }],
                            cosine: Array2::zeros((p.src.nrows(), p.tgt.nrows())),
                        })
                        .collect(),
                ))
            }
            async fn align_sequences(
                &self,
                _: &[&[u32]],
                _: usize,
                _: bool,
                _: &[SequencePair<'_>],
                _: &AlignOptions,
            ) -> Result<Option<SequenceAlignment>> {
                Ok(None)
            }
        }
        let broken = Aligner::new(model.clone(), Broken(CpuBackend::new(&model).unwrap()));
        let r = ready(broken.align_batch(
            &[("Ja.", "Yes.")],
            &EncodeOptions::default(),
            &AlignOptions::default(),
        ));
        let e = r.unwrap()[0].as_ref().unwrap_err().to_string();
        assert!(e.contains("came back"), "{e}");
    }
}
