//! Sentence embeddings: tokenise, cut long texts into windows, run the backend, pool.
//!
//! Windowing follows the reference implementation: content tokens (prefix included) are cut
//! into consecutive non-overlapping windows of `max_positions − 2`, each run as its own
//! `<s> … </s>` sequence; the text vector is the content-token-weighted mean of the window
//! means, L2-normalised.

use ndarray::{concatenate, s, Array2, Axis};

use crate::backend::{Backend, ForwardOutput};
use crate::error::{Error, Result};
use crate::model::{Model, Pooling};
use crate::tokenize::Tokenized;

/// Upper bound on input size: beyond this a text is refused rather than slowly embedded.
pub const MAX_TEXT_BYTES: usize = 1 << 20;

/// Which prefix to put before the text (E5-style models are trained with one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefix {
    Passage,
    Query,
    None,
}

impl Prefix {
    pub fn parse(s: &str) -> Result<Prefix> {
        match s {
            "passage" => Ok(Prefix::Passage),
            "query" => Ok(Prefix::Query),
            "none" => Ok(Prefix::None),
            other => Err(Error::Input(format!(
                "unknown prefix `{other}` (use passage, query or none)"
            ))),
        }
    }

    pub fn text<'m>(&self, model: &'m Model) -> &'m str {
        match self {
            Prefix::Passage => &model.defaults.passage_prefix,
            Prefix::Query => &model.defaults.query_prefix,
            Prefix::None => "",
        }
    }
}

/// One embedded text.
#[derive(Clone, Debug)]
pub struct Embedded {
    pub tokenized: Tokenized,
    /// Pooled, L2-normalised sentence vector.
    pub embedding: Vec<f32>,
    /// Token vectors of the requested layer, one row per token of `tokenized`.
    pub layer: Option<Array2<f32>>,
}

/// Splits `<s> content </s>` into windows that fit the model. Returns (window ids, content count).
pub fn windows(ids: &[u32], max_content: usize, bos: u32, eos: u32) -> Vec<(Vec<u32>, usize)> {
    let content = if ids.len() >= 2 {
        &ids[1..ids.len() - 1]
    } else {
        &[][..]
    };
    if content.is_empty() {
        return vec![(vec![bos, eos], 0)];
    }
    content
        .chunks(max_content.max(1))
        .map(|c| {
            let mut w = Vec::with_capacity(c.len() + 2);
            w.push(bos);
            w.extend_from_slice(c);
            w.push(eos);
            (w, c.len())
        })
        .collect()
}

/// Hidden states of one tokenised text, windows stitched back together.
#[derive(Clone, Debug)]
pub struct TextStates {
    /// One `[n_tokens, hidden]` matrix per requested layer (rows match the text's tokens:
    /// the first window's `<s>`, every content token, the last window's `</s>`).
    pub layers: Vec<Array2<f32>>,
    /// Pooled, L2-normalised vector; present when the last layer was requested.
    pub pooled: Option<Vec<f32>>,
}

/// Every window of every text through the backend in one batch.
struct Windowed {
    /// (window ids, content tokens in it), texts in order.
    windows: Vec<(Vec<u32>, usize)>,
    /// The text each window belongs to.
    owner: Vec<usize>,
    outs: Vec<ForwardOutput>,
}

impl Windowed {
    /// The window indices of text `i` (windows are in text order).
    fn of(&self, i: usize) -> std::ops::Range<usize> {
        let lo = self.owner.partition_point(|&o| o < i);
        let hi = self.owner.partition_point(|&o| o <= i);
        lo..hi
    }
}

