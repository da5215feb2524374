//! `xlalign delta make` / `apply` on the default model: a tuned copy (one Q4_0 matrix and the
//! alignment temperature changed) becomes a small delta and its manifest, the delta rebuilds
//! it, `info` shows the same weights digest, and wrong bases or digests are one-line errors
//! that write nothing.

mod common;

use bytes::Bytes;
use common::{assert_clean_error, model, text, tmp, xlalign};
use xlalign_core::gguf::{GgufFile, GgufWriter};
use xlalign_core::model::keys;

const CHANGED: &str = "blk.0.attn_q.weight";

fn info_digest(path: &str) -> String {
    let out = xlalign(&["info", path], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("weights:"))
        .unwrap_or_else(|| panic!("no weights line in {stdout}"));
    line.split_whitespace().nth(2).unwrap().to_string()
}

/// `xlalign delta apply --base BASE --delta DELTA -o OUT [--expect-weights-sha256 HEX]`.
fn apply(base: &str, delta: &str, out: &str, expect: Option<&str>) -> std::process::Output {
    let mut args = vec![
        "delta", "apply", "--base", base, "--delta", delta, "-o", out,
    ];
    if let Some(hex) = expect {
        args.extend(["--expect-weights-sha256", hex]);
    }
    xlalign(&args, b"")
}

#[test]
fn make_and_apply_round_trip_on_the_default_model() {
    let base_path = model();
    let base = GgufFile::parse(Bytes::from(std::fs::read(&base_path).unwrap())).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in &base.metadata {
        w.set(k, v.clone());
    }
    w.set(keys::ALIGN_TEMPERATURE, 0.05f32);
    for t in base.all_tensors().unwrap() {
        if t.name == CHANGED {
            let mut d = t.data.to_vec();
            d[7] ^= 0x33;
            w.add(&t.name, t.dtype, t.shape.clone(), d).unwrap();
        } else {
            w.add_tensor(t).unwrap();
        }
    }
    let tuned = tmp("tuned.gguf");
    std::fs::write(&tuned, w.to_bytes().unwrap()).unwrap();
    let (base_s, tuned_s) = (base_path.to_str().unwrap(), tuned.to_str().unwrap());
    let base_digest = info_digest(base_s);
    let tuned_digest = info_digest(tuned_s);
    assert_ne!(base_digest, tuned_digest);

    let delta = tmp("test.delta.gguf");
    let manifest = tmp("test.json");
    let out = xlalign(
        &[
            "delta",
            "make",
            "--base",
            base_s,
            "--tuned",
            tuned_s,
            "-o",
            delta.to_str().unwrap(),
            "--manifest",
            manifest.to_str().unwrap(),
        ],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let d = GgufFile::parse(Bytes::from(std::fs::read(&delta).unwrap())).unwrap();
    assert_eq!(d.tensors.len(), 1);
    assert_eq!(d.tensors[0].name, CHANGED);
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    assert_eq!(m["name"], "test");
    assert_eq!(m["base"], "multilingual-e5-small-q4_0.gguf");
    assert_eq!(m["result"], "test.gguf");
    assert_eq!(m["base_weights_sha256"], base_digest.as_str());
    assert_eq!(m["result_weights_sha256"], tuned_digest.as_str());
    assert_eq!(
        m["delta_sha256"],
        xlalign_core::gguf::sha256_hex(&std::fs::read(&delta).unwrap()).as_str()
    );

    let result = tmp("result.gguf");
    let out = apply(
        base_s,
        delta.to_str().unwrap(),
        result.to_str().unwrap(),
        Some(&tuned_digest),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        format!("weights sha256 {tuned_digest}")
    );
    assert_eq!(info_digest(result.to_str().unwrap()), tuned_digest);
    let info = text(&xlalign(&["info", result.to_str().unwrap()], b"").stdout);
    assert!(info.contains("temperature 0.05"), "{info}");

    // The tuned model is not the delta's base.
    let elsewhere = tmp("elsewhere.gguf");
    let out = apply(
        tuned_s,
        delta.to_str().unwrap(),
        elsewhere.to_str().unwrap(),
        None,
    );
    assert_clean_error(&out, &base_digest);
    assert!(!elsewhere.exists());

    // A result other than the one expected is not written.
    let out = apply(
        base_s,
        delta.to_str().unwrap(),
        elsewhere.to_str().unwrap(),
        Some(&base_digest),
    );
    assert_clean_error(&out, "nothing written");
    assert!(!elsewhere.exists());

    // A model is not a delta.
    let out = apply(base_s, tuned_s, elsewhere.to_str().unwrap(), None);
    assert_clean_error(&out, "not a model delta");
    for p in [tuned, delta, manifest, result] {
        std::fs::remove_file(p).ok();
    }
}
