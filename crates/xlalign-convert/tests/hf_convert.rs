//! Hugging Face checkpoint → GGUF: tiny random checkpoints written here (safetensors,
//! config.json, a hand-written tokenizer.json), converted, loaded back with `Model`, and run
//! through the CPU encoder against a float64 reference written from Hugging Face's semantics.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use half::{bf16, f16};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use serde_json::{json, Value};
use xlalign_convert::hf::{convert_hf, HfConversion, HfModelType, HfOptions};
use xlalign_convert::Error;
use xlalign_core::cpu::CpuBackend;
use xlalign_core::gguf::GgufFile;
use xlalign_core::model::{keys, Activation, Pooling};
use xlalign_core::tensor::DType;
use xlalign_core::Model;

const WORDS: [&str; 12] = [
    "hello", "world", "the", "cat", "sat", "on", "mat", "a", "dog", "runs", "far", "away",
];

#[derive(Clone)]
struct Spec {
    model_type: &'static str,
    hidden: usize,
    layers: usize,
    heads: usize,
    ff: usize,
    /// Extra embedding rows beyond the tokenizer's tokens.
    spare_rows: usize,
    positions: usize,
    type_vocab: usize,
    prefix: &'static str,
    dtype: Dtype,
    act: &'static str,
    pad: u32,
    eps: f64,
}

impl Spec {
    fn bert() -> Spec {
        Spec {
            model_type: "bert",
            hidden: 64,
            layers: 2,
            heads: 4,
            ff: 128,
            spare_rows: 3,
            positions: 32,
            type_vocab: 2,
            prefix: "",
            dtype: Dtype::F32,
            act: "gelu",
            pad: 0,
            eps: 1e-12,
        }
    }

    /// XLM-R: `roberta.` names, bf16 storage, positions from pad + 1 = 2, tanh GELU.
    fn xlmr() -> Spec {
        Spec {
            model_type: "xlm-roberta",
            positions: 34,
            type_vocab: 1,
            prefix: "roberta.",
            dtype: Dtype::BF16,
            act: "gelu_new",
            pad: 1,
            eps: 1e-5,
            spare_rows: 0,
            ..Spec::bert()
        }
    }

    fn is_roberta(&self) -> bool {
        self.model_type != "bert"
    }

    fn vocab(&self) -> usize {
        4 + WORDS.len() + self.spare_rows
    }
}

/// A checkpoint under construction; tests change fields before `write`.
struct Ckpt {
    spec: Spec,
    config: Value,
    /// Canonical (unprefixed) name → (shape, values as stored, i.e. after bf16/f16 rounding).
    tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    /// Extra raw tensors (name as written, dtype, shape, bytes).
    raw: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
    tokenizer: Value,
    dir: tempfile::TempDir,
}

struct Rng(u64);
impl Rng {
    /// Uniform in [-1, 1).
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize, scale: f32, base: f32) -> Vec<f32> {
        (0..n).map(|_| base + scale * self.next()).collect()
    }
}

fn round_to(dtype: Dtype, v: f32) -> f32 {
    match dtype {
        Dtype::F16 => f16::from_f32(v).to_f32(),
        Dtype::BF16 => bf16::from_f32(v).to_f32(),
        _ => v,
    }
}

