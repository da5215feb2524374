//! Model deltas (`gguf::delta`) end to end: a delta cut from a tuned tiny model rebuilds it
//! exactly; wrong bases, foreign tensors, other types or shapes and truncated deltas are
//! errors that name what is wrong; a delta written by gguf-py (as the training scripts write
//! them) applies; and every delta shipped under `models/` rebuilds the model its manifest names.

#[allow(dead_code)]
#[path = "../../../fuzz/src/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use targets::{tiny_model, TinyTokenizer};
use xlalign_core::gguf::delta::{
    apply_delta, make_delta, BASE_WEIGHTS_SHA256, RESULT_WEIGHTS_SHA256,
};
use xlalign_core::gguf::{sha256_hex, GgufFile, GgufWriter, Value, WeightsDigest};
use xlalign_core::model::keys;
use xlalign_core::tensor::DType;
use xlalign_core::{Error, Model};

const Q4_TENSOR: &str = "blk.0.attn_q.weight";
const F32_TENSOR: &str = "blk.1.ffn_up.bias";

fn parse(bytes: Vec<u8>) -> GgufFile {
    GgufFile::parse(Bytes::from(bytes)).expect("parses")
}

fn base() -> GgufFile {
    parse(tiny_model(TinyTokenizer::Zstd, DType::Q4_0))
}

/// `file` rewritten with `edit` applied to its metadata and tensors (in order).
fn rewrite(
    file: &GgufFile,
    edit_meta: impl FnOnce(&mut GgufWriter),
    mut edit_data: impl FnMut(&str, &mut Vec<u8>),
) -> GgufFile {
    let mut w = GgufWriter::new();
    for (k, v) in &file.metadata {
        w.set(k, v.clone());
    }
    edit_meta(&mut w);
    for t in file.all_tensors().unwrap() {
        let mut data = t.data.to_vec();
        edit_data(&t.name, &mut data);
        w.add(&t.name, t.dtype, t.shape.clone(), data).unwrap();
    }
    parse(w.to_bytes().unwrap())
}

/// The base with two tensors changed (a Q4_0 matrix and an f32 vector), its name changed and
/// an alignment temperature added.
fn tuned(base: &GgufFile) -> GgufFile {
    rewrite(
        base,
        |w| {
            w.set(keys::NAME, "tiny-tuned")
                .set(keys::ALIGN_TEMPERATURE, 0.05f32);
        },
        |name, data| {
            if name == Q4_TENSOR || name == F32_TENSOR {
                // A Q4_0 block's first two bytes are its f16 scale; change a nibble byte.
                data[5] ^= 0x5a;
            }
        },
    )
}

fn input_error(r: Result<GgufWriter, Error>) -> String {
    match r {
        Err(e @ Error::Input(_)) => e.to_string(),
        Err(e) => panic!("expected an input error, got {e}"),
        Ok(_) => panic!("expected an error, got a result"),
    }
}

#[test]
fn the_digest_covers_tensors_not_metadata() {
    let base = base();
    let d = base.weights_digest().unwrap();
    let renamed = rewrite(
        &base,
        |w| {
            w.set(keys::NAME, "other");
        },
        |_, _| {},
    );
    assert_eq!(renamed.weights_digest().unwrap(), d);
    let changed = rewrite(
        &base,
        |_| {},
        |n, data| {
            if n == F32_TENSOR {
                data[0] ^= 1;
            }
        },
    );
    assert_ne!(changed.weights_digest().unwrap(), d);
    assert_eq!(
        WeightsDigest::parse_hex(&d.hex().to_uppercase()).unwrap(),
        d
    );
    assert!(WeightsDigest::parse_hex("abc").is_err());
    assert!(WeightsDigest::parse_hex(&"g".repeat(64)).is_err());
}

