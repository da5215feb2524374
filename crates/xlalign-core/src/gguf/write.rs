//! Writing GGUF files. Tensors are collected first (their bytes are shared, not copied),
//! then header and data are streamed to any `Write`.

use std::io::Write;

use bytes::Bytes;

use super::read::align_up;
use super::{Value, ValueType, DEFAULT_ALIGNMENT, KEY_ALIGNMENT, MAGIC, VERSION};
use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor};

#[derive(Default)]
pub struct GgufWriter {
    metadata: Vec<(String, Value)>,
    tensors: Vec<Tensor>,
}

impl GgufWriter {
    pub fn new() -> GgufWriter {
        GgufWriter::default()
    }

    /// Sets a metadata key (a later call with the same key replaces the value).
    pub fn set(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        let value = value.into();
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.metadata.push((key.to_string(), value)),
        }
        self
    }

    pub fn add_tensor(&mut self, tensor: Tensor) -> Result<&mut Self> {
        if self.tensors.iter().any(|t| t.name == tensor.name) {
            return Err(Error::Input(format!(
                "tensor `{}` added twice",
                tensor.name
            )));
        }
        self.tensors.push(tensor);
        Ok(self)
    }

    /// Convenience: a tensor from raw bytes of the given type and shape (outermost first).
    pub fn add(
        &mut self,
        name: &str,
        dtype: DType,
        shape: Vec<usize>,
        data: impl Into<Bytes>,
    ) -> Result<&mut Self> {
        self.add_tensor(Tensor::new(name, dtype, shape, data.into())?)
    }

    pub fn tensors(&self) -> &[Tensor] {
        &self.tensors
    }

    fn alignment(&self) -> u64 {
        self.metadata
            .iter()
            .find(|(k, _)| k == KEY_ALIGNMENT)
            .and_then(|(_, v)| v.as_u64())
            .unwrap_or(DEFAULT_ALIGNMENT)
    }

    /// Total size of the file `write_to` will produce.
    pub fn file_len(&self) -> u64 {
        let a = self.alignment();
        let mut data = 0u64;
        for t in &self.tensors {
            data = align_up(data, a) + t.data.len() as u64;
        }
        align_up(self.header_bytes().len() as u64, a) + data
    }

    fn header_bytes(&self) -> Vec<u8> {
        let a = self.alignment();
        let mut h = Vec::new();
        h.extend_from_slice(MAGIC);
        h.extend_from_slice(&VERSION.to_le_bytes());
        h.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        h.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            put_string(&mut h, k.as_bytes());
            h.extend_from_slice(&(v.value_type() as u32).to_le_bytes());
            put_value(&mut h, v);
        }
        let mut rel = 0u64;
        for t in &self.tensors {
            rel = align_up(rel, a);
            put_string(&mut h, t.name.as_bytes());
            h.extend_from_slice(&(t.shape.len() as u32).to_le_bytes());
            for d in t.shape.iter().rev() {
                h.extend_from_slice(&(*d as u64).to_le_bytes());
            }
            h.extend_from_slice(&t.dtype.ggml_type().to_le_bytes());
            h.extend_from_slice(&rel.to_le_bytes());
            rel += t.data.len() as u64;
        }
        h
    }

    /// Writes the file. `progress(bytes_written, total)` is called after each tensor.
    pub fn write_to<W: Write>(&self, mut w: W, mut progress: impl FnMut(u64, u64)) -> Result<()> {
        let a = self.alignment();
        let total = self.file_len();
        let header = self.header_bytes();
        w.write_all(&header)?;
        let mut pos = header.len() as u64;
        let pad = |w: &mut W, pos: &mut u64| -> Result<()> {
            let target = align_up(*pos, a);
            w.write_all(&vec![0u8; (target - *pos) as usize])?;
            *pos = target;
            Ok(())
        };
        pad(&mut w, &mut pos)?;
        for t in &self.tensors {
            pad(&mut w, &mut pos)?;
            w.write_all(&t.data)?;
            pos += t.data.len() as u64;
            progress(pos, total);
        }
        w.flush()?;
        debug_assert_eq!(pos, total);
        Ok(())
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.file_len() as usize);
        self.write_to(&mut out, |_, _| {})?;
        Ok(out)
    }
}

fn put_string(h: &mut Vec<u8>, s: &[u8]) {
    h.extend_from_slice(&(s.len() as u64).to_le_bytes());
    h.extend_from_slice(s);
}

fn put_value(h: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => h.push(*x),
        Value::I8(x) => h.push(*x as u8),
        Value::U16(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => h.push(*x as u8),
        Value::String(s) => put_string(h, s.as_bytes()),
        Value::U64(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::Bytes(b) => {
            h.extend_from_slice(&(ValueType::U8 as u32).to_le_bytes());
            h.extend_from_slice(&(b.len() as u64).to_le_bytes());
            h.extend_from_slice(b);
        }
        Value::Scalars(t, b) => {
            let width = t.fixed_width().unwrap_or(1);
            h.extend_from_slice(&(*t as u32).to_le_bytes());
            h.extend_from_slice(&((b.len() / width) as u64).to_le_bytes());
            h.extend_from_slice(b);
        }
        Value::Array(t, items) => {
            h.extend_from_slice(&(*t as u32).to_le_bytes());
            h.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for it in items {
                debug_assert!(it.value_type() == *t || *t == ValueType::Array);
                put_value(h, it);
            }
        }
    }
}
