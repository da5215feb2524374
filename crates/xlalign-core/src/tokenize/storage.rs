//! How the tokenizer is stored in the model file: written here for both converters, read
//! here by the loader.
//!
//! A Unigram tokenizer (XLM-R and its descendants) is stored packed: the vocabulary as compact
//! arrays ([`super::packed`]) and the rest of `tokenizer.json` (normaliser with its
//! precompiled charsmap, pre-tokeniser, added tokens, post-processor, decoder, `unk_id`,
//! `byte_fallback`) as JSON with an empty `model.vocab` list, so that the `tokenizers`
//! pipeline is built from the same settings as before. For XLM-R that is 3.5 MB where the
//! whole JSON took 9.1 MB, and since the tokenizer sits in the header, every reader (above all
//! a browser loading the file progressively) waits for 5.6 MB less before it can start.
//!
//! The arrays are metadata, not tensors: the header is what every reader parses first, and
//! the tokenizer is needed before any weight; metadata needs no change to readers that fetch
//! the header and then the tensors they want (the progressive loader), and the tensor
//! directory keeps listing the encoder's weights alone, as llama.cpp-style tools and our checks
//! of converted files expect. The pieces are a GGUF string (they are UTF-8 text), the rest u8
//! arrays; our reader keeps both as buffers shared with the file's bytes, so they cost no copy
//! and no value per element.
//!
//! WordPiece, BPE and WordLevel tokenizers keep the whole `tokenizer.json`, as do files
//! written before the packed form, which still load.

use bytes::Bytes;
use serde_json::Value as Json;

use super::packed::{self, ScoreType};
use super::{unigram, unreadable, CompactTokenizer, Engine, TextTokenizer};
use crate::error::{Error, Result};
use crate::gguf::{GgufFile, GgufWriter, Value};
use crate::model::keys;

/// How a model file stores its tokenizer.
#[derive(Clone, Debug, PartialEq)]
pub enum TokenizerStorage {
    /// The vocabulary packed, the rest as JSON.
    Packed { pieces: u64, bytes: usize },
    /// The whole `tokenizer.json`.
    Json { bytes: usize },
    /// Neither.
    Missing,
}

impl TokenizerStorage {
    /// How `f` stores its tokenizer.
    pub fn of(f: &GgufFile) -> TokenizerStorage {
        let size = |key: &str| match f.get(key) {
            Some(Value::String(s)) => s.len(),
            Some(Value::Bytes(b)) => b.len(),
            _ => 0,
        };
        if f.get(keys::TOKENIZER_JSON_NO_VOCAB).is_some() {
            TokenizerStorage::Packed {
                pieces: f.get_u64(keys::UNIGRAM_PIECE_COUNT).unwrap_or(0),
                bytes: [
                    keys::TOKENIZER_JSON_NO_VOCAB,
                    keys::UNIGRAM_PIECE_LENGTHS,
                    keys::UNIGRAM_PIECES,
                    keys::UNIGRAM_SCORES,
                    keys::UNIGRAM_SCORE_CORRECTIONS,
                ]
                .iter()
                .map(|k| size(k))
                .sum(),
            }
        } else if f.get(keys::HF_TOKENIZER_JSON).is_some() {
            TokenizerStorage::Json {
                bytes: size(keys::HF_TOKENIZER_JSON),
            }
        } else {
            TokenizerStorage::Missing
        }
    }

    /// Whether the converter would now store `tokenizer` differently: a Unigram vocabulary
    /// kept as JSON, from before the packed form.
    pub fn outdated(&self, tokenizer: &TextTokenizer) -> bool {
        matches!(self, TokenizerStorage::Json { .. }) && tokenizer.is_compact()
    }

    /// Bytes the tokenizer takes in the file.
    pub fn bytes(&self) -> usize {
        match *self {
            TokenizerStorage::Packed { bytes, .. } | TokenizerStorage::Json { bytes } => bytes,
            TokenizerStorage::Missing => 0,
        }
    }
}