async fn forward_windows<B: Backend>(
    model: &Model,
    backend: &B,
    texts: &[&Tokenized],
    layers: &[usize],
) -> Result<Windowed> {
    let cfg = &model.config;
    if let Some(&l) = layers.iter().find(|&&l| l > cfg.layers) {
        return Err(Error::Input(format!(
            "layer {l} does not exist (the model has layers 0..={})",
            cfg.layers
        )));
    }
    let tok = &model.tokenizer;
    let mut windows_ = Vec::new();
    let mut owner = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        for w in windows(&t.ids, cfg.max_content_tokens(), tok.bos, tok.eos) {
            windows_.push(w);
            owner.push(i);
        }
    }
    let seqs: Vec<&[u32]> = windows_.iter().map(|(w, _)| w.as_slice()).collect();
    let outs = if seqs.is_empty() {
        Vec::new()
    } else {
        backend.forward(&seqs, layers).await?
    };
    if outs.len() != seqs.len() || outs.iter().any(|o| o.layers.len() != layers.len()) {
        return Err(Error::Backend(format!(
            "backend returned {} results for {} sequences",
            outs.len(),
            seqs.len()
        )));
    }
    Ok(Windowed {
        windows: windows_,
        owner,
        outs,
    })
}

/// One text's vector from its windows' states at one layer: the content-token-weighted mean
/// of the window poolings, L2-normalised.
fn pool_windows<'a>(
    pooling: Pooling,
    hidden: usize,
    windows: impl Iterator<Item = (&'a Array2<f32>, usize)>,
) -> Vec<f32> {
    let mut pooled = vec![0f32; hidden];
    let mut weight_sum = 0f32;
    for (m, n_content) in windows {
        let window_vec: Vec<f32> = match pooling {
            Pooling::Mean => m.mean_axis(Axis(0)).expect("non-empty window").to_vec(),
            Pooling::Cls => m.row(0).to_vec(),
        };
        // A window without content (an empty text) still counts once.
        let wt = n_content.max(1) as f32;
        for (p, v) in pooled.iter_mut().zip(&window_vec) {
            *p += wt * v;
        }
        weight_sum += wt;
    }
    pooled.iter_mut().for_each(|p| *p /= weight_sum);
    l2_normalize(&mut pooled);
    pooled
}

