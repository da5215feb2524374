//! Hugging Face checkpoint folders → GGUF.
//!
//! Reads `config.json`, `model.safetensors` (or the shards listed in
//! `model.safetensors.index.json`) and `tokenizer.json` of a BERT (`model_type: bert`,
//! `BertModel` names with or without the `bert.` prefix) or XLM-RoBERTa / RoBERTa encoder
//! (names with or without `roberta.`), and builds the GGUF file `Model::from_gguf` loads.
//!
//! Quantisation policy: the word-embedding table and the six matrices of every block get the
//! requested type; everything that is small or numerically sensitive (LayerNorms, biases,
//! position and token-type tables) stays f32, as in llama.cpp's converter.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use bytes::Bytes;
use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors};
use serde_json::Value as Json;
use xlalign_core::gguf::{GgufFile, GgufWriter};
use xlalign_core::model::keys;
use xlalign_core::tensor::{quantize, DType, Tensor, QK};
use xlalign_core::tokenize::{self, TextTokenizer};

use crate::{Error, Progress, Result};

/// What to write besides the checkpoint's own content.
#[derive(Clone, Debug)]
pub struct HfOptions {
    /// Type of the word-embedding table and the block matrices.
    pub weight_type: DType,
    /// `general.name`; defaults to the folder's name.
    pub name: Option<String>,
    /// Text put before passages / queries (E5-style models need `"passage: "`, `"query: "`).
    pub passage_prefix: Option<String>,
    pub query_prefix: Option<String>,
    /// Recommended alignment settings; absent ones are left to the runtime's fallbacks.
    pub align_layer: Option<usize>,
    pub align_method: Option<String>,
    pub align_threshold: Option<f32>,
    /// Softmax temperature for the softmax alignment methods.
    pub align_temperature: Option<f32>,
}

impl HfOptions {
    pub fn new(weight_type: DType) -> HfOptions {
        HfOptions {
            weight_type,
            name: None,
            passage_prefix: None,
            query_prefix: None,
            align_layer: None,
            align_method: None,
            align_threshold: None,
            align_temperature: None,
        }
    }
}

/// Supported `model_type`s. They share one architecture and differ in where positions start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HfModelType {
    Bert,
    XlmRoberta,
    Roberta,
}

/// The parts of `config.json` the conversion uses.
#[derive(Clone, Debug, PartialEq)]
pub struct HfConfig {
    pub model_type: HfModelType,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub ff: usize,
    pub vocab: usize,
    /// Rows of the checkpoint's position table (514 for XLM-R base/large).
    pub max_positions: usize,
    pub type_vocab: usize,
    pub layer_norm_eps: f32,
    /// The GGUF `xlalign.hidden_act` value: `gelu` or `gelu_tanh`.
    pub hidden_act: &'static str,
    /// Leading position rows no token ever uses (RoBERTa numbers positions from
    /// `padding_idx + 1`); the converter drops them so positions start at 0.
    pub position_rows_dropped: usize,
    pub pad_token_id: Option<u32>,
}

impl HfConfig {
    /// Positions left after dropping the unused rows: `bert.context_length`.
    pub fn context_length(&self) -> usize {
        self.max_positions
            .saturating_sub(self.position_rows_dropped)
    }