#[test]
fn apply_of_make_rebuilds_the_tuned_model() {
    let base = base();
    let tuned = tuned(&base);
    let delta = parse(make_delta(&base, &tuned, None).unwrap().to_bytes().unwrap());
    let names: Vec<&str> = delta.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, [Q4_TENSOR, F32_TENSOR]);
    let delta_keys: Vec<&str> = delta.metadata.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        delta_keys,
        [
            keys::NAME,
            keys::ALIGN_TEMPERATURE,
            BASE_WEIGHTS_SHA256,
            RESULT_WEIGHTS_SHA256
        ]
    );
    assert!(
        delta.file_len() * 4 < base.file_len(),
        "a {} byte delta of a {} byte model",
        delta.file_len(),
        base.file_len()
    );

    let result = parse(apply_delta(&base, &delta).unwrap().to_bytes().unwrap());
    assert_eq!(
        result.weights_digest().unwrap(),
        tuned.weights_digest().unwrap()
    );
    assert_eq!(result.metadata, tuned.metadata);
    let model = Model::from_gguf(&result).expect("the result loads");
    assert_eq!(model.name, "tiny-tuned");
    assert_eq!(model.defaults.align_temperature, 0.05);

    // Only the keys asked for; every tensor that differs all the same.
    let only = [keys::ALIGN_TEMPERATURE.to_string()];
    let delta = parse(
        make_delta(&base, &tuned, Some(&only))
            .unwrap()
            .to_bytes()
            .unwrap(),
    );
    assert_eq!(delta.tensors.len(), 2);
    assert!(delta.get(keys::NAME).is_none());
    let result = parse(apply_delta(&base, &delta).unwrap().to_bytes().unwrap());
    assert_eq!(result.get_str(keys::NAME).unwrap(), "tiny");
    assert_eq!(
        result.get_f64(keys::ALIGN_TEMPERATURE).unwrap(),
        0.05f32 as f64
    );
}

#[test]
fn a_delta_refuses_another_base() {
    let base = base();
    let delta = parse(
        make_delta(&base, &tuned(&base), None)
            .unwrap()
            .to_bytes()
            .unwrap(),
    );
    let other = parse(tiny_model(TinyTokenizer::Zstd, DType::Q8_0));
    let msg = input_error(apply_delta(&other, &delta));
    let want = base.weights_digest().unwrap().hex();
    assert!(msg.contains(&want), "{msg}");
    assert!(
        msg.contains(&other.weights_digest().unwrap().hex()),
        "{msg}"
    );

    // A base that differs in one tensor byte is another base too.
    let nudged = rewrite(
        &base,
        |_| {},
        |n, d| {
            if n == "token_embd_norm.bias" {
                d[3] ^= 1;
            }
        },
    );
    assert!(input_error(apply_delta(&nudged, &delta)).contains(&want));
}

/// A hand-made delta for `base` holding `tensor`.
fn delta_with(base: &GgufFile, name: &str, dtype: DType, shape: Vec<usize>) -> GgufFile {
    let mut w = GgufWriter::new();
    w.set(BASE_WEIGHTS_SHA256, base.weights_digest().unwrap().hex());
    let n = xlalign_core::tensor::byte_len(dtype, &shape).unwrap();
    w.add(name, dtype, shape, vec![0u8; n]).unwrap();
    parse(w.to_bytes().unwrap())
}

#[test]
fn delta_tensors_must_match_the_base() {
    let base = base();
    let msg = input_error(apply_delta(
        &base,
        &delta_with(&base, "blk.7.attn_q.weight", DType::Q4_0, vec![32, 32]),
    ));
    assert!(
        msg.contains("`blk.7.attn_q.weight` is not in the base"),
        "{msg}"
    );

    let msg = input_error(apply_delta(
        &base,
        &delta_with(&base, Q4_TENSOR, DType::Q8_0, vec![32, 32]),
    ));
    assert!(msg.contains(Q4_TENSOR) && msg.contains("q8_0"), "{msg}");

    let msg = input_error(apply_delta(
        &base,
        &delta_with(&base, Q4_TENSOR, DType::Q4_0, vec![64, 32]),
    ));
    assert!(msg.contains(Q4_TENSOR) && msg.contains("[64, 32]"), "{msg}");
}

#[test]
fn broken_deltas_are_errors() {
    let base = base();
    let bytes = make_delta(&base, &tuned(&base), None)
        .unwrap()
        .to_bytes()
        .unwrap();
    for cut in [3, 20, bytes.len() / 2, bytes.len() - 1] {
        let e = GgufFile::parse(Bytes::copy_from_slice(&bytes[..cut])).unwrap_err();
        assert!(matches!(e, Error::Format(_)), "cut at {cut}: {e}");
    }

    // Not a delta: no base digest.
    let e = apply_delta(&base, &base).err().expect("an error");
    assert!(e.to_string().contains(BASE_WEIGHTS_SHA256), "{e}");

    // A result digest that the result does not have.
    let mut w = GgufWriter::new();
    w.set(BASE_WEIGHTS_SHA256, base.weights_digest().unwrap().hex())
        .set(RESULT_WEIGHTS_SHA256, "00".repeat(32));
    let e = apply_delta(&base, &parse(w.to_bytes().unwrap()))
        .err()
        .expect("an error");
    assert!(matches!(e, Error::Format(_)), "{e}");

    // A digest that is not hex.
    let mut w = GgufWriter::new();
    w.set(BASE_WEIGHTS_SHA256, "not hex");
    let e = apply_delta(&base, &parse(w.to_bytes().unwrap()))
        .err()
        .expect("an error");
    assert!(e.to_string().contains("not 64 hex digits"), "{e}");
}

