//! The fuzz targets' entry points. Each takes arbitrary bytes to the function the project
//! uses for that kind of untrusted input and returns whatever it says (Ok or Err); a panic,
//! an abort or a huge allocation is a finding. The same functions replay the seeds and every
//! crash kept under `crates/xlalign-core/tests/fuzz-regressions/` in the core's tests
//! (`tests/fuzz_regressions.rs` compiles this file), so what was fuzzed is what CI checks.
//!
//! Besides "no panic", a few targets check a property the rest of the program relies on
//! (token offsets inside the text, a tokenizer the converter wrote loads again, a request
//! split into its encode and extract parts loses nothing): a violation is a finding too.

use std::sync::OnceLock;

use bytes::Bytes;
use serde_json::json;
use xlalign_core::align::words::{merge_by_tokens, pretokenized, segment};
use xlalign_core::align::{
    AlignOptions, CjkJoin, Direction, KanaSplit, Level, Method, WordMap, WordOptions,
};
use xlalign_core::gguf::{GgufFile, GgufHeader, GgufStr, GgufWriter, Value};
use xlalign_core::model::layout::Layout;
use xlalign_core::model::{block_range, first_blocks, keys, read_block, ModelDefaults};
use xlalign_core::pairs::{parse_pair_line, split_pair};
use xlalign_core::pharaoh::{self, AerCounts};
use xlalign_core::request::{AlignRequest, Part, Recommendation};
use xlalign_core::tensor::{quantize, DType};
use xlalign_core::tokenize::storage::{self, Compression, TokenizerStorage};
use xlalign_core::tokenize::{fixtures, TextTokenizer};
use xlalign_core::Model;

/// A target: bytes in, nothing out (a finding panics).
pub type Target = fn(&[u8]);

/// Every target by name, as `scripts/fuzz.sh` and the regression test list them.
pub const TARGETS: &[(&str, Target)] = &[
    ("gguf", gguf),
    ("gguf_header", gguf_header),
    ("tokenizer_json", tokenizer_json),
    ("tokenizer_packed", tokenizer_packed),
    ("tokenize_text", tokenize_text),
    ("pharaoh", pharaoh),
    ("pairs", pairs),
    ("request", request),
];

/// Work done once before the fuzzer forks (loading the tokenizer of `XLALIGN_MODEL`).
pub fn init() {
    text_tokenizer();
    special_ids();
}

/// At most this many transformer blocks are read per input, whatever a file claims.
const MAX_BLOCKS: usize = 64;
/// At most this many bytes past the prefix stand for the rest of a progressively loaded file.
const MAX_MISSING: usize = 1 << 16;

/// A whole model file, as the CLI, the Python package and the browser's one-request load
/// read it: `GgufFile::parse`, then `Model::from_gguf`.
pub fn gguf(data: &[u8]) {
    let Ok(f) = GgufFile::parse(Bytes::copy_from_slice(data)) else {
        return;
    };
    for v in f.metadata.values() {
        let _ = v.display_short();
    }
    let _ = TokenizerStorage::of(&f);
    for t in &f.tensors {
        if let Ok(t) = f.tensor(&t.name) {
            // Dequantising is bounded by the tensor's bytes, which the file holds.
            let _ = t.to_f32_vec();
        }
    }
    let Ok(model) = Model::from_gguf(&f) else {
        return;
    };
    if let Ok(rec) = Recommendation::of(&model) {
        let _ = AlignRequest::default().resolve(&rec);
    }
    exercise(&model.tokenizer);
}

