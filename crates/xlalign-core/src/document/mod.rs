//! Document mode: two texts → sentences → sentence pairs ([`beads`]) → the words of each pair
//! aligned. The same steps for the JavaScript package (`alignDocument`) and the demo, which
//! is its client.

pub mod beads;

use std::future::Future;
use std::ops::Range;

use serde::{Deserialize, Serialize};

pub use beads::{align_sentences, join, split_sentences, Bead, MAX_SENTENCES, SKIP_COST};

use crate::align::AlignOptions;
use crate::embed::{embed_texts, Prefix};
use crate::error::{Error, Result};
use crate::pipeline::{Aligner, EncodeOptions, PairAlignment};
use crate::Backend;

/// Texts embedded per encoder call, and sentence pairs aligned per call: between calls the
/// caller's `pause` runs (in a browser: a turn of the event loop, so a cancel or a new
/// request is seen).
const EMBED_CHUNK: usize = 32;
const ALIGN_CHUNK: usize = 8;

/// Sentences of both texts and how they were paired.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentAlignment {
    pub src_sentences: Vec<String>,
    pub tgt_sentences: Vec<String>,
    /// In text order.
    pub pairs: Vec<SentencePair>,
}

/// Source sentences paired with target sentences (1–1, 1–2, 2–1, or one side empty for a
/// sentence with no counterpart), and the alignment of their words.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[cfg_attr(feature = "ts", tsify(missing_as_null))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SentencePair {
    /// Indices into `srcSentences`.
    pub src: Vec<usize>,
    /// Indices into `tgtSentences`.
    pub tgt: Vec<usize>,
    /// Cosine of the two groups' sentence embeddings (0 for a skipped sentence).
    pub score: f32,
    /// The words of the joined sentences aligned (without the word×word matrix); none for a
    /// skipped sentence or when `error` says why not.
    pub words: Option<PairAlignment>,
    /// Why the words of this pair could not be aligned (e.g. a sentence too long).
    pub error: Option<String>,
}

/// Checks one side's sentences.
fn check_side(name: &str, sentences: &[String]) -> Result<()> {
    if sentences.is_empty() {
        return Err(Error::Input(format!("the {name} text has no sentences")));
    }
    if sentences.len() > MAX_SENTENCES {
        return Err(Error::Input(format!(
            "the {name} text has {} sentences; document mode takes up to {MAX_SENTENCES} (split the text)",
            sentences.len()
        )));
    }
    Ok(())
}

/// Every sentence, then every two neighbours joined (for 1–2 and 2–1 beads).
fn groups(sentences: &[String]) -> Vec<String> {
    let mut g = sentences.to_vec();
    g.extend(sentences.windows(2).map(join));
    g
}

