//! The encoder as described by a GGUF file: architecture hyper-parameters, weights, the
//! tokenizer and per-model defaults, all read from the file (nothing model-specific is a
//! constant in code).
//!
//! Tensor names and metadata keys follow llama.cpp's BERT conventions
//! (`token_embd.weight`, `blk.N.attn_q.weight`, `bert.embedding_length`, ...); keys llama.cpp
//! has no name for live under `xlalign.*`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::gguf::{GgufFile, TensorInfo, Value};
use crate::table::RowTable;
use crate::tensor::{DType, Tensor};
use crate::tokenize::TextTokenizer;

pub mod layout;

/// Metadata keys, in one place so the converter and the loader agree.
pub mod keys {
    pub const ARCHITECTURE: &str = "general.architecture";
    pub const NAME: &str = "general.name";
    pub const LICENSE: &str = "general.license";
    pub const SOURCE: &str = "general.source.url";
    pub const FILE_TYPE: &str = "general.file_type";
    pub const CONTEXT_LENGTH: &str = "bert.context_length";
    pub const EMBEDDING_LENGTH: &str = "bert.embedding_length";
    pub const FEED_FORWARD_LENGTH: &str = "bert.feed_forward_length";
    pub const BLOCK_COUNT: &str = "bert.block_count";
    pub const HEAD_COUNT: &str = "bert.attention.head_count";
    pub const LAYER_NORM_EPS: &str = "bert.attention.layer_norm_epsilon";
    pub const CAUSAL: &str = "bert.attention.causal";
    /// llama.cpp pooling types: 0 none, 1 mean, 2 cls.
    pub const POOLING_TYPE: &str = "bert.pooling_type";
    pub const TOKEN_TYPE_COUNT: &str = "tokenizer.ggml.token_type_count";
    pub const TOKENIZER_MODEL: &str = "tokenizer.ggml.model";
    pub const BOS_ID: &str = "tokenizer.ggml.bos_token_id";
    pub const EOS_ID: &str = "tokenizer.ggml.eos_token_id";
    pub const PAD_ID: &str = "tokenizer.ggml.padding_token_id";
    pub const UNK_ID: &str = "tokenizer.ggml.unknown_token_id";
    /// The whole `tokenizer.json`: how files store WordPiece, BPE and WordLevel tokenizers,
    /// and how files written before the packed form stored Unigram ones too.
    pub const HF_TOKENIZER_JSON: &str = "tokenizer.huggingface.json";
    /// u8 array: a Unigram tokenizer in packed form, compressed (see `tokenize::storage`): a
    /// zstd frame holding the five parts below (`tokenizer.json` with an empty `model.vocab`
    /// list, then the arrays), each after its length. `UNIGRAM_PIECE_COUNT` and
    /// `UNIGRAM_SCORE_TYPE` stay keys of their own.
    pub const TOKENIZER_PACKED_ZSTD: &str = "xlalign.tokenizer.packed.zstd";
    /// u64: the bytes of the frame's content.
    pub const TOKENIZER_PACKED_SIZE: &str = "xlalign.tokenizer.packed.size";
    /// A Unigram tokenizer in packed form (see `tokenize::packed`) as files before the zstd
    /// frame stored it: `tokenizer.json` with an empty `model.vocab` list, and the vocabulary
    /// in the arrays below.
    pub const TOKENIZER_JSON_NO_VOCAB: &str = "xlalign.tokenizer.json_without_vocab";
    pub const UNIGRAM_PIECE_COUNT: &str = "xlalign.tokenizer.unigram.piece_count";
    /// u8 array: a LEB128 varint per piece, its length in bytes.
    pub const UNIGRAM_PIECE_LENGTHS: &str = "xlalign.tokenizer.unigram.piece_lengths";
    /// String: the pieces back to back.
    pub const UNIGRAM_PIECES: &str = "xlalign.tokenizer.unigram.pieces";
    /// `f32` or `f64`: the bit patterns `UNIGRAM_SCORES` codes.
    pub const UNIGRAM_SCORE_TYPE: &str = "xlalign.tokenizer.unigram.score_type";
    /// u8 array: zigzag LEB128 varints, each score's bits minus the previous score's.
    pub const UNIGRAM_SCORES: &str = "xlalign.tokenizer.unigram.scores";
    /// u8 array, two bits per piece: the f64 score is the f32 one (0), one unit in the last
    /// place above (1) or below (2) it. Empty with `f64` scores.
    pub const UNIGRAM_SCORE_CORRECTIONS: &str = "xlalign.tokenizer.unigram.score_corrections";
    /// `gelu` (exact erf form) or `gelu_tanh`.
    pub const HIDDEN_ACT: &str = "xlalign.hidden_act";
    /// Position id of the first token (0 for BERT; XLM-R checkpoints are converted by dropping
    /// the unused rows, as llama.cpp does, so they store 0 too).
    pub const POSITION_OFFSET: &str = "xlalign.position_offset";
    pub const PREFIX_PASSAGE: &str = "xlalign.prefix.passage";
    pub const PREFIX_QUERY: &str = "xlalign.prefix.query";
    pub const ALIGN_LAYER: &str = "xlalign.align.layer";
    pub const ALIGN_METHOD: &str = "xlalign.align.method";
    pub const ALIGN_THRESHOLD: &str = "xlalign.align.threshold";
    /// Softmax temperature: dot products are divided by it (its best value grows with the
    /// hidden vectors' norm at the alignment layer).
    pub const ALIGN_TEMPERATURE: &str = "xlalign.align.temperature";