    pub fn from_json(text: &str) -> Result<HfConfig> {
        let v: Json = serde_json::from_str(text)
            .map_err(|e| Error::Format(format!("config.json is not valid JSON: {e}")))?;
        if !v.is_object() {
            return Err(Error::Format("config.json is not a JSON object".into()));
        }
        let model_type = match v.get("model_type").and_then(|t| t.as_str()) {
            Some("bert") => HfModelType::Bert,
            Some("xlm-roberta") => HfModelType::XlmRoberta,
            Some("roberta") => HfModelType::Roberta,
            Some(other) => {
                return Err(Error::Unsupported(format!(
                    "model_type `{other}` in config.json (supported: bert, xlm-roberta, roberta)"
                )))
            }
            None => {
                return Err(Error::Format(
                    "config.json has no `model_type` string".into(),
                ))
            }
        };
        let num = |k: &str| -> Result<Option<usize>> {
            match v.get(k) {
                None | Some(Json::Null) => Ok(None),
                Some(x) => x.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
                    Error::Format(format!(
                        "config.json `{k}` is {x}, expected a non-negative integer"
                    ))
                }),
            }
        };
        let req = |k: &str| -> Result<usize> {
            num(k)?.ok_or_else(|| Error::Format(format!("config.json has no `{k}`")))
        };
        let flag = |k: &str| v.get(k).and_then(|x| x.as_bool()).unwrap_or(false);
        if flag("is_decoder") || flag("add_cross_attention") {
            return Err(Error::Unsupported(
                "config.json describes a decoder (is_decoder / add_cross_attention); only encoders convert".into(),
            ));
        }
        if let Some(p) = v.get("position_embedding_type").and_then(|x| x.as_str()) {
            if p != "absolute" {
                return Err(Error::Unsupported(format!(
                    "position_embedding_type `{p}` (only absolute position tables are supported)"
                )));
            }
        }
        let act = v
            .get("hidden_act")
            .and_then(|x| x.as_str())
            .unwrap_or("gelu");
        let hidden_act = match act {
            "gelu" | "gelu_python" => "gelu",
            // All three are the tanh approximation 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => "gelu_tanh",
            other => {
                return Err(Error::Unsupported(format!(
                    "hidden_act `{other}` (supported: gelu, gelu_new, gelu_pytorch_tanh)"
                )))
            }
        };
        let eps = match v.get("layer_norm_eps") {
            None | Some(Json::Null) => 1e-12,
            Some(x) => x
                .as_f64()
                .filter(|e| e.is_finite() && *e >= 0.0)
                .ok_or_else(|| {
                    Error::Format(format!(
                        "config.json `layer_norm_eps` is {x}, expected a number"
                    ))
                })?,
        };
        let pad_token_id = num("pad_token_id")?
            .map(|p| {
                u32::try_from(p).map_err(|_| {
                    Error::Format(format!("config.json `pad_token_id` {p} is too large"))
                })
            })
            .transpose()?;
        let max_positions = req("max_position_embeddings")?;
        let position_rows_dropped = match model_type {
            HfModelType::Bert => 0,
            // HF's RoBERTa embeddings number positions padding_idx+1, padding_idx+2, ...; the
            // config class defaults pad_token_id to 1.
            HfModelType::XlmRoberta | HfModelType::Roberta => {
                pad_token_id.unwrap_or(1) as usize + 1
            }
        };
        let cfg = HfConfig {
            model_type,
            hidden: req("hidden_size")?,
            layers: req("num_hidden_layers")?,
            heads: req("num_attention_heads")?,
            ff: req("intermediate_size")?,
            vocab: req("vocab_size")?,
            max_positions,
            type_vocab: num("type_vocab_size")?.unwrap_or(2),
            layer_norm_eps: eps as f32,
            hidden_act,
            position_rows_dropped,
            pad_token_id,
        };
        if cfg.hidden == 0 || cfg.heads == 0 || !cfg.hidden.is_multiple_of(cfg.heads) {
            return Err(Error::Unsupported(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                cfg.hidden, cfg.heads
            )));
        }
        if cfg.layers == 0 || cfg.ff == 0 || cfg.vocab == 0 || cfg.type_vocab == 0 {
            return Err(Error::Format(format!(
                "config.json has a zero size (layers {}, intermediate {}, vocab {}, token types {})",
                cfg.layers, cfg.ff, cfg.vocab, cfg.type_vocab
            )));
        }
        // Room for at least one token between the start and end markers.
        if cfg.max_positions < position_rows_dropped + 3 {
            let unused = match position_rows_dropped {
                0 => String::new(),
                n => format!(" once the {n} rows before padding_idx + 1 are dropped"),
            };
            return Err(Error::Format(format!(
                "max_position_embeddings {} leaves no room for text{unused}",
                cfg.max_positions
            )));
        }
        Ok(cfg)
    }
}

/// The result: a writer ready for `write_to`, the configuration read, and remarks for the user
/// (type fallbacks, ignored tensors, tokenizer settings removed).
pub struct HfConversion {
    pub writer: GgufWriter,
    pub config: HfConfig,
    pub notes: Vec<String>,
}