/// The header from a file's first bytes, as the browser package's progressive loader reads
/// it (`GgufHeader::parse`, `first_blocks`, `block_range`, `Layout::plan`), then the model from the file
/// with the absent bytes zero and its first blocks (`Model::from_gguf_with_blocks`), and the
/// later blocks one at a time from their ranges (`read_block`).
///
/// Input: 4 bytes (little-endian; modulo [`MAX_MISSING`]) saying how many bytes of the file
/// are not in the prefix, then the prefix.
pub fn gguf_header(data: &[u8]) {
    let Some((missing, prefix)) = data.split_first_chunk::<4>() else {
        return;
    };
    let file_len = prefix.len() + u32::from_le_bytes(*missing) as usize % MAX_MISSING;
    let Ok(h) = GgufHeader::parse(prefix, file_len) else {
        return;
    };
    let layers = h
        .metadata
        .get(keys::BLOCK_COUNT)
        .and_then(|v| v.as_u64())
        .map(|n| n as usize);
    let first = first_blocks(&h.metadata);
    let _ = ModelDefaults::from_metadata(&h.metadata, layers.unwrap_or(0));
    for i in 0..layers.unwrap_or(0).min(MAX_BLOCKS) {
        let _ = block_range(&h.tensors, i);
    }
    // The browser's plan of which ranges to fetch, with a prefetch of no rows, a few rows
    // and the default: every bound it promises must hold.
    for prefetch in [0, 3, 1024] {
        if let Some(l) = Layout::plan(&h, prefetch) {
            assert_eq!(l.broken_bound(h.file_len), None, "{l:?}");
            assert!(l.prefetched_rows() <= l.table.rows && l.ready_bytes() <= h.file_len);
        }
    }

    let mut file = vec![0u8; file_len];
    file[..prefix.len()].copy_from_slice(prefix);
    let file = Bytes::from(file);
    let Ok(f) = GgufFile::parse(file.clone()) else {
        return;
    };
    let Ok(model) = Model::from_gguf_with_blocks(&f, first.unwrap_or(usize::MAX)) else {
        return;
    };
    for i in model.weights.layers.len()..model.config.layers.min(MAX_BLOCKS) {
        if let Some(r) = block_range(&h.tensors, i) {
            let _ = read_block(&model.config, &h.tensors, i, r.start, &file.slice(r));
        }
    }
}

/// A whole `tokenizer.json`: as a model file of the first format stores it
/// (`TextTokenizer::from_json`), and through the converters' writer (`storage::write`),
/// whose file must then load with the same tokenizer.
pub fn tokenizer_json(data: &[u8]) {
    let Ok(t) = TextTokenizer::from_json(data, special_ids()) else {
        return;
    };
    exercise(&t);
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    let mut w = with_special_ids();
    if storage::write(&mut w, json).is_err() {
        return;
    }
    let bytes = w.to_bytes().expect("a metadata-only file writes");
    let f = GgufFile::parse(Bytes::from(bytes)).expect("the writer's file parses");
    let back = TextTokenizer::from_gguf(&f)
        .unwrap_or_else(|e| panic!("the tokenizer the converter stored does not load: {e}"));
    assert_eq!(back.vocab_size(), t.vocab_size());
    for text in SAMPLES {
        if let (Ok(a), Ok(b)) = (t.encode(text, ""), back.encode(text, "")) {
            assert_eq!(a.ids, b.ids, "{text:?} tokenises differently once stored");
        }
    }
}

