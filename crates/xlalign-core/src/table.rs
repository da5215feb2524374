//! The word-embedding table: a `[rows, width]` matrix in its stored type whose rows can be
//! rewritten in place while the model runs.
//!
//! Progressive loading starts with most rows absent (zero) and writes each page of rows into
//! the running model as it arrives; copying 54 MB or rebuilding the backend for a page is
//! what this type exists to avoid.
//!
//! Soundness: the bytes sit behind an [`RwLock`], shared (through an [`Arc`]) by every clone
//! of the table, so the model and the backends built from it read the same rows. A write
//! takes the lock exclusively for the whole row range, so a reader sees each write whole or
//! not at all; the CPU encoder holds one read lock for a pass's whole embedding lookup, so
//! the rows of one pass come from one state of the table. Natively a write waits for the
//! lookups in progress (and they for it); in the browser everything runs on one thread and
//! neither a lookup nor a write spans an `await`, so they never meet. No `unsafe` is involved.
//!
//! A table that shares its bytes with a whole file (e.g. the CLI's model buffer) is copied
//! once, on its first write; a table built from its own buffer ([`RowTable::new`] on a
//! `Bytes` that nothing else holds, as the progressive loader does) is written where it is.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::tensor::{byte_len, check_size, dequantize_into, DType, Tensor};

/// A 2-D table of rows (see the module documentation). Clones share the rows.
#[derive(Clone)]
pub struct RowTable {
    pub name: String,
    pub dtype: DType,
    /// `[rows, width]`.
    pub shape: Vec<usize>,
    data: Arc<RwLock<Storage>>,
}

enum Storage {
    /// Bytes that may be shared with a file buffer: read-only.
    Shared(Bytes),
    /// The table's own bytes, written in place.
    Own(Vec<u8>),
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Shared(b) => b,
            Storage::Own(b) => b,
        }
    }

    /// The bytes, made the table's own first if they are shared (a copy only when some
    /// other owner still holds them).
    fn bytes_mut(&mut self) -> &mut [u8] {
        if let Storage::Shared(b) = self {
            // Reuses the allocation when nothing else holds it, copies it otherwise.
            *self = Storage::Own(Vec::from(std::mem::take(b)));
        }
        match self {
            Storage::Own(b) => b,
            Storage::Shared(_) => unreachable!("made its own above"),
        }
    }
}

impl fmt::Debug for RowTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RowTable")
            .field("name", &self.name)
            .field("dtype", &self.dtype)
            .field("shape", &self.shape)
            .finish()
    }
}

impl RowTable {
    /// A table of `shape` (`[rows, width]`) over `data`, which must have exactly that size.
    /// The bytes may be shared (e.g. a slice of a model file): the first write copies them.
    pub fn new(
        name: impl Into<String>,
        dtype: DType,
        shape: Vec<usize>,
        data: Bytes,
    ) -> Result<RowTable> {
        RowTable::from_tensor(Tensor::new(name, dtype, shape, data)?)
    }

    /// A table over its own buffer `data` (exactly `shape`'s size), written where it is.
    pub fn owned(
        name: impl Into<String>,
        dtype: DType,
        shape: Vec<usize>,
        data: Vec<u8>,
    ) -> Result<RowTable> {
        let name = name.into();
        check_size(&name, dtype, &shape, data.len())?;
        RowTable::with_storage(name, dtype, shape, Storage::Own(data))
    }

    /// The table over a 2-D tensor's bytes (shared, not copied).
    pub fn from_tensor(t: Tensor) -> Result<RowTable> {
        RowTable::with_storage(t.name, t.dtype, t.shape, Storage::Shared(t.data))
    }

    fn with_storage(
        name: String,
        dtype: DType,
        shape: Vec<usize>,
        data: Storage,
    ) -> Result<RowTable> {
        if shape.len() != 2 {
            return Err(Error::Unsupported(format!(
                "`{name}` has shape {shape:?}; a row table is 2-D"
            )));
        }
        Ok(RowTable {
            name,
            dtype,
            shape,
            data: Arc::new(RwLock::new(data)),
        })
    }

    /// A table of `shape` with every row zero (every stored type reads zero bytes as 0.0).
    pub fn zeroed(name: impl Into<String>, dtype: DType, shape: Vec<usize>) -> Result<RowTable> {
        let n = byte_len(dtype, &shape)?;
        RowTable::owned(name, dtype, shape, vec![0u8; n])
    }