impl Ckpt {
    fn new(spec: Spec) -> Ckpt {
        let s = &spec;
        let (h, ff) = (s.hidden, s.ff);
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (s.hidden * 31 + s.positions) as u64);
        let mut t = BTreeMap::new();
        let mut put = |name: &str, shape: Vec<usize>, v: Vec<f32>| {
            let v = v.into_iter().map(|x| round_to(s.dtype, x)).collect();
            t.insert(name.to_string(), (shape, v));
        };
        // Uniform(-1,1)·√3 has unit variance: projections of unit-variance inputs stay O(1),
        // so attention is far from uniform and GELU is non-linear.
        let lin = |out: usize, inp: usize| (1.732 / (inp as f32).sqrt(), vec![out, inp]);
        put(
            "embeddings.word_embeddings.weight",
            vec![s.vocab(), h],
            rng.vec(s.vocab() * h, 1.7, 0.0),
        );
        put(
            "embeddings.position_embeddings.weight",
            vec![s.positions, h],
            rng.vec(s.positions * h, 0.8, 0.0),
        );
        put(
            "embeddings.token_type_embeddings.weight",
            vec![s.type_vocab, h],
            rng.vec(s.type_vocab * h, 0.8, 0.0),
        );
        put("embeddings.LayerNorm.weight", vec![h], rng.vec(h, 0.2, 1.0));
        put("embeddings.LayerNorm.bias", vec![h], rng.vec(h, 0.2, 0.0));
        for l in 0..s.layers {
            for (name, out, inp) in [
                ("attention.self.query", h, h),
                ("attention.self.key", h, h),
                ("attention.self.value", h, h),
                ("attention.output.dense", h, h),
                ("intermediate.dense", ff, h),
                ("output.dense", h, ff),
            ] {
                let (scale, shape) = lin(out, inp);
                put(
                    &format!("encoder.layer.{l}.{name}.weight"),
                    shape,
                    rng.vec(out * inp, scale, 0.0),
                );
                put(
                    &format!("encoder.layer.{l}.{name}.bias"),
                    vec![out],
                    rng.vec(out, 0.2, 0.0),
                );
            }
            for name in ["attention.output.LayerNorm", "output.LayerNorm"] {
                put(
                    &format!("encoder.layer.{l}.{name}.weight"),
                    vec![h],
                    rng.vec(h, 0.2, 1.0),
                );
                put(
                    &format!("encoder.layer.{l}.{name}.bias"),
                    vec![h],
                    rng.vec(h, 0.2, 0.0),
                );
            }
        }
        let config = json!({
            "model_type": s.model_type,
            "hidden_size": h,
            "num_hidden_layers": s.layers,
            "num_attention_heads": s.heads,
            "intermediate_size": ff,
            "hidden_act": s.act,
            "max_position_embeddings": s.positions,
            "type_vocab_size": s.type_vocab,
            "vocab_size": s.vocab(),
            "layer_norm_eps": s.eps,
            "pad_token_id": s.pad,
            "position_embedding_type": "absolute",
        });
        let tokenizer = if s.is_roberta() {
            unigram_tokenizer()
        } else {
            wordlevel_tokenizer()
        };
        // Heads and buffers a real checkpoint carries; the converter must skip them.
        let raw = vec![
            (
                format!("{}pooler.dense.weight", s.prefix),
                Dtype::F32,
                vec![h, h],
                vec![0u8; h * h * 4],
            ),
            (
                format!("{}embeddings.position_ids", s.prefix),
                Dtype::I64,
                vec![1, s.positions],
                vec![0u8; s.positions * 8],
            ),
            (
                "lm_head.bias".to_string(),
                Dtype::F32,
                vec![s.vocab()],
                vec![0u8; s.vocab() * 4],
            ),
        ];
        Ckpt {
            spec,
            config,
            tensors: t,
            raw,
            tokenizer,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn safetensors_bytes(&self, names: &dyn Fn(&str) -> bool) -> Vec<u8> {
        let d = self.spec.dtype;
        let enc: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .filter(|(n, _)| names(n))
            .map(|(n, (shape, v))| {
                let mut b = Vec::new();
                for x in v {
                    match d {
                        Dtype::F32 => b.extend_from_slice(&x.to_le_bytes()),
                        Dtype::F16 => b.extend_from_slice(&f16::from_f32(*x).to_le_bytes()),
                        Dtype::BF16 => b.extend_from_slice(&bf16::from_f32(*x).to_le_bytes()),
                        _ => unreachable!(),
                    }
                }
                (format!("{}{n}", self.spec.prefix), shape.clone(), b)
            })
            .collect();
        let mut views: Vec<(String, TensorView)> = enc
            .iter()
            .map(|(n, s, b)| (n.clone(), TensorView::new(d, s.clone(), b).unwrap()))
            .collect();
        for (n, dt, s, b) in &self.raw {
            if names(n) {
                views.push((n.clone(), TensorView::new(*dt, s.clone(), b).unwrap()));
            }
        }
        safetensors::serialize(views, None).unwrap()
    }

    fn write_meta(&self) {
        std::fs::write(
            self.path().join("config.json"),
            serde_json::to_string_pretty(&self.config).unwrap(),
        )
        .unwrap();
        std::fs::write(
            self.path().join("tokenizer.json"),
            serde_json::to_string_pretty(&self.tokenizer).unwrap(),
        )
        .unwrap();
    }

    fn write(&self) -> &Path {
        self.write_meta();
        std::fs::write(
            self.path().join("model.safetensors"),
            self.safetensors_bytes(&|_| true),
        )
        .unwrap();
        self.path()
    }

    /// The same tensors in two shards with an index, as `save_pretrained` does for big models.
    fn write_sharded(&self) -> &Path {
        self.write_meta();
        let first = |n: &str| n.contains("embeddings") || n.contains("layer.0.");
        let a = self.safetensors_bytes(&|n| first(n));
        let b = self.safetensors_bytes(&|n| !first(n));
        std::fs::write(self.path().join("model-00001-of-00002.safetensors"), a).unwrap();
        std::fs::write(self.path().join("model-00002-of-00002.safetensors"), b).unwrap();
        let mut map = serde_json::Map::new();
        for n in self.tensors.keys() {
            let file = if first(n) {
                "model-00001-of-00002.safetensors"
            } else {
                "model-00002-of-00002.safetensors"
            };
            map.insert(format!("{}{n}", self.spec.prefix), json!(file));
        }
        for (n, ..) in &self.raw {
            let file = if first(n) {
                "model-00001-of-00002.safetensors"
            } else {
                "model-00002-of-00002.safetensors"
            };
            map.insert(n.clone(), json!(file));
        }
        let index = json!({"metadata": {"total_size": 0}, "weight_map": map});
        std::fs::write(
            self.path().join("model.safetensors.index.json"),
            index.to_string(),
        )
        .unwrap();
        self.path()
    }

    fn get(&self, name: &str) -> &[f32] {
        &self.tensors[name].1
    }
}

fn added(id: u32, content: &str) -> Value {
    json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
           "normalized": false, "special": true})
}

