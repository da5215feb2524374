//! Finding and opening model files: the core's [`xlalign_core::file`], with the CLI's errors.

use std::path::{Path, PathBuf};

use anyhow::Result;
use bytes::Bytes;
use xlalign_core::Model;

pub fn default_model_path() -> PathBuf {
    xlalign_core::file::default_model_path()
}

/// Maps a file into memory (no copy; the OS pages in what is used).
pub fn map_file(path: &Path) -> Result<Bytes> {
    Ok(xlalign_core::file::map_file(path)?)
}

pub fn load_model(path: Option<&Path>) -> Result<Model> {
    Ok(xlalign_core::file::load_model(path)?)
}
