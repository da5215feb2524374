//! Messages between the page and the worker. Each is one JSON string through `postMessage`:
//! small next to the model work, easy to read in the browser's devtools, and the same serde
//! types on both sides.
//!
//! Requests that expect an answer carry an `id`; the answer repeats it, so the page can drop
//! answers to requests it has since replaced (a threshold slider sends many).

use serde::{Deserialize, Serialize};
use xlalign_core::pipeline::PairAlignment;

use xlalign_core::request::Recommendation;
use xlalign_core::BackendChoice;

use crate::settings::Settings;

/// Page → worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ToWorker {
    /// Download (or take from the cache) the model and open a backend.
    Load { url: String, backend: BackendChoice },
    /// Open another backend for the loaded model (no new download).
    SetBackend { backend: BackendChoice },
    /// Align one pair. The worker re-encodes only when the texts or the layer changed.
    Align {
        id: u64,
        src: String,
        tgt: String,
        settings: Settings,
    },
    /// Align many pairs, answering with [`FromWorker::BatchProgress`] as they are done.
    Batch {
        id: u64,
        pairs: Vec<(String, String)>,
        settings: Settings,
    },
    /// Split two texts into sentences, align the sentences, then the words of each pair.
    Document {
        id: u64,
        src: String,
        tgt: String,
        settings: Settings,
    },
    /// Stop a running batch (results so far stay valid).
    Cancel { id: u64 },
}

/// Worker → page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum FromWorker {
    /// The worker's code is running and listening.
    Started,
    /// Model loading: `phase` is download, cache, verify, parse, backend or ready.
    LoadProgress {
        phase: String,
        loaded: f64,
        total: Option<f64>,
    },
    Loaded {
        model: ModelSummary,
        backend: BackendView,
        ms: f64,
    },
    LoadFailed {
        message: String,
    },
    BackendChanged {
        backend: BackendView,
    },
    /// A backend switch failed; the previous backend is still in use.
    BackendFailed {
        message: String,
        backend: BackendView,
    },
    Aligned {
        id: u64,
        result: PairAlignment,
        timing: Timing,
    },
    /// New results of a batch (in input order, starting at `offset`) and the count so far.
    BatchProgress {
        id: u64,
        offset: usize,
        items: Vec<BatchItem>,
        done: usize,
        total: usize,
        ms: f64,
    },
    BatchDone {
        id: u64,
        cancelled: bool,
        ms: f64,
    },
    DocumentAligned {
        id: u64,
        result: DocumentResult,
        ms: f64,
    },
    /// A request failed; `id` is the request's (none for messages that could not be read).
    Failed {
        id: Option<u64>,
        message: String,
    },
}

/// What the page shows about the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelSummary {
    pub name: String,
    pub file_bytes: u64,
    pub weight_type: String,
    pub defaults: Recommendation,
}

/// `xlalign_core::BackendInfo` for the page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendView {
    /// `cpu` or `webgpu`.
    pub kind: String,
    pub device: String,
    /// Why this backend runs (why a fallback happened); empty when it was asked for.
    pub reason: String,
    /// What the user asked for.
    pub asked: BackendChoice,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timing {
    /// Whether the encoder ran (false: cached hidden states, extraction only).
    pub encoded: bool,
    pub encode_ms: f64,
    pub extract_ms: f64,
}

/// One pair of a batch: its alignment (without the word×word matrix, which a batch of
/// thousands does not need) or why it failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BatchItem {
    Ok(PairAlignment),
    Err(String),
}

/// Document mode: sentences of both texts and how they were paired.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentResult {
    pub src_sentences: Vec<String>,
    pub tgt_sentences: Vec<String>,
    pub pairs: Vec<DocumentPair>,
}

/// A group of source sentences aligned to a group of target sentences (1–1, 1–2, 2–1, or one
/// side empty for a sentence with no counterpart).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentPair {
    pub src: Vec<usize>,
    pub tgt: Vec<usize>,
    /// Cosine of the groups' sentence embeddings (0 for a skipped sentence).
    pub score: f32,
    /// Word alignment of the joined sentences (none for a skipped sentence).
    pub words: Option<BatchItem>,
}

impl ToWorker {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("messages always serialise")
    }
}

impl FromWorker {
    pub fn to_json(&self) -> String {
        // Non-finite floats cannot be written as JSON; they never occur in results (the core
        // rejects non-finite input), so a failure here is reported rather than hidden.
        serde_json::to_string(self).unwrap_or_else(|e| {
            serde_json::to_string(&FromWorker::Failed {
                id: None,
                message: format!("cannot send a result: {e}"),
            })
            .expect("a plain message serialises")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_tagged_json() {
        let m = ToWorker::Align {
            id: 3,
            src: "a".into(),
            tgt: "b".into(),
            settings: Settings::default(),
        };
        let j = m.to_json();
        assert!(j.contains(r#""type":"align""#), "{j}");
        assert_eq!(serde_json::from_str::<ToWorker>(&j).unwrap(), m);
        let m = FromWorker::BatchDone {
            id: 1,
            cancelled: true,
            ms: 2.5,
        };
        assert_eq!(serde_json::from_str::<FromWorker>(&m.to_json()).unwrap(), m);
    }

    #[test]
    fn unknown_message_is_an_error() {
        assert!(serde_json::from_str::<ToWorker>(r#"{"type":"explode"}"#).is_err());
    }
}
