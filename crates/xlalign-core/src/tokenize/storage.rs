//! How the tokenizer is stored in the model file: written here for both converters, read
//! here by the loader.
//!
//! A Unigram tokenizer (XLM-R and its descendants) is stored packed: the vocabulary as compact
//! arrays ([`super::packed`]) and the rest of `tokenizer.json` (normaliser with its
//! precompiled charsmap, pre-tokeniser, added tokens, post-processor, decoder, `unk_id`,
//! `byte_fallback`) as JSON with an empty `model.vocab` list, so that the `tokenizers`
//! pipeline is built from the same settings as before. The five parts then travel in one
//! zstd frame ([`keys::TOKENIZER_PACKED_ZSTD`]): for XLM-R that is 1.60 MB, where the parts
//! take 3.48 MB and the whole JSON 9.1 MB. The tokenizer sits in the header, which every
//! reader (above all a browser loading the file progressively, at 0.8 s a megabyte on a
//! 10 Mbit/s connection) needs before it can start. The browser decompresses it with the
//! pure-Rust `ruzstd`, native builds with the reference library (faster, see [`unzstd_c`]),
//! which also compresses it in the converters at zstd's level 19 (`ruzstd` has no high levels).
//!
//! The frame holds the parts' lengths as LEB128 varints (JSON, lengths, pieces, scores,
//! corrections), then the parts in that order; the piece count and score type stay plain
//! metadata, and [`keys::TOKENIZER_PACKED_SIZE`] gives the frame's content size. That size is
//! checked against the frame's own bytes (at most [`MAX_RATIO`] times as many) before
//! anything is reserved, and the decoder's window is bounded by it, so a
//! crafted frame cannot make the loader allocate more than a small multiple of what the file
//! holds.
//!
//! The arrays are metadata, not tensors: the header is what every reader parses first, and
//! the tokenizer is needed before any weight; metadata needs no change to readers that fetch
//! the header and then the tensors they want (the progressive loader), and the tensor
//! directory keeps listing the encoder's weights alone, as llama.cpp-style tools and our checks
//! of converted files expect.
//!
//! Older files still load: those with the packed parts as separate, uncompressed keys (a GGUF
//! string for the pieces, u8 arrays for the rest, read as buffers shared with the file's
//! bytes), and those with the whole `tokenizer.json`, which is also how WordPiece, BPE and
//! WordLevel tokenizers are stored.

use serde_json::Value as Json;

use super::packed::{self, ScoreType};
use super::{unigram, unreadable, CompactTokenizer, TextTokenizer};
use crate::error::{Error, Result};
use crate::gguf::{GgufFile, Value};
use crate::model::keys;
// Writing (the converters) is native only.
#[cfg(not(target_arch = "wasm32"))]
use {super::Engine, crate::gguf::GgufWriter, bytes::Bytes};

/// Most bytes the tokenizer's frame may announce per byte it holds. XLM-R's compresses 2.2 to
/// 1; a frame that claims more than this is refused before anything is reserved.
pub const MAX_RATIO: u64 = 64;