/// The packed tokenizer of a model file (`storage::read` through `TextTokenizer::from_gguf`),
/// with the parts the fuzzer gives: the frame's content (five LEB128 lengths, then the JSON
/// without vocabulary, piece lengths, pieces, scores and score corrections).
///
/// Input: a flags byte (bit 0: f64 scores, else f32; bits 1–2: 0 the content in a zstd frame
/// compressed here, 1 the rest of the input is the frame itself after a 4-byte content size,
/// 2 the parts as the separate keys of files from before the frame), 4 bytes of piece count
/// (little-endian), then the content.
pub fn tokenizer_packed(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some((count, content)) = rest.split_first_chunk::<4>() else {
        return;
    };
    let mut w = with_special_ids();
    w.set(keys::UNIGRAM_PIECE_COUNT, u32::from_le_bytes(*count))
        .set(
            keys::UNIGRAM_SCORE_TYPE,
            if flags & 1 == 1 { "f64" } else { "f32" },
        );
    match (flags >> 1) & 3 {
        0 => {
            let frame = zstd::bulk::compress(content, 1).expect("zstd compresses");
            w.set(
                keys::TOKENIZER_PACKED_SIZE,
                Value::U64(content.len() as u64),
            )
            .set(
                keys::TOKENIZER_PACKED_ZSTD,
                Value::Bytes(Bytes::from(frame)),
            );
        }
        1 => {
            let Some((size, frame)) = content.split_first_chunk::<4>() else {
                return;
            };
            w.set(keys::TOKENIZER_PACKED_SIZE, u32::from_le_bytes(*size))
                .set(
                    keys::TOKENIZER_PACKED_ZSTD,
                    Value::Bytes(Bytes::copy_from_slice(frame)),
                );
        }
        _ => {
            let Some([json, lengths, pieces, scores, corrections]) = split_parts(content) else {
                return;
            };
            let string = |b: &[u8]| Value::String(GgufStr::unchecked(Bytes::copy_from_slice(b)));
            let array = |b: &[u8]| Value::Bytes(Bytes::copy_from_slice(b));
            w.set(keys::TOKENIZER_JSON_NO_VOCAB, string(json))
                .set(keys::UNIGRAM_PIECE_LENGTHS, array(lengths))
                .set(keys::UNIGRAM_PIECES, string(pieces))
                .set(keys::UNIGRAM_SCORES, array(scores))
                .set(keys::UNIGRAM_SCORE_CORRECTIONS, array(corrections));
        }
    }
    let bytes = w.to_bytes().expect("a metadata-only file writes");
    // A string that is not UTF-8 stops the file here; the tokenizer is not reached.
    let Ok(f) = GgufFile::parse(Bytes::from(bytes)) else {
        return;
    };
    let _ = TokenizerStorage::of(&f);
    if let Ok(t) = TextTokenizer::from_gguf(&f) {
        exercise(&t);
    }
}

/// Arbitrary text through the tokenizer of `XLALIGN_MODEL` (a small Unigram tokenizer when
/// it is not set) and the word segmentation that maps its tokens to words, raw and
/// pre-tokenised, as the aligner runs them.
///
/// Input: an options byte (bits 0–1: CJK joining auto/always/never; bit 2: kana runs; bit 3:
/// the query prefix), then the text (invalid UTF-8 replaced).
pub fn tokenize_text(data: &[u8]) {
    let Some((&o, text)) = data.split_first() else {
        return;
    };
    let opts = WordOptions {
        cjk_join: [
            CjkJoin::Auto,
            CjkJoin::Always,
            CjkJoin::Never,
            CjkJoin::Auto,
        ][o as usize & 3],
        kana: if o & 4 != 0 {
            KanaSplit::Run
        } else {
            KanaSplit::Char
        },
    };
    let prefix = if o & 8 != 0 { "query: " } else { "" };
    let text = String::from_utf8_lossy(text);
    let t = text_tokenizer();
    if let Ok(tok) = t.encode(&text, prefix) {
        check_offsets(&text, &tok);
        let seg = segment(&text, &opts);
        let merged = merge_by_tokens(&seg, &tok.offsets);
        let _ = WordMap::from_offsets(&tok.offsets, &merged.words);
    }
    if let Ok(p) = pretokenized(&text, &opts) {
        if let Ok(tok) = t.encode(&p.text, prefix) {
            check_offsets(&p.text, &tok);
            let _ = WordMap::from_offsets(&tok.offsets, &p.words);
        }
    }
}

/// Pharaoh files: a gold file and a prediction (split at the first NUL byte; invalid UTF-8
/// replaced) read as `xlalign eval` and `eval --gold-dir` read them (`pharaoh::parse`,
/// `evaluate_text`), the prediction's lines also as scores lines; a parsed line written
/// back reads the same.
pub fn pharaoh(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (gold, pred) = text.split_once('\0').unwrap_or((&text, ""));
    let _ = pharaoh::evaluate_text(gold, pred);
    if let (Ok(g), Ok(p)) = (
        pharaoh::parse(gold, "gold"),
        pharaoh::parse(pred, "prediction"),
    ) {
        let mut counts = AerCounts::default();
        for (g, p) in g.iter().zip(&p) {
            counts.add(g, p);
        }
        let _ = counts.metrics();
        for (k, line) in g.iter().enumerate() {
            let again = pharaoh::parse_line(&pharaoh::write_marked_line(line), k + 1, "gold")
                .expect("a written line parses");
            assert_eq!(&again, line);
        }
    }
    for (k, line) in pred.lines().enumerate() {
        let _ = pharaoh::parse_scores_line(line, k % 4, k + 1);
    }
}