/// Stores `tokenizer_json` in the model file `w` will write: packed when it is a Unigram
/// tokenizer, else whole. The one way converters write a tokenizer. The packed form is read
/// back and checked against the tokenizer the JSON gives, piece by piece and score by score,
/// before anything is written.
pub fn write(w: &mut GgufWriter, tokenizer_json: &str) -> Result<TokenizerStorage> {
    let json = tokenizer_json.as_bytes();
    let engine = TextTokenizer::engine_from_json(json)?;
    let Engine::Compact(t) = &engine else {
        w.set(keys::HF_TOKENIZER_JSON, tokenizer_json);
        return Ok(TokenizerStorage::Json { bytes: json.len() });
    };
    let model = t.get_model();
    let p = packed::pack(model.pieces());
    let mut v: Json = serde_json::from_slice(json).map_err(unreadable)?;
    match v.pointer_mut("/model/vocab") {
        Some(vocab) => *vocab = Json::Array(Vec::new()),
        None => {
            return Err(Error::Tokenizer(
                "tokenizer.json has no `model.vocab` list".into(),
            ))
        }
    }
    let rest = serde_json::to_string(&v).map_err(unreadable)?;
    let count = u32::try_from(p.count)
        .map_err(|_| Error::Tokenizer(format!("{} pieces are too many", p.count)))?;

    let back = read_packed(
        Parts {
            count: count as u64,
            lengths: &p.lengths,
            pieces: p.pieces.as_bytes(),
            scores: &p.scores,
            score_type: p.score_type,
            corrections: &p.corrections,
        },
        rest.as_bytes(),
    )?;
    let back = back.get_model();
    let same = back.pieces().count() == model.pieces().count()
        && back
            .pieces()
            .zip(model.pieces())
            .all(|((a, x), (b, y))| a == b && x.to_bits() == y.to_bits())
        && (back.unk_id(), back.byte_fallback()) == (model.unk_id(), model.byte_fallback());
    if !same {
        return Err(Error::Tokenizer(
            "the packed vocabulary does not read back as tokenizer.json's".into(),
        ));
    }

    let bytes =
        rest.len() + p.lengths.len() + p.pieces.len() + p.scores.len() + p.corrections.len();
    w.set(keys::TOKENIZER_JSON_NO_VOCAB, rest)
        .set(keys::UNIGRAM_PIECE_COUNT, count)
        .set(
            keys::UNIGRAM_PIECE_LENGTHS,
            Value::Bytes(Bytes::from(p.lengths)),
        )
        .set(keys::UNIGRAM_PIECES, p.pieces)
        .set(keys::UNIGRAM_SCORE_TYPE, p.score_type.name())
        .set(keys::UNIGRAM_SCORES, Value::Bytes(Bytes::from(p.scores)))
        .set(
            keys::UNIGRAM_SCORE_CORRECTIONS,
            Value::Bytes(Bytes::from(p.corrections)),
        );
    Ok(TokenizerStorage::Packed {
        pieces: count as u64,
        bytes,
    })
}

/// The packed tokenizer of `f`, which has [`keys::TOKENIZER_JSON_NO_VOCAB`].
pub(super) fn read(f: &GgufFile) -> Result<CompactTokenizer> {
    let damaged = |e: Error| {
        Error::Tokenizer(format!(
            "the model file's packed tokenizer is damaged: {}",
            match e {
                Error::Metadata(m) => m,
                other => other.to_string(),
            }
        ))
    };
    let score_type = f.get_str(keys::UNIGRAM_SCORE_TYPE).map_err(damaged)?;
    let score_type = ScoreType::from_name(score_type).ok_or_else(|| {
        damaged(Error::Metadata(format!(
            "`{}` is {score_type:?} (expected \"f32\" or \"f64\")",
            keys::UNIGRAM_SCORE_TYPE
        )))
    })?;
    read_packed(
        Parts {
            count: f.get_u64(keys::UNIGRAM_PIECE_COUNT).map_err(damaged)?,
            lengths: f.get_bytes(keys::UNIGRAM_PIECE_LENGTHS).map_err(damaged)?,
            pieces: f.get_str_bytes(keys::UNIGRAM_PIECES).map_err(damaged)?,
            scores: f.get_bytes(keys::UNIGRAM_SCORES).map_err(damaged)?,
            score_type,
            corrections: f
                .get_bytes(keys::UNIGRAM_SCORE_CORRECTIONS)
                .map_err(damaged)?,
        },
        f.get_str_bytes(keys::TOKENIZER_JSON_NO_VOCAB)
            .map_err(damaged)?,
    )
}

/// The packed arrays, as stored.
struct Parts<'a> {
    count: u64,
    lengths: &'a [u8],
    pieces: &'a [u8],
    scores: &'a [u8],
    score_type: ScoreType,
    corrections: &'a [u8],
}