/// Where a group of one or two sentences is in [`groups`]' list.
fn group_index(n: usize, r: &Range<usize>) -> usize {
    if r.len() == 1 {
        r.start
    } else {
        n + r.start
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Pairs the sentences of `src` and `tgt` by their embeddings, then aligns the words of each
/// pair with `enc` and `opts` (as [`Aligner::align_batch`] would). `pause` is awaited between
/// encoder calls.
pub async fn align_document<B: Backend, F: Future<Output = Result<()>>>(
    aligner: &Aligner<B>,
    src: &str,
    tgt: &str,
    enc: &EncodeOptions,
    opts: &AlignOptions,
    mut pause: impl FnMut() -> F,
) -> Result<DocumentAlignment> {
    opts.validate()?;
    let (ss, ts) = (split_sentences(src), split_sentences(tgt));
    check_side("source", &ss)?;
    check_side("target", &ts)?;
    let (sg, tg) = (groups(&ss), groups(&ts));
    let texts: Vec<&str> = sg.iter().chain(&tg).map(String::as_str).collect();
    let mut vecs = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(EMBED_CHUNK) {
        let e = embed_texts(
            &aligner.model,
            &aligner.backend,
            chunk,
            Prefix::Passage,
            None,
        )
        .await?;
        vecs.extend(e.into_iter().map(|e| e.embedding));
        pause().await?;
    }
    let (sv, tv) = vecs.split_at(sg.len());
    let beads = align_sentences(ss.len(), ts.len(), |s, t| {
        dot(
            &sv[group_index(ss.len(), &s)],
            &tv[group_index(ts.len(), &t)],
        )
    });
    let texts: Vec<(String, String)> = beads
        .iter()
        .filter(|b| !b.src.is_empty() && !b.tgt.is_empty())
        .map(|b| (join(&ss[b.src.clone()]), join(&ts[b.tgt.clone()])))
        .collect();
    let mut words = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(ALIGN_CHUNK) {
        let refs: Vec<(&str, &str)> = chunk
            .iter()
            .map(|(s, t)| (s.as_str(), t.as_str()))
            .collect();
        words.extend(aligner.align_batch(&refs, enc, opts).await?);
        pause().await?;
    }
    let mut words = words.into_iter();
    let pairs = beads
        .iter()
        .map(|b| {
            let (words, error) = if b.src.is_empty() || b.tgt.is_empty() {
                (None, None)
            } else {
                match words.next().expect("one result per matched bead") {
                    Ok(mut a) => {
                        // Documents of hundreds of pairs do not need the matrices.
                        a.word_similarity = Vec::new();
                        (Some(a), None)
                    }
                    Err(e) => (None, Some(e.detail())),
                }
            };
            SentencePair {
                src: b.src.clone().collect(),
                tgt: b.tgt.clone().collect(),
                score: b.score,
                words,
                error,
            }
        })
        .collect();
    Ok(DocumentAlignment {
        src_sentences: ss,
        tgt_sentences: ts,
        pairs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::CpuBackend;
    use crate::request::AlignRequest;
    use crate::test_support::{model, ready};

    fn aligner() -> Aligner<CpuBackend> {
        let m = model();
        let b = CpuBackend::new(&m).unwrap();
        Aligner::new(m, b)
    }

    fn run(a: &Aligner<CpuBackend>, src: &str, tgt: &str) -> Result<DocumentAlignment> {
        let (enc, opts) = AlignRequest::default().resolve(&a.recommendation()?)?;
        ready(align_document(a, src, tgt, &enc, &opts, || async {
            Ok(())
        }))
    }

    #[test]
    fn pairs_a_merge_and_an_added_sentence_and_aligns_their_words() {
        let a = aligner();
        let src = "Das Haus ist klein. Es hat einen roten Garten, und die Katze schläft dort. Morgen regnet es.";
        let tgt = "The house is small. It has a red garden. The cat sleeps there. \
                   I bought bread yesterday. Tomorrow it will rain.";
        let d = run(&a, src, tgt).unwrap();
        assert_eq!(d.src_sentences.len(), 3);
        assert_eq!(d.tgt_sentences.len(), 5);
        let shapes: Vec<(Vec<usize>, Vec<usize>)> = d
            .pairs
            .iter()
            .map(|p| (p.src.clone(), p.tgt.clone()))
            .collect();
        assert_eq!(
            shapes,
            vec![
                (vec![0], vec![0]),
                (vec![1], vec![1, 2]),
                (vec![], vec![3]),
                (vec![2], vec![4]),
            ],
            "{d:#?}"
        );
        // The words of a pair are what aligning the joined sentences gives.
        let (enc, opts) = AlignRequest::default()
            .resolve(&a.recommendation().unwrap())
            .unwrap();
        let joined = join(&d.tgt_sentences[1..3]);
        let mut direct =
            ready(a.align_batch(&[(d.src_sentences[1].as_str(), &joined)], &enc, &opts))
                .unwrap()
                .remove(0)
                .unwrap();
        direct.word_similarity = Vec::new();
        assert_eq!(d.pairs[1].words.as_ref(), Some(&direct));
        assert!(d.pairs[2].words.is_none() && d.pairs[2].error.is_none());
        assert_eq!(d.pairs[2].score, 0.0);
        assert!(d.pairs[0].score > 0.8, "{}", d.pairs[0].score);
    }

    #[test]
    fn empty_or_oversized_texts_are_input_errors() {
        let a = aligner();
        assert!(matches!(run(&a, "  ", "Hello."), Err(Error::Input(m)) if m.contains("source")));
        assert!(matches!(run(&a, "Hallo.", "\n"), Err(Error::Input(m)) if m.contains("target")));
        let long = "A b. ".repeat(MAX_SENTENCES + 1);
        assert!(matches!(run(&a, &long, "Hello."), Err(Error::Input(m)) if m.contains("up to")));
    }

    #[test]
    fn a_pause_that_fails_stops_the_document() {
        let a = aligner();
        let (enc, opts) = AlignRequest::default()
            .resolve(&a.recommendation().unwrap())
            .unwrap();
        let r = ready(align_document(
            &a,
            "Ein Satz.",
            "One sentence.",
            &enc,
            &opts,
            || async { Err(Error::Input("cancelled".into())) },
        ));
        assert!(matches!(r, Err(Error::Input(m)) if m == "cancelled"));
    }
}
