//! The CPU encoder against the reference encoder on the real model.
//!
//! Needs the converted e5-small model (`$XLALIGN_MODEL`, else
//! `public/models/multilingual-e5-small-q4_0.gguf`, written by `scripts/setup.sh`) and
//! `tests/data/e5-small-q4-reference.json` (token ids, embeddings and last hidden states
//! from the reference encoder, plus an f32 dequantised version of the same maths).

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use serde_json::Value;
use xlalign_core::cpu::{CpuBackend, Isa};
use xlalign_core::embed::{cosine, embed_texts, Prefix};
use xlalign_core::Model;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path = std::env::var_os("XLALIGN_MODEL")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace().join("public/models/multilingual-e5-small-q4_0.gguf"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read the model at {} ({e}); run scripts/setup.sh or set XLALIGN_MODEL",
                path.display()
            )
        });
        Model::from_bytes(Bytes::from(bytes)).expect("the model file loads")
    })
}

fn reference() -> &'static [Value] {
    static REF: OnceLock<Value> = OnceLock::new();
    REF.get_or_init(|| {
        let path = workspace().join("tests/data/e5-small-q4-reference.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {} ({e})", path.display()));
        serde_json::from_str(&text).expect("reference JSON parses")
    })["sentences"]
        .as_array()
        .expect("`sentences` is a list")
}

/// The CPU backend's futures are complete when created; no executor is needed.
fn ready<F: Future>(f: F) -> F::Output {
    match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the CPU backend never waits"),
    }
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("a list of numbers")
        .iter()
        .map(|x| x.as_f64().expect("a number") as f32)
        .collect()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("a list of ids")
        .iter()
        .map(|x| x.as_u64().expect("an id") as u32)
        .collect()
}

fn text(s: &Value) -> &str {
    s["text"].as_str().expect("`text`")
}

fn name(s: &Value) -> &str {
    s["name"].as_str().unwrap_or("?")
}

#[test]
fn token_ids_match_the_reference_tokenizer() {
    let m = model();
    assert_eq!(m.defaults.passage_prefix, "passage: ");
    for s in reference() {
        // Where Hugging Face's tokenizer and the reference one disagree (decomposed accents,
        // runs of unknown characters), ours is the Hugging Face one.
        let want = ids(s.get("hf_ids_passage").unwrap_or(&s["ids_passage"]));
        let got = m.tokenizer.encode(text(s), "passage: ").unwrap().ids;
        assert_eq!(got, want, "sentence `{}`", name(s));
    }
}

#[test]
fn embeddings_match_the_reference_encoder() {
    let m = model();
    let cpu = CpuBackend::new(m).unwrap();
    // Sentences tokenised differently by the reference cannot be compared.
    let same: Vec<&Value> = reference()
        .iter()
        .filter(|s| s.get("hf_ids_passage").is_none())
        .collect();
    assert!(
        same.len() >= 20,
        "the reference set shrank to {}",
        same.len()
    );
    assert!(
        same.iter().any(|s| text(s).is_empty()),
        "the empty text is covered"
    );
    assert!(
        same.iter()
            .filter(|s| s["ids_passage"].as_array().unwrap().len() > 512)
            .count()
            >= 2,
        "long texts are covered"
    );
    let texts: Vec<&str> = same.iter().map(|s| text(s)).collect();
    let out = ready(embed_texts(m, &cpu, &texts, Prefix::Passage, None)).unwrap();
    let (mut min_c, mut min_f) = (f32::MAX, f32::MAX);
    for (s, e) in same.iter().zip(&out) {
        let c = cosine(&e.embedding, &floats(&s["embedding_passage"]));
        let f = cosine(&e.embedding, &floats(&s["embedding_passage_fp32_dequant"]));
        assert!(
            c >= 0.999 && f >= 0.999,
            "`{}`: cosine {c} to the reference, {f} to the f32 version",
            name(s)
        );
        min_c = min_c.min(c);
        min_f = min_f.min(f);
    }
    println!("embedding cosine over {} texts: min {min_c:.6} (reference encoder), {min_f:.6} (f32 dequantised)", same.len());
}

