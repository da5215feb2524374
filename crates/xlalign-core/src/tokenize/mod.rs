//! Text → subword ids with the Hugging Face `tokenizers` pipeline, run on the `tokenizer.json`
//! embedded in the model file. Offsets are kept so later stages can map subwords to words
//! and to character ranges in the user's text.
//!
//! SentencePiece Unigram vocabularies (XLM-R and its descendants) are served by
//! [`unigram::CompactUnigram`] inside the same pipeline (normaliser, pre-tokeniser, added tokens,
//! post-processor from the file), because the crate's own Unigram model takes hundreds of
//! milliseconds and megabytes by the hundred to build. Every other model type (WordPiece, BPE,
//! WordLevel) goes through `tokenizers::Tokenizer` unchanged.

use std::sync::Arc;

use tokenizers::{DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper, TokenizerImpl};

use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::model::keys;

pub mod unigram;

use unigram::CompactUnigram;

type CompactTokenizer =
    TokenizerImpl<CompactUnigram, NormalizerWrapper, PreTokenizerWrapper, PostProcessorWrapper, DecoderWrapper>;

enum Engine {
    Compact(CompactTokenizer),
    Stock(tokenizers::Tokenizer),
}

/// The two engines share `TokenizerImpl`'s API but not its model type parameter.
macro_rules! with_engine {
    ($engine:expr, $t:ident => $body:expr) => {
        match $engine {
            Engine::Compact($t) => $body,
            Engine::Stock($t) => $body,
        }
    };
}

#[derive(Clone)]
pub struct TextTokenizer {
    inner: Arc<Engine>,
    pub bos: u32,
    pub eos: u32,
    pub pad: u32,
    pub unk: u32,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TextTokenizer(vocab {}, bos {}, eos {})", self.vocab_size(), self.bos, self.eos)
    }
}

/// One tokenised text, `<s>` and `</s>` included.
#[derive(Clone, Debug, PartialEq)]
pub struct Tokenized {
    pub ids: Vec<u32>,
    pub tokens: Vec<String>,
    /// Byte range of each token in the caller's text (the prefix excluded). `None` for
    /// special tokens, prefix tokens and tokens that cover no text (a bare `▁`).
    pub offsets: Vec<Option<(usize, usize)>>,
    /// How many tokens after `<s>` belong to the prefix.
    pub n_prefix: usize,
}

impl Tokenized {
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

impl TextTokenizer {
    pub fn from_json(json: &[u8], f: &GgufFile) -> Result<TextTokenizer> {
        let engine = match serde_json::from_slice::<CompactTokenizer>(json) {
            Ok(t) => Engine::Compact(t),
            Err(e) if e.to_string().starts_with(unigram::NOT_UNIGRAM) => Engine::Stock(stock(json)?),
            Err(e) => return Err(Error::Tokenizer(format!("cannot read the embedded tokenizer.json: {e}"))),
        };
        TextTokenizer::with_engine(engine, f)
    }

    /// Builds the tokenizer with `tokenizers`' own model whatever the model type: slower to
    /// load, and kept to check the compact Unigram against it.
    #[doc(hidden)]
    pub fn from_json_stock(json: &[u8], f: &GgufFile) -> Result<TextTokenizer> {
        TextTokenizer::with_engine(Engine::Stock(stock(json)?), f)
    }

    fn with_engine(engine: Engine, f: &GgufFile) -> Result<TextTokenizer> {
        let id = |key: &str, tok: &str| -> Result<u32> {
            if let Some(v) = f.get(key).and_then(|v| v.as_u64()) {
                return Ok(v as u32);
            }
            with_engine!(&engine, t => t.token_to_id(tok))
                .ok_or_else(|| Error::Tokenizer(format!("no `{key}` in metadata and no `{tok}` token")))
        };
        Ok(TextTokenizer {
            bos: id(keys::BOS_ID, "<s>")?,
            eos: id(keys::EOS_ID, "</s>")?,
            pad: id(keys::PAD_ID, "<pad>")?,
            unk: id(keys::UNK_ID, "<unk>")?,
            inner: Arc::new(engine),
        })
    }