/// How a model file stores its tokenizer.
#[derive(Clone, Debug, PartialEq)]
pub enum TokenizerStorage {
    /// The vocabulary packed, the rest as JSON: in one zstd frame (`unpacked` is then its
    /// content's size) or, in older files, as separate keys (`unpacked` is `None`).
    Packed {
        pieces: u64,
        bytes: usize,
        unpacked: Option<usize>,
    },
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
        if f.get(keys::TOKENIZER_PACKED_ZSTD).is_some() {
            TokenizerStorage::Packed {
                pieces: f.get_u64(keys::UNIGRAM_PIECE_COUNT).unwrap_or(0),
                bytes: size(keys::TOKENIZER_PACKED_ZSTD),
                unpacked: Some(f.get_u64(keys::TOKENIZER_PACKED_SIZE).unwrap_or(0) as usize),
            }
        } else if f.get(keys::TOKENIZER_JSON_NO_VOCAB).is_some() {
            TokenizerStorage::Packed {
                pieces: f.get_u64(keys::UNIGRAM_PIECE_COUNT).unwrap_or(0),
                unpacked: None,
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
    /// kept as JSON (from before the packed form) or packed without compression.
    pub fn outdated(&self, tokenizer: &TextTokenizer) -> bool {
        match self {
            TokenizerStorage::Json { .. } => tokenizer.is_compact(),
            TokenizerStorage::Packed { unpacked, .. } => unpacked.is_none(),
            TokenizerStorage::Missing => false,
        }
    }

    /// Bytes the tokenizer takes in the file.
    pub fn bytes(&self) -> usize {
        match *self {
            TokenizerStorage::Packed { bytes, .. } | TokenizerStorage::Json { bytes } => bytes,
            TokenizerStorage::Missing => 0,
        }
    }
}

/// How [`write_with`] stores a Unigram tokenizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// The packed parts in one zstd frame, as converters write them.
    Zstd,
    /// The packed parts as separate keys, as files written before the frame had them.
    None,
}

/// Stores `tokenizer_json` in the model file `w` will write: packed in a zstd frame when it is
/// a Unigram tokenizer, else whole. The one way converters write a tokenizer.
#[cfg(not(target_arch = "wasm32"))]
pub fn write(w: &mut GgufWriter, tokenizer_json: &str) -> Result<TokenizerStorage> {
    write_with(w, tokenizer_json, Compression::Zstd)
}

/// [`write`] with the packed parts stored as `compression` says. They are read back from
/// what would be written (the frame decompressed, when there is one) and checked against the
/// tokenizer the JSON gives, piece by piece and score by score, before anything is written.
#[cfg(not(target_arch = "wasm32"))]
pub fn write_with(
    w: &mut GgufWriter,
    tokenizer_json: &str,
    compression: Compression,
) -> Result<TokenizerStorage> {
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
    let parts = [
        rest.as_bytes(),
        &p.lengths,
        p.pieces.as_bytes(),
        &p.scores,
        &p.corrections,
    ];
    let frame = match compression {
        Compression::Zstd => Some(compress(&parts)?),
        Compression::None => None,
    };

    let back = match &frame {
        Some((frame, size)) => read_frame(frame, *size as u64, count as u64, p.score_type, |e| {
            Error::Tokenizer(format!(
                "the tokenizer's zstd frame does not read back: {e}"
            ))
        })?,
        None => read_packed(
            Parts {
                count: count as u64,
                lengths: &p.lengths,
                pieces: p.pieces.as_bytes(),
                scores: &p.scores,
                score_type: p.score_type,
                corrections: &p.corrections,
            },
            rest.as_bytes(),
        )?,
    };
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

    w.set(keys::UNIGRAM_PIECE_COUNT, count)
        .set(keys::UNIGRAM_SCORE_TYPE, p.score_type.name());
    let unpacked: usize = parts.iter().map(|p| p.len()).sum();
    Ok(match frame {
        Some((frame, size)) => {
            let bytes = frame.len();
            w.set(keys::TOKENIZER_PACKED_SIZE, Value::U64(size as u64))
                .set(
                    keys::TOKENIZER_PACKED_ZSTD,
                    Value::Bytes(Bytes::from(frame)),
                );
            TokenizerStorage::Packed {
                pieces: count as u64,
                bytes,
                unpacked: Some(size),
            }
        }
        None => {
            w.set(keys::TOKENIZER_JSON_NO_VOCAB, rest)
                .set(
                    keys::UNIGRAM_PIECE_LENGTHS,
                    Value::Bytes(Bytes::from(p.lengths)),
                )
                .set(keys::UNIGRAM_PIECES, p.pieces)
                .set(keys::UNIGRAM_SCORES, Value::Bytes(Bytes::from(p.scores)))
                .set(
                    keys::UNIGRAM_SCORE_CORRECTIONS,
                    Value::Bytes(Bytes::from(p.corrections)),
                );
            TokenizerStorage::Packed {
                pieces: count as u64,
                bytes: unpacked,
                unpacked: None,
            }
        }
    })
}

/// The frame's content (see the module documentation), compressed; and the content's size.
#[cfg(not(target_arch = "wasm32"))]
fn compress(parts: &[&[u8]; 5]) -> Result<(Vec<u8>, usize)> {
    let mut content = Vec::new();
    for p in parts {
        packed::put_varint(&mut content, p.len() as u64);
    }
    for p in parts {
        content.extend_from_slice(p);
    }
    let failed =
        |e: std::io::Error| Error::Tokenizer(format!("zstd could not compress the tokenizer: {e}"));
    let mut z = zstd::bulk::Compressor::new(19).map_err(failed)?;
    z.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
        .map_err(failed)?;
    let frame = z.compress(&content).map_err(failed)?;
    Ok((frame, content.len()))
}

/// Decompresses a frame that announces `size` bytes of content, after checking `size`
/// against the frame's bytes (see the module documentation).
fn unzstd(frame: &[u8], size: u64) -> std::result::Result<Vec<u8>, String> {
    let most = (frame.len() as u64).saturating_mul(MAX_RATIO);
    if size > most || size > u32::MAX as u64 {
        return Err(format!(
            "it announces {size} bytes of content in {} bytes (at most {MAX_RATIO} times as many)",
            frame.len()
        ));
    }
    #[cfg(target_arch = "wasm32")]
    let out = unzstd_rust(frame, size)?;
    #[cfg(not(target_arch = "wasm32"))]
    let out = unzstd_c(frame, size)?;
    if out.len() as u64 != size {
        return Err(format!(
            "it decompresses to {} bytes, not the {size} announced",
            out.len()
        ));
    }
    Ok(out)
}

/// The decoder's buffers follow the frame's window, which is refused above the content's size
/// rounded up to a power of two (as a frame without a content size states it); the output
/// never grows past the capacity reserved from the checked `size`.
fn window_log(size: u64) -> u32 {
    size.next_power_of_two().max(1 << 10).trailing_zeros()
}

/// With the pure-Rust decoder, in the browser.
#[cfg(any(target_arch = "wasm32", test))]
fn unzstd_rust(frame: &[u8], size: u64) -> std::result::Result<Vec<u8>, String> {
    let mut d = ruzstd::decoding::FrameDecoder::new();
    d.set_max_window_size(1 << window_log(size));
    let mut out = Vec::with_capacity(size as usize);
    d.decode_all_to_vec(frame, &mut out)
        .map_err(|e| format!("it does not decompress ({e})"))?;
    if let (Some(stored), Some(computed)) =
        (d.get_checksum_from_data(), d.get_calculated_checksum())
    {
        if stored != computed {
            return Err("its checksum does not match its content".into());
        }
    }
    Ok(out)
}

/// With the reference library, natively: `ruzstd` decompresses XLM-R's 3.48 MB in 18 ms
/// (2-core AMD EPYC), which would make the CLI's model load half as slow again; libzstd takes
/// a few. The checks around it are the same (and the tests run both decoders).
#[cfg(not(target_arch = "wasm32"))]
fn unzstd_c(frame: &[u8], size: u64) -> std::result::Result<Vec<u8>, String> {
    let mut d =
        zstd::bulk::Decompressor::new().map_err(|e| format!("zstd could not start ({e})"))?;
    d.set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(window_log(size)))
        .map_err(|e| format!("zstd could not start ({e})"))?;
    let mut out = Vec::with_capacity(size as usize);
    d.decompress_to_buffer(frame, &mut out).map_err(|e| {
        let e = e.to_string();
        if e.contains("hecksum") {
            "its checksum does not match its content".to_string()
        } else {
            format!("it does not decompress ({e})")
        }
    })?;
    Ok(out)
}