/// Converts the checkpoint folder `dir`. `progress` is called after each output tensor.
pub fn convert_hf(dir: &Path, opts: &HfOptions, progress: Progress) -> Result<HfConversion> {
    if !dir.is_dir() {
        return Err(Error::Input(format!(
            "{} is not a folder; expected a Hugging Face checkpoint folder with config.json, model.safetensors and tokenizer.json",
            dir.display()
        )));
    }
    let config_text = read_text(dir, "config.json")?;
    let config = HfConfig::from_json(&config_text)?;
    validate_options(opts, &config)?;
    let mut notes = Vec::new();

    let tok = prepare_tokenizer(dir, &config, &mut notes)?;
    let pooling = read_pooling(dir, &mut notes)?;
    let files = read_weights(dir)?;
    let mut source = Source::index(&files)?;
    source.detect_prefix()?;

    let name = opts.name.clone().unwrap_or_else(|| folder_name(dir));
    let file_type: u32 = match opts.weight_type {
        DType::F32 => 0,
        DType::F16 => 1,
        DType::Q4_0 => 2,
        DType::Q8_0 => 7,
    };
    let c = &config;
    let mut w = GgufWriter::new();
    w.set(keys::ARCHITECTURE, "bert")
        .set(keys::NAME, name)
        .set(keys::FILE_TYPE, file_type)
        .set(keys::CONTEXT_LENGTH, c.context_length() as u32)
        .set(keys::EMBEDDING_LENGTH, c.hidden as u32)
        .set(keys::FEED_FORWARD_LENGTH, c.ff as u32)
        .set(keys::BLOCK_COUNT, c.layers as u32)
        .set(keys::HEAD_COUNT, c.heads as u32)
        .set(keys::LAYER_NORM_EPS, c.layer_norm_eps)
        .set(keys::CAUSAL, false)
        .set(keys::POOLING_TYPE, pooling)
        .set(keys::TOKEN_TYPE_COUNT, c.type_vocab as u32)
        .set(keys::HIDDEN_ACT, c.hidden_act)
        .set(keys::POSITION_OFFSET, 0u32)
        .set(keys::TOKENIZER_MODEL, tok.ggml_model)
        .set(keys::BOS_ID, tok.bos)
        .set(keys::EOS_ID, tok.eos)
        .set(keys::PAD_ID, tok.pad)
        .set(keys::UNK_ID, tok.unk);
    tokenize::storage::write(&mut w, &tok.json)?;
    if let Some(p) = &opts.passage_prefix {
        w.set(keys::PREFIX_PASSAGE, p.as_str());
    }
    if let Some(p) = &opts.query_prefix {
        w.set(keys::PREFIX_QUERY, p.as_str());
    }
    if let Some(l) = opts.align_layer {
        w.set(keys::ALIGN_LAYER, l as u32);
    }
    if let Some(m) = &opts.align_method {
        w.set(keys::ALIGN_METHOD, m.as_str());
    }
    if let Some(t) = opts.align_threshold {
        w.set(keys::ALIGN_THRESHOLD, t);
    }
    if let Some(t) = opts.align_temperature {
        w.set(keys::ALIGN_TEMPERATURE, t);
    }
    if c.position_rows_dropped > 0 {
        notes.push(format!(
            "positions start at padding_idx + 1 = {} in this checkpoint: dropped the first {} rows of the \
             position table, context length {} → {}",
            c.position_rows_dropped,
            c.position_rows_dropped,
            c.max_positions,
            c.context_length()
        ));
    }

    let (h, ff) = (c.hidden, c.ff);
    let total = 5 + 16 * c.layers as u64;
    let mut done = 0u64;
    let mut fell_back = Vec::new();
    let mut step = |w: &mut GgufWriter, t: Tensor| -> Result<()> {
        w.add_tensor(t)?;
        done += 1;
        progress(done, total, "tensors");
        Ok(())
    };
    let big = opts.weight_type;

    let words = source.read("embeddings.word_embeddings.weight", &[c.vocab, h])?;
    step(
        &mut w,
        encode(
            "token_embd.weight",
            vec![c.vocab, h],
            &words,
            big,
            &mut fell_back,
        )?,
    )?;
    drop(words);
    let pos = source.read(
        "embeddings.position_embeddings.weight",
        &[c.max_positions, h],
    )?;
    let kept = &pos[c.position_rows_dropped * h..];
    step(
        &mut w,
        Tensor::from_f32("position_embd.weight", vec![c.context_length(), h], kept)?,
    )?;
    let types = source.read(
        "embeddings.token_type_embeddings.weight",
        &[c.type_vocab, h],
    )?;
    step(
        &mut w,
        Tensor::from_f32("token_types.weight", vec![c.type_vocab, h], &types)?,
    )?;
    for part in ["weight", "bias"] {
        let v = source.read(&format!("embeddings.LayerNorm.{part}"), &[h])?;
        step(
            &mut w,
            Tensor::from_f32(format!("token_embd_norm.{part}"), vec![h], &v)?,
        )?;
    }
    for l in 0..c.layers {
        let p = format!("encoder.layer.{l}");
        let per: [(&str, &str, usize, usize); 6] = [
            ("attention.self.query", "attn_q", h, h),
            ("attention.self.key", "attn_k", h, h),
            ("attention.self.value", "attn_v", h, h),
            ("attention.output.dense", "attn_output", h, h),
            ("intermediate.dense", "ffn_up", ff, h),
            ("output.dense", "ffn_down", h, ff),
        ];
        for (i, (src, dst, out, inp)) in per.into_iter().enumerate() {
            let wt = source.read(&format!("{p}.{src}.weight"), &[out, inp])?;
            let name = keys::layer(l, &format!("{dst}.weight"));
            step(
                &mut w,
                encode(&name, vec![out, inp], &wt, big, &mut fell_back)?,
            )?;
            let b = source.read(&format!("{p}.{src}.bias"), &[out])?;
            step(
                &mut w,
                Tensor::from_f32(keys::layer(l, &format!("{dst}.bias")), vec![out], &b)?,
            )?;
            // The norms sit after the attention output and after the feed-forward output.
            let norm = match i {
                3 => Some(("attention.output.LayerNorm", "attn_output_norm")),
                5 => Some(("output.LayerNorm", "layer_output_norm")),
                _ => None,
            };
            if let Some((nsrc, ndst)) = norm {
                for part in ["weight", "bias"] {
                    let v = source.read(&format!("{p}.{nsrc}.{part}"), &[h])?;
                    step(
                        &mut w,
                        Tensor::from_f32(keys::layer(l, &format!("{ndst}.{part}")), vec![h], &v)?,
                    )?;
                }
            }
        }
    }
    if !fell_back.is_empty() {
        notes.push(format!(
            "{} tensor(s) stored as f16 instead of {} because their rows are not a multiple of {QK} elements: {}",
            fell_back.len(),
            big.name(),
            summarize(&fell_back)
        ));
    }
    let ignored = source.unused(c.layers)?;
    if !ignored.is_empty() {
        notes.push(format!(
            "ignored {} tensor(s) the encoder does not use: {}",
            ignored.len(),
            summarize(&ignored)
        ));
    }
    if tok.vocab_size < c.vocab {
        // Common (e5-small: 250002 tokens, 250037 rows); the extra rows are never looked up.
        notes.push(format!(
            "the tokenizer has {} tokens and the embedding table {} rows; the extra rows are kept but unused",
            tok.vocab_size, c.vocab
        ));
    }
    Ok(HfConversion {
        writer: w,
        config,
        notes,
    })
}

