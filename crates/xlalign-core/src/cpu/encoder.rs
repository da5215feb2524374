//! The post-LayerNorm BERT encoder on the CPU kernels.
//!
//! Sequences in a batch are concatenated row-wise so every linear layer is one large
//! matmul; only attention looks at sequence boundaries.

use std::ops::Range;
use std::sync::{Arc, PoisonError, RwLock};

use ndarray::Array2;

use super::kernels::{self, Isa, LinearLayer, Q8Rows};
use super::par;
use crate::backend::ForwardOutput;
use crate::error::{Error, Result};
use crate::model::{EncoderConfig, EncoderLayer, EncoderWeights, LayerNorm};
use crate::table::RowTable;

/// Tokens per pass through the blocks: bounds the scratch memory (the feed-forward
/// activations are `tokens × ff` floats, 12 MB here for e5-small) whatever the batch size.
const MAX_PASS_TOKENS: usize = 2048;
/// Rows the feed-forward network runs on at a time: its intermediate is four times as wide
/// as the hidden state, so it never exists for a whole pass (for 2,048 tokens of this model
/// that would be 12 MB of f32 plus its int8 copy); 256 rows keep the weights hot in cache.
const FFN_CHUNK_ROWS: usize = 256;

#[derive(Clone, Debug)]
struct Block {
    query: LinearLayer,
    key: LinearLayer,
    value: LinearLayer,
    attn_output: LinearLayer,
    attn_norm: LayerNorm,
    ffn_up: LinearLayer,
    ffn_down: LinearLayer,
    output_norm: LayerNorm,
}

impl Block {
    /// Block `l` prepared for the kernels, its shapes checked against the configuration.
    fn new(c: &EncoderConfig, l: &EncoderLayer) -> Result<Block> {
        let h = c.hidden;
        let linear = |l: &crate::model::Linear, out: usize, inp: usize| -> Result<LinearLayer> {
            let layer = LinearLayer::new(l)?;
            if layer.out_features() != out || layer.in_features() != inp {
                return Err(Error::Unsupported(format!(
                    "`{}` is {}×{}, expected {out}×{inp}",
                    l.weight.name,
                    layer.out_features(),
                    layer.in_features()
                )));
            }
            Ok(layer)
        };
        Ok(Block {
            query: linear(&l.query, h, h)?,
            key: linear(&l.key, h, h)?,
            value: linear(&l.value, h, h)?,
            attn_output: linear(&l.attn_output, h, h)?,
            attn_norm: check_norm(h, &l.attn_norm, "attention output")?,
            ffn_up: linear(&l.ffn_up, c.ff, h)?,
            ffn_down: linear(&l.ffn_down, h, c.ff)?,
            output_norm: check_norm(h, &l.output_norm, "block output")?,
        })
    }
}

fn check_norm(h: usize, n: &LayerNorm, what: &str) -> Result<LayerNorm> {
    if n.weight.len() != h || n.bias.len() != h {
        return Err(Error::Unsupported(format!(
            "{what} LayerNorm is not {h} wide"
        )));
    }
    Ok(n.clone())
}

#[derive(Clone, Debug)]
pub(crate) struct Encoder {
    pub(crate) config: EncoderConfig,
    /// The model's table itself (a handle, not a copy): rows written into it are read by the
    /// next pass.
    pub(crate) token_embd: RowTable,
    position: Arc<[f32]>,
    /// Row 0 of the token-type table: every token is type 0.
    token_type: Vec<f32>,
    embd_norm: LayerNorm,
    /// The blocks present, a prefix of `config.layers` (see [`crate::backend::WriteBlocks`]);
    /// shared by the clones of the backend, so a block added to one is run by all. A pass
    /// takes the list once and runs from that snapshot.
    blocks: Arc<RwLock<Vec<Arc<Block>>>>,
}

/// Buffers reused across the blocks of one pass. Once attention has read `q` and `k`, they
/// take the attention projection and the feed-forward output, so a block needs four
/// `tokens × hidden` buffers besides its input.
#[derive(Default)]
struct Scratch {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    ctx: Vec<f32>,
    ff: Vec<f32>,
    xq: Q8Rows,
}

