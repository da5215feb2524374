//! Model deltas: a GGUF file holding only the tensors a fine-tune changed (same names, GGML
//! types and shapes as in its base, data stored as is) and the metadata it overrides or adds.
//! A tuned model reaches users as its base (converted at setup) plus such a delta, which is
//! small enough to keep in git; [`apply_delta`] rebuilds the tuned model, [`make_delta`] cuts
//! a delta from a full tuned file.
//!
//! A delta records the weights digest ([`WeightsDigest`]) of the base it was cut from under
//! [`BASE_WEIGHTS_SHA256`], and applying it to any other base is an error: the same tensor
//! names in another model would give a plausible-looking but meaningless result. It may record
//! the result's digest under [`RESULT_WEIGHTS_SHA256`], which applying then checks. Keys under
//! [`DELTA_PREFIX`] are the delta's own bookkeeping and never reach the result; nor does
//! `general.alignment`, which describes the delta file's layout, not the model.
//!
//! Deltas may be written by other tools (the training scripts use gguf-py's `GGUFWriter`), so
//! nothing here assumes a delta came from [`make_delta`]: it is parsed and bound-checked like
//! any model file, and every tensor is checked against the base before anything is built.

use std::collections::{BTreeMap, HashMap};

use super::{GgufFile, GgufWriter, Value, WeightsDigest, KEY_ALIGNMENT};
use crate::error::{Error, Result};

/// Keys under this prefix are the delta's bookkeeping, not model metadata.
pub const DELTA_PREFIX: &str = "xlalign.delta.";
/// String, 64 hex digits: the weights digest of the base this delta applies to (required).
pub const BASE_WEIGHTS_SHA256: &str = "xlalign.delta.base_weights_sha256";
/// String, 64 hex digits: the weights digest of the result (optional; checked when present).
pub const RESULT_WEIGHTS_SHA256: &str = "xlalign.delta.result_weights_sha256";

/// Keys that are never copied between model and delta.
fn is_bookkeeping(key: &str) -> bool {
    key.starts_with(DELTA_PREFIX) || key == KEY_ALIGNMENT
}

fn digest_key(file: &GgufFile, key: &str) -> Result<Option<WeightsDigest>> {
    match file.get(key) {
        None => Ok(None),
        Some(v) => {
            let s = v.as_str().ok_or_else(|| {
                Error::Format(format!("delta: `{key}` is not a string of 64 hex digits"))
            })?;
            WeightsDigest::parse_hex(s)
                .map(Some)
                .map_err(|_| Error::Format(format!("delta: `{key}` = {s:?} is not 64 hex digits")))
        }
    }
}

/// The base digest a delta wants.
pub fn delta_base_digest(delta: &GgufFile) -> Result<WeightsDigest> {
    digest_key(delta, BASE_WEIGHTS_SHA256)?.ok_or_else(|| {
        Error::Format(format!(
            "not a model delta: it has no `{BASE_WEIGHTS_SHA256}` naming the base it applies to"
        ))
    })
}

/// The tuned model: `base`'s tensors in `base`'s order with the delta's data in place of
/// theirs, `base`'s metadata with the delta's keys overriding or added. Every delta tensor
/// must exist in `base` with the same type and shape, and `base`'s weights digest must be the
/// one the delta names. The writer shares both files' bytes.
pub fn apply_delta(base: &GgufFile, delta: &GgufFile) -> Result<GgufWriter> {
    let want = delta_base_digest(delta)?;
    let have = base.weights_digest()?;
    if want != have {
        return Err(Error::Input(format!(
            "this delta applies to the base model whose weights sha256 is {want}; the given base's is {have}"
        )));
    }
    let result_want = digest_key(delta, RESULT_WEIGHTS_SHA256)?;

    let mut replaced = HashMap::with_capacity(delta.tensors.len());
    for d in &delta.tensors {
        let b = base.info(&d.name).ok_or_else(|| {
            Error::Input(format!(
                "delta tensor `{}` is not in the base model",
                d.name
            ))
        })?;
        if b.dtype != d.dtype || b.shape != d.shape {
            return Err(Error::Input(format!(
                "delta tensor `{}` is {} {:?} but the base model's is {} {:?}",
                d.name,
                d.dtype.name(),
                d.shape,
                b.dtype.name(),
                b.shape
            )));
        }
        replaced.insert(d.name.as_str(), delta.tensor(&d.name)?);
    }

    let mut w = GgufWriter::new();
    for (k, v) in &base.metadata {
        if !k.starts_with(DELTA_PREFIX) {
            w.set(k, v.clone());
        }
    }
    for (k, v) in &delta.metadata {
        if !is_bookkeeping(k) {
            w.set(k, v.clone());
        }
    }
    for info in &base.tensors {
        let t = match replaced.remove(info.name.as_str()) {
            Some(t) => t,
            None => base.tensor(&info.name)?,
        };
        w.add_tensor(t)?;
    }
    if let Some(want) = result_want {
        let got = WeightsDigest::of(w.tensors());
        if got != want {
            return Err(Error::Format(format!(
                "the delta says its result's weights sha256 is {want}, but applying it gives {got}"
            )));
        }
    }
    Ok(w)
}