fn read_packed(p: Parts<'_>, rest: &[u8]) -> Result<CompactTokenizer> {
    let vocab = packed::unpack(
        p.count,
        p.lengths,
        p.pieces,
        p.scores,
        p.score_type,
        p.corrections,
    )
    .map_err(|e| {
        Error::Tokenizer(format!(
            "the model file's packed tokenizer vocabulary is damaged: {e}"
        ))
    })?;
    // Read as a plain value first, which also guards `tokenizers` (see `check_json`).
    let v: Json = serde_json::from_slice(rest).map_err(unreadable)?;
    if v.pointer("/model/vocab") != Some(&Json::Array(Vec::new())) {
        return Err(Error::Tokenizer(
            "the model file's packed tokenizer has a JSON part without the empty `model.vocab` \
             list the packed vocabulary stands for"
                .into(),
        ));
    }
    unigram::with_vocab(vocab, || serde_json::from_slice::<CompactTokenizer>(rest)).map_err(|e| {
        if e.to_string().starts_with(unigram::NOT_UNIGRAM) {
            Error::Tokenizer(format!(
                "the model file has a packed vocabulary, but its tokenizer is not Unigram ({e})"
            ))
        } else {
            unreadable(e)
        }
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::super::tests::{gguf, same_model, unigram, wordpiece, PIECES};
    use super::*;

    /// A metadata-only model file with the special ids and `json` stored by [`write`].
    fn stored(json: &str) -> (GgufFile, TokenizerStorage) {
        let mut w = GgufWriter::new();
        w.set(keys::BOS_ID, 0u32)
            .set(keys::EOS_ID, 2u32)
            .set(keys::PAD_ID, 1u32)
            .set(keys::UNK_ID, 3u32);
        let storage = write(&mut w, json).unwrap();
        (
            GgufFile::parse(Bytes::from(w.to_bytes().unwrap())).unwrap(),
            storage,
        )
    }

    fn with_byte_pieces() -> String {
        let mut v: Vec<(String, f64)> = PIECES.iter().map(|(p, s)| (p.to_string(), *s)).collect();
        v.extend((0..=255u8).map(|b| (format!("<0x{b:02X}>"), -10.0 - b as f64 / 7.0)));
        let refs: Vec<(&str, f64)> = v.iter().map(|(p, s)| (p.as_str(), *s)).collect();
        unigram(&refs, true)
    }

    #[test]
    fn unigram_tokenizers_are_stored_packed() {
        for json in [unigram(PIECES, false), with_byte_pieces()] {
            let (f, storage) = stored(&json);
            assert!(
                matches!(storage, TokenizerStorage::Packed { .. }),
                "{storage:?}"
            );
            assert_eq!(TokenizerStorage::of(&f), storage);
            assert!(f.get(keys::HF_TOKENIZER_JSON).is_none());
            let packed = TextTokenizer::from_gguf(&f).unwrap();
            let whole = TextTokenizer::from_json(json.as_bytes(), &f).unwrap();
            let stock = TextTokenizer::from_json_stock(json.as_bytes(), &f).unwrap();
            assert!(!storage.outdated(&packed));
            same_model(
                packed.compact_model().unwrap(),
                whole.compact_model().unwrap(),
            );
            assert_eq!(
                (packed.bos, packed.eos, packed.pad, packed.unk),
                (0, 2, 1, 3)
            );
            for text in ["the cats", "Théâtre 漢字 <s> x</s>y", "", "tea\u{301} 🙂"] {
                assert_eq!(
                    packed.encode_raw(text).unwrap(),
                    stock.encode_raw(text).unwrap(),
                    "{text:?}"
                );
            }
            // The JSON part is the whole file's, but for the vocabulary.
            let rest: Json =
                serde_json::from_str(f.get_str(keys::TOKENIZER_JSON_NO_VOCAB).unwrap()).unwrap();
            let mut want: Json = serde_json::from_str(&json).unwrap();
            want["model"]["vocab"] = json!([]);
            assert_eq!(rest, want);
        }
    }

    #[test]
    fn other_tokenizers_are_stored_whole() {
        let vocab = json!({"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "hello": 4});
        let json = wordpiece(json!({"type": "WordPiece", "unk_token": "[UNK]",
            "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": vocab}));
        let (f, storage) = stored(&json);
        assert_eq!(storage, TokenizerStorage::Json { bytes: json.len() });
        assert_eq!(f.get_str(keys::HF_TOKENIZER_JSON).unwrap(), json);
        let t = TextTokenizer::from_gguf(&f).unwrap();
        assert!(!t.is_compact() && !storage.outdated(&t));
        // A file of the older format, which kept a Unigram tokenizer whole, still loads and
        // is reported as such.
        let json = unigram(PIECES, false);
        let mut old = gguf([0, 2, 1, 3]);
        old.metadata
            .insert(keys::HF_TOKENIZER_JSON.into(), json.as_str().into());
        let t = TextTokenizer::from_gguf(&old).unwrap();
        assert!(t.is_compact() && TokenizerStorage::of(&old).outdated(&t));
        // Neither form.
        let none = gguf([0, 2, 1, 3]);
        assert_eq!(TokenizerStorage::of(&none), TokenizerStorage::Missing);
        assert!(
            matches!(TextTokenizer::from_gguf(&none), Err(Error::Tokenizer(m)) if m.contains("no tokenizer"))
        );
    }

    #[test]
    fn damaged_packed_tokenizers_are_errors() {
        let (good, _) = stored(&unigram(PIECES, false));
        let rest = good
            .get_str(keys::TOKENIZER_JSON_NO_VOCAB)
            .unwrap()
            .to_string();
        let b = |v: Vec<u8>| Value::Bytes(Bytes::from(v));
        let extra_piece = format!("{}x", good.get_str(keys::UNIGRAM_PIECES).unwrap());
        let cases: Vec<(&str, Option<Value>, &str)> = vec![
            (keys::UNIGRAM_PIECE_COUNT, None, "missing key"),
            (
                keys::UNIGRAM_PIECE_COUNT,
                Some(Value::U32(17)),
                "announces 17 pieces",
            ),
            (
                keys::UNIGRAM_PIECE_COUNT,
                Some(Value::U64(u64::MAX)),
                "announces",
            ),
            (keys::UNIGRAM_PIECE_COUNT, Some(Value::U32(15)), "left"),
            (keys::UNIGRAM_PIECES, Some(extra_piece.into()), "left after"),
            (
                keys::UNIGRAM_PIECES,
                Some(b(b"abc".to_vec())),
                "not a string",
            ),
            (
                keys::UNIGRAM_SCORES,
                Some("abc".into()),
                "not an array of u8",
            ),
            (keys::UNIGRAM_SCORE_CORRECTIONS, None, "missing key"),
            (
                keys::UNIGRAM_SCORE_CORRECTIONS,
                Some(b(vec![0; 5])),
                "need 4",
            ),
            (keys::UNIGRAM_PIECE_LENGTHS, None, "missing key"),
            (
                keys::UNIGRAM_SCORES,
                Some(b(vec![0; 17])),
                "more than the 16",
            ),
            (keys::UNIGRAM_SCORE_TYPE, Some("f16".into()), "\"f16\""),
            (
                keys::UNIGRAM_SCORE_TYPE,
                Some(Value::U32(1)),
                "not a string",
            ),
            (
                keys::TOKENIZER_JSON_NO_VOCAB,
                Some("{not json".into()),
                "tokenizer.json",
            ),
            (
                keys::TOKENIZER_JSON_NO_VOCAB,
                Some(
                    rest.replace("\"vocab\":[]", "\"vocab\":[[\"a\",0.0]]")
                        .into(),
                ),
                "empty `model.vocab`",
            ),
            (
                keys::TOKENIZER_JSON_NO_VOCAB,
                Some(rest.replace("\"vocab\":[]", "\"voc\":[]").into()),
                "empty `model.vocab`",
            ),
            (
                keys::TOKENIZER_JSON_NO_VOCAB,
                Some(rest.replace("\"Unigram\"", "\"WordPiece\"").into()),
                "not Unigram",
            ),
            (
                keys::TOKENIZER_JSON_NO_VOCAB,
                Some(rest.replace("\"unk_id\":3", "\"unk_id\":99").into()),
                "unk_id 99",
            ),
        ];
        for (key, value, msg) in cases {
            let mut f = good.clone();
            match &value {
                Some(v) => f.metadata.insert(key.into(), v.clone()),
                None => f.metadata.remove(key),
            };
            match TextTokenizer::from_gguf(&f) {
                Err(Error::Tokenizer(m)) => assert!(m.contains(msg), "{key} = {value:?}: {m}"),
                other => panic!("{key} = {value:?}: expected a tokenizer error, got {other:?}"),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]
        /// Damaged model files: an error or a tokenizer, never a panic.
        #[test]
        fn damaged_files_never_panic(flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4),
                                     cut in prop::option::of(any::<usize>())) {
            let mut w = GgufWriter::new();
            write(&mut w, &unigram(&PIECES[..10], false)).unwrap();
            let mut bytes = w.to_bytes().unwrap();
            // Most flips land in the arrays and the JSON, past the keys.
            let n = bytes.len();
            for (at, b) in flips {
                bytes[at % n] = b;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut % (n + 1));
            }
            if let Ok(f) = GgufFile::parse(Bytes::from(bytes)) {
                let _ = TextTokenizer::from_gguf(&f);
            }
        }
    }
}
