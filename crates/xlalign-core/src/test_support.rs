//! What the unit tests of several modules share: the default model, loaded once, and a way
//! to run the CPU backend's futures without an executor.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use crate::Model;

/// The CPU backend's futures are complete when created; no executor is needed.
pub fn ready<F: Future>(f: F) -> F::Output {
    match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the CPU backend never waits"),
    }
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn model() -> Arc<Model> {
    static MODEL: OnceLock<Arc<Model>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let path = std::env::var_os("XLALIGN_MODEL")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    workspace().join("public/models/multilingual-e5-small-q4_0.gguf")
                });
            let bytes = std::fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "cannot read the model at {} ({e}); run scripts/setup.sh or set XLALIGN_MODEL",
                    path.display()
                )
            });
            Arc::new(Model::from_bytes(bytes::Bytes::from(bytes)).expect("the model file loads"))
        })
        .clone()
}