fn validate_options(opts: &HfOptions, c: &HfConfig) -> Result<()> {
    if let Some(l) = opts.align_layer {
        if l > c.layers {
            return Err(Error::Input(format!(
                "alignment layer {l} is past the model's {} layers",
                c.layers
            )));
        }
    }
    if let Some(t) = opts.align_threshold {
        if !t.is_finite() {
            return Err(Error::Input(format!(
                "alignment threshold {t} is not a finite number"
            )));
        }
    }
    if let Some(t) = opts.align_temperature {
        if !(t.is_finite() && t > 0.0) {
            return Err(Error::Input(format!(
                "alignment temperature {t} is not a positive number"
            )));
        }
    }
    if let Some(m) = &opts.align_method {
        if m.trim().is_empty() {
            return Err(Error::Input("alignment method is empty".into()));
        }
    }
    Ok(())
}

fn folder_name(dir: &Path) -> String {
    let abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    abs.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "unnamed".into())
}

fn read_text(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    if !path.is_file() {
        return Err(Error::Input(format!(
            "{} has no {file}; expected a Hugging Face checkpoint folder with config.json, model.safetensors \
             and tokenizer.json",
            dir.display()
        )));
    }
    std::fs::read_to_string(&path)
        .map_err(|e| Error::Io(format!("cannot read {}: {e}", path.display())))
}