#[test]
fn make_needs_the_same_tensors_and_keys() {
    let base = base();
    // Drop a tensor.
    let mut w = GgufWriter::new();
    for (k, v) in &base.metadata {
        w.set(k, v.clone());
    }
    for t in base.all_tensors().unwrap() {
        if t.name != F32_TENSOR {
            w.add_tensor(t).unwrap();
        }
    }
    let fewer = parse(w.to_bytes().unwrap());
    let msg = input_error(make_delta(&base, &fewer, None));
    assert!(msg.contains(F32_TENSOR), "{msg}");

    // Drop a key: a delta cannot remove one.
    let mut w = GgufWriter::new();
    for (k, v) in base
        .metadata
        .iter()
        .filter(|(k, _)| *k != keys::ALIGN_METHOD)
    {
        w.set(k, v.clone());
    }
    for t in base.all_tensors().unwrap() {
        w.add_tensor(t).unwrap();
    }
    let msg = input_error(make_delta(&base, &parse(w.to_bytes().unwrap()), None));
    assert!(msg.contains(keys::ALIGN_METHOD), "{msg}");

    let msg = input_error(make_delta(&base, &base, Some(&["no.such.key".into()])));
    assert!(msg.contains("no.such.key"), "{msg}");
}

fn python_with_gguf() -> Option<String> {
    let py = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args(["-c", "import gguf, numpy"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    ok.then_some(py)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xlalign-delta-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// What the training scripts do: read the base with gguf-py, quantise new weights to Q4_0
/// with `gguf.quants`, and write the changed tensors and keys with `GGUFWriter` (the u8 array
/// of Q4_0 blocks as `raw_dtype`, its shape in bytes). gguf-py also computes the weights
/// digest the same way.
const GGUF_PY_DELTA: &str = r#"
import hashlib, sys
import numpy as np
import gguf

base_path, out_path, name = sys.argv[1:4]
r = gguf.GGUFReader(base_path)

def weights_sha256(reader):
    h = hashlib.sha256()
    for t in reader.tensors:
        data = t.data.tobytes()
        h.update(len(t.name.encode()).to_bytes(8, "little") + t.name.encode())
        h.update(len(t.shape).to_bytes(4, "little"))
        for d in t.shape:  # GGUFReader's shape is the file's ne[], innermost first
            h.update(int(d).to_bytes(8, "little"))
        h.update(int(t.tensor_type).to_bytes(4, "little") + len(data).to_bytes(8, "little") + data)
    return h.hexdigest()

base_sha = weights_sha256(r)
t = next(t for t in r.tensors if t.name == name)
rows, cols = int(t.shape[1]), int(t.shape[0])  # ne[] is innermost first
w = gguf.dequantize(t.data, t.tensor_type).reshape(rows, cols)
q = gguf.quants.quantize((w * 0.5).astype(np.float32), gguf.GGMLQuantizationType.Q4_0)
assert q.dtype == np.uint8 and q.shape == (rows, cols // 32 * 18), q.shape

out = gguf.GGUFWriter(out_path, "bert")  # also writes general.architecture = "bert"
out.add_string("xlalign.delta.base_weights_sha256", base_sha)
out.add_string("general.name", "tiny-tuned-by-python")
out.add_float32("xlalign.align.temperature", 0.07)
out.add_tensor(name, q, raw_dtype=gguf.GGMLQuantizationType.Q4_0)
out.write_header_to_file()
out.write_kv_data_to_file()
out.write_tensors_to_file()
out.close()
print(base_sha)
"#;

#[test]
fn a_delta_written_by_gguf_py_applies() {
    let Some(py) = python_with_gguf() else {
        eprintln!("skipped: python3 with gguf (gguf-py) and numpy is not installed");
        return;
    };
    let base_bytes = tiny_model(TinyTokenizer::Zstd, DType::Q4_0);
    let base_path = scratch("base.gguf");
    let delta_path = scratch("py.delta.gguf");
    std::fs::write(&base_path, &base_bytes).unwrap();
    let out = Command::new(py)
        .args(["-c", GGUF_PY_DELTA])
        .arg(&base_path)
        .arg(&delta_path)
        .arg(Q4_TENSOR)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the gguf-py script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let base = parse(base_bytes);
    // gguf-py's digest of the base is ours.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        base.weights_digest().unwrap().hex()
    );

    let delta = parse(std::fs::read(&delta_path).unwrap());
    let t = delta.info(Q4_TENSOR).expect("the delta holds the tensor");
    assert_eq!(t.dtype, DType::Q4_0);
    assert_eq!(t.shape, base.info(Q4_TENSOR).unwrap().shape);

    let result = parse(apply_delta(&base, &delta).unwrap().to_bytes().unwrap());
    let model = Model::from_gguf(&result).expect("the result loads");
    assert_eq!(model.name, "tiny-tuned-by-python");
    assert_eq!(model.defaults.align_temperature, 0.07f32);
    // The tensor is the base's halved (up to Q4_0's rounding); the others are the base's.
    let (b, r) = (
        base.tensor(Q4_TENSOR).unwrap().to_f32_vec(),
        result.tensor(Q4_TENSOR).unwrap().to_f32_vec(),
    );
    let max_b = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (x, y) in b.iter().zip(&r) {
        assert!((x * 0.5 - y).abs() <= max_b / 8.0, "{x} -> {y}");
    }
    for t in &base.tensors {
        if t.name != Q4_TENSOR {
            assert_eq!(
                base.tensor(&t.name).unwrap().data,
                result.tensor(&t.name).unwrap().data,
                "{}",
                t.name
            );
        }
    }
    std::fs::remove_dir_all(base_path.parent().unwrap()).ok();
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Each `models/<name>.json` manifest: its delta has the recorded sha256, applies to the base
/// model, and gives the recorded result digest (what `scripts/setup.sh` does at install).
#[test]
fn shipped_deltas_rebuild_their_models() {
    let dir = workspace().join("models");
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.map(|e| e.expect("a directory entry").path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    manifests.sort();
    if manifests.is_empty() {
        eprintln!("skipped: no models/*.json manifest (no tuned model is shipped yet)");
        return;
    }
    let base_path = std::env::var_os("XLALIGN_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("public/models/multilingual-e5-small-q4_0.gguf"));
    let Ok(base_bytes) = std::fs::read(&base_path) else {
        eprintln!(
            "skipped: the base model {} is missing (run scripts/setup.sh)",
            base_path.display()
        );
        return;
    };
    let base = parse(base_bytes);
    let base_digest = base.weights_digest().unwrap().hex();
    for m in manifests {
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&m).unwrap()).expect("the manifest is JSON");
        let field = |k: &str| {
            json[k]
                .as_str()
                .unwrap_or_else(|| panic!("{}: no string `{k}`", m.display()))
                .to_string()
        };
        let name = field("name");
        if field("base") != "multilingual-e5-small-q4_0.gguf"
            || field("base_weights_sha256") != base_digest
        {
            eprintln!(
                "skipped {name}: its base is {} ({}), not {} ({base_digest})",
                field("base"),
                field("base_weights_sha256"),
                base_path.display()
            );
            continue;
        }
        let delta_bytes = std::fs::read(dir.join(format!("{name}.delta.gguf"))).unwrap();
        let sha = sha256_hex(&delta_bytes);
        assert_eq!(sha, field("delta_sha256"), "{name}: the delta's sha256");
        let delta = parse(delta_bytes);
        let result = parse(apply_delta(&base, &delta).unwrap().to_bytes().unwrap());
        assert_eq!(
            result.weights_digest().unwrap().hex(),
            field("result_weights_sha256"),
            "{name}: the result's weights digest"
        );
        Model::from_gguf(&result)
            .unwrap_or_else(|e| panic!("{name}: the result does not load: {e}"));
        eprintln!("{name}: rebuilt and checked");
    }
}

#[test]
fn values_are_copied_as_they_are() {
    // Arrays of every kind survive a delta (e.g. a tuned model's new u8 or f32 arrays).
    let base = base();
    let tuned = rewrite(
        &base,
        |w| {
            w.set(
                "xlalign.test.bytes",
                Value::Bytes(Bytes::from_static(b"\x00\x01\x02")),
            )
            .set(
                "xlalign.test.floats",
                Value::Scalars(
                    xlalign_core::gguf::ValueType::F32,
                    Bytes::from(1.5f32.to_le_bytes().repeat(3)),
                ),
            );
        },
        |_, _| {},
    );
    let delta = parse(make_delta(&base, &tuned, None).unwrap().to_bytes().unwrap());
    assert!(delta.tensors.is_empty());
    let result = parse(apply_delta(&base, &delta).unwrap().to_bytes().unwrap());
    assert_eq!(result.metadata, tuned.metadata);
}