    /// Whether the compact Unigram model serves this tokenizer (else `tokenizers`' own model).
    pub fn is_compact(&self) -> bool {
        matches!(*self.inner, Engine::Compact(_))
    }

    pub fn vocab_size(&self) -> usize {
        with_engine!(&*self.inner, t => t.get_vocab_size(true))
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        with_engine!(&*self.inner, t => t.id_to_token(id))
    }

    /// Tokenises `prefix + text` (the prefix is joined before normalisation, as E5 expects),
    /// adding `<s>`/`</s>`. Long texts are not truncated; windowing happens later.
    pub fn encode(&self, text: &str, prefix: &str) -> Result<Tokenized> {
        let enc = self.encode_raw(&format!("{prefix}{text}"))?;
        let ids = enc.get_ids().to_vec();
        let tokens = enc.get_tokens().to_vec();
        let special = enc.get_special_tokens_mask();
        let p = prefix.len();
        let mut n_prefix = 0;
        let offsets = enc
            .get_offsets()
            .iter()
            .zip(special)
            .map(|(&(s, e), &sp)| {
                if sp == 1 {
                    return None;
                }
                if e <= p {
                    n_prefix += 1;
                    return None;
                }
                let (s, e) = (s.max(p) - p, e - p);
                (e > s).then_some((s, e))
            })
            .collect();
        Ok(Tokenized { ids, tokens, offsets, n_prefix })
    }

