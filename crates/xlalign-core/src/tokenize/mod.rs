//! Text → subword ids with the Hugging Face `tokenizers` pipeline, run on the tokenizer
//! embedded in the model file ([`storage`]: a Unigram vocabulary packed, anything else as the
//! whole `tokenizer.json`). Offsets are kept so later stages can map subwords to words and to
//! character ranges in the user's text.
//!
//! SentencePiece Unigram vocabularies (XLM-R and its descendants) are served by
//! [`unigram::CompactUnigram`] inside the same pipeline (normaliser, pre-tokeniser, added tokens,
//! post-processor from the file), because the crate's own Unigram model takes hundreds of
//! milliseconds and megabytes by the hundred to build. Every other model type (WordPiece, BPE,
//! WordLevel) goes through `tokenizers::Tokenizer` unchanged.

use std::sync::Arc;

use tokenizers::{
    DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper, TokenizerImpl,
};

use crate::error::{Error, Result};
use crate::gguf::GgufFile;
use crate::model::keys;

#[doc(hidden)]
pub mod fixtures;
pub mod packed;
pub mod storage;
pub mod unigram;
mod vocab_json;

use unigram::CompactUnigram;

type CompactTokenizer = TokenizerImpl<
    CompactUnigram,
    NormalizerWrapper,
    PreTokenizerWrapper,
    PostProcessorWrapper,
    DecoderWrapper,