    pub fn layer(i: usize, t: &str) -> String {
        format!("blk.{i}.{t}")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `0.5·x·(1 + erf(x/√2))`, as Hugging Face's `gelu`.
    GeluErf,
    /// The tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// Mean over all tokens, `<s>` and `</s>` included.
    Mean,
    /// The first token's vector.
    Cls,
}

/// Hyper-parameters of a post-LayerNorm BERT-style encoder.
#[derive(Clone, Debug, PartialEq)]
pub struct EncoderConfig {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub ff: usize,
    pub vocab: usize,
    pub max_positions: usize,
    pub type_vocab: usize,
    pub layer_norm_eps: f32,
    pub activation: Activation,
    pub position_offset: usize,
    pub pooling: Pooling,
}

impl EncoderConfig {
    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }

    /// Tokens (`<s>` and `</s>` included) one sequence may have: the position table's rows
    /// from the offset on. Zero for a configuration whose offset leaves none (a config made
    /// by hand: a model file's is checked when read), so that every encoder refuses its
    /// sequences instead of computing a wrapped-around length.
    pub fn max_sequence_tokens(&self) -> usize {
        self.max_positions.saturating_sub(self.position_offset)
    }

    /// Content tokens that fit one window between `<s>` and `</s>`.
    pub fn max_content_tokens(&self) -> usize {
        self.max_positions
            .saturating_sub(self.position_offset.saturating_add(2))
    }

    fn from_gguf(f: &GgufFile) -> Result<EncoderConfig> {
        let arch = f.get_str(keys::ARCHITECTURE)?;
        if arch != "bert" {
            return Err(Error::Unsupported(format!(
                "architecture `{arch}` (this build runs `bert` encoders, XLM-R included)"
            )));
        }
        let u = |k: &str| -> Result<usize> { Ok(f.get_u64(k)? as usize) };
        let activation = match f
            .get(keys::HIDDEN_ACT)
            .and_then(|v| v.as_str())
            .unwrap_or("gelu")
        {
            "gelu" => Activation::GeluErf,
            "gelu_tanh" | "gelu_new" | "gelu_pytorch_tanh" => Activation::GeluTanh,
            other => return Err(Error::Unsupported(format!("activation `{other}`"))),
        };
        let pooling = match f
            .get(keys::POOLING_TYPE)
            .and_then(|v| v.as_u64())
            .unwrap_or(1)
        {
            1 => Pooling::Mean,
            2 => Pooling::Cls,
            other => {
                return Err(Error::Unsupported(format!(
                    "pooling type {other} (1 = mean, 2 = cls)"
                )))
            }
        };
        if f.get(keys::CAUSAL)
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
        {
            return Err(Error::Unsupported(
                "causal attention (this is an encoder runtime)".into(),
            ));
        }
        let token_embd = f
            .info("token_embd.weight")
            .ok_or_else(|| Error::MissingTensor("token_embd.weight".into()))?;
        let cfg = EncoderConfig {
            hidden: u(keys::EMBEDDING_LENGTH)?,
            layers: u(keys::BLOCK_COUNT)?,
            heads: u(keys::HEAD_COUNT)?,
            ff: u(keys::FEED_FORWARD_LENGTH)?,
            vocab: token_embd.shape[0],
            max_positions: u(keys::CONTEXT_LENGTH)?,
            type_vocab: f
                .get(keys::TOKEN_TYPE_COUNT)
                .and_then(|v| v.as_u64())
                .unwrap_or(2) as usize,
            layer_norm_eps: f.get_f64(keys::LAYER_NORM_EPS)? as f32,
            activation,
            position_offset: f
                .get(keys::POSITION_OFFSET)
                .and_then(|v| v.as_u64())
                .unwrap_or(0) as usize,
            pooling,
        };
        if cfg.hidden == 0 || cfg.heads == 0 || !cfg.hidden.is_multiple_of(cfg.heads) {
            return Err(Error::Unsupported(format!(
                "hidden size {} is not divisible by {} heads",
                cfg.hidden, cfg.heads
            )));
        }
        if cfg.layers == 0
            || cfg.ff == 0
            || cfg.max_positions <= cfg.position_offset.saturating_add(2)
        {
            return Err(Error::Unsupported(format!(
                "implausible configuration {cfg:?}"
            )));
        }
        Ok(cfg)
    }
}