/// A delta that turns `base` into `tuned`: the tensors whose bytes differ, and the metadata
/// keys `keys` names (each must be in `tuned`) or, without `keys`, every key `tuned` adds or
/// changes. `tuned` must hold the same tensors as `base` (names, types, shapes, order) and,
/// without `keys`, every key of `base` (a delta cannot remove one), so that
/// `apply_delta(base, make_delta(base, tuned))` has `tuned`'s weights and metadata.
pub fn make_delta(
    base: &GgufFile,
    tuned: &GgufFile,
    keys: Option<&[String]>,
) -> Result<GgufWriter> {
    let base_names: Vec<&str> = base.tensors.iter().map(|t| t.name.as_str()).collect();
    let tuned_names: Vec<&str> = tuned.tensors.iter().map(|t| t.name.as_str()).collect();
    if base_names != tuned_names {
        let missing = base_names.iter().find(|n| !tuned_names.contains(n));
        let extra = tuned_names.iter().find(|n| !base_names.contains(n));
        return Err(Error::Input(match (missing, extra) {
            (Some(n), _) => format!("the tuned model has no tensor `{n}`, which the base has"),
            (_, Some(n)) => format!("the tuned model's tensor `{n}` is not in the base"),
            _ => "the tuned model holds the base's tensors in another order; a delta rebuilds them in the base's order".into(),
        }));
    }

    let mut w = GgufWriter::new();
    w.set(BASE_WEIGHTS_SHA256, base.weights_digest()?.hex());
    w.set(RESULT_WEIGHTS_SHA256, tuned.weights_digest()?.hex());

    let chosen: BTreeMap<&String, &Value> = match keys {
        Some(keys) => {
            let mut chosen = BTreeMap::new();
            for k in keys {
                if is_bookkeeping(k) {
                    return Err(Error::Input(format!(
                        "`{k}` is a delta's own bookkeeping key, not model metadata"
                    )));
                }
                let (k, v) = tuned.metadata.get_key_value(k).ok_or_else(|| {
                    Error::Input(format!("the tuned model has no metadata key `{k}`"))
                })?;
                chosen.insert(k, v);
            }
            chosen
        }
        None => {
            if let Some(k) = base
                .metadata
                .keys()
                .find(|k| !is_bookkeeping(k) && !tuned.metadata.contains_key(*k))
            {
                return Err(Error::Input(format!(
                    "the tuned model has no metadata key `{k}`, which the base has; a delta can only add or change keys"
                )));
            }
            tuned
                .metadata
                .iter()
                .filter(|(k, v)| !is_bookkeeping(k) && base.metadata.get(*k) != Some(*v))
                .collect()
        }
    };
    for (k, v) in chosen {
        w.set(k, v.clone());
    }

    for (b, t) in base.tensors.iter().zip(&tuned.tensors) {
        if b.dtype != t.dtype || b.shape != t.shape {
            return Err(Error::Input(format!(
                "tensor `{}` is {} {:?} in the tuned model but {} {:?} in the base; a delta keeps types and shapes",
                t.name,
                t.dtype.name(),
                t.shape,
                b.dtype.name(),
                b.shape
            )));
        }
        let tt = tuned.tensor(&t.name)?;
        if tt.data != base.tensor(&b.name)?.data {
            w.add_tensor(tt)?;
        }
    }
    Ok(w)
}