/// The tokenizer a zstd frame holds (`size` bytes of content, `count` pieces); `damaged`
/// words what is wrong with the frame itself. Both the loader and the converters' read-back
/// check go through here.
fn read_frame(
    frame: &[u8],
    size: u64,
    count: u64,
    score_type: ScoreType,
    damaged: impl Fn(String) -> Error,
) -> Result<CompactTokenizer> {
    let content = unzstd(frame, size).map_err(&damaged)?;
    let (rest, parts) = split(&content, count, score_type).map_err(&damaged)?;
    // The frame's content goes before the tokenizer's index is built, the load's peak.
    let vocab = unpack(parts)?;
    let rest = rest.to_vec();
    drop(content);
    with_json(vocab, &rest)
}

/// The JSON part and the packed arrays of a frame's content.
fn split(
    content: &[u8],
    count: u64,
    score_type: ScoreType,
) -> std::result::Result<(&[u8], Parts<'_>), String> {
    let mut sizes = packed::Varints::new(content, "part lengths");
    let mut lens = [0usize; 5];
    for l in &mut lens {
        *l = sizes.next(32)? as usize;
    }
    let mut at = sizes.position();
    let mut part = |what: &str, len: usize| {
        let p = at
            .checked_add(len)
            .and_then(|end| content.get(at..end))
            .ok_or_else(|| {
                format!(
                    "its {what} ({len} bytes at {at}) run past its {} bytes of content",
                    content.len()
                )
            })?;
        at += len;
        Ok::<_, String>(p)
    };
    let rest = part("JSON", lens[0])?;
    let lengths = part("piece lengths", lens[1])?;
    let pieces = part("pieces", lens[2])?;
    let scores = part("scores", lens[3])?;
    let corrections = part("score corrections", lens[4])?;
    if at != content.len() {
        return Err(format!(
            "{} bytes follow its five parts",
            content.len() - at
        ));
    }
    Ok((
        rest,
        Parts {
            count,
            lengths,
            pieces,
            scores,
            score_type,
            corrections,
        },
    ))
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
    if f.get(keys::TOKENIZER_PACKED_ZSTD).is_some() {
        let frame = f.get_bytes(keys::TOKENIZER_PACKED_ZSTD).map_err(damaged)?;
        let size = f.get_u64(keys::TOKENIZER_PACKED_SIZE).map_err(damaged)?;
        let count = f.get_u64(keys::UNIGRAM_PIECE_COUNT).map_err(damaged)?;
        return read_frame(frame, size, count, score_type, |e| {
            Error::Tokenizer(format!(
                "the model file's packed tokenizer is damaged: its zstd frame (`{}`): {e}",
                keys::TOKENIZER_PACKED_ZSTD
            ))
        });
    }
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
    with_json(unpack(p)?, rest)
}