/// `y = x·Wᵀ + b` with `W` as `[out, in]`.
#[derive(Clone, Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Vec<f32>,
}

impl Linear {
    pub fn out_features(&self) -> usize {
        self.weight.shape[0]
    }
    pub fn in_features(&self) -> usize {
        self.weight.shape[1]
    }
}

#[derive(Clone, Debug)]
pub struct LayerNorm {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

#[derive(Clone, Debug)]
pub struct EncoderLayer {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub attn_output: Linear,
    pub attn_norm: LayerNorm,
    pub ffn_up: Linear,
    pub ffn_down: Linear,
    pub output_norm: LayerNorm,
}

/// All weights. Large matrices stay in their stored type; small vectors are f32.
#[derive(Clone, Debug)]
pub struct EncoderWeights {
    /// `[vocab, hidden]`, any supported type; rows are dequantised on lookup. Its rows can
    /// be rewritten in place while the model runs (progressive loading), and clones of the
    /// weights, the model's and the CPU backend's, share them.
    pub token_embd: RowTable,
    /// `[max_positions, hidden]`, f32; shared with the backends that read it.
    pub position_embd: Arc<[f32]>,
    /// `[type_vocab, hidden]`, f32.
    pub token_types: Vec<f32>,
    pub embd_norm: LayerNorm,
    /// The transformer blocks read with the model: all `config.layers` of them, or the
    /// first ones while the model is still arriving ([`Model::from_gguf_with_blocks`]);
    /// later blocks go into the running backend ([`crate::backend::WriteBlocks`]), and a
    /// backend refuses to run a block it does not have.
    pub layers: Vec<EncoderLayer>,
}

impl EncoderWeights {
    /// Reads the weights with the first `blocks` transformer blocks (all of them normally;
    /// fewer while a model is still arriving, see [`Model::from_gguf_with_blocks`]).
    fn from_gguf(f: &GgufFile, c: &EncoderConfig, blocks: usize) -> Result<EncoderWeights> {
        let t = |name: &str, shape: &[usize]| -> Result<Tensor> {
            let t = f.tensor(name)?;
            t.expect_shape(shape)?;
            Ok(t)
        };
        let vec = |name: &str, n: usize| -> Result<Vec<f32>> { Ok(t(name, &[n])?.to_f32_vec()) };
        let norm = |prefix: &str| -> Result<LayerNorm> {
            Ok(LayerNorm {
                weight: vec(&format!("{prefix}.weight"), c.hidden)?,
                bias: vec(&format!("{prefix}.bias"), c.hidden)?,
            })
        };
        let token_embd = f.tensor("token_embd.weight")?;
        token_embd.expect_shape(&[c.vocab, c.hidden])?;
        let token_embd = RowTable::from_tensor(token_embd)?;
        let layers = (0..blocks.min(c.layers))
            .map(|i| EncoderLayer::read(c, i, |name| f.tensor(name)))
            .collect::<Result<Vec<_>>>()?;
        let position_embd = t("position_embd.weight", &[c.max_positions, c.hidden])?
            .to_f32_vec()
            .into();
        let token_types = t("token_types.weight", &[c.type_vocab, c.hidden])?.to_f32_vec();
        Ok(EncoderWeights {
            token_embd,
            position_embd,
            token_types,
            embd_norm: norm("token_embd_norm")?,
            layers,
        })
    }
}

/// The tensor names of block `i` (as [`EncoderLayer::read`] reads them).
pub fn block_tensor_names(i: usize) -> [String; 16] {
    [
        "attn_q.weight",
        "attn_q.bias",
        "attn_k.weight",
        "attn_k.bias",
        "attn_v.weight",
        "attn_v.bias",
        "attn_output.weight",
        "attn_output.bias",
        "attn_output_norm.weight",
        "attn_output_norm.bias",
        "ffn_up.weight",
        "ffn_up.bias",
        "ffn_down.weight",
        "ffn_down.bias",
        "layer_output_norm.weight",
        "layer_output_norm.bias",
    ]
    .map(|t| keys::layer(i, t))
}

/// The byte range of the file that holds every tensor of block `i` (from the first byte
/// of its first tensor to the last byte of its last), so that a block can be fetched alone.
/// `None` if a tensor of the block is missing from `tensors`.
pub fn block_range(tensors: &[TensorInfo], i: usize) -> Option<Range<usize>> {
    let mut range: Option<Range<usize>> = None;
    for name in block_tensor_names(i) {
        let t = tensors.iter().find(|t| t.name == name)?;
        let (a, b) = (t.offset, t.offset + t.n_bytes);
        range = Some(match range {
            Some(r) => r.start.min(a)..r.end.max(b),
            None => a..b,
        });
    }
    range
}

/// Reads block `i` from `bytes`, the file's bytes from offset `start` on (at least
/// [`block_range`]), with the tensor directory `tensors`: how a block that arrives after
/// the model was built is read. The tensors share `bytes`.
pub fn read_block(
    c: &EncoderConfig,
    tensors: &[TensorInfo],
    i: usize,
    start: usize,
    bytes: &Bytes,
) -> Result<EncoderLayer> {
    EncoderLayer::read(c, i, |name| {
        let info = tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| Error::MissingTensor(name.to_string()))?;
        let at = info
            .offset
            .checked_sub(start)
            .filter(|at| at + info.n_bytes <= bytes.len())
            .ok_or_else(|| {
                Error::Format(format!(
                    "`{name}` lies outside the {} bytes read from offset {start}",
                    bytes.len()
                ))
            })?;
        Tensor::new(
            &info.name,
            info.dtype,
            info.shape.clone(),
            bytes.slice(at..at + info.n_bytes),
        )
    })
}

