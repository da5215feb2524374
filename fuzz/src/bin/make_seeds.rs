//! Writes the seed files that come from the project's own writer: tiny model files (whole,
//! and as the progressive loader's prefixes), tokenizer.json files and packed tokenizers.
//! The text targets' seeds are written by hand. Run by `scripts/fuzz.sh`; the output is
//! committed under `fuzz/seeds/` (no `.gguf`/`.bin` names, which the repository ignores).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use xlalign_core::gguf::{GgufFile, GgufHeader};
use xlalign_core::model::keys;
use xlalign_core::tensor::DType;
use xlalign_fuzz::targets::{
    frame_content, tiny_model, unigram_json, wordpiece_json, TinyTokenizer,
};

fn main() {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds"));
    let put = |target: &str, name: &str, bytes: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("creates the seed folder");
        std::fs::write(dir.join(name), bytes).expect("writes a seed");
    };

    let zstd = tiny_model(TinyTokenizer::Zstd, DType::Q4_0);
    let packed = tiny_model(TinyTokenizer::Packed, DType::Q8_0);
    let json = tiny_model(TinyTokenizer::Json, DType::F16);
    put("gguf", "tiny-zstd-q4_0", &zstd);
    put("gguf", "tiny-packed-q8_0", &packed);
    put("gguf", "tiny-json-f16", &json);
    put("gguf", "truncated", &zstd[..zstd.len() / 2]);

    // Progressive loading: the whole file, and the header alone with the rest missing.
    let header = GgufHeader::parse(&zstd, zstd.len()).expect("the tiny model parses");
    let with_missing = |missing: usize, prefix: &[u8]| {
        let mut v = (missing as u32).to_le_bytes().to_vec();
        v.extend_from_slice(prefix);
        v
    };
    put("gguf_header", "whole", &with_missing(0, &zstd));
    let cut = header.data_offset;
    put(
        "gguf_header",
        "header-only",
        &with_missing(zstd.len() - cut, &zstd[..cut]),
    );
    let first = header.tensors.iter().map(|t| t.offset).min().unwrap_or(cut) + 64;
    put(
        "gguf_header",
        "inside-tensor-data",
        &with_missing(zstd.len() - first, &zstd[..first]),
    );

    put(
        "tokenizer_json",
        "unigram.json",
        unigram_json(false).as_bytes(),
    );
    put(
        "tokenizer_json",
        "unigram-byte-fallback.json",
        unigram_json(true).as_bytes(),
    );
    put(
        "tokenizer_json",
        "wordpiece.json",
        wordpiece_json().as_bytes(),
    );
    let u = unigram_json(false);
    put(
        "tokenizer_json",
        "truncated.json",
        &u.as_bytes()[..u.len() / 2],
    );

    // The packed parts of the tiny model's tokenizer, as the frame holds them.
    let f = GgufFile::parse(Bytes::from(packed)).expect("the tiny model parses");
    let count = f.get_u64(keys::UNIGRAM_PIECE_COUNT).expect("a piece count") as u32;
    let f64_scores = f.get_str(keys::UNIGRAM_SCORE_TYPE).expect("a score type") == "f64";
    let content = frame_content([
        f.get_str_bytes(keys::TOKENIZER_JSON_NO_VOCAB)
            .expect("JSON"),
        f.get_bytes(keys::UNIGRAM_PIECE_LENGTHS).expect("lengths"),
        f.get_str_bytes(keys::UNIGRAM_PIECES).expect("pieces"),
        f.get_bytes(keys::UNIGRAM_SCORES).expect("scores"),
        f.get_bytes(keys::UNIGRAM_SCORE_CORRECTIONS)
            .expect("corrections"),
    ]);
    let input = |mode: u8, rest: &[u8]| {
        let mut v = vec![mode << 1 | u8::from(f64_scores)];
        v.extend_from_slice(&count.to_le_bytes());
        v.extend_from_slice(rest);
        v
    };
    put("tokenizer_packed", "frame", &input(0, &content));
    put("tokenizer_packed", "separate-keys", &input(2, &content));
    let z = GgufFile::parse(Bytes::from(zstd)).expect("the tiny model parses");
    let mut raw = (z.get_u64(keys::TOKENIZER_PACKED_SIZE).expect("a size") as u32)
        .to_le_bytes()
        .to_vec();
    raw.extend_from_slice(z.get_bytes(keys::TOKENIZER_PACKED_ZSTD).expect("a frame"));
    put("tokenizer_packed", "raw-frame", &input(1, &raw));
    eprintln!("seeds written under {}", root.display());
}
