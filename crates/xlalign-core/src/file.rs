//! Model files on disk (native builds only): where the default model is, mapping a file
//! into memory, and loading a model from a path. The CLI and the Python package open models
//! this one way.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::model::Model;

/// Where setup puts the default model, relative to the repository root: the alignment-tuned
/// model it builds from the base and `models/multilingual-e5-small-align-q4_0.delta.gguf`
/// (README, "Alignment tuning"). The base, `multilingual-e5-small-q4_0.gguf`, stays next to
/// it (`--model`).
pub const DEFAULT_MODEL_REL: &str = "public/models/multilingual-e5-small-align-q4_0.gguf";

/// The default model: `$XLALIGN_MODEL`, else `public/models/…` under the current directory or
/// any parent (so a command works from anywhere inside a checkout), else in the checkout the
/// program was run or built from.
pub fn default_model_path() -> PathBuf {
    if let Ok(p) = std::env::var("XLALIGN_MODEL") {
        return PathBuf::from(p);
    }
    let mut candidates = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        candidates.extend(cwd.ancestors().map(|a| a.join(DEFAULT_MODEL_REL)));
    }
    if let Ok(exe) = std::env::current_exe() {
        candidates.extend(exe.ancestors().map(|a| a.join(DEFAULT_MODEL_REL)));
    }
    candidates.extend(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(|a| a.join(DEFAULT_MODEL_REL)),
    );
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL_REL))
}

/// `path`, or the default model; an error that says how to get one when it does not exist.
pub fn model_path(path: Option<&Path>) -> Result<PathBuf> {
    let path = path
        .map(Path::to_path_buf)
        .unwrap_or_else(default_model_path);
    if !path.exists() {
        return Err(Error::Io(format!(
            "model file {} not found; run `bash scripts/setup.sh` to fetch and convert the \
             default model, or name a model file",
            path.display()
        )));
    }
    Ok(path)
}

/// A read-only memory map shared between the model's bytes and this handle.
struct SharedMap(std::sync::Arc<memmap2::Mmap>);

impl AsRef<[u8]> for SharedMap {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

fn map(path: &Path) -> Result<std::sync::Arc<memmap2::Mmap>> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::Io(format!("cannot open {}: {e}", path.display())))?;
    // SAFETY: the map is only read, but the file is not ours alone: Rust assumes the bytes
    // behind a shared slice never change, so another process rewriting the file in place while
    // it is mapped is undefined behaviour, and truncating it makes a later read raise SIGBUS.
    // We accept that as mmap-based model loaders do (llama.cpp, safetensors, candle), and keep
    // its reach small: nothing checked once is trusted later by `unsafe` code (metadata strings
    // are checked for UTF-8 each time they are read as text; the tokenizer is copied into its
    // own structures at load), and `xlalign convert` writes a new file and renames it over the
    // old one, which leaves a running process its own copy.
    let map = unsafe { memmap2::Mmap::map(&file) }
        .map_err(|e| Error::Io(format!("cannot map {}: {e}", path.display())))?;
    Ok(std::sync::Arc::new(map))
}

/// Maps a file into memory (no copy; the OS pages in what is used).
pub fn map_file(path: &Path) -> Result<Bytes> {
    Ok(Bytes::from_owner(SharedMap(map(path)?)))
}

/// Loads the model at `path` (default: [`default_model_path`]), mapped, not read.
pub fn load_model(path: Option<&Path>) -> Result<Model> {
    let path = model_path(path)?;
    let map = map(&path)?;
    let model =
        Model::from_bytes(Bytes::from_owner(SharedMap(map.clone()))).map_err(|e| Error::File {
            path: path.display().to_string(),
            cause: Box::new(e),
        })?;
    // Loading read the tokenizer and the tensor headers, which are not needed again: drop
    // those pages from this process (they stay in the page cache; what the encoder reads
    // later faults back in). Only a hint: ignore a refusal.
    #[cfg(unix)]
    // SAFETY: the mapping is a read-only, shared file mapping, so dropped pages read back the
    // same bytes from the file on the next access.
    let _ = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
    Ok(model)
}