impl EncoderLayer {
    /// Block `i`, its tensors found by `tensor(name)` and checked against the configuration.
    fn read(
        c: &EncoderConfig,
        i: usize,
        tensor: impl Fn(&str) -> Result<Tensor>,
    ) -> Result<EncoderLayer> {
        if i >= c.layers {
            return Err(Error::Input(format!(
                "block {i} does not exist (the model has {} blocks)",
                c.layers
            )));
        }
        let t = |name: &str, shape: &[usize]| -> Result<Tensor> {
            let t = tensor(name)?;
            t.expect_shape(shape)?;
            Ok(t)
        };
        let vec = |name: &str, n: usize| -> Result<Vec<f32>> { Ok(t(name, &[n])?.to_f32_vec()) };
        let p = |n: &str| keys::layer(i, n);
        let norm = |prefix: &str| -> Result<LayerNorm> {
            Ok(LayerNorm {
                weight: vec(&format!("{prefix}.weight"), c.hidden)?,
                bias: vec(&format!("{prefix}.bias"), c.hidden)?,
            })
        };
        let linear = |prefix: &str, out: usize, inp: usize| -> Result<Linear> {
            let weight = t(&format!("{prefix}.weight"), &[out, inp])?;
            if weight.dtype.is_quantized() && !inp.is_multiple_of(crate::tensor::QK) {
                return Err(Error::Unsupported(format!(
                    "`{prefix}.weight` is quantised but its rows are not whole blocks"
                )));
            }
            Ok(Linear {
                weight,
                bias: vec(&format!("{prefix}.bias"), out)?,
            })
        };
        Ok(EncoderLayer {
            query: linear(&p("attn_q"), c.hidden, c.hidden)?,
            key: linear(&p("attn_k"), c.hidden, c.hidden)?,
            value: linear(&p("attn_v"), c.hidden, c.hidden)?,
            attn_output: linear(&p("attn_output"), c.hidden, c.hidden)?,
            attn_norm: norm(&p("attn_output_norm"))?,
            ffn_up: linear(&p("ffn_up"), c.ff, c.hidden)?,
            ffn_down: linear(&p("ffn_down"), c.hidden, c.ff)?,
            output_norm: norm(&p("layer_output_norm"))?,
        })
    }
}

/// Settings a model file recommends for alignment and embedding.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelDefaults {
    pub passage_prefix: String,
    pub query_prefix: String,
    pub align_layer: usize,
    pub align_method: String,
    pub align_threshold: f32,
    pub align_temperature: f32,
}