/// `source ||| target` and tab-separated pair lines (`split_pair`, `parse_pair_line`), one
/// per line of the input (invalid UTF-8 replaced).
pub fn pairs(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for (k, line) in text.lines().enumerate() {
        if let Ok((src, tgt)) = split_pair(line) {
            assert!(!src.is_empty() && !tgt.is_empty());
            assert_eq!((src.trim(), tgt.trim()), (src, tgt));
        }
        let _ = parse_pair_line(k + 1, line);
    }
}

/// Options as JSON, as the npm and Python packages take them: an `AlignRequest` resolved
/// against a few models' recommendations and split into its encode and extract parts;
/// `AlignOptions` (`validate`); a `Recommendation`; and the text as a method, direction or
/// level name and as a model file's recommended method.
pub fn request(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = serde_json::from_str::<AlignRequest>(text) {
        for rec in recommendations() {
            let _ = r.resolve(rec);
        }
        for part in [Part::Encode, Part::Extract] {
            let _ = r.check_only(part);
        }
        let (e, x) = (r.part(Part::Encode), r.part(Part::Extract));
        // The parts together are the request: nothing is lost or changed by the split.
        let joined = AlignRequest {
            layer: e.layer,
            pretokenized: e.pretokenized,
            sentence_cosine: e.sentence_cosine,
            words: e.words,
            ..x
        };
        assert_eq!(joined, r, "splitting {text:?} into its parts changed it");
    }
    if let Ok(o) = serde_json::from_str::<AlignOptions>(text) {
        let _ = o.validate();
    }
    if let Ok(rec) = serde_json::from_str::<Recommendation>(text) {
        let _ = AlignRequest::default().resolve(&rec);
        let _ = rec.options.validate();
    }
    let _ = text.parse::<Method>();
    let _ = text.parse::<Direction>();
    let _ = text.parse::<Level>();
    let _ = Recommendation::from_defaults(
        &ModelDefaults {
            align_method: text.to_string(),
            ..defaults()
        },
        12,
    );
}

/// The recommendations of a model with 12 blocks (the default model's) and of one with none.
fn recommendations() -> &'static [Recommendation] {
    static RECS: OnceLock<Vec<Recommendation>> = OnceLock::new();
    RECS.get_or_init(|| {
        let mut recs = Vec::new();
        for (method, layers) in [("softmax", 12), ("itermax", 12), ("entmax", 0)] {
            let d = ModelDefaults {
                align_method: method.into(),
                ..defaults()
            };
            recs.push(Recommendation::from_defaults(&d, layers).expect("a known method"));
        }
        recs
    })
}

fn defaults() -> ModelDefaults {
    ModelDefaults::from_metadata(&Default::default(), 12)
}

/// Texts every tokenizer that loads is run on.
const SAMPLES: &[&str] = &[
    "Hello, world!",
    "",
    "   ",
    "Der Hund läuft schnell.",
    "日本語のテキストです。",
    "a\u{0}b\u{FEFF}c\u{200B}",
    "🙂🙂 e\u{301}",
];

/// A loaded tokenizer, run as the pipeline runs it.
fn exercise(t: &TextTokenizer) {
    let _ = t.vocab_size();
    for id in [0, 1, t.unk, t.bos, u32::MAX] {
        let _ = t.id_to_token(id);
    }
    for text in SAMPLES {
        if let Ok(tok) = t.encode(text, "passage: ") {
            check_offsets(text, &tok);
        }
    }
}

/// Token offsets are byte ranges on character boundaries of the caller's text: later stages
/// slice the text with them.
fn check_offsets(text: &str, tok: &xlalign_core::tokenize::Tokenized) {
    assert_eq!(tok.ids.len(), tok.offsets.len());
    assert_eq!(tok.ids.len(), tok.tokens.len());
    for &(a, b) in tok.offsets.iter().flatten() {
        assert!(
            a <= b && b <= text.len() && text.is_char_boundary(a) && text.is_char_boundary(b),
            "token offsets {a}..{b} do not lie on character boundaries of {text:?}"
        );
    }
}