/// Runs the backend on already tokenised texts (all their windows in one batch) and returns
/// the requested layers per text. The pooled vector is computed when `layers` contains the
/// last layer.
pub async fn encode_tokenized<B: Backend>(
    model: &Model,
    backend: &B,
    texts: &[&Tokenized],
    layers: &[usize],
) -> Result<Vec<TextStates>> {
    let cfg = &model.config;
    let run = forward_windows(model, backend, texts, layers).await?;
    let last = layers.iter().position(|&l| l == cfg.layers);
    let mut result = Vec::with_capacity(texts.len());
    for i in 0..texts.len() {
        let ws = run.of(i);
        let pooled = last.map(|li| {
            let parts = ws
                .clone()
                .map(|k| (&run.outs[k].layers[li], run.windows[k].1));
            pool_windows(cfg.pooling, cfg.hidden, parts)
        });
        let mut parts: Vec<Vec<Array2<f32>>> = vec![Vec::new(); layers.len()];
        for k in ws.clone() {
            // Rows of the text: the first window's `<s>`, every content token, the last
            // window's `</s>`.
            let n = run.windows[k].0.len();
            let lo = if k == ws.start { 0 } else { 1 };
            let hi = if k + 1 == ws.end { n } else { n - 1 };
            for (part, m) in parts.iter_mut().zip(&run.outs[k].layers) {
                part.push(m.slice(s![lo..hi, ..]).to_owned());
            }
        }
        let layers = parts
            .into_iter()
            .map(|p| {
                if p.len() == 1 {
                    return Ok(p.into_iter().next().unwrap());
                }
                let views: Vec<_> = p.iter().map(|a| a.view()).collect();
                concatenate(Axis(0), &views).map_err(|e| Error::Backend(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        result.push(TextStates { layers, pooled });
    }
    Ok(result)
}

/// Mean-pooled, L2-normalised vectors of already tokenised texts at each of `layers` (one
/// forward pass; `result[text][k]` is layer `layers[k]`). Long texts are windowed and pooled
/// as [`encode_tokenized`] pools the last layer: the content-token-weighted mean of the
/// window means. The mean is taken whatever the model's own pooling (MEXA's per-layer
/// sentence vectors; for E5 models the last layer's vector is then the sentence embedding).
pub async fn pool_layers<B: Backend>(
    model: &Model,
    backend: &B,
    texts: &[&Tokenized],
    layers: &[usize],
) -> Result<Vec<Vec<Vec<f32>>>> {
    let hidden = model.config.hidden;
    let run = forward_windows(model, backend, texts, layers).await?;
    Ok((0..texts.len())
        .map(|i| {
            (0..layers.len())
                .map(|li| {
                    let parts = run
                        .of(i)
                        .map(|k| (&run.outs[k].layers[li], run.windows[k].1));
                    pool_windows(Pooling::Mean, hidden, parts)
                })
                .collect()
        })
        .collect())
}

/// Refuses texts too large to process, before any work is done.
pub fn check_text(t: &str) -> Result<()> {
    if t.len() > MAX_TEXT_BYTES {
        return Err(Error::Input(format!(
            "text of {} bytes is over the {} byte limit",
            t.len(),
            MAX_TEXT_BYTES
        )));
    }
    Ok(())
}

/// Embeds a batch of texts. `layer` asks for that layer's token vectors as well; the encoder
/// still runs to the last layer because pooling uses it.
pub async fn embed_texts<B: Backend>(
    model: &Model,
    backend: &B,
    texts: &[&str],
    prefix: Prefix,
    layer: Option<usize>,
) -> Result<Vec<Embedded>> {
    let tokenized = texts
        .iter()
        .map(|t| {
            check_text(t)?;
            model.tokenizer.encode(t, prefix.text(model))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut want = vec![model.config.layers];
    want.extend(layer.filter(|&l| l != model.config.layers));
    let refs: Vec<&Tokenized> = tokenized.iter().collect();
    let states = encode_tokenized(model, backend, &refs, &want).await?;
    Ok(tokenized
        .into_iter()
        .zip(states)
        .map(|(t, mut s)| Embedded {
            tokenized: t,
            embedding: s.pooled.take().expect("last layer requested"),
            layer: layer.map(|_| s.layers.pop().expect("requested layer")),
        })
        .collect())
}

/// Divides by the L2 norm (squared norm clamped to 1e-12, as the reference does).
pub fn l2_normalize(v: &mut [f32]) {
    let sq: f32 = v.iter().map(|x| x * x).sum();
    let n = sq.max(1e-12).sqrt();
    v.iter_mut().for_each(|x| *x /= n);
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_split_content_without_overlap() {
        let ids: Vec<u32> = std::iter::once(0)
            .chain(10..17)
            .chain(std::iter::once(2))
            .collect();
        let w = windows(&ids, 3, 0, 2);
        assert_eq!(w.len(), 3);
        assert_eq!(w[0], (vec![0, 10, 11, 12, 2], 3));
        assert_eq!(w[2], (vec![0, 16, 2], 1));
        assert_eq!(windows(&[0, 2], 3, 0, 2), vec![(vec![0, 2], 0)]);
    }

    #[test]
    fn pooled_layers_are_the_sentence_embedding_at_the_last_layer() {
        use crate::cpu::CpuBackend;
        use crate::test_support::{model, ready};
        let model = model();
        let backend = CpuBackend::new(&model).unwrap();
        // One short text, one over three windows, one empty.
        let long = "The old lighthouse keeper walked along the rocky shore. ".repeat(100);
        let texts = ["Das Haus ist klein.", long.as_str(), ""];
        let toks: Vec<Tokenized> = texts
            .iter()
            .map(|t| model.tokenizer.encode(t, "passage: ").unwrap())
            .collect();
        let refs: Vec<&Tokenized> = toks.iter().collect();
        assert!(toks[1].len() > 2 * model.config.max_content_tokens());
        let last = model.config.layers;
        let states = ready(encode_tokenized(&model, &backend, &refs, &[last])).unwrap();
        let pooled = ready(pool_layers(&model, &backend, &refs, &[3, last])).unwrap();
        for (s, p) in states.iter().zip(&pooled) {
            assert_eq!(s.pooled.as_ref().unwrap(), &p[1]);
            assert_eq!(p[0].len(), model.config.hidden);
            assert_ne!(p[0], p[1]);
            let norm: f32 = p[0].iter().map(|x| x * x).sum();
            assert!((norm - 1.0).abs() < 1e-4);
        }
    }
}