>;

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
        write!(
            f,
            "TextTokenizer(vocab {}, bos {}, eos {})",
            self.vocab_size(),
            self.bos,
            self.eos
        )
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
    /// The tokenizer `f` stores, packed or as JSON (see [`storage`]); the special ids come
    /// from its metadata, else from the tokens' names.
    pub fn from_gguf(f: &GgufFile) -> Result<TextTokenizer> {
        if f.get(keys::TOKENIZER_PACKED_ZSTD).is_some()
            || f.get(keys::TOKENIZER_JSON_NO_VOCAB).is_some()
        {
            return TextTokenizer::with_engine(Engine::Compact(storage::read(f)?), f);
        }
        // As bytes: the tokenizer checks UTF-8 as it parses, faster than checking it all first.
        let json = f.get_str_bytes(keys::HF_TOKENIZER_JSON).map_err(|_| {
            Error::Tokenizer(format!(
                "the model file has no tokenizer (no `{}`, `{}` or `{}` entry)",
                keys::TOKENIZER_PACKED_ZSTD,
                keys::TOKENIZER_JSON_NO_VOCAB,
                keys::HF_TOKENIZER_JSON
            ))
        })?;
        TextTokenizer::from_json(json, f)
    }

    /// The tokenizer `json` (a whole `tokenizer.json`) describes, with the special ids of `f`.
    pub fn from_json(json: &[u8], f: &GgufFile) -> Result<TextTokenizer> {
        TextTokenizer::with_engine(TextTokenizer::engine_from_json(json)?, f)
    }

    fn engine_from_json(json: &[u8]) -> Result<Engine> {
        let engine = match compact_read_ahead(json) {
            Some(t) => Engine::Compact(t),
            None => {
                check_json(json)?;
                match serde_json::from_slice::<CompactTokenizer>(json) {
                    Ok(t) => Engine::Compact(t),
                    Err(e) if e.to_string().starts_with(unigram::NOT_UNIGRAM) => {
                        Engine::Stock(stock(json)?)
                    }
                    Err(e) => return Err(unreadable(e)),
                }
            }
        };
        with_engine!(&engine, t => check_post_processor(t.get_post_processor()))?;
        Ok(engine)
    }

    /// Builds the tokenizer with `tokenizers`' own model whatever the model type: slower to
    /// load, and kept to check the compact Unigram against it.
    #[doc(hidden)]
    pub fn from_json_stock(json: &[u8], f: &GgufFile) -> Result<TextTokenizer> {
        TextTokenizer::with_engine(Engine::Stock(stock(json)?), f)
    }

    fn with_engine(engine: Engine, f: &GgufFile) -> Result<TextTokenizer> {
        with_engine!(&engine, t => check_post_processor(t.get_post_processor()))?;
        let id = |key: &str, tok: &str| -> Result<u32> {
            if let Some(v) = f.get(key).and_then(|v| v.as_u64()) {
                return Ok(v as u32);
            }
            with_engine!(&engine, t => t.token_to_id(tok)).ok_or_else(|| {
                Error::Tokenizer(format!("no `{key}` in metadata and no `{tok}` token"))
            })
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

    /// Builds the compact tokenizer with serde reading the whole file, vocabulary included:
    /// the reference [`TextTokenizer::from_json`]'s faster reading is checked against.
    #[doc(hidden)]
    pub fn from_json_serde_only(json: &[u8], f: &GgufFile) -> Result<TextTokenizer> {
        check_json(json)?;
        let t = serde_json::from_slice::<CompactTokenizer>(json).map_err(unreadable)?;
        TextTokenizer::with_engine(Engine::Compact(t), f)
    }

    /// The compact Unigram model, when it serves this tokenizer.
    pub fn compact_model(&self) -> Option<&CompactUnigram> {
        match &*self.inner {
            Engine::Compact(t) => Some(t.get_model()),
            Engine::Stock(_) => None,
        }
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
        Ok(Tokenized {
            ids,
            tokens,
            offsets,
            n_prefix,
        })
    }

    /// The pipeline's full output for `text` with `<s>`/`</s>`, offsets in bytes of `text`.
    #[doc(hidden)]
    pub fn encode_raw(&self, text: &str) -> Result<tokenizers::Encoding> {
        with_engine!(&*self.inner, t => t.encode(text, true))
            .map_err(|e| Error::Tokenizer(format!("cannot tokenise the text: {e}")))
    }
}

/// The compact tokenizer, its vocabulary read by [`vocab_json`] and the rest by serde. `None`
/// for anything else (another model type, an unusual layout, a broken file): the caller then
/// reads the whole text through serde, whose verdict and messages are the reference.
fn compact_read_ahead(json: &[u8]) -> Option<CompactTokenizer> {
    let (vocab, range) = vocab_json::read(json)?;
    let mut rest = Vec::with_capacity(json.len() - range.len() + 2);
    rest.extend_from_slice(&json[..range.start]);
    rest.extend_from_slice(b"[]");
    rest.extend_from_slice(&json[range.end..]);
    // A few hundred kB once the vocabulary is out: cheap to check (see `check_json`).
    check_json(&rest).ok()?;
    unigram::with_vocab(vocab, || serde_json::from_slice::<CompactTokenizer>(&rest)).ok()
}

/// `tokenizers` panics on some broken files (its decoder reader unwraps the error of buffering
/// a value: bad syntax, bad UTF-8, a lone surrogate, nesting past serde_json's limit), so the
/// text is read as a plain JSON value first, which fails on exactly those.
fn check_json(json: &[u8]) -> Result<()> {
    serde_json::from_slice::<serde_json::Value>(json)
        .map(|_| ())
        .map_err(unreadable)
}

/// `tokenizers` reads a `TemplateProcessing` post-processor without the checks its builder
/// makes, then panics on the first text it encodes when a template names a special token the
/// processor does not define, when the one-sentence template takes the second sentence (`$B`),
/// or (later, in the caller) when a special token has a different number of ids and tokens.
/// Such a file is refused when it loads. The processor is checked in its serialised form,
/// the only view of its fields the crate gives, at any depth of `Sequence` processors.
fn check_post_processor(p: Option<&PostProcessorWrapper>) -> Result<()> {
    let Some(p) = p else {
        return Ok(());
    };
    let v = serde_json::to_value(p).map_err(unreadable)?;
    check_processor(&v).map_err(|m| {
        Error::Tokenizer(format!(
            "the embedded tokenizer.json has a broken post-processor: {m}"
        ))
    })
}

fn check_processor(v: &serde_json::Value) -> std::result::Result<(), String> {
    match v.get("type").and_then(|t| t.as_str()) {
        Some("Sequence") => v
            .get("processors")
            .and_then(|p| p.as_array())
            .into_iter()
            .flatten()
            .try_for_each(check_processor),
        Some("TemplateProcessing") => {
            let empty = serde_json::Map::new();
            let specials = v
                .get("special_tokens")
                .and_then(|s| s.as_object())
                .unwrap_or(&empty);
            for (name, t) in specials {
                let len = |k: &str| t.get(k).and_then(|a| a.as_array()).map(Vec::len);
                if len("ids") != len("tokens") {
                    return Err(format!(
                        "special token `{name}` has {:?} ids for {:?} tokens",
                        len("ids"),
                        len("tokens")
                    ));
                }
            }
            for (template, sequences) in [("single", &["A"][..]), ("pair", &["A", "B"][..])] {
                let pieces = v.get(template).and_then(|t| t.as_array());
                for piece in pieces.into_iter().flatten() {
                    let id = |kind: &str| piece.get(kind)?.get("id")?.as_str();
                    if let Some(id) = id("SpecialToken") {
                        if !specials.contains_key(id) {
                            return Err(format!(
                                "its {template} template uses `{id}`, which it does not define"
                            ));
                        }
                    }
                    if let Some(id) = id("Sequence") {
                        if !sequences.contains(&id) {
                            return Err(format!(
                                "its {template} template uses sequence {id}, which it does not have"
                            ));
                        }
                    }
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn unreadable(e: serde_json::Error) -> Error {
    Error::Tokenizer(format!("cannot read the embedded tokenizer.json: {e}"))
}

fn stock(json: &[u8]) -> Result<tokenizers::Tokenizer> {
    check_json(json)?;
    tokenizers::Tokenizer::from_bytes(json)
        .map_err(|e| Error::Tokenizer(format!("cannot read the embedded tokenizer.json: {e}")))
}

#[cfg(test)]
pub(crate) mod tests {
    use bytes::Bytes;
    use serde_json::json;

    use super::*;
    use crate::gguf::GgufWriter;
    pub(crate) use crate::tokenize::fixtures::{unigram, wordpiece};

    /// A metadata-only model file naming the special ids, as the converter writes them.
    pub(crate) fn gguf(ids: [u32; 4]) -> GgufFile {
        let mut w = GgufWriter::new();
        w.set(keys::BOS_ID, ids[0])
            .set(keys::EOS_ID, ids[1])
            .set(keys::PAD_ID, ids[2])
            .set(keys::UNK_ID, ids[3]);
        GgufFile::parse(Bytes::from(w.to_bytes().unwrap())).unwrap()
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
            let t =
                TextTokenizer::from_json(wordpiece(model).as_bytes(), &gguf([2, 3, 0, 1])).unwrap();
            assert!(!t.is_compact());
            assert_eq!(t.vocab_size(), 8);
            let enc = t.encode("Hellos WORLD! zz", "").unwrap();
            assert_eq!(enc.ids, [2, 4, 6, 5, 7, 1, 3]);
            assert_eq!(
                enc.offsets,
                [
                    None,
                    Some((0, 5)),
                    Some((5, 6)),
                    Some((7, 12)),
                    Some((12, 13)),
                    Some((14, 16)),
                    None
                ]
            );
            assert_eq!(t.id_to_token(6).as_deref(), Some("##s"));
        }
    }

    pub(crate) const PIECES: &[(&str, f64)] = &[
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
    fn same(json: &str, texts: &[&str]) {
        let f = gguf([0, 2, 1, 3]);
        let compact = TextTokenizer::from_json(json.as_bytes(), &f).unwrap();
        let stock = TextTokenizer::from_json_stock(json.as_bytes(), &f).unwrap();
        assert!(compact.is_compact());
        for text in texts {
            assert_eq!(
                compact.encode_raw(text).unwrap(),
                stock.encode_raw(text).unwrap(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn unigram_pipeline_matches_tokenizers() {
        let texts = [
            "the cats",
            "  the   cat  ",
            "Théâtre 漢字 <s> x</s>y",
            "",
            "🙂",
            "tea\u{301}",
        ];
        same(&unigram(PIECES, false), &texts);
        let mut with_bytes: Vec<(String, f64)> =
            PIECES.iter().map(|(p, s)| (p.to_string(), *s)).collect();
        with_bytes.extend((0..=255u8).map(|b| (format!("<0x{b:02X}>"), -10.0)));
        let refs: Vec<(&str, f64)> = with_bytes.iter().map(|(p, s)| (p.as_str(), *s)).collect();
        let json = unigram(&refs, true);
        same(&json, &texts);
        let t = TextTokenizer::from_json(json.as_bytes(), &gguf([0, 2, 1, 3])).unwrap();
        let enc = t.encode("漢", "").unwrap();
        assert_eq!(
            enc.tokens[1..],
            ["\u{2581}", "<0xE6>", "<0xBC>", "<0xA2>", "</s>"]
        );
    }

    #[test]
    fn broken_files_are_errors() {
        let f = gguf([0, 2, 1, 3]);
        let good = unigram(PIECES, false);
        let bad_unk = good.replace("\"unk_id\":3", "\"unk_id\":99");
        assert_ne!(bad_unk, good);
        let cut = (200..).find(|&i| good.is_char_boundary(i)).unwrap();
        let truncated = &good[..cut];
        // `tokenizers` itself panics on a broken or too deeply nested decoder.
        let decoder = good.find("\"decoder\":").unwrap() + "\"decoder\":".len();
        let broken_decoder = format!("{}{{\"type\":[1,}}{}", &good[..decoder], &good[decoder..]);
        let deep_decoder = format!(
            "{}{}{}",
            &good[..decoder],
            "[".repeat(200) + &"]".repeat(200) + ",",
            &good[decoder..]
        );
        let deep_elsewhere = good.replacen(
            "\"version\":",
            &format!("\"deep\":{},\"version\":", "[".repeat(70) + &"]".repeat(70)),
            1,
        );
        for json in [
            "{not json",
            "{}",
            truncated,
            &bad_unk,
            &broken_decoder,
            &deep_decoder,
            &deep_elsewhere,
        ] {
            for stock in [false, true] {
                let r = if stock {
                    TextTokenizer::from_json_stock(json.as_bytes(), &f)
                } else {
                    TextTokenizer::from_json(json.as_bytes(), &f)
                };
                match r {
                    Err(Error::Tokenizer(msg)) => assert!(msg.contains("tokenizer.json"), "{msg}"),
                    other => panic!("expected a tokenizer error for {json:.80}, got {other:?}"),
                }
            }
        }
    }

    /// The compact model read with the vocabulary read ahead, and with serde alone.
    fn both_readings(
        json: &str,
    ) -> (
        Option<CompactTokenizer>,
        std::result::Result<CompactTokenizer, String>,
    ) {
        (
            compact_read_ahead(json.as_bytes()),
            serde_only(json.as_bytes()),
        )
    }

    /// serde's reading, behind the same guard as `from_json`'s (`tokenizers` may panic), and
    /// its error message as `from_json` words it.
    fn serde_only(json: &[u8]) -> std::result::Result<CompactTokenizer, String> {
        let message = |e: Error| match e {
            Error::Tokenizer(m) => m,
            other => other.to_string(),
        };
        check_json(json).map_err(message)?;
        serde_json::from_slice::<CompactTokenizer>(json).map_err(|e| message(unreadable(e)))
    }

    pub(crate) fn same_model(a: &CompactUnigram, b: &CompactUnigram) {
        let pa: Vec<(&str, u64)> = a.pieces().map(|(p, s)| (p, s.to_bits())).collect();
        let pb: Vec<(&str, u64)> = b.pieces().map(|(p, s)| (p, s.to_bits())).collect();
        assert_eq!(pa, pb);
        assert_eq!(
            (a.unk_id(), a.byte_fallback()),
            (b.unk_id(), b.byte_fallback())
        );
    }

    /// `tokenizer.json` with `vocab_text` spliced in as the model's vocabulary.
    fn with_vocab_text(vocab_text: &str) -> String {
        let json = unigram(&[("<s>", 0.0)], false);
        let at = json.find("\"vocab\":").unwrap() + "\"vocab\":".len();
        let end = at + json[at..].find("]]").unwrap() + 2;
        format!("{}{vocab_text}{}", &json[..at], &json[end..])
    }

    #[test]
    fn read_ahead_reads_what_serde_reads() {
        let base = r#"["<s>",0.0],["<pad>",0],["</s>",-0.0],["<unk>",0.0]"#;
        let vocabs = [
            format!("[{base},[\"\\u2581the\",-3.0],[\"a\\\"b\",-1.5],[\"back\\\\slash\",-2]]"),
            format!("[{base},[\"\\ud83d\\ude00\",-7.25],[\"é\",1e-3],[\"x\",-2.5E+1],[\"y\",12]]"),
            format!(
                "[{base},[\"p\",{PROBE}],[\"q\",-0.1234567890123456789012345],[\"r\",-3.4635426998138428]]",
                PROBE = vocab_json_probe()
            ),
            format!(" [ {base} , [ \"s\" ,\n\t-5.5 ] ]\r\n"),
            format!("[{base},[\"t\",-1.0],[\"t\",-2.0]]"),
        ];
        for vocab in &vocabs {
            let json = with_vocab_text(vocab);
            let (fast, serde) = both_readings(&json);
            let fast = fast.unwrap_or_else(|| panic!("read-ahead declined {vocab}"));
            let serde = serde.unwrap();
            same_model(fast.get_model(), serde.get_model());
            for text in ["the a\"b back\\slash 😀 é xyz", "tt", ""] {
                assert_eq!(
                    fast.encode(text, true).unwrap(),
                    serde.encode(text, true).unwrap()
                );
            }
        }
        // Pretty-printed, key order changed, unknown keys: still read ahead, same model.
        let mut v: serde_json::Value = serde_json::from_str(&unigram(PIECES, true)).unwrap();
        v["model"]["zzz"] = json!({"vocab": [1, 2], "x": "]]"});
        let model = v["model"].clone();
        let mut reordered = serde_json::Map::new();
        reordered.insert("model".into(), model);
        for (k, x) in v.as_object().unwrap() {
            reordered.entry(k.clone()).or_insert(x.clone());
        }
        for json in [
            serde_json::to_string_pretty(&v).unwrap(),
            serde_json::Value::Object(reordered).to_string(),
        ] {
            let (fast, serde) = both_readings(&json);
            same_model(
                fast.expect("read ahead").get_model(),
                serde.unwrap().get_model(),
            );
        }
    }

    fn vocab_json_probe() -> &'static str {
        "0.92030920993190389"
    }

    #[test]
    fn unusual_or_broken_vocabularies_fall_back_to_serde() {
        let f = gguf([0, 2, 1, 3]);
        // Valid, but not the shape the read-ahead takes: serde reads them, to the same model.
        let escaped_vocab = unigram(PIECES, false).replacen("\"vocab\"", "\"voc\\u0061b\"", 1);
        let escaped_model = unigram(PIECES, false).replacen("\"model\"", "\"mod\\u0065l\"", 1);
        for json in [escaped_vocab, escaped_model] {
            let (fast, serde) = both_readings(&json);
            assert!(fast.is_none(), "{json}");
            let t = TextTokenizer::from_json(json.as_bytes(), &f).unwrap();
            same_model(t.compact_model().unwrap(), serde.unwrap().get_model());
        }
        // Broken vocabularies: the same error as serde's, never a panic.
        let broken = [
            r#"[["<s>"]]"#,
            r#"[["<s>",0,1]]"#,
            r#"[[1,0]]"#,
            r#"[["<s>",01]]"#,
            r#"[["<s>",1.]]"#,
            r#"[["<s>",-]]"#,
            r#"[["<s>",1e]]"#,
            "[[\"<\u{1}s>\",0]]",
            r#"[["<s>",0],]"#,
            r#"[["<s>",0]"#,
            r#"[["<s>",1e999]]"#,
            r#"[["\ud800",0]]"#,
            r#"[["\q",0]]"#,
            r#"[["<s>" 0]]"#,
            r#"{"<s>":0}"#,
        ];
        for vocab in broken {
            let json = with_vocab_text(vocab);
            let (fast, serde) = both_readings(&json);
            assert!(fast.is_none(), "read ahead {vocab}");
            let serde_msg = serde.map(|_| ()).unwrap_err();
            match TextTokenizer::from_json(json.as_bytes(), &f) {
                // A map is WordPiece's layout: `tokenizers` then has its say.
                Err(Error::Tokenizer(msg)) if serde_msg.contains(unigram::NOT_UNIGRAM) => {
                    assert!(msg.contains("tokenizer.json"), "{msg}")
                }
                Err(Error::Tokenizer(msg)) => assert_eq!(msg, serde_msg, "{vocab}"),
                other => panic!("{vocab}: expected a tokenizer error, got {other:?}"),
            }
        }
        // Invalid UTF-8 inside a piece (the model file hands the text over unchecked).
        let mut json = with_vocab_text(r#"[["<s>",0],["ab",0]]"#).into_bytes();
        let at = json.windows(4).position(|w| w == b"\"ab\"").unwrap();
        json[at + 1] = 0xff;
        assert!(compact_read_ahead(&json).is_none());
        assert!(matches!(
            TextTokenizer::from_json(&json, &f),
            Err(Error::Tokenizer(_))
        ));
    }

    /// Post-processors `tokenizers` reads unchecked and then panics on (found by fuzzing,
    /// `fuzz/` and `tests/fuzz-regressions/`): refused at load, whichever engine and wherever
    /// in a `Sequence` of processors.
    #[test]
    fn broken_post_processors_are_refused() {
        let f = gguf([0, 2, 1, 3]);
        let good: serde_json::Value = serde_json::from_str(&unigram(PIECES, false)).unwrap();
        let single_b = json!([{"SpecialToken": {"id": "<s>", "type_id": 0}},
                              {"Sequence": {"id": "B", "type_id": 0}}]);
        let broken = [
            (
                "/post_processor/single/0/SpecialToken/id",
                json!("<cls>"),
                "<cls>",
            ),
            (
                "/post_processor/pair/4/SpecialToken/id",
                json!("<sep>"),
                "<sep>",
            ),
            ("/post_processor/single", single_b, "sequence B"),
            ("/post_processor/special_tokens/<s>/ids", json!([0, 0]), "2"),
        ];
        for (path, value, says) in broken {
            let mut v = good.clone();
            *v.pointer_mut(path).unwrap() = value;
            let wrapped = json!({"type": "Sequence", "processors": [
                {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
                v["post_processor"].clone()]});
            for v in [v.clone(), {
                let mut w = v.clone();
                w["post_processor"] = wrapped;
                w
            }] {
                let json = v.to_string();
                for t in [
                    TextTokenizer::from_json(json.as_bytes(), &f),
                    TextTokenizer::from_json_stock(json.as_bytes(), &f),
                ] {
                    match t {
                        Err(Error::Tokenizer(m)) => {
                            assert!(m.contains("post-processor") && m.contains(says), "{m}")
                        }
                        other => panic!("{path}: expected an error, got {other:?}"),
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 300, ..Default::default() })]
        /// Damaged files: no panic, and whenever the read-ahead accepts one, serde reads the
        /// same model from it.
        #[test]
        fn damaged_files_read_alike(flips in proptest::collection::vec((0..1usize << 20, proptest::prelude::any::<u8>()), 1..4),
                                    cut in proptest::option::of(0..1usize << 20)) {
            let mut json = unigram(&PIECES[..8], false).into_bytes();
            let n = json.len();
            for (at, b) in flips {
                json[at % n] = b;
            }
            if let Some(cut) = cut {
                json.truncate(cut % (n + 1));
            }
            let fast = compact_read_ahead(&json);
            let serde = serde_only(&json);
            if let Some(fast) = fast {
                same_model(fast.get_model(), serde.expect("serde reads what the read-ahead read").get_model());
            }
            let _ = TextTokenizer::from_json(&json, &gguf([0, 2, 1, 3]));
        }
    }
}