/// BERT-style: WordLevel, [CLS] $A [SEP], and a truncation setting the converter must drop.
fn wordlevel_tokenizer() -> Value {
    let mut vocab = serde_json::Map::new();
    let special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"];
    for (i, t) in special.iter().chain(WORDS.iter()).enumerate() {
        vocab.insert(t.to_string(), json!(i));
    }
    let added_tokens: Vec<Value> = special
        .iter()
        .enumerate()
        .map(|(i, t)| added(i as u32, t))
        .collect();
    json!({
        "version": "1.0",
        "truncation": {"direction": "Right", "max_length": 5, "strategy": "LongestFirst", "stride": 0},
        "padding": null,
        "added_tokens": added_tokens,
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}
            }
        },
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    })
}

/// XLM-R-style: Unigram pieces with ▁, Metaspace, <s> $A </s>.
fn unigram_tokenizer() -> Value {
    let mut vocab = vec![
        json!(["<s>", 0.0]),
        json!(["<pad>", 0.0]),
        json!(["</s>", 0.0]),
        json!(["<unk>", 0.0]),
    ];
    for (i, w) in WORDS.iter().enumerate() {
        vocab.push(json!([format!("▁{w}"), -2.0 - 0.1 * i as f64]));
    }
    let added_tokens: Vec<Value> = ["<s>", "<pad>", "</s>", "<unk>"]
        .iter()
        .enumerate()
        .map(|(i, t)| added(i as u32, t))
        .collect();
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens,
        "normalizer": null,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true},
        "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0],
                           "trim_offsets": true, "add_prefix_space": true},
        "decoder": null,
        "model": {"type": "Unigram", "unk_id": 3, "vocab": vocab, "byte_fallback": false}
    })
}

fn convert(dir: &Path, opts: &HfOptions) -> Result<HfConversion, Error> {
    let mut calls = 0;
    let r = convert_hf(dir, opts, &mut |done, total, _| {
        assert!(done <= total);
        calls += 1;
    });
    if r.is_ok() {
        assert!(calls > 0, "progress was never reported");
    }
    r
}

fn load(c: &HfConversion) -> (Model, GgufFile) {
    let bytes = Bytes::from(c.writer.to_bytes().unwrap());
    (
        Model::from_bytes(bytes.clone()).unwrap(),
        GgufFile::parse(bytes).unwrap(),
    )
}

fn assert_close(what: &str, got: &[f32], want: &[f32], tol: impl Fn(usize) -> f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol(i),
            "{what}[{i}]: {g} vs {w} (tolerance {})",
            tol(i)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Successful conversions

#[test]
fn bert_f32_keeps_every_value_and_the_configuration() {
    let ck = Ckpt::new(Spec::bert());
    let opts = HfOptions {
        name: Some("tiny-bert".into()),
        ..HfOptions::new(DType::F32)
    };
    let c = convert(ck.write(), &opts).unwrap();
    assert_eq!(c.config.model_type, HfModelType::Bert);
    let (m, f) = load(&c);
    let s = &ck.spec;
    let cfg = &m.config;
    assert_eq!(
        (cfg.hidden, cfg.layers, cfg.heads, cfg.ff),
        (s.hidden, s.layers, s.heads, s.ff)
    );
    assert_eq!(
        (cfg.vocab, cfg.max_positions, cfg.type_vocab),
        (s.vocab(), s.positions, s.type_vocab)
    );
    assert_eq!(cfg.layer_norm_eps, 1e-12);
    assert_eq!(cfg.activation, Activation::GeluErf);
    assert_eq!(cfg.position_offset, 0);
    assert_eq!(cfg.pooling, Pooling::Mean);
    assert_eq!(m.name, "tiny-bert");
    assert_eq!(m.weight_type, DType::F32);
    assert_eq!(f.get_u64(keys::FILE_TYPE).unwrap(), 0);
    assert_eq!(f.get_str(keys::TOKENIZER_MODEL).unwrap(), "wordlevel");
    let t = &m.tokenizer;
    assert_eq!((t.bos, t.eos, t.pad, t.unk), (2, 3, 0, 1));
    // 5 embedding tensors + 16 per block; pooler, MLM head and position_ids skipped, with a note.
    assert_eq!(c.writer.tensors().len(), 5 + 16 * s.layers);
    assert!(
        c.notes.iter().any(|n| n.contains("ignored 3 tensor")),
        "{:?}",
        c.notes
    );
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("removed the `truncation`")),
        "{:?}",
        c.notes
    );
    // No alignment or prefix keys unless asked for: the runtime's fallbacks apply.
    assert!(f.get(keys::ALIGN_LAYER).is_none() && f.get(keys::PREFIX_PASSAGE).is_none());
    assert_eq!(m.defaults.passage_prefix, "");

    let w = &m.weights;
    assert_eq!(
        w.token_embd.to_f32_vec(),
        ck.get("embeddings.word_embeddings.weight")
    );
    assert_eq!(
        &w.position_embd[..],
        ck.get("embeddings.position_embeddings.weight")
    );
    assert_eq!(
        w.token_types,
        ck.get("embeddings.token_type_embeddings.weight")
    );
    assert_eq!(w.embd_norm.weight, ck.get("embeddings.LayerNorm.weight"));
    let l1 = &w.layers[1];
    assert_eq!(
        l1.query.weight.to_f32_vec(),
        ck.get("encoder.layer.1.attention.self.query.weight")
    );
    assert_eq!(l1.ffn_up.weight.shape, vec![s.ff, s.hidden]);
    assert_eq!(
        l1.ffn_down.weight.to_f32_vec(),
        ck.get("encoder.layer.1.output.dense.weight")
    );
    assert_eq!(
        l1.ffn_down.bias,
        ck.get("encoder.layer.1.output.dense.bias")
    );
    assert_eq!(
        l1.attn_norm.bias,
        ck.get("encoder.layer.1.attention.output.LayerNorm.bias")
    );
    assert_eq!(
        l1.output_norm.weight,
        ck.get("encoder.layer.1.output.LayerNorm.weight")
    );
}

