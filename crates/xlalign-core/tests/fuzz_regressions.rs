//! Replays the fuzzers' seeds (`fuzz/seeds/<target>/`) and every input that once crashed a
//! target (`tests/fuzz-regressions/<target>/`, named for what it found) through the same entry
//! points the AFL++ targets call (`fuzz/src/targets.rs`, compiled in here): each must return,
//! Ok or Err, without a panic. `scripts/fuzz.sh` runs the fuzzers themselves.
//!
//! `tokenize_text` uses the tokenizer of `XLALIGN_MODEL` when it is set (as `scripts/test.sh`
//! sets it), else a small Unigram tokenizer.

#[allow(dead_code)]
#[path = "../../../fuzz/src/targets.rs"]
mod targets;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use targets::{tiny_model, TinyTokenizer, TARGETS};
use xlalign_core::tensor::DType;

fn inputs(target: &str) -> Vec<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [
        here.join("../../fuzz/seeds").join(target),
        here.join("tests/fuzz-regressions").join(target),
    ] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            files.extend(entries.map(|e| e.expect("a directory entry").path()));
        }
    }
    files.sort();
    files
}

#[test]
fn every_seed_and_past_crash_returns() {
    let mut failed = Vec::new();
    let mut seen = 0;
    for &(name, target) in TARGETS {
        let files = inputs(name);
        assert!(!files.is_empty(), "no seeds for the `{name}` target");
        for path in files {
            let data = std::fs::read(&path).expect("reads the input");
            seen += 1;
            if catch_unwind(AssertUnwindSafe(|| target(&data))).is_err() {
                failed.push(format!("{name}: {}", path.display()));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "these inputs panic:\n{}",
        failed.join("\n")
    );
    eprintln!("{seen} inputs replayed");
}

/// The seed maker's tiny models are valid files, so the fuzzers start from a model that
/// loads (and its committed copies are what it writes).
#[test]
fn tiny_models_load() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/gguf");
    for (tokenizer, dtype, name) in [
        (TinyTokenizer::Zstd, DType::Q4_0, "tiny-zstd-q4_0"),
        (TinyTokenizer::Packed, DType::Q8_0, "tiny-packed-q8_0"),
        (TinyTokenizer::Json, DType::F16, "tiny-json-f16"),
    ] {
        let bytes = tiny_model(tokenizer, dtype);
        let model = xlalign_core::Model::from_bytes(bytes::Bytes::from(bytes.clone()))
            .unwrap_or_else(|e| panic!("{name} does not load: {e}"));
        assert_eq!(model.config.layers, 2);
        let tok = model.tokenizer.encode("the cat", "").expect("tokenises");
        assert!(!tok.is_empty(), "{name}: no tokens");
        assert_eq!(
            std::fs::read(seeds.join(name)).ok().as_deref(),
            Some(&bytes[..]),
            "fuzz/seeds/gguf/{name} is not what the seed maker writes; run it again"
        );
    }
}
