//! Text pairs in, word alignments and similarity scores out: the one entry point the CLI,
//! the wasm bindings and the web app share.
//!
//! The work is split so a UI can change the extraction (method, threshold, …) without
//! re-running the encoder: [`Aligner::encode_pairs`] does tokenising and the forward pass and
//! returns [`EncodedPair`]s; [`Aligner::extract`] turns one into a [`PairAlignment`].

use std::sync::Arc;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::align::{self, AlignOptions, Method, Segmented, Word, WordLink, WordMap, WordOptions};
use crate::backend::Backend;
use crate::embed::{check_text, encode_tokenized};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::tokenize::Tokenized;

/// How texts become encoder input; changing any of these means encoding again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct EncodeOptions {
    /// Hidden layer to align with (`None` = the model's recommendation).
    pub layer: Option<usize>,
    /// Input words are separated by spaces (gold-set style) rather than raw text.
    pub pretokenized: bool,
    /// Also compute the pooled sentence embeddings (runs the remaining layers).
    pub sentence_cosine: bool,
    pub words: WordOptions,
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

    /// Extraction options the model file recommends (method and threshold).
    pub fn default_options(&self) -> AlignOptions {
        let d = &self.model.defaults;
        let method: Method = d.align_method.parse().unwrap_or_default();
        let mut o = AlignOptions::new(method);
        if method.uses_dot_products() {
            o.threshold = Some(d.align_threshold);
            o.temperature = d.align_temperature;
        }
        o
    }

    fn layer(&self, opts: &EncodeOptions) -> Result<usize> {
        let l = opts.layer.unwrap_or(self.model.defaults.align_layer);
        if l > self.model.config.layers {
            return Err(Error::Input(format!(
                "layer {l} does not exist (the model has layers 0..={})",
                self.model.config.layers
            )));
        }
        Ok(l)
    }

    /// Words, the string to encode and its tokens for one side.
    fn prepare(&self, text: &str, side: &str, opts: &EncodeOptions) -> Result<(Segmented, Tokenized, WordMap)> {
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
        let seg = if opts.pretokenized { seg } else { align::words::merge_by_tokens(&seg, &tok.offsets) };
        let map = WordMap::from_offsets(&tok.offsets, &seg.words)?;
        Ok((seg, tok, map))
    }

    /// Tokenises and encodes a batch of pairs in one forward pass. A pair that cannot be
    /// encoded (empty side, too long) gets its own error; the others still succeed.
    pub async fn encode_pairs(&self, pairs: &[(&str, &str)], opts: &EncodeOptions) -> Result<Vec<Result<EncodedPair>>> {
        let layer = self.layer(opts)?;
        let multi = self.encode_pairs_at(pairs, opts, &[layer]).await?;
        Ok(multi.into_iter().map(|r| r.map(|mut v| v.swap_remove(0))).collect())
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
            self.layer(&EncodeOptions { layer: Some(l), ..*opts })?;
        }
        let prepared: Vec<Result<_>> = pairs
            .iter()
            .map(|(s, t)| Ok((self.prepare(s, "source", opts)?, self.prepare(t, "target", opts)?)))
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
            let pooled = if opts.sentence_cosine { st.pooled } else { None };
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

    /// Links and scores for an encoded pair (cheap: no encoder work).
    pub fn extract(&self, pair: &EncodedPair, opts: &AlignOptions) -> Result<PairAlignment> {
        let a = align::align_words(pair.src.states.view(), pair.tgt.states.view(), &pair.src.map, &pair.tgt.map, opts)?;
        let cosine = match (&pair.src.pooled, &pair.tgt.pooled) {
            (Some(a), Some(b)) => Some(crate::embed::cosine(a, b)),
            _ => None,
        };
        let similarity = SentenceScores {
            cosine,
            bertscore: align::greedy_match(a.word_similarity.view())?,
            coverage: align::coverage(&a.links, pair.src.words.len(), pair.tgt.words.len()),
        };
        Ok(PairAlignment {
            src_words: pair.src.words.clone(),
            tgt_words: pair.tgt.words.clone(),
            links: a.links,
            similarity,
            word_similarity: a.word_similarity.rows().into_iter().map(|r| r.to_vec()).collect(),
            layer: pair.layer,
            method: opts.method,
        })
    }

    pub async fn align(&self, src: &str, tgt: &str, enc: &EncodeOptions, opts: &AlignOptions) -> Result<PairAlignment> {
        opts.validate()?;
        let pair = self.encode_pairs(&[(src, tgt)], enc).await?.pop().expect("one pair");
        self.extract(&pair?, opts)
    }

    /// Aligns many pairs; each gets its own result so one bad pair loses nothing else.
    pub async fn align_batch(
        &self,
        pairs: &[(&str, &str)],
        enc: &EncodeOptions,
        opts: &AlignOptions,
    ) -> Result<Vec<Result<PairAlignment>>> {
        opts.validate()?;
        Ok(self
            .encode_pairs(pairs, enc)
            .await?
            .into_iter()
            .map(|p| p.and_then(|p| self.extract(&p, opts)))
            .collect())
    }
}