/// `f32` data → a tensor of `dtype`, falling back to f16 when rows do not fill whole blocks.
fn encode(
    name: &str,
    shape: Vec<usize>,
    values: &[f32],
    dtype: DType,
    fell_back: &mut Vec<String>,
) -> Result<Tensor> {
    let row = *shape.last().unwrap_or(&1);
    let dtype = if dtype.is_quantized() && !row.is_multiple_of(QK) {
        fell_back.push(name.to_string());
        DType::F16
    } else {
        dtype
    };
    Tensor::new(name, dtype, shape, Bytes::from(quantize(dtype, values)?))
}

fn summarize(names: &[String]) -> String {
    const SHOW: usize = 6;
    let mut s = names
        .iter()
        .take(SHOW)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOW {
        s.push_str(&format!(", … ({} more)", names.len() - SHOW));
    }
    s
}

/// `1_Pooling/config.json` of sentence-transformers folders says how the model was trained to
/// pool; without it, mean pooling (what E5 and most sentence encoders use).
fn read_pooling(dir: &Path, notes: &mut Vec<String>) -> Result<u32> {
    let path = dir.join("1_Pooling").join("config.json");
    if !path.is_file() {
        return Ok(1);
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Io(format!("cannot read {}: {e}", path.display())))?;
    let v: Json = serde_json::from_str(&text)
        .map_err(|e| Error::Format(format!("{} is not valid JSON: {e}", path.display())))?;
    let on = |k: &str| v.get(k).and_then(|x| x.as_bool()).unwrap_or(false);
    if on("pooling_mode_mean_tokens") {
        Ok(1)
    } else if on("pooling_mode_cls_token") {
        Ok(2)
    } else {
        notes.push(format!(
            "{} asks for a pooling mode this runtime lacks; sentence vectors will use mean pooling",
            path.display()
        ));
        Ok(1)
    }
}

// ---------------------------------------------------------------------------------------------
// Weights

/// Loads `model.safetensors`, or every shard named by `model.safetensors.index.json`.
fn read_weights(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let read = |file: &str| -> Result<(String, Vec<u8>)> {
        let path = dir.join(file);
        let bytes = std::fs::read(&path)
            .map_err(|e| Error::Io(format!("cannot read {}: {e}", path.display())))?;
        Ok((file.to_string(), bytes))
    };
    if dir.join("model.safetensors").is_file() {
        return Ok(vec![read("model.safetensors")?]);
    }
    if dir.join("model.safetensors.index.json").is_file() {
        let text = read_text(dir, "model.safetensors.index.json")?;
        let v: Json = serde_json::from_str(&text).map_err(|e| {
            Error::Format(format!(
                "model.safetensors.index.json is not valid JSON: {e}"
            ))
        })?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| {
                Error::Format("model.safetensors.index.json has no `weight_map` object".into())
            })?;
        let mut shards = map.values().filter_map(|f| f.as_str()).collect::<Vec<_>>();
        shards.sort_unstable();
        shards.dedup();
        if shards.is_empty() {
            return Err(Error::Format(
                "model.safetensors.index.json lists no files".into(),
            ));
        }
        return shards
            .into_iter()
            .map(|f| {
                // Shards live next to the index; anything else is not a checkpoint we wrote.
                if f.contains('/') || f.contains('\\') || f.starts_with('.') {
                    return Err(Error::Format(format!(
                        "model.safetensors.index.json names `{f}`, outside the folder"
                    )));
                }
                read(f)
            })
            .collect();
    }
    let torch = ["pytorch_model.bin", "model.pt", "tf_model.h5"]
        .iter()
        .find(|f| dir.join(f).is_file());
    Err(Error::Input(match torch {
        Some(f) => format!(
            "{} has {f} but no model.safetensors; only safetensors weights are read (convert with \
             `transformers`: model.save_pretrained(dir, safe_serialization=True))",
            dir.display()
        ),
        None => format!(
            "{} has no model.safetensors (or model.safetensors.index.json)",
            dir.display()
        ),
    }))
}

