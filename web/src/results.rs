//! The package's answers as the page keeps them: typed views of what `createAligner`'s
//! aligner returns (the npm package's `ModelInfo`, `BackendInfo`, and `PairAlignment |
//! PairError` entries), read from the JavaScript values with serde.

use serde::{Deserialize, Serialize};
use xlalign_core::pipeline::PairAlignment;
use xlalign_core::request::Recommendation;
use xlalign_core::BackendChoice;

/// What the page shows about the model (`aligner.model`; other fields are not read).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelSummary {
    pub name: String,
    pub file_bytes: f64,
    pub weight_type: String,
    /// How unset options are resolved (the controls show these values).
    pub recommendation: Recommendation,
}

/// `aligner.backend`, and what the user asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendView {
    /// `cpu` or `webgpu`.
    pub kind: String,
    pub device: String,
    /// Why this backend runs (why a fallback happened); empty when it was asked for.
    pub reason: String,
    /// What the user asked for (not part of the package's answer).
    #[serde(default)]
    pub asked: BackendChoice,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Timing {
    /// Whether the encoder ran (false: the kept encoding, extraction only).
    pub encoded: bool,
    pub encode_ms: f64,
    pub extract_ms: f64,
}

/// One entry of `alignBatch`'s result: the pair's alignment, or why it failed.
#[derive(Clone, Debug, PartialEq)]
pub enum BatchItem {
    Ok(PairAlignment),
    Err(String),
}

/// The package's `PairError`: `{ error: { message, code } }`.
#[derive(Deserialize)]
struct PairError {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    message: String,
}

impl<'de> Deserialize<'de> for BatchItem {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Entry {
            Err(PairError),
            Ok(Box<PairAlignment>),
        }
        Ok(match Entry::deserialize(d)? {
            Entry::Err(e) => BatchItem::Err(e.error.message),
            Entry::Ok(a) => BatchItem::Ok(*a),
        })
    }
}

impl From<Result<PairAlignment, String>> for BatchItem {
    fn from(r: Result<PairAlignment, String>) -> Self {
        match r {
            Ok(a) => BatchItem::Ok(a),
            Err(e) => BatchItem::Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_entry_is_an_alignment_or_an_error() {
        let e: BatchItem =
            serde_json::from_str(r#"{"error":{"message":"the source is empty","code":"input"}}"#)
                .unwrap();
        assert_eq!(e, BatchItem::Err("the source is empty".into()));
        assert!(serde_json::from_str::<BatchItem>(r#"{"links":[]}"#).is_err());
    }

    #[test]
    fn backend_info_reads_without_the_choice() {
        let b: BackendView =
            serde_json::from_str(r#"{"kind":"cpu","device":"wasm simd128","reason":""}"#).unwrap();
        assert_eq!(b.asked, BackendChoice::Auto);
    }
}