/// The vocabulary of the packed arrays.
fn unpack(p: Parts<'_>) -> Result<unigram::Builder> {
    packed::unpack(
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
    })
}

/// The tokenizer of the JSON part `rest` with the vocabulary `vocab`.
fn with_json(vocab: unigram::Builder, rest: &[u8]) -> Result<CompactTokenizer> {
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
        stored_with(json, Compression::Zstd)
    }

    fn stored_with(json: &str, compression: Compression) -> (GgufFile, TokenizerStorage) {
        let mut w = GgufWriter::new();
        w.set(keys::BOS_ID, 0u32)
            .set(keys::EOS_ID, 2u32)
            .set(keys::PAD_ID, 1u32)
            .set(keys::UNK_ID, 3u32);
        let storage = write_with(&mut w, json, compression).unwrap();
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

    /// The JSON part of a packed tokenizer, from the frame or the older key.
    fn json_part(f: &GgufFile) -> Json {
        let text = match f.get(keys::TOKENIZER_PACKED_ZSTD) {
            Some(_) => {
                let size = f.get_u64(keys::TOKENIZER_PACKED_SIZE).unwrap();
                let content =
                    unzstd(f.get_bytes(keys::TOKENIZER_PACKED_ZSTD).unwrap(), size).unwrap();
                let (rest, _) = split(&content, 0, ScoreType::F32).unwrap();
                String::from_utf8(rest.to_vec()).unwrap()
            }
            None => f
                .get_str(keys::TOKENIZER_JSON_NO_VOCAB)
                .unwrap()
                .to_string(),
        };
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn unigram_tokenizers_are_stored_packed() {
        let forms = [Compression::Zstd, Compression::None];
        for (json, compression) in [unigram(PIECES, false), with_byte_pieces()]
            .into_iter()
            .flat_map(|j| forms.map(|c| (j.clone(), c)))
        {
            let (f, storage) = stored_with(&json, compression);
            match (&storage, compression) {
                (
                    TokenizerStorage::Packed {
                        unpacked: Some(n),
                        bytes,
                        ..
                    },
                    Compression::Zstd,
                ) => {
                    assert!(f.get(keys::TOKENIZER_JSON_NO_VOCAB).is_none());
                    assert!(f.get(keys::UNIGRAM_PIECES).is_none());
                    assert_eq!(
                        *bytes,
                        f.get_bytes(keys::TOKENIZER_PACKED_ZSTD).unwrap().len()
                    );
                    assert_eq!(*n as u64, f.get_u64(keys::TOKENIZER_PACKED_SIZE).unwrap());
                }
                (TokenizerStorage::Packed { unpacked: None, .. }, Compression::None) => {
                    assert!(f.get(keys::TOKENIZER_PACKED_ZSTD).is_none());
                }
                _ => panic!("{compression:?}: {storage:?}"),
            }
            assert_eq!(TokenizerStorage::of(&f), storage);
            assert!(f.get(keys::HF_TOKENIZER_JSON).is_none());
            let packed = TextTokenizer::from_gguf(&f).unwrap();
            let whole = TextTokenizer::from_json(json.as_bytes(), &f).unwrap();
            let stock = TextTokenizer::from_json_stock(json.as_bytes(), &f).unwrap();
            // The uncompressed form is the older one, which a converter now writes again.
            assert_eq!(storage.outdated(&packed), compression == Compression::None);
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
            let rest = json_part(&f);
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

    /// `good` with each `(key, value)` set (`None`: removed) gives a tokenizer error saying
    /// `msg`.
    fn refused_with(good: &GgufFile, cases: Vec<(&str, Option<Value>, &str)>) {
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

    #[test]
    fn damaged_zstd_frames_are_errors() {
        let (good, _) = stored(&unigram(PIECES, false));
        let frame = good
            .get_bytes(keys::TOKENIZER_PACKED_ZSTD)
            .unwrap()
            .to_vec();
        let size = good.get_u64(keys::TOKENIZER_PACKED_SIZE).unwrap();
        let content = unzstd(&frame, size).unwrap();
        let (rest, parts) = split(&content, 16, ScoreType::F32).unwrap();
        assert_eq!(parts.lengths.len(), 16);
        // Valid frames whose content is not five parts.
        let framed = |content: &[u8]| {
            let mut z = zstd::bulk::Compressor::new(3).unwrap();
            (z.compress(content).unwrap(), content.len() as u64)
        };
        let trailing = framed(&[&content[..], b"x"].concat());
        let short = {
            let mut c = Vec::new();
            for n in [rest.len() as u64 + 1000, 0, 0, 0, 0] {
                packed::put_varint(&mut c, n);
            }
            c.extend_from_slice(rest);
            framed(&c)
        };
        let mut flipped = frame.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x55;
        let mut bad_sum = frame.clone();
        let last = bad_sum.len() - 1;
        bad_sum[last] ^= 1;
        let b = |v: Vec<u8>| Value::Bytes(Bytes::from(v));
        let cases: Vec<(&str, Option<Value>, &str)> = vec![
            (keys::TOKENIZER_PACKED_SIZE, None, "missing key"),
            (
                keys::TOKENIZER_PACKED_SIZE,
                Some(Value::U64(size + 1)),
                "not the 1",
            ),
            (
                keys::TOKENIZER_PACKED_SIZE,
                Some(Value::U64(size - 1)),
                "does not decompress",
            ),
            // Refused before anything is reserved.
            (
                keys::TOKENIZER_PACKED_SIZE,
                Some(Value::U64(u64::MAX)),
                "at most 64 times",
            ),
            (
                keys::TOKENIZER_PACKED_SIZE,
                Some(Value::U64(frame.len() as u64 * MAX_RATIO + 1)),
                "at most 64 times",
            ),
            (
                keys::TOKENIZER_PACKED_ZSTD,
                Some(b(frame[..frame.len() / 2].to_vec())),
                "zstd frame",
            ),
            (
                keys::TOKENIZER_PACKED_ZSTD,
                Some(b(Vec::new())),
                "zstd frame",
            ),
            (
                keys::TOKENIZER_PACKED_ZSTD,
                Some(b(b"not zstd at all ".repeat(8))),
                "does not decompress",
            ),
            (keys::TOKENIZER_PACKED_ZSTD, Some(b(flipped)), "zstd frame"),
            (keys::TOKENIZER_PACKED_ZSTD, Some(b(bad_sum)), "checksum"),
            (
                keys::TOKENIZER_PACKED_ZSTD,
                Some("abc".into()),
                "not an array of u8",
            ),
            (
                keys::UNIGRAM_PIECE_COUNT,
                Some(Value::U32(17)),
                "announces 17 pieces",
            ),
            (
                keys::UNIGRAM_SCORE_TYPE,
                Some("f64".into()),
                "score corrections",
            ),
        ];
        // Both decoders (the browser's and the native one) refuse what is not the frame.
        let mut bad_sum = frame.clone();
        let last = bad_sum.len() - 1;
        bad_sum[last] ^= 1;
        for (bad, at) in [
            (frame[..frame.len() / 2].to_vec(), "truncated"),
            (bad_sum, "checksum"),
            (b"not zstd at all ".repeat(8), "not zstd"),
        ] {
            assert!(unzstd_rust(&bad, size).is_err(), "ruzstd: {at}");
            assert!(unzstd_c(&bad, size).is_err(), "libzstd: {at}");
        }
        assert_eq!(unzstd_rust(&frame, size).unwrap(), content);
        assert_eq!(unzstd_c(&frame, size).unwrap(), content);
        for ((frame, size), msg) in [(trailing, "follow its five parts"), (short, "run past")] {
            let mut f = good.clone();
            f.metadata
                .insert(keys::TOKENIZER_PACKED_ZSTD.into(), b(frame));
            f.metadata
                .insert(keys::TOKENIZER_PACKED_SIZE.into(), Value::U64(size));
            match TextTokenizer::from_gguf(&f) {
                Err(Error::Tokenizer(m)) => assert!(m.contains(msg), "{msg}: {m}"),
                other => panic!("{msg}: expected a tokenizer error, got {other:?}"),
            }
        }
        refused_with(&good, cases);
    }

    #[test]
    fn damaged_packed_tokenizers_are_errors() {
        let (good, _) = stored_with(&unigram(PIECES, false), Compression::None);
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
        refused_with(&good, cases);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]
        /// Damaged frames: both decoders give an error or the same bytes, never a panic.
        #[test]
        fn decoders_agree_on_damaged_frames(flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4),
                                            cut in prop::option::of(any::<usize>())) {
            let (good, _) = stored(&unigram(PIECES, false));
            let mut frame = good.get_bytes(keys::TOKENIZER_PACKED_ZSTD).unwrap().to_vec();
            let size = good.get_u64(keys::TOKENIZER_PACKED_SIZE).unwrap();
            let n = frame.len();
            for (at, b) in flips {
                frame[at % n] = b;
            }
            if let Some(cut) = cut {
                frame.truncate(cut % (n + 1));
            }
            if let (Ok(a), Ok(b)) = (unzstd_rust(&frame, size), unzstd_c(&frame, size)) {
                prop_assert_eq!(a, b);
            }
        }

        /// Damaged model files: an error or a tokenizer, never a panic.
        #[test]
        fn damaged_files_never_panic(flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4),
                                     cut in prop::option::of(any::<usize>()),
                                     zstd in any::<bool>()) {
            let mut w = GgufWriter::new();
            let compression = if zstd { Compression::Zstd } else { Compression::None };
            write_with(&mut w, &unigram(&PIECES[..10], false), compression).unwrap();
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