struct Source<'a> {
    tensors: HashMap<String, (&'a str, safetensors::tensor::TensorView<'a>)>,
    /// `""`, `"bert."` or `"roberta."`: how the checkpoint names the encoder's tensors.
    prefix: &'static str,
    used: HashSet<String>,
}

impl<'a> Source<'a> {
    fn index(files: &'a [(String, Vec<u8>)]) -> Result<Source<'a>> {
        let mut tensors = HashMap::new();
        for (file, bytes) in files {
            let st = SafeTensors::deserialize(bytes).map_err(|e| {
                Error::Format(format!("{file} is not a valid safetensors file: {e}"))
            })?;
            for (name, view) in st.tensors() {
                if let Some((other, _)) = tensors.insert(name.clone(), (file.as_str(), view)) {
                    return Err(Error::Format(format!(
                        "tensor `{name}` is in both {other} and {file}"
                    )));
                }
            }
        }
        Ok(Source {
            tensors,
            prefix: "",
            used: HashSet::new(),
        })
    }

    fn detect_prefix(&mut self) -> Result<()> {
        const ANCHOR: &str = "embeddings.word_embeddings.weight";
        for prefix in ["", "bert.", "roberta."] {
            if self.tensors.contains_key(&format!("{prefix}{ANCHOR}")) {
                self.prefix = prefix;
                return Ok(());
            }
        }
        let mut names: Vec<String> = self.tensors.keys().cloned().collect();
        names.sort();
        Err(Error::Format(format!(
            "the checkpoint has no `{ANCHOR}` (with or without a `bert.` / `roberta.` prefix); its tensors: {}",
            summarize(&names)
        )))
    }

    /// Reads tensor `name` (without the prefix) as f32 and checks its shape.
    fn read(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let full = format!("{}{name}", self.prefix);
        // Checkpoints converted from TF-era BERT keep `gamma` / `beta` for LayerNorm.
        let alt = full
            .strip_suffix("LayerNorm.weight")
            .map(|s| format!("{s}LayerNorm.gamma"))
            .or_else(|| {
                full.strip_suffix("LayerNorm.bias")
                    .map(|s| format!("{s}LayerNorm.beta"))
            });
        let key = if self.tensors.contains_key(&full) {
            full
        } else if let Some(a) = alt.filter(|a| self.tensors.contains_key(a)) {
            a
        } else {
            return Err(Error::MissingTensor(full));
        };
        let (file, view) = &self.tensors[&key];
        if view.shape() != shape {
            return Err(Error::Unsupported(format!(
                "tensor `{key}` in {file} has shape {:?}, config.json implies {shape:?}",
                view.shape()
            )));
        }
        let values = to_f32(&key, view.dtype(), view.data())?;
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::Format(format!(
                "tensor `{key}` holds a non-finite value ({}) at index {i}",
                values[i]
            )));
        }
        self.used.insert(key);
        Ok(values)
    }

    /// Tensors never read. Heads and buffers are expected; anything unknown inside the encoder
    /// means a different architecture, which would silently compute something else.
    fn unused(&self, layers: usize) -> Result<Vec<String>> {
        let mut rest: Vec<String> = self
            .tensors
            .keys()
            .filter(|k| !self.used.contains(*k))
            .cloned()
            .collect();
        rest.sort();
        for name in &rest {
            let local = name.strip_prefix(self.prefix).unwrap_or(name);
            if local.starts_with("encoder.")
                || (local.starts_with("embeddings.") && !local.ends_with("position_ids"))
            {
                return Err(Error::Unsupported(format!(
                    "tensor `{name}` is not part of a {layers}-layer BERT encoder (a different architecture, or \
                     config.json's num_hidden_layers is wrong)"
                )));
            }
        }
        Ok(rest)
    }
}