#[test]
fn last_hidden_states_match_per_token() {
    let m = model();
    let last = m.config.layers;
    let sents: Vec<&Value> = reference()
        .iter()
        .filter(|s| s.get("last_hidden_state_passage").is_some())
        .collect();
    assert_eq!(sents.len(), 3);
    let texts: Vec<&str> = sents.iter().map(|s| text(s)).collect();
    for isa in Isa::available() {
        let cpu = CpuBackend::new(m).unwrap().with_isa(isa);
        let out = ready(embed_texts(m, &cpu, &texts, Prefix::Passage, Some(last))).unwrap();
        let (mut min_c, mut min_f) = (f32::MAX, f32::MAX);
        for (s, e) in sents.iter().zip(&out) {
            let states = e.layer.as_ref().expect("the requested layer");
            for (field, min) in [
                ("last_hidden_state_passage", &mut min_c),
                ("last_hidden_state_passage_fp32_dequant", &mut min_f),
            ] {
                let want = s[field].as_array().unwrap();
                assert_eq!(states.nrows(), want.len(), "`{}`: token count", name(s));
                for (t, row) in want.iter().enumerate() {
                    let c = cosine(states.row(t).as_slice().unwrap(), &floats(row));
                    assert!(
                        c >= 0.999,
                        "`{}` token {t} ({field}, {isa}): cosine {c}",
                        name(s)
                    );
                    *min = min.min(c);
                }
            }
        }
        println!("{isa}: per-token cosine min {min_c:.6} (reference encoder), {min_f:.6} (f32 dequantised)");
    }
}

/// Throughput on 32 everyday sentences (the reference set's short texts, repeated),
/// single-threaded and, with `parallel`, on every core. Prints tokens per second.
#[test]
#[ignore = "timing; run with --release --ignored --nocapture"]
fn throughput_32_sentences() {
    let m = model();
    let short: Vec<&str> = reference()
        .iter()
        .filter(|s| !text(s).is_empty() && s["ids_passage"].as_array().unwrap().len() < 100)
        .map(text)
        .collect();
    let batch: Vec<Vec<u32>> = short
        .iter()
        .cycle()
        .take(32)
        .map(|t| m.tokenizer.encode(t, "passage: ").unwrap().ids)
        .collect();
    let seqs: Vec<&[u32]> = batch.iter().map(|s| s.as_slice()).collect();
    let tokens: usize = batch.iter().map(|s| s.len()).sum();
    // Wall time (best of 7) and CPU time per run (mean over the 7, all threads): on a busy
    // machine the second still tells what one pass costs.
    let time = |cpu: &CpuBackend| {
        cpu.forward_sync(&seqs, &[m.config.layers]).unwrap();
        let mut best = f64::MAX;
        let c0 = process_cpu_seconds();
        for _ in 0..7 {
            let t0 = Instant::now();
            cpu.forward_sync(&seqs, &[m.config.layers]).unwrap();
            best = best.min(t0.elapsed().as_secs_f64());
        }
        let cpu_per_run = c0.zip(process_cpu_seconds()).map(|(a, b)| (b - a) / 7.0);
        (best, cpu_per_run)
    };
    let report = |what: String, (wall, cpu): (f64, Option<f64>)| {
        let cpu = cpu.map_or(String::new(), |c| {
            format!(
                ", {:.1} ms CPU = {:.0} tokens per CPU-second",
                c * 1e3,
                tokens as f64 / c
            )
        });
        println!(
            "{what}: {tokens} tokens in {:.1} ms = {:.0} tokens/s{cpu}",
            wall * 1e3,
            tokens as f64 / wall
        );
    };
    let base = CpuBackend::new(m).unwrap();
    #[cfg(feature = "parallel")]
    let single = base.clone().with_threads(1).unwrap();
    #[cfg(not(feature = "parallel"))]
    let single = base.clone();
    for isa in Isa::available() {
        report(
            format!("{isa}, 1 thread"),
            time(&single.clone().with_isa(isa)),
        );
    }
    if base.threads() > 1 {
        report(
            format!("{}, {} threads", base.isa(), base.threads()),
            time(&base),
        );
    }
}

/// User + system CPU time of this process, from `/proc/self/stat` (Linux; clock ticks
/// taken as the usual 100 Hz). `None` elsewhere.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}