/// A metadata-only file naming the special ids the small tokenizers below use.
fn special_ids() -> &'static GgufFile {
    static FILE: OnceLock<GgufFile> = OnceLock::new();
    FILE.get_or_init(|| {
        let bytes = with_special_ids().to_bytes().expect("writes");
        GgufFile::parse(Bytes::from(bytes)).expect("parses")
    })
}

fn with_special_ids() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.set(keys::BOS_ID, 0u32)
        .set(keys::PAD_ID, 1u32)
        .set(keys::EOS_ID, 2u32)
        .set(keys::UNK_ID, 3u32);
    w
}

/// The tokenizer of `XLALIGN_MODEL`, else [`unigram_json`]'s.
fn text_tokenizer() -> &'static TextTokenizer {
    static T: OnceLock<TextTokenizer> = OnceLock::new();
    T.get_or_init(|| match std::env::var_os("XLALIGN_MODEL") {
        Some(path) => {
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read XLALIGN_MODEL {path:?}: {e}"));
            let f = GgufFile::parse(Bytes::from(bytes)).expect("XLALIGN_MODEL parses");
            TextTokenizer::from_gguf(&f).expect("XLALIGN_MODEL's tokenizer loads")
        }
        None => TextTokenizer::from_json(unigram_json(false).as_bytes(), special_ids())
            .expect("the small tokenizer loads"),
    })
}

/// Splits a frame's content into its five parts (see `tokenize::storage`).
fn split_parts(content: &[u8]) -> Option<[&[u8]; 5]> {
    let mut at = 0;
    let mut lens = [0usize; 5];
    for l in &mut lens {
        let mut v = 0u64;
        for shift in (0..35).step_by(7) {
            let b = *content.get(at)?;
            at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
        }
        *l = usize::try_from(v).ok()?;
    }
    let mut parts = [&content[..0]; 5];
    for (p, l) in parts.iter_mut().zip(lens) {
        *p = content.get(at..at.checked_add(l)?)?;
        at += l;
    }
    Some(parts)
}

/// The content of a packed tokenizer's frame: five LEB128 lengths, then the parts.
pub fn frame_content(parts: [&[u8]; 5]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        let mut v = p.len() as u64;
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            out.push(if v == 0 { b } else { b | 0x80 });
            if v == 0 {
                break;
            }
        }
    }
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// The pieces of the small Unigram tokenizer; its ids are the tiny model's vocabulary.
const PIECES: &[(&str, f64)] = &[
    ("<s>", 0.0),
    ("<pad>", 0.0),
    ("</s>", 0.0),
    ("<unk>", 0.0),
    ("\u{2581}", -2.5),
    ("\u{2581}the", -3.0),
    ("\u{2581}cat", -4.0),
    ("\u{2581}der", -4.1),
    ("\u{2581}Hund", -5.2),
    ("\u{2581}le", -4.3),
    ("\u{2581}chat", -5.5),
    ("s", -3.3),
    ("e", -3.1),
    ("a", -3.4),
    ("t", -3.6),
    ("n", -3.7),
    ("日本", -6.0),
    ("語", -6.5),
    ("の", -5.0),
    ("です", -5.9),
    (",", -3.2),
    (".", -3.15),
    ("!", -4.4),
    ("\u{2581}world", -5.0),
];

/// A small XLM-R-style Unigram `tokenizer.json` (NFKC, Metaspace, `<s> A </s>`) with
/// [`PIECES`].
pub fn unigram_json(byte_fallback: bool) -> String {
    fixtures::unigram(PIECES, byte_fallback)
}

/// A small WordPiece `tokenizer.json` (BERT-style), stored whole in model files.
pub fn wordpiece_json() -> String {
    let added = fixtures::added;
    json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [added(0, "<s>"), added(1, "<pad>"), added(2, "</s>"), added(3, "<unk>")],
        "normalizer": {"type": "BertNormalizer", "clean_text": true,
                       "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": null,
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "<unk>", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100,
                  "vocab": {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "hello": 4,
                            "world": 5, "##s": 6, "!": 7}}
    })
    .to_string()
}