#[test]
fn quantised_types_apply_to_matrices_only() {
    let ck = Ckpt::new(Spec::bert());
    ck.write();
    for dtype in [DType::F16, DType::Q8_0, DType::Q4_0] {
        let c = convert(ck.path(), &HfOptions::new(dtype)).unwrap();
        let (m, f) = load(&c);
        let want_ft = match dtype {
            DType::F16 => 1,
            DType::Q4_0 => 2,
            _ => 7,
        };
        assert_eq!(f.get_u64(keys::FILE_TYPE).unwrap(), want_ft);
        for t in c.writer.tensors() {
            let matrix =
                t.name == "token_embd.weight" || (t.name.starts_with("blk.") && t.shape.len() == 2);
            let want = if matrix { dtype } else { DType::F32 };
            assert_eq!(t.dtype, want, "{} under {}", t.name, dtype.name());
        }
        // Error bound per element: half a quantisation step of its block.
        let check = |what: &str, got: Vec<f32>, src: &[f32]| {
            let step = |i: usize| -> f32 {
                let b = &src[i / 32 * 32..(i / 32 + 1) * 32];
                let amax = b.iter().fold(0f32, |m, v| m.max(v.abs()));
                match dtype {
                    DType::F16 => src[i].abs() / 1024.0 + 1e-7,
                    DType::Q8_0 => amax / 127.0 * 0.5 + amax * 1e-3,
                    // ggml's Q4_0 maps the signed extreme to −8, so the other sign can clip a whole step.
                    _ => amax / 8.0 + amax * 2e-3,
                }
            };
            assert_close(what, &got, src, |i| step(i) * 1.01);
        };
        check(
            "token_embd",
            m.weights.token_embd.to_f32_vec(),
            ck.get("embeddings.word_embeddings.weight"),
        );
        check(
            "blk.0.attn_v",
            m.weights.layers[0].value.weight.to_f32_vec(),
            ck.get("encoder.layer.0.attention.self.value.weight"),
        );
        check(
            "blk.1.ffn_down",
            m.weights.layers[1].ffn_down.weight.to_f32_vec(),
            ck.get("encoder.layer.1.output.dense.weight"),
        );
        assert_eq!(
            m.weights.layers[0].value.bias,
            ck.get("encoder.layer.0.attention.self.value.bias")
        );
        assert_eq!(
            &m.weights.position_embd[..],
            ck.get("embeddings.position_embeddings.weight")
        );
    }
}

#[test]
fn rows_that_are_not_whole_blocks_fall_back_to_f16() {
    // hidden 48: every matrix reading the hidden state has 48-element rows; ffn_down reads 96.
    let ck = Ckpt::new(Spec {
        hidden: 48,
        heads: 4,
        ff: 96,
        ..Spec::bert()
    });
    let c = convert(ck.write(), &HfOptions::new(DType::Q4_0)).unwrap();
    let (m, _) = load(&c);
    let l0 = &m.weights.layers[0];
    assert_eq!(m.weights.token_embd.dtype, DType::F16);
    assert_eq!(l0.query.weight.dtype, DType::F16);
    assert_eq!(l0.ffn_up.weight.dtype, DType::F16);
    assert_eq!(l0.ffn_down.weight.dtype, DType::Q4_0);
    let note = c
        .notes
        .iter()
        .find(|n| n.contains("stored as f16"))
        .expect("a note about the fallback");
    assert!(
        note.contains("blk.0.attn_q.weight") && !note.contains("ffn_down"),
        "{note}"
    );
}

