//! Sentence embeddings: tokenise, cut long texts into windows, run the backend, pool.
//!
//! Windowing follows the reference implementation: content tokens (prefix included) are cut
//! into consecutive non-overlapping windows of `max_positions − 2`, each run as its own
//! `<s> … </s>` sequence; the text vector is the content-token-weighted mean of the window
//! means, L2-normalised.

use ndarray::{concatenate, s, Array2, Axis};

use crate::backend::Backend;
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
    if let Some(&l) = layers.iter().find(|&&l| l > cfg.layers) {
        return Err(Error::Input(format!(
            "layer {l} does not exist (the model has layers 0..={})",
            cfg.layers
        )));
    }
    let tok = &model.tokenizer;
    let mut all = Vec::new();
    let mut owner = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        for w in windows(&t.ids, cfg.max_content_tokens(), tok.bos, tok.eos) {
            all.push(w);
            owner.push(i);
        }
    }
    let seqs: Vec<&[u32]> = all.iter().map(|(w, _)| w.as_slice()).collect();
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
    let last = layers.iter().position(|&l| l == cfg.layers);

    let mut result = Vec::with_capacity(texts.len());
    let mut k = 0;
    for i in 0..texts.len() {
        let mut pooled = vec![0f32; cfg.hidden];
        let mut weight_sum = 0f32;
        let mut parts: Vec<Vec<Array2<f32>>> = vec![Vec::new(); layers.len()];
        let first = k;
        while k < owner.len() && owner[k] == i {
            let (w, n_content) = &all[k];
            if let Some(li) = last {
                let m = &outs[k].layers[li];
                let window_vec: Vec<f32> = match cfg.pooling {
                    Pooling::Mean => m.mean_axis(Axis(0)).expect("non-empty window").to_vec(),
                    Pooling::Cls => m.row(0).to_vec(),
                };
                // A window without content (an empty text) still counts once.
                let wt = (*n_content).max(1) as f32;
                for (p, v) in pooled.iter_mut().zip(&window_vec) {
                    *p += wt * v;
                }
                weight_sum += wt;
            }
            let n = w.len();
            let lo = if k == first { 0 } else { 1 };
            let hi = if k + 1 == owner.len() || owner[k + 1] != i {
                n
            } else {
                n - 1
            };
            for (part, m) in parts.iter_mut().zip(&outs[k].layers) {
                part.push(m.slice(s![lo..hi, ..]).to_owned());
            }
            k += 1;
        }
        let pooled = last.map(|_| {
            pooled.iter_mut().for_each(|p| *p /= weight_sum);
            l2_normalize(&mut pooled);
            pooled
        });
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
}