fn to_f32(name: &str, dtype: Dtype, data: &[u8]) -> Result<Vec<f32>> {
    Ok(match dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
            .collect(),
        other => {
            return Err(Error::Unsupported(format!(
                "tensor `{name}` has type {other:?} (supported: F32, F16, BF16, F64)"
            )))
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Tokenizer

struct PreparedTokenizer {
    json: String,
    ggml_model: &'static str,
    bos: u32,
    eos: u32,
    pad: u32,
    unk: u32,
    vocab_size: usize,
}

/// Reads tokenizer.json, finds the special ids, and checks the runtime tokenizer accepts it
/// and wraps texts the way the encoder expects.
fn prepare_tokenizer(
    dir: &Path,
    c: &HfConfig,
    notes: &mut Vec<String>,
) -> Result<PreparedTokenizer> {
    if !dir.join("tokenizer.json").is_file() {
        let slow = ["sentencepiece.bpe.model", "vocab.txt", "vocab.json"]
            .iter()
            .find(|f| dir.join(f).is_file());
        let hint = match slow {
            Some(f) => format!(
                " (it has {f}, a slow-tokenizer file; save the fast tokenizer with \
                 `AutoTokenizer.from_pretrained(dir).save_pretrained(dir)`)"
            ),
            None => String::new(),
        };
        return Err(Error::Input(format!(
            "{} has no tokenizer.json{hint}",
            dir.display()
        )));
    }
    let text = read_text(dir, "tokenizer.json")?;
    let mut v: Json = serde_json::from_str(&text)
        .map_err(|e| Error::Tokenizer(format!("tokenizer.json is not valid JSON: {e}")))?;
    // The runtime cuts long texts into windows itself; a stored truncation would silently drop
    // text, and padding would add tokens every position attends to.
    for key in ["truncation", "padding"] {
        if v.get(key).is_some_and(|x| !x.is_null()) {
            v[key] = Json::Null;
            notes.push(format!(
                "removed the `{key}` setting from tokenizer.json (windowing is done at run time)"
            ));
        }
    }
    let model_type = v
        .pointer("/model/type")
        .and_then(|t| t.as_str())
        .unwrap_or("");
    let ggml_model = match model_type {
        "Unigram" => "t5", // llama.cpp's name for SentencePiece Unigram
        "WordPiece" => "bert",
        "BPE" => "gpt2",
        "WordLevel" => "wordlevel",
        other => {
            return Err(Error::Tokenizer(format!(
                "tokenizer.json model type `{other}` is not a known one"
            )))
        }
    };
    let lookup = token_lookup(&v);
    let find = |cands: &[&str]| cands.iter().find_map(|t| lookup.get(*t).copied());

    let pad = c
        .pad_token_id
        .or_else(|| {
            v.pointer("/padding/pad_id")
                .and_then(|x| x.as_u64())
                .map(|x| x as u32)
        })
        .or_else(|| find(&["<pad>", "[PAD]"]))
        .ok_or_else(|| {
            Error::Tokenizer(
                "cannot tell the padding token (no pad_token_id, no <pad> or [PAD])".into(),
            )
        })?;
    let unk = match model_type {
        "Unigram" => v
            .pointer("/model/unk_id")
            .and_then(|x| x.as_u64())
            .map(|x| x as u32),
        _ => v
            .pointer("/model/unk_token")
            .and_then(|x| x.as_str())
            .and_then(|t| lookup.get(t).copied()),
    }
    .or_else(|| find(&["<unk>", "[UNK]"]))
    .ok_or_else(|| {
        Error::Tokenizer(
            "cannot tell the unknown token (no unk_id/unk_token, no <unk> or [UNK])".into(),
        )
    })?;
    let (bos, eos) = post_processor_wrap(v.get("post_processor").unwrap_or(&Json::Null), &lookup).ok_or_else(|| {
        Error::Tokenizer(
            "tokenizer.json has no post-processor adding start and end tokens ([CLS] … [SEP] or <s> … </s>); \
             the encoder was trained with them"
                .into(),
        )
    })?;
    let json = serde_json::to_string(&v).map_err(|e| Error::Tokenizer(e.to_string()))?;

    // Build the tokenizer exactly as the runtime will, from a metadata-only GGUF.
    let mut probe = GgufWriter::new();
    probe
        .set(keys::BOS_ID, bos)
        .set(keys::EOS_ID, eos)
        .set(keys::PAD_ID, pad)
        .set(keys::UNK_ID, unk);
    tokenize::storage::write(&mut probe, &json)?;
    let f = GgufFile::parse(Bytes::from(probe.to_bytes()?))?;
    let tk = TextTokenizer::from_gguf(&f)?;
    let vocab_size = tk.vocab_size();
    if vocab_size > c.vocab {
        return Err(Error::Tokenizer(format!(
            "tokenizer.json has {vocab_size} tokens but the embedding table only {} rows: not this model's tokenizer",
            c.vocab
        )));
    }
    for (what, id) in [
        ("start", bos),
        ("end", eos),
        ("padding", pad),
        ("unknown", unk),
    ] {
        if id as usize >= c.vocab {
            return Err(Error::Tokenizer(format!(
                "the {what} token id {id} is outside the {}-row vocabulary",
                c.vocab
            )));
        }
    }
    let sample = tk.encode("hello world", "")?;
    if sample.ids.len() < 3 || sample.ids[0] != bos || sample.ids[sample.ids.len() - 1] != eos {
        return Err(Error::Tokenizer(format!(
            "tokenizer.json encodes \"hello world\" as {:?}, expected it wrapped in ids {bos} … {eos}",
            sample.ids
        )));
    }
    Ok(PreparedTokenizer {
        json,
        ggml_model,
        bos,
        eos,
        pad,
        unk,
        vocab_size,
    })
}

/// token → id from `model.vocab` (a list for Unigram, a map otherwise) and `added_tokens`.
fn token_lookup(v: &Json) -> BTreeMap<String, u32> {
    let mut m = BTreeMap::new();
    match v.pointer("/model/vocab") {
        Some(Json::Array(items)) => {
            for (i, it) in items.iter().enumerate() {
                if let Some(t) = it.get(0).and_then(|t| t.as_str()) {
                    m.entry(t.to_string()).or_insert(i as u32);
                }
            }
        }
        Some(Json::Object(map)) => {
            for (t, id) in map {
                if let Some(id) = id.as_u64() {
                    m.insert(t.clone(), id as u32);
                }
            }
        }
        _ => {}
    }
    if let Some(Json::Array(items)) = v.get("added_tokens") {
        for it in items {
            if let (Some(t), Some(id)) = (
                it.get("content").and_then(|t| t.as_str()),
                it.get("id").and_then(|x| x.as_u64()),
            ) {
                m.insert(t.to_string(), id as u32);
            }
        }
    }
    m
}

/// The (start, end) ids the post-processor puts around a single text.
fn post_processor_wrap(p: &Json, lookup: &BTreeMap<String, u32>) -> Option<(u32, u32)> {
    match p.get("type").and_then(|t| t.as_str())? {
        "RobertaProcessing" | "BertProcessing" => {
            let id = |k: &str| p.get(k)?.get(1)?.as_u64().map(|x| x as u32);
            Some((id("cls")?, id("sep")?))
        }
        "TemplateProcessing" => {
            let single = p.get("single")?.as_array()?;
            let special = |item: &Json, first: bool| -> Option<u32> {
                let name = item.get("SpecialToken")?.get("id")?.as_str()?;
                let ids = p.get("special_tokens")?.get(name)?.get("ids")?.as_array()?;
                let id = if first { ids.first() } else { ids.last() };
                id.and_then(|x| x.as_u64())
                    .map(|x| x as u32)
                    .or_else(|| lookup.get(name).copied())
            };
            Some((
                special(single.first()?, true)?,
                special(single.last()?, false)?,
            ))
        }
        // e.g. [ByteLevel, TemplateProcessing]: the last one that adds tokens decides.
        "Sequence" => p
            .get("processors")?
            .as_array()?
            .iter()
            .rev()
            .find_map(|q| post_processor_wrap(q, lookup)),
        _ => None,
    }
}