#[test]
fn xlm_roberta_drops_the_unused_position_rows() {
    let ck = Ckpt::new(Spec::xlmr());
    let c = convert(ck.write(), &HfOptions::new(DType::F32)).unwrap();
    assert_eq!(c.config.model_type, HfModelType::XlmRoberta);
    assert_eq!(c.config.position_rows_dropped, 2);
    assert!(
        c.notes.iter().any(|n| n.contains("34 → 32")),
        "{:?}",
        c.notes
    );
    let (m, f) = load(&c);
    assert_eq!(m.config.max_positions, 32);
    assert_eq!(f.get_u64(keys::CONTEXT_LENGTH).unwrap(), 32);
    assert_eq!(m.config.position_offset, 0);
    assert_eq!(m.config.type_vocab, 1);
    assert_eq!(m.config.activation, Activation::GeluTanh);
    assert!((m.config.layer_norm_eps - 1e-5).abs() < 1e-12);
    assert_eq!(f.get_str(keys::TOKENIZER_MODEL).unwrap(), "t5");
    let t = &m.tokenizer;
    assert_eq!((t.bos, t.eos, t.pad, t.unk), (0, 2, 1, 3));
    let h = ck.spec.hidden;
    // bf16 → f32 is exact, so the remaining rows are the source rows 2.. bit for bit.
    assert_eq!(
        &m.weights.position_embd[..],
        &ck.get("embeddings.position_embeddings.weight")[2 * h..]
    );
    assert_eq!(
        m.weights.token_embd.to_f32_vec(),
        ck.get("embeddings.word_embeddings.weight")
    );
}

#[test]
fn options_become_metadata() {
    let ck = Ckpt::new(Spec::bert());
    let opts = HfOptions {
        passage_prefix: Some("passage: ".into()),
        query_prefix: Some("query: ".into()),
        align_layer: Some(1),
        align_method: Some("argmax".into()),
        align_threshold: Some(0.25),
        align_temperature: Some(2.5),
        ..HfOptions::new(DType::F16)
    };
    let c = convert(ck.write(), &opts).unwrap();
    let (m, f) = load(&c);
    let d = &m.defaults;
    assert_eq!(
        (d.passage_prefix.as_str(), d.query_prefix.as_str()),
        ("passage: ", "query: ")
    );
    assert_eq!(
        (d.align_layer, d.align_method.as_str(), d.align_threshold),
        (1, "argmax", 0.25)
    );
    assert_eq!(d.align_temperature, 2.5);
    // Without --name, the folder's name.
    let folder = ck.path().file_name().unwrap().to_str().unwrap();
    assert_eq!(m.name, folder);
    // The embedded tokenizer is the checkpoint's, minus the truncation setting.
    let embedded: Value =
        serde_json::from_str(f.get_str(keys::HF_TOKENIZER_JSON).unwrap()).unwrap();
    let mut want = ck.tokenizer.clone();
    want["truncation"] = Value::Null;
    assert_eq!(embedded, want);
}

#[test]
fn sentence_transformers_cls_pooling_is_kept() {
    let ck = Ckpt::new(Spec::bert());
    ck.write();
    std::fs::create_dir(ck.path().join("1_Pooling")).unwrap();
    std::fs::write(
        ck.path().join("1_Pooling/config.json"),
        r#"{"word_embedding_dimension": 64, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#,
    )
    .unwrap();
    let (m, _) = load(&convert(ck.path(), &HfOptions::new(DType::F32)).unwrap());
    assert_eq!(m.config.pooling, Pooling::Cls);
}

#[test]
fn sharded_checkpoint_gives_the_same_file() {
    let ck = Ckpt::new(Spec::xlmr());
    let single = convert(
        ck.write(),
        &HfOptions {
            name: Some("x".into()),
            ..HfOptions::new(DType::Q8_0)
        },
    )
    .unwrap();
    let sharded_ck = Ckpt::new(Spec::xlmr());
    let sharded = convert(
        sharded_ck.write_sharded(),
        &HfOptions {
            name: Some("x".into()),
            ..HfOptions::new(DType::Q8_0)
        },
    )
    .unwrap();
    assert!(!sharded_ck.path().join("model.safetensors").exists());
    assert_eq!(
        single.writer.to_bytes().unwrap(),
        sharded.writer.to_bytes().unwrap()
    );
}

// ---------------------------------------------------------------------------------------------
// Numerics: the CPU encoder on the converted file against a float64 reference of the source

/// Position id of the first token as Hugging Face numbers them: RoBERTa from padding_idx + 1.
fn hf_first_position(s: &Spec) -> usize {
    if s.is_roberta() {
        s.pad as usize + 1
    } else {
        0
    }
}