impl Encoder {
    pub(crate) fn new(c: &EncoderConfig, w: &EncoderWeights) -> Result<Encoder> {
        let h = c.hidden;
        if h == 0 || c.heads == 0 || !h.is_multiple_of(c.heads) {
            return Err(Error::Unsupported(format!(
                "hidden size {h} is not divisible by {} heads",
                c.heads
            )));
        }
        if w.layers.len() > c.layers {
            return Err(Error::Unsupported(format!(
                "{} blocks of weights for {} layers",
                w.layers.len(),
                c.layers
            )));
        }
        if w.token_embd.shape != [c.vocab, h] {
            return Err(Error::Unsupported(format!(
                "token embeddings have shape {:?}, expected [{}, {h}]",
                w.token_embd.shape, c.vocab
            )));
        }
        if w.position_embd.len() < (c.max_positions) * h {
            return Err(Error::Unsupported(format!(
                "position table is shorter than {} positions",
                c.max_positions
            )));
        }
        if w.token_types.len() < h {
            return Err(Error::Unsupported("the token-type table is empty".into()));
        }
        let blocks = w
            .layers
            .iter()
            .map(|l| Block::new(c, l).map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        Ok(Encoder {
            config: c.clone(),
            token_embd: w.token_embd.clone(),
            position: w.position_embd.clone(),
            token_type: w.token_types[..h].to_vec(),
            embd_norm: check_norm(h, &w.embd_norm, "embedding")?,
            blocks: Arc::new(RwLock::new(blocks)),
        })
    }

    pub(crate) fn blocks_present(&self) -> usize {
        self.blocks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Prepares block `index` for the kernels and appends it (see
    /// [`crate::backend::WriteBlocks::add_block`]).
    pub(crate) fn add_block(&self, index: usize, l: &EncoderLayer) -> Result<()> {
        // Prepared before the lock is taken: passes keep running meanwhile.
        let block = Arc::new(Block::new(&self.config, l)?);
        let mut blocks = self.blocks.write().unwrap_or_else(PoisonError::into_inner);
        crate::backend::check_next_block(index, blocks.len(), self.config.layers)?;
        blocks.push(block);
        Ok(())
    }

    /// Checks the request, then runs it in passes of at most [`MAX_PASS_TOKENS`] tokens.
    pub(crate) fn forward(
        &self,
        isa: Isa,
        seqs: &[&[u32]],
        layers: &[usize],
    ) -> Result<Vec<ForwardOutput>> {
        let c = &self.config;
        if let Some(&l) = layers.iter().find(|&&l| l > c.layers) {
            return Err(Error::Input(format!(
                "layer {l} does not exist (the model has layers 0..={})",
                c.layers
            )));
        }
        let max_len = c.max_sequence_tokens();
        for (i, s) in seqs.iter().enumerate() {
            if s.is_empty() {
                return Err(Error::Input(format!("sequence {i} is empty")));
            }
            if s.len() > max_len {
                return Err(Error::Input(format!(
                    "sequence {i} has {} tokens; the model takes at most {max_len}",
                    s.len()
                )));
            }
            if let Some(&id) = s.iter().find(|&&id| id as usize >= c.vocab) {
                return Err(Error::Input(format!(
                    "token id {id} is outside the vocabulary of {}",
                    c.vocab
                )));
            }
        }
        // Layer l is the output of block l - 1: never run a block that is absent.
        let blocks: Vec<Arc<Block>> = self
            .blocks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let needed = layers.iter().copied().max().unwrap_or(0);
        if needed > blocks.len() {
            return Err(crate::backend::absent_block(needed, blocks.len()));
        }
        if layers.is_empty() {
            return Ok(seqs
                .iter()
                .map(|_| ForwardOutput { layers: Vec::new() })
                .collect());
        }
        let mut out = Vec::with_capacity(seqs.len());
        let mut start = 0;
        while start < seqs.len() {
            let mut end = start;
            let mut tokens = 0;
            while end < seqs.len() && (end == start || tokens + seqs[end].len() <= MAX_PASS_TOKENS)
            {
                tokens += seqs[end].len();
                end += 1;
            }
            out.extend(self.pass(isa, &blocks, &seqs[start..end], layers));
            start = end;
        }
        Ok(out)
    }

    /// One pass over a group of (validated) sequences.
    fn pass(
        &self,
        isa: Isa,
        blocks: &[Arc<Block>],
        seqs: &[&[u32]],
        layers: &[usize],
    ) -> Vec<ForwardOutput> {
        let h = self.config.hidden;
        let mut ranges: Vec<Range<usize>> = Vec::with_capacity(seqs.len());
        let mut at = 0;
        for s in seqs {
            ranges.push(at..at + s.len());
            at += s.len();
        }
        let mut x = self.embed(isa, seqs);
        let last = layers.iter().copied().max().unwrap_or(0);
        let mut kept: Vec<Option<Vec<f32>>> = vec![None; last + 1];
        let mut scratch = Scratch::default();
        for i in 0..last {
            if layers.contains(&i) {
                kept[i] = Some(x.clone());
            }
            self.block(isa, &blocks[i], &mut x, &ranges, &mut scratch);
        }
        drop(scratch);
        // The last layer asked for is the pass's final state: no copy.
        kept[last] = Some(x);
        ranges
            .iter()
            .map(|r| ForwardOutput {
                layers: layers
                    .iter()
                    .map(|&l| {
                        let all = kept[l].as_ref().expect("every requested layer is kept");
                        Array2::from_shape_vec((r.len(), h), all[r.start * h..r.end * h].to_vec())
                            .expect("rows × hidden values")
                    })
                    .collect(),
            })
            .collect()
    }

    /// Layer 0: word row (dequantised on lookup) + position row + token-type row, then LayerNorm.
    fn embed(&self, isa: Isa, seqs: &[&[u32]]) -> Vec<f32> {
        let h = self.config.hidden;
        let total: usize = seqs.iter().map(|s| s.len()).sum();
        let mut x = vec![0f32; total * h];
        let mut rows = x.chunks_exact_mut(h);
        // One read lock for the whole lookup: the pass sees one state of the table.
        let table = self.token_embd.read();
        for s in seqs {
            for (t, &id) in s.iter().enumerate() {
                let row = rows.next().expect("one row per token");
                table.dequantize_row_into(id as usize, row);
                let p = (self.config.position_offset + t) * h;
                for ((v, pe), te) in row
                    .iter_mut()
                    .zip(&self.position[p..p + h])
                    .zip(&self.token_type)
                {
                    *v += pe + te;
                }
            }
        }
        drop(table);
        self.norm_rows(isa, &mut x, None, &self.embd_norm);
        x
    }

    fn block(&self, isa: Isa, b: &Block, x: &mut [f32], ranges: &[Range<usize>], s: &mut Scratch) {
        let c = &self.config;
        let (h, rows) = (c.hidden, x.len() / c.hidden);
        for buf in [&mut s.q, &mut s.k, &mut s.v, &mut s.ctx] {
            buf.resize(rows * h, 0.0);
        }
        s.ff.resize(rows.min(FFN_CHUNK_ROWS) * c.ff, 0.0);

        // q, k and v read the same input: quantise it once.
        let shared = if b.query.is_quantized() || b.key.is_quantized() || b.value.is_quantized() {
            s.xq.quantize_into_with(isa, x, h);
            Some(&s.xq)
        } else {
            None
        };
        b.query.forward(isa, x, shared, &mut s.q);
        b.key.forward(isa, x, shared, &mut s.k);
        b.value.forward(isa, x, shared, &mut s.v);
        kernels::attention_with(
            isa,
            &s.q,
            &s.k,
            &s.v,
            ranges,
            c.heads,
            c.head_dim(),
            &mut s.ctx,
        );
        let proj = &mut s.q;
        b.attn_output.forward(isa, &s.ctx, None, proj);
        self.norm_rows(isa, x, Some(proj), &b.attn_norm);

        // Every row is computed on its own (activations are quantised per row), so the chunks
        // give exactly the whole-pass result.
        let act = c.activation;
        let proj = &mut s.k;
        for start in (0..rows).step_by(FFN_CHUNK_ROWS) {
            let n = (rows - start).min(FFN_CHUNK_ROWS);
            let ff = &mut s.ff[..n * c.ff];
            b.ffn_up
                .forward(isa, &x[start * h..(start + n) * h], None, ff);
            par::for_each_chunk_mut(ff, par::token_chunk(n, 1) * c.ff, |_, part| {
                kernels::activation_with(isa, part, act)
            });
            b.ffn_down
                .forward(isa, ff, None, &mut proj[start * h..(start + n) * h]);
        }
        self.norm_rows(isa, x, Some(proj), &b.output_norm);
    }

    /// `x ← LayerNorm(x + residual)` (or of `x` alone), rows split across threads.
    fn norm_rows(&self, isa: Isa, x: &mut [f32], residual: Option<&[f32]>, n: &LayerNorm) {
        let h = self.config.hidden;
        let eps = self.config.layer_norm_eps;
        let chunk = par::token_chunk(x.len() / h, 1) * h;
        par::for_each_chunk_mut(x, chunk, |i, part| {
            let res = residual.map(|r| &r[i * chunk..i * chunk + part.len()]);
            kernels::layer_norm_with(isa, part, res, h, &n.weight, &n.bias, eps)
        });
    }
}