    pub fn n_rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }

    /// Values per row.
    pub fn row_len(&self) -> usize {
        self.shape.get(1).copied().unwrap_or(0)
    }

    /// Stored bytes per row.
    pub fn row_bytes(&self) -> usize {
        self.dtype
            .row_bytes(self.row_len())
            .expect("validated at construction")
    }

    /// Read access to all rows until the guard is dropped (writes wait meanwhile).
    pub fn read(&self) -> TableRead<'_> {
        TableRead {
            table: self,
            data: self.data.read().unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// Dequantises row `r` into `out` (length = row_len).
    pub fn dequantize_row_into(&self, r: usize, out: &mut [f32]) {
        self.read().dequantize_row_into(r, out)
    }

    /// Whole table as f32 — for tests and small tables.
    pub fn to_f32_vec(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.n_rows() * self.row_len()];
        dequantize_into(self.dtype, self.read().bytes(), &mut out);
        out
    }

    /// Overwrites rows `first..` with `rows` (whole rows in the stored type), in place.
    pub fn write_rows(&self, first: usize, rows: &[u8]) -> Result<()> {
        let at = self.check_rows(first, rows)?;
        // A poisoned lock still holds plain bytes of the right size: every state is valid.
        let mut data = self.data.write().unwrap_or_else(PoisonError::into_inner);
        data.bytes_mut()[at..at + rows.len()].copy_from_slice(rows);
        Ok(())
    }

    /// Checks that `rows` are whole rows that fit from row `first` on; returns their byte
    /// offset in the table.
    pub fn check_rows(&self, first: usize, rows: &[u8]) -> Result<usize> {
        check_row_write(
            &self.name,
            self.dtype,
            [self.n_rows(), self.row_len()],
            first,
            rows.len(),
        )
    }

    /// Whether `other` reads the same rows (a clone of this table).
    pub fn shares_rows_with(&self, other: &RowTable) -> bool {
        Arc::ptr_eq(&self.data, &other.data)
    }
}

/// Checks a write of `len` bytes from row `first` on into a table of `dtype` and `shape`
/// (`[rows, width]`): whole rows that fit. Returns the byte offset of row `first`. Every
/// copy of the table (the CPU's, a GPU's upload) checks writes with this one rule.
pub fn check_row_write(
    name: &str,
    dtype: DType,
    shape: [usize; 2],
    first: usize,
    len: usize,
) -> Result<usize> {
    let rb = dtype.row_bytes(shape[1])?;
    if rb == 0 || !len.is_multiple_of(rb) {
        return Err(Error::Input(format!(
            "`{name}`: {len} bytes are not whole rows of {rb} bytes"
        )));
    }
    let n = len / rb;
    if first.checked_add(n).is_none_or(|end| end > shape[0]) {
        return Err(Error::Input(format!(
            "`{name}`: rows {first}..{} are outside its {} rows",
            first.saturating_add(n),
            shape[0]
        )));
    }
    Ok(first * rb)
}

/// The rows of a [`RowTable`] while a read lock is held.
pub struct TableRead<'a> {
    table: &'a RowTable,
    data: RwLockReadGuard<'a, Storage>,
}

impl TableRead<'_> {
    /// All rows' bytes, row after row.
    pub fn bytes(&self) -> &[u8] {
        self.data.bytes()
    }

    pub fn row_bytes(&self, r: usize) -> &[u8] {
        let rb = self.table.row_bytes();
        &self.bytes()[r * rb..(r + 1) * rb]
    }

    /// Dequantises row `r` into `out` (length = row_len).
    pub fn dequantize_row_into(&self, r: usize, out: &mut [f32]) {
        dequantize_into(self.table.dtype, self.row_bytes(r), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::quantize;

    fn table(dtype: DType, rows: usize) -> (RowTable, Vec<u8>) {
        let vals: Vec<f32> = (0..rows * 64).map(|i| (i as f32 * 0.37).sin()).collect();
        let bytes = quantize(dtype, &vals).unwrap();
        let t = RowTable::new("t", dtype, vec![rows, 64], Bytes::from(bytes.clone())).unwrap();
        (t, bytes)
    }

    #[test]
    fn written_rows_are_read_by_every_clone() {
        for dtype in [DType::F32, DType::F16, DType::Q8_0, DType::Q4_0] {
            let (full, bytes) = table(dtype, 5);
            let zero = RowTable::zeroed("t", dtype, vec![5, 64]).unwrap();
            let reader = zero.clone();
            assert!(reader.shares_rows_with(&zero));
            let rb = zero.row_bytes();
            zero.write_rows(1, &bytes[rb..3 * rb]).unwrap();
            let (mut a, mut b) = (vec![0f32; 64], vec![0f32; 64]);
            for r in 0..5 {
                reader.dequantize_row_into(r, &mut a);
                full.dequantize_row_into(r, &mut b);
                if (1..3).contains(&r) {
                    assert_eq!(a, b, "{dtype:?} row {r}");
                } else {
                    assert!(
                        a.iter().all(|v| *v == 0.0),
                        "{dtype:?} row {r} was not written"
                    );
                }
            }
        }
    }

    #[test]
    fn a_shared_buffer_is_never_written_through() {
        let (_, bytes) = table(DType::F32, 3);
        let file = Bytes::from(bytes.clone());
        let t = RowTable::new("t", DType::F32, vec![3, 64], file.clone()).unwrap();
        t.write_rows(0, &vec![0u8; t.row_bytes()]).unwrap();
        assert_eq!(&file[..], &bytes[..], "the file's bytes changed");
        assert!(t.read().row_bytes(0).iter().all(|&b| b == 0));
        assert_eq!(t.read().row_bytes(1), &bytes[256..512]);
    }

    #[test]
    fn bad_writes_are_errors() {
        let t = RowTable::zeroed("t", DType::Q4_0, vec![4, 64]).unwrap();
        let rb = t.row_bytes();
        assert!(t.write_rows(0, &vec![0u8; rb + 1]).is_err());
        assert!(t.write_rows(3, &vec![0u8; 2 * rb]).is_err());
        assert!(t.write_rows(usize::MAX, &vec![0u8; rb]).is_err());
        assert!(t.write_rows(3, &vec![1u8; rb]).is_ok());
    }
}