/// Hugging Face's forward pass on the checkpoint's own tensors, positions from `first_pos`.
fn reference(ck: &Ckpt, ids: &[u32], layer: usize, first_pos: usize) -> Vec<Vec<f64>> {
    let s = &ck.spec;
    let (h, n) = (s.hidden, ids.len());
    let g = |name: &str| -> Vec<f64> { ck.get(name).iter().map(|&v| v as f64).collect() };
    let ln = |x: &mut [f64], w: &[f64], b: &[f64]| {
        let mu = x.iter().sum::<f64>() / h as f64;
        let var = x.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / h as f64;
        for (i, v) in x.iter_mut().enumerate() {
            *v = (*v - mu) / (var + s.eps).sqrt() * w[i] + b[i];
        }
    };
    let linear = |x: &[Vec<f64>], w: &[f64], b: &[f64], out: usize| -> Vec<Vec<f64>> {
        x.iter()
            .map(|row| {
                (0..out)
                    .map(|o| {
                        b[o] + row
                            .iter()
                            .zip(&w[o * row.len()..])
                            .map(|(a, c)| a * c)
                            .sum::<f64>()
                    })
                    .collect()
            })
            .collect()
    };
    let (we, pe, te) = (
        g("embeddings.word_embeddings.weight"),
        g("embeddings.position_embeddings.weight"),
        g("embeddings.token_type_embeddings.weight"),
    );
    let (lw, lb) = (
        g("embeddings.LayerNorm.weight"),
        g("embeddings.LayerNorm.bias"),
    );
    let mut x: Vec<Vec<f64>> = ids
        .iter()
        .enumerate()
        .map(|(t, &id)| {
            let mut r: Vec<f64> = (0..h)
                .map(|j| we[id as usize * h + j] + pe[(first_pos + t) * h + j] + te[j])
                .collect();
            ln(&mut r, &lw, &lb);
            r
        })
        .collect();
    let d = h / s.heads;
    for l in 0..layer {
        let p = |n: &str| format!("encoder.layer.{l}.{n}");
        let lin = |x: &[Vec<f64>], n: &str, out: usize| {
            linear(
                x,
                &g(&p(&format!("{n}.weight"))),
                &g(&p(&format!("{n}.bias"))),
                out,
            )
        };
        let (q, k, v) = (
            lin(&x, "attention.self.query", h),
            lin(&x, "attention.self.key", h),
            lin(&x, "attention.self.value", h),
        );
        let mut ctx = vec![vec![0.0; h]; n];
        for hd in 0..s.heads {
            for i in 0..n {
                let sc: Vec<f64> = (0..n)
                    .map(|j| {
                        (0..d)
                            .map(|c| q[i][hd * d + c] * k[j][hd * d + c])
                            .sum::<f64>()
                            / (d as f64).sqrt()
                    })
                    .collect();
                let mx = sc.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = sc.iter().map(|v| (v - mx).exp()).collect();
                let z: f64 = e.iter().sum();
                for c in 0..d {
                    ctx[i][hd * d + c] = (0..n).map(|j| e[j] / z * v[j][hd * d + c]).sum();
                }
            }
        }
        let ao = lin(&ctx, "attention.output.dense", h);
        let (nw, nb) = (
            g(&p("attention.output.LayerNorm.weight")),
            g(&p("attention.output.LayerNorm.bias")),
        );
        for (xr, ar) in x.iter_mut().zip(&ao) {
            xr.iter_mut().zip(ar).for_each(|(a, b)| *a += b);
            ln(xr, &nw, &nb);
        }
        let mut up = lin(&x, "intermediate.dense", s.ff);
        for v in up.iter_mut().flatten() {
            *v = if s.act == "gelu" {
                0.5 * *v * (1.0 + erf(*v / std::f64::consts::SQRT_2))
            } else {
                0.5 * *v
                    * (1.0
                        + ((2.0 / std::f64::consts::PI).sqrt() * (*v + 0.044715 * *v * *v * *v))
                            .tanh())
            };
        }
        let down = lin(&up, "output.dense", h);
        let (nw, nb) = (
            g(&p("output.LayerNorm.weight")),
            g(&p("output.LayerNorm.bias")),
        );
        for (xr, dr) in x.iter_mut().zip(&down) {
            xr.iter_mut().zip(dr).for_each(|(a, b)| *a += b);
            ln(xr, &nw, &nb);
        }
    }
    x
}

