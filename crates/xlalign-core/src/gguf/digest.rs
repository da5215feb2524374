//! The weights digest: a sha256 over a model's tensors alone. A file's own sha256 changes
//! whenever the converter writes its metadata or tokenizer differently; this one changes only
//! when a tensor does, so it names "these weights" across converter versions. A delta
//! (`gguf::delta`) records its base's digest and refuses any other base.
//!
//! Every tensor in file order adds: its name's byte length (u64) and bytes, its rank (u32),
//! its dimensions innermost first as the file stores them (u64 each), its GGML type (u32),
//! its data's byte length (u64) and the data; all integers little-endian. Offsets, alignment
//! padding and metadata are left out.

use std::fmt;

use sha2::{Digest, Sha256};

use super::GgufFile;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// A weights digest (see the module docs); shown as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct WeightsDigest(pub [u8; 32]);

impl WeightsDigest {
    /// The digest of `tensors`, in the order given.
    pub fn of<'a>(tensors: impl IntoIterator<Item = &'a Tensor>) -> WeightsDigest {
        let mut h = Sha256::new();
        for t in tensors {
            h.update((t.name.len() as u64).to_le_bytes());
            h.update(t.name.as_bytes());
            h.update((t.shape.len() as u32).to_le_bytes());
            for d in t.shape.iter().rev() {
                h.update((*d as u64).to_le_bytes());
            }
            h.update(t.dtype.ggml_type().to_le_bytes());
            h.update((t.data.len() as u64).to_le_bytes());
            h.update(&t.data);
        }
        WeightsDigest(h.finalize().into())
    }

    /// Parses 64 hex digits (either case, surrounding space ignored).
    pub fn parse_hex(s: &str) -> Result<WeightsDigest> {
        let s = s.trim();
        let bad = || Error::Input(format!("a weights sha256 is 64 hex digits, got `{s}`"));
        if s.len() != 64 || !s.is_ascii() {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(WeightsDigest(out))
    }

    pub fn hex(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for WeightsDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for WeightsDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WeightsDigest({self})")
    }
}

/// The sha256 of `bytes` as 64 lowercase hex digits (a whole file's, as a manifest records it).
pub fn sha256_hex(bytes: &[u8]) -> String {
    WeightsDigest(Sha256::digest(bytes).into()).hex()
}

impl GgufFile {
    /// Every tensor in file order, sharing the file's bytes.
    pub fn all_tensors(&self) -> Result<Vec<Tensor>> {
        self.tensors.iter().map(|t| self.tensor(&t.name)).collect()
    }

    /// The digest of this file's tensors (see [`WeightsDigest`]).
    pub fn weights_digest(&self) -> Result<WeightsDigest> {
        Ok(WeightsDigest::of(&self.all_tensors()?))
    }
}