/// How a tiny model file stores its tokenizer.
#[derive(Clone, Copy, Debug)]
pub enum TinyTokenizer {
    /// Packed in a zstd frame, as converters write it now.
    Zstd,
    /// Packed as separate keys, as files before the frame.
    Packed,
    /// The whole tokenizer.json (the first format).
    Json,
}

/// A tiny but complete model file (2 blocks, hidden size 32, 24 pieces) written with the
/// project's writer: valid input for the model loader, a few kilobytes. `dtype` is the token
/// table's type; the blocks' matrices are Q4_0, the vectors f32.
pub fn tiny_model(tokenizer: TinyTokenizer, dtype: DType) -> Vec<u8> {
    let (hidden, ff, layers, positions) = (32usize, 32usize, 2usize, 16usize);
    let vocab = PIECES.len();
    let mut w = with_special_ids();
    w.set(keys::ARCHITECTURE, "bert")
        .set(keys::NAME, "tiny")
        .set(keys::EMBEDDING_LENGTH, hidden as u32)
        .set(keys::FEED_FORWARD_LENGTH, ff as u32)
        .set(keys::BLOCK_COUNT, layers as u32)
        .set(keys::HEAD_COUNT, 2u32)
        .set(keys::CONTEXT_LENGTH, positions as u32)
        .set(keys::TOKEN_TYPE_COUNT, 1u32)
        .set(keys::LAYER_NORM_EPS, 1e-12f32)
        .set(keys::POOLING_TYPE, 1u32)
        .set(keys::ALIGN_LAYER, 1u32)
        .set(keys::ALIGN_METHOD, "softmax")
        .set(keys::ALIGN_THRESHOLD, 0.3f32);
    match tokenizer {
        TinyTokenizer::Zstd => {
            storage::write(&mut w, &unigram_json(false)).expect("stores");
        }
        TinyTokenizer::Packed => {
            storage::write_with(&mut w, &unigram_json(true), Compression::None).expect("stores");
        }
        TinyTokenizer::Json => {
            w.set(keys::HF_TOKENIZER_JSON, wordpiece_json());
        }
    }
    let mut seed = 1u32;
    let mut values = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    };
    let mut add = |w: &mut GgufWriter, name: &str, dtype: DType, shape: Vec<usize>| {
        let data = quantize(dtype, &values(shape.iter().product())).expect("quantises");
        w.add(name, dtype, shape, data).expect("adds");
    };
    add(&mut w, "token_embd.weight", dtype, vec![vocab, hidden]);
    add(
        &mut w,
        "position_embd.weight",
        DType::F32,
        vec![positions, hidden],
    );
    add(&mut w, "token_types.weight", DType::F32, vec![1, hidden]);
    add(&mut w, "token_embd_norm.weight", DType::F32, vec![hidden]);
    add(&mut w, "token_embd_norm.bias", DType::F32, vec![hidden]);
    for i in 0..layers {
        for (t, out, inp) in [
            ("attn_q", hidden, hidden),
            ("attn_k", hidden, hidden),
            ("attn_v", hidden, hidden),
            ("attn_output", hidden, hidden),
            ("ffn_up", ff, hidden),
            ("ffn_down", hidden, ff),
        ] {
            add(
                &mut w,
                &keys::layer(i, &format!("{t}.weight")),
                DType::Q4_0,
                vec![out, inp],
            );
            add(
                &mut w,
                &keys::layer(i, &format!("{t}.bias")),
                DType::F32,
                vec![out],
            );
        }
        for n in ["attn_output_norm", "layer_output_norm"] {
            add(
                &mut w,
                &keys::layer(i, &format!("{n}.weight")),
                DType::F32,
                vec![hidden],
            );
            add(
                &mut w,
                &keys::layer(i, &format!("{n}.bias")),
                DType::F32,
                vec![hidden],
            );
        }
    }
    w.to_bytes().expect("writes")
}