    /// The pipeline's full output for `text` with `<s>`/`</s>`, offsets in bytes of `text`.
    #[doc(hidden)]
    pub fn encode_raw(&self, text: &str) -> Result<tokenizers::Encoding> {
        with_engine!(&*self.inner, t => t.encode(text, true))
            .map_err(|e| Error::Tokenizer(format!("cannot tokenise the text: {e}")))
    }
}

fn stock(json: &[u8]) -> Result<tokenizers::Tokenizer> {
    tokenizers::Tokenizer::from_bytes(json)
        .map_err(|e| Error::Tokenizer(format!("cannot read the embedded tokenizer.json: {e}")))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::json;

    use super::*;
    use crate::gguf::GgufWriter;

    /// A metadata-only model file naming the special ids, as the converter writes them.
    fn gguf(ids: [u32; 4]) -> GgufFile {
        let mut w = GgufWriter::new();
        w.set(keys::BOS_ID, ids[0]).set(keys::EOS_ID, ids[1]).set(keys::PAD_ID, ids[2]).set(keys::UNK_ID, ids[3]);
        GgufFile::parse(Bytes::from(w.to_bytes().unwrap())).unwrap()
    }

    fn added(id: u32, content: &str) -> serde_json::Value {
        json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
               "normalized": false, "special": true})
    }

    fn template(bos: &str, bos_id: u32, eos: &str, eos_id: u32) -> serde_json::Value {
        json!({
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": eos, "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": eos, "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": eos, "type_id": 1}}],
            "special_tokens": {
                bos: {"id": bos, "ids": [bos_id], "tokens": [bos]},
                eos: {"id": eos, "ids": [eos_id], "tokens": [eos]}
            }
        })
    }

    fn wordpiece(model: serde_json::Value) -> Vec<u8> {
        json!({
            "version": "1.0", "truncation": null, "padding": null,
            "added_tokens": [added(0, "[PAD]"), added(1, "[UNK]"), added(2, "[CLS]"), added(3, "[SEP]")],
            "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                           "strip_accents": null, "lowercase": true},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "post_processor": template("[CLS]", 2, "[SEP]", 3),
            "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
            "model": model
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn wordpiece_goes_through_tokenizers() {
        let vocab = json!({"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "hello": 4, "world": 5, "##s": 6, "!": 7});
        let tagged = json!({"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                            "max_input_chars_per_word": 100, "vocab": vocab});
        // Files from older `tokenizers` releases leave out `type`.
        let legacy = json!({"unk_token": "[UNK]", "continuing_subword_prefix": "##",
                            "max_input_chars_per_word": 100, "vocab": vocab});
        for model in [tagged, legacy] {
            let t = TextTokenizer::from_json(&wordpiece(model), &gguf([2, 3, 0, 1])).unwrap();
            assert!(!t.is_compact());
            assert_eq!(t.vocab_size(), 8);
            let enc = t.encode("Hellos WORLD! zz", "").unwrap();
            assert_eq!(enc.ids, [2, 4, 6, 5, 7, 1, 3]);
            assert_eq!(
                enc.offsets,
                [None, Some((0, 5)), Some((5, 6)), Some((7, 12)), Some((12, 13)), Some((14, 16)), None]
            );
            assert_eq!(t.id_to_token(6).as_deref(), Some("##s"));
        }
    }

    fn unigram(pieces: &[(&str, f64)], byte_fallback: bool) -> Vec<u8> {
        let vocab: Vec<serde_json::Value> = pieces.iter().map(|(p, s)| json!([p, s])).collect();
        json!({
            "version": "1.0", "truncation": null, "padding": null,
            "added_tokens": [added(0, "<s>"), added(1, "<pad>"), added(2, "</s>"), added(3, "<unk>")],
            "normalizer": {"type": "Sequence", "normalizers": [
                {"type": "NFKC"},
                {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]},
            "pre_tokenizer": {"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "always", "split": true},
            "post_processor": template("<s>", 0, "</s>", 2),
            "decoder": {"type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "always", "split": true},
            "model": {"type": "Unigram", "unk_id": 3, "vocab": vocab, "byte_fallback": byte_fallback}
        })
        .to_string()
        .into_bytes()
    }

    const PIECES: &[(&str, f64)] = &[
        ("<s>", 0.0),
        ("<pad>", 0.0),
        ("</s>", 0.0),
        ("<unk>", 0.0),
        ("\u{2581}", -2.0),
        ("\u{2581}the", -3.0),
        ("\u{2581}t", -4.0),
        ("he", -4.5),
        ("h", -5.0),
        ("e", -5.0),
        ("a", -5.0),
        ("\u{2581}cat", -6.0),
        ("ca", -7.0),
        ("t", -5.5),
        ("s", -5.0),
        ("é", -6.0),
    ];

    /// The compact and the stock model give the same encodings on `texts`.
    fn same(json: &[u8], texts: &[&str]) {
        let f = gguf([0, 2, 1, 3]);
        let compact = TextTokenizer::from_json(json, &f).unwrap();
        let stock = TextTokenizer::from_json_stock(json, &f).unwrap();
        assert!(compact.is_compact());
        for text in texts {
            assert_eq!(compact.encode_raw(text).unwrap(), stock.encode_raw(text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn unigram_pipeline_matches_tokenizers() {
        let texts = ["the cats", "  the   cat  ", "Théâtre 漢字 <s> x</s>y", "", "🙂", "tea\u{301}"];
        same(&unigram(PIECES, false), &texts);
        let mut with_bytes: Vec<(String, f64)> = PIECES.iter().map(|(p, s)| (p.to_string(), *s)).collect();
        with_bytes.extend((0..=255u8).map(|b| (format!("<0x{b:02X}>"), -10.0)));
        let refs: Vec<(&str, f64)> = with_bytes.iter().map(|(p, s)| (p.as_str(), *s)).collect();
        let json = unigram(&refs, true);
        same(&json, &texts);
        let t = TextTokenizer::from_json(&json, &gguf([0, 2, 1, 3])).unwrap();
        let enc = t.encode("漢", "").unwrap();
        assert_eq!(enc.tokens[1..], ["\u{2581}", "<0xE6>", "<0xBC>", "<0xA2>", "</s>"]);
    }

    #[test]
    fn broken_files_are_errors() {
        let f = gguf([0, 2, 1, 3]);
        let mut bad_unk = unigram(PIECES, false);
        let text = String::from_utf8(bad_unk.clone()).unwrap().replace("\"unk_id\":3", "\"unk_id\":99");
        assert_ne!(text.as_bytes(), bad_unk.as_slice());
        bad_unk = text.into_bytes();
        let truncated = &unigram(PIECES, false)[..200];
        for json in [b"{not json".as_slice(), b"{}".as_slice(), truncated, &bad_unk] {
            match TextTokenizer::from_json(json, &f) {
                Err(Error::Tokenizer(msg)) => assert!(msg.contains("tokenizer.json"), "{msg}"),
                other => panic!("expected a tokenizer error, got {other:?}"),
            }
        }
    }
}