/// erf to ~1e-15 (series for small |x|, continued fraction beyond), std having none.
fn erf(x: f64) -> f64 {
    let a = x.abs();
    let r = if a < 2.5 {
        let (mut term, mut sum, mut k) = (a, a, 0.0);
        loop {
            k += 1.0;
            term *= -a * a / k;
            let add = term / (2.0 * k + 1.0);
            sum += add;
            if add.abs() < 1e-17 {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        // erfc(a) = exp(-a²)/√π · 1/(a + 1/2/(a + 1/(a + 3/2/(a + ...))))
        let mut f = a;
        for k in (1..60).rev() {
            f = a + (k as f64 / 2.0) / f;
        }
        1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / f
    };
    r.copysign(x)
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    dot / (a.iter().map(|x| x * x).sum::<f64>().sqrt()
        * b.iter().map(|x| x * x).sum::<f64>().sqrt())
}

/// Runs the converted model on `text` and returns (ids, worst per-token cosine to the reference).
fn worst_cosine(ck: &Ckpt, dtype: DType, text: &str) -> (Vec<u32>, f64) {
    let (m, _) = load(&convert(ck.path(), &HfOptions::new(dtype)).unwrap());
    let ids = m.tokenizer.encode(text, "").unwrap().ids;
    let layer = ck.spec.layers;
    let out = CpuBackend::new(&m)
        .unwrap()
        .forward_sync(&[&ids], &[layer])
        .unwrap();
    let got = &out[0].layers[0];
    let want = reference(ck, &ids, layer, hf_first_position(&ck.spec));
    assert_eq!(got.shape(), &[ids.len(), ck.spec.hidden]);
    let worst = (0..ids.len())
        .map(|t| {
            cosine(
                &got.row(t).iter().map(|&v| v as f64).collect::<Vec<_>>(),
                &want[t],
            )
        })
        .fold(1.0, f64::min);
    (ids, worst)
}

#[test]
fn erf_reference_is_accurate() {
    for (x, want) in [
        (0.5, 0.520_499_877_813_046_5),
        (1.0, 0.842_700_792_949_714_9),
        (3.0, 0.999_977_909_503_001_4),
    ] {
        assert!(
            (erf(x) - want).abs() < 1e-14 && (erf(-x) + want).abs() < 1e-14,
            "erf({x}) = {}",
            erf(x)
        );
    }
}

#[test]
fn converted_models_compute_what_the_checkpoint_does() {
    let text = "hello world the cat sat on the mat a dog runs far away";
    for spec in [Spec::bert(), Spec::xlmr()] {
        let ck = Ckpt::new(spec);
        ck.write();
        // f32 conversion: only float32 rounding in the runtime separates it from the reference.
        let (ids, f32_cos) = worst_cosine(&ck, DType::F32, text);
        // The whole text arrives: the stored truncation (5 tokens for BERT) was removed.
        assert_eq!(ids.len(), 15, "{ids:?}");
        assert!(
            f32_cos > 1.0 - 1e-8,
            "{}: f32 worst token cosine {f32_cos}",
            ck.spec.model_type
        );
        let (_, q8_cos) = worst_cosine(&ck, DType::Q8_0, text);
        assert!(
            q8_cos > 0.9995,
            "{}: q8_0 worst token cosine {q8_cos}",
            ck.spec.model_type
        );
        eprintln!(
            "{}: worst per-token 1 − cosine: f32 {:.1e}, q8_0 {:.1e}",
            ck.spec.model_type,
            1.0 - f32_cos,
            1.0 - q8_cos
        );
    }
}

#[test]
fn the_reference_notices_a_position_shift() {
    // Guards the XLM-R test above against being unable to fail: a converter that kept the
    // padding rows (positions off by two) must score well below the bound.
    let ck = Ckpt::new(Spec::xlmr());
    ck.write();
    let (m, _) = load(&convert(ck.path(), &HfOptions::new(DType::F32)).unwrap());
    let ids = m
        .tokenizer
        .encode("hello world the cat sat on the mat", "")
        .unwrap()
        .ids;
    let want = reference(&ck, &ids, 2, 0);
    let got = CpuBackend::new(&m)
        .unwrap()
        .forward_sync(&[&ids], &[2])
        .unwrap();
    let worst = (0..ids.len())
        .map(|t| {
            cosine(
                &got[0].layers[0]
                    .row(t)
                    .iter()
                    .map(|&v| v as f64)
                    .collect::<Vec<_>>(),
                &want[t],
            )
        })
        .fold(1.0, f64::min);
    eprintln!("positions off by two: worst token cosine {worst:.3}");
    assert!(worst < 0.99, "shifted positions still give cosine {worst}");
}

// ---------------------------------------------------------------------------------------------
// Errors: clear messages, never a panic

fn err(dir: &Path) -> String {
    match convert(dir, &HfOptions::new(DType::F16)) {
        Ok(_) => panic!("conversion of {} succeeded", dir.display()),
        Err(e) => e.to_string(),
    }
}

fn expect_err(dir: &Path, needles: &[&str]) {
    let e = err(dir);
    for n in needles {
        assert!(e.contains(n), "error {e:?} does not mention {n:?}");
    }
}

#[test]
fn missing_files_are_named() {
    let ck = Ckpt::new(Spec::bert());
    expect_err(&ck.path().join("nope"), &["is not a folder"]);
    ck.write();
    std::fs::remove_file(ck.path().join("tokenizer.json")).unwrap();
    std::fs::write(ck.path().join("vocab.txt"), "[PAD]\n").unwrap();
    expect_err(ck.path(), &["no tokenizer.json", "vocab.txt"]);
    ck.write();
    std::fs::remove_file(ck.path().join("model.safetensors")).unwrap();
    expect_err(ck.path(), &["no model.safetensors"]);
    std::fs::write(ck.path().join("pytorch_model.bin"), b"x").unwrap();
    expect_err(ck.path(), &["pytorch_model.bin", "safetensors"]);
    std::fs::remove_file(ck.path().join("config.json")).unwrap();
    expect_err(ck.path(), &["no config.json"]);
}

#[test]
fn bad_configs_are_refused() {
    let cases: [(&str, Value, &[&str]); 7] = [
        (
            "model_type",
            json!("gpt2"),
            &["model_type `gpt2`", "supported"],
        ),
        ("hidden_act", json!("relu"), &["hidden_act `relu`"]),
        ("num_attention_heads", json!(5), &["not divisible"]),
        ("hidden_size", json!("64"), &["hidden_size"]),
        (
            "position_embedding_type",
            json!("relative_key"),
            &["relative_key"],
        ),
        ("is_decoder", json!(true), &["decoder"]),
        (
            "max_position_embeddings",
            json!(2),
            &["max_position_embeddings"],
        ),
    ];
    for (key, value, needles) in cases {
        let mut ck = Ckpt::new(Spec::bert());
        ck.config[key] = value;
        expect_err(ck.write(), needles);
    }
    let mut ck = Ckpt::new(Spec::bert());
    ck.config.as_object_mut().unwrap().remove("model_type");
    expect_err(ck.write(), &["no `model_type`"]);
    ck.write();
    std::fs::write(ck.path().join("config.json"), "{ not json").unwrap();
    expect_err(ck.path(), &["config.json is not valid JSON"]);
    // RoBERTa positions need pad + 1 unused rows plus room for text.
    let mut ck = Ckpt::new(Spec::xlmr());
    ck.config["max_position_embeddings"] = json!(4);
    expect_err(ck.write(), &["leaves no room"]);
}

#[test]
fn bad_tensors_are_refused() {
    let q = "encoder.layer.1.attention.self.query.weight";
    // A transposed feed-forward matrix.
    let mut ck = Ckpt::new(Spec::bert());
    let (_, v) = ck
        .tensors
        .remove("encoder.layer.0.intermediate.dense.weight")
        .unwrap();
    ck.tensors.insert(
        "encoder.layer.0.intermediate.dense.weight".into(),
        (vec![64, 128], v),
    );
    expect_err(
        ck.write(),
        &["intermediate.dense.weight", "[64, 128]", "[128, 64]"],
    );
    // A missing bias.
    let mut ck = Ckpt::new(Spec::bert());
    ck.tensors.remove("encoder.layer.1.attention.self.key.bias");
    expect_err(ck.write(), &["encoder.layer.1.attention.self.key.bias"]);
    // No encoder at all.
    let mut ck = Ckpt::new(Spec::bert());
    ck.tensors.remove("embeddings.word_embeddings.weight");
    expect_err(ck.write(), &["embeddings.word_embeddings.weight", "prefix"]);
    // More blocks than config.json says.
    let mut ck = Ckpt::new(Spec::bert());
    ck.config["num_hidden_layers"] = json!(1);
    expect_err(ck.write(), &["encoder.layer.1.", "1-layer"]);
    // A vocabulary mismatch between config and weights.
    let mut ck = Ckpt::new(Spec::bert());
    ck.config["vocab_size"] = json!(ck.spec.vocab() + 1);
    expect_err(ck.write(), &["word_embeddings", "shape"]);
    // A NaN weight.
    let mut ck = Ckpt::new(Spec::bert());
    ck.tensors.get_mut(q).unwrap().1[5] = f32::NAN;
    expect_err(ck.write(), &[q, "non-finite"]);
    // Integer weights.
    let mut ck = Ckpt::new(Spec::bert());
    ck.tensors.remove(q);
    ck.raw
        .push((q.into(), Dtype::I32, vec![64, 64], vec![0u8; 64 * 64 * 4]));
    expect_err(ck.write(), &[q, "I32"]);
    // A truncated file.
    let ck = Ckpt::new(Spec::bert());
    ck.write();
    let bytes = std::fs::read(ck.path().join("model.safetensors")).unwrap();
    std::fs::write(
        ck.path().join("model.safetensors"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    expect_err(
        ck.path(),
        &["model.safetensors is not a valid safetensors file"],
    );
    // A shard index pointing outside the folder.
    let ck = Ckpt::new(Spec::bert());
    ck.write_sharded();
    std::fs::write(
        ck.path().join("model.safetensors.index.json"),
        r#"{"weight_map": {"a": "../x.safetensors"}}"#,
    )
    .unwrap();
    expect_err(ck.path(), &["outside the folder"]);
}

#[test]
fn bad_tokenizers_are_refused() {
    let mut ck = Ckpt::new(Spec::bert());
    ck.tokenizer["post_processor"] = Value::Null;
    expect_err(ck.write(), &["post-processor"]);
    // A tokenizer with more tokens than the embedding table has rows.
    let mut ck = Ckpt::new(Spec {
        spare_rows: 0,
        ..Spec::bert()
    });
    ck.tokenizer["model"]["vocab"]["extra"] = json!(16);
    expect_err(ck.write(), &["17 tokens", "16 rows"]);
    let mut ck = Ckpt::new(Spec::bert());
    ck.tokenizer["model"]["type"] = json!("Magic");
    expect_err(ck.write(), &["Magic"]);
    let ck = Ckpt::new(Spec::bert());
    ck.write();
    std::fs::write(ck.path().join("tokenizer.json"), "[1, 2").unwrap();
    expect_err(ck.path(), &["tokenizer.json is not valid JSON"]);
}

#[test]
fn bad_options_are_refused() {
    let ck = Ckpt::new(Spec::bert());
    ck.write();
    let e = convert(
        ck.path(),
        &HfOptions {
            align_layer: Some(3),
            ..HfOptions::new(DType::F32)
        },
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("alignment layer 3"), "{e}");
    let e = convert(
        ck.path(),
        &HfOptions {
            align_threshold: Some(f32::NAN),
            ..HfOptions::new(DType::F32)
        },
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("threshold"), "{e}");
    let e = convert(
        ck.path(),
        &HfOptions {
            align_temperature: Some(0.0),
            ..HfOptions::new(DType::F32)
        },
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("temperature"), "{e}");
}
