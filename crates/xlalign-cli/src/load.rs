//! Finding and opening model files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bytes::Bytes;
use xlalign_core::Model;

/// Where setup puts the default model, relative to the repository root.
pub const DEFAULT_MODEL_REL: &str = "public/models/multilingual-e5-small-q4_0.gguf";

/// The default model: `$XLALIGN_MODEL`, else `public/models/…` under the current directory or
/// any parent (so the CLI works from anywhere inside a checkout), else next to the binary's
/// checkout.
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
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL_REL))
}

/// Maps a file into memory (no copy; the OS pages in what is used).
pub fn map_file(path: &Path) -> Result<Bytes> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: the mapping is read-only; a file changed underneath us gives wrong numbers, not UB
    // in safe code that only reads bytes.
    let map = unsafe { memmap2::Mmap::map(&file) }.with_context(|| format!("cannot map {}", path.display()))?;
    Ok(Bytes::from_owner(map))
}

pub fn load_model(path: Option<&Path>) -> Result<Model> {
    let path = path.map(Path::to_path_buf).unwrap_or_else(default_model_path);
    if !path.exists() {
        anyhow::bail!(
            "model file {} not found; run `bash scripts/setup.sh` to fetch and convert the default model, or pass --model",
            path.display()
        );
    }
    let bytes = map_file(&path)?;
    Model::from_bytes(bytes).with_context(|| format!("cannot load {}", path.display()))
}