impl ModelDefaults {
    /// The recommendations in a file's metadata, with the fallbacks for a file that makes
    /// none; `layers` is the model's block count.
    pub fn from_metadata(m: &BTreeMap<String, Value>, layers: usize) -> ModelDefaults {
        let s = |k: &str| m.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
        ModelDefaults {
            passage_prefix: s(keys::PREFIX_PASSAGE),
            query_prefix: s(keys::PREFIX_QUERY),
            align_layer: recommended_layer(m, layers),
            align_method: m
                .get(keys::ALIGN_METHOD)
                .and_then(|v| v.as_str())
                .unwrap_or("softmax")
                .to_string(),
            align_threshold: m
                .get(keys::ALIGN_THRESHOLD)
                .and_then(|v| v.as_f64())
                .unwrap_or(0.3) as f32,
            align_temperature: m
                .get(keys::ALIGN_TEMPERATURE)
                .and_then(|v| v.as_f64())
                .filter(|t| *t > 0.0)
                .unwrap_or(1.0) as f32,
        }
    }
}

/// The alignment layer a file recommends (its `xlalign.align.layer`), at most `layers`.
fn recommended_layer(m: &BTreeMap<String, Value>, layers: usize) -> usize {
    m.get(keys::ALIGN_LAYER)
        .and_then(|v| v.as_u64())
        .map(|v| v as usize)
        // Without a recommendation, a layer a bit past the middle aligns best for most encoders:
        // ⌈2·layers/3⌉, written so that a block count read from a file cannot overflow it.
        .unwrap_or(layers - layers / 3)
        .min(layers)
}

/// The blocks an alignment with the file's recommended options runs: blocks
/// `0..first_blocks` give the hidden state of the recommended layer. `None` when the
/// metadata gives no block count. (The sentence cosine pools the last layer, so it needs
/// every block.)
pub fn first_blocks(m: &BTreeMap<String, Value>) -> Option<usize> {
    let layers = m.get(keys::BLOCK_COUNT)?.as_u64()? as usize;
    Some(recommended_layer(m, layers))
}

/// A loaded model: everything needed to go from text to vectors.
#[derive(Clone, Debug)]
pub struct Model {
    pub name: String,
    pub config: EncoderConfig,
    pub weights: EncoderWeights,
    pub tokenizer: TextTokenizer,
    pub defaults: ModelDefaults,
    /// Dominant storage type of the matrices (for `info`).
    pub weight_type: DType,
    pub file_len: usize,
}

impl Model {
    /// Parses and validates a GGUF model held in memory (or memory-mapped).
    pub fn from_bytes(bytes: Bytes) -> Result<Model> {
        Model::from_gguf(&GgufFile::parse(bytes)?)
    }

    pub fn from_gguf(f: &GgufFile) -> Result<Model> {
        Model::from_gguf_with_blocks(f, usize::MAX)
    }

    /// As [`Model::from_gguf`], reading only the first `blocks` transformer blocks (the
    /// others' bytes are not looked at, so they may still be absent): progressive loading
    /// starts with the blocks the first alignment needs ([`first_blocks`]) and adds the
    /// others to the running backend as they arrive.
    pub fn from_gguf_with_blocks(f: &GgufFile, blocks: usize) -> Result<Model> {
        let config = EncoderConfig::from_gguf(f)?;
        let weights = EncoderWeights::from_gguf(f, &config, blocks)?;
        let tokenizer = TextTokenizer::from_gguf(f)?;
        let defaults = ModelDefaults::from_metadata(&f.metadata, config.layers);
        // From the directory, so that a model read without its blocks says the same.
        let weight_type = f
            .info(&keys::layer(0, "attn_q.weight"))
            .map(|t| t.dtype)
            .unwrap_or(weights.token_embd.dtype);
        Ok(Model {
            name: f
                .get(keys::NAME)
                .and_then(|v| v.as_str())
                .unwrap_or("unnamed")
                .to_string(),
            config,
            weights,
            tokenizer,
            defaults,
            weight_type,
            file_len: f.file_len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ⌈2·layers/3⌉ without a recommendation, for any block count a file may claim (a count
    /// near `u64::MAX` once overflowed `2·layers` in the progressive loader; see
    /// `tests/fuzz-regressions/gguf_header/`).
    #[test]
    fn first_blocks_of_any_block_count() {
        let with_count = |n: u64| BTreeMap::from([(keys::BLOCK_COUNT.to_string(), Value::U64(n))]);
        for (n, first) in [(0, 0), (1, 1), (2, 2), (3, 2), (12, 8), (13, 9), (14, 10)] {
            assert_eq!(first_blocks(&with_count(n)), Some(first), "{n} blocks");
        }
        let n = usize::MAX;
        assert_eq!(first_blocks(&with_count(n as u64)), Some(n - n / 3));
        let mut m = with_count(24);
        m.insert(keys::ALIGN_LAYER.into(), Value::U64(u64::MAX));
        assert_eq!(first_blocks(&m), Some(24));
    }
}
