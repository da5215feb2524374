//! GGUF, the single-file model format of llama.cpp and candle: a header of typed
//! key/value metadata and tensor descriptors, then aligned tensor data.
//!
//! Spec: <https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>. Dimensions are stored
//! innermost first (`ne[0]` = row length); [`crate::tensor::Tensor`] keeps the usual
//! outermost-first order, so the reader and writer reverse them.

pub mod delta;
mod digest;
mod read;
mod write;

use std::fmt;

use bytes::Bytes;

pub use digest::{sha256_hex, WeightsDigest};
pub use read::{GgufFile, GgufHeader, TensorInfo};
pub use write::GgufWriter;

/// `"GGUF"` read as a little-endian u32.
pub const MAGIC: &[u8; 4] = b"GGUF";
pub const VERSION: u32 = 3;
pub const DEFAULT_ALIGNMENT: u64 = 32;
pub const KEY_ALIGNMENT: &str = "general.alignment";

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(GgufStr),
    /// Element type tag, then the elements (all of that type).
    Array(ValueType, Vec<Value>),
    /// An array of u8, kept as one byte buffer: the reader returns every u8 array this way
    /// (shared with the file's bytes when it can), since a [`Value`] per byte would take
    /// dozens of bytes each. Written as an array of element type u8.
    Bytes(Bytes),
    /// An array of fixed-width numbers or booleans other than u8 (element type, then the
    /// elements' little-endian bytes, shared with the file's bytes when it can): the reader
    /// keeps every such array this way, so that a crafted file cannot make it hold a
    /// [`Value`] (40 bytes) per byte of the file. Written as an array of that element type.
    Scalars(ValueType, Bytes),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// GGUF value type tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl ValueType {
    /// Bytes one element of this type takes in the file, for the fixed-width types.
    pub fn fixed_width(self) -> Option<usize> {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }

    /// The fewest bytes one element of this type takes in the file: a string is at least its
    /// 8-byte length, an array its 4-byte element type and 8-byte count.
    pub fn min_width(self) -> usize {
        match self {
            ValueType::String => 8,
            ValueType::Array => 12,
            t => t.fixed_width().unwrap_or(1),
        }
    }

    pub fn from_u32(t: u32) -> Option<ValueType> {
        use ValueType::*;
        Some(match t {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }
}

impl Value {
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Array(..) | Value::Bytes(_) | Value::Scalars(..) => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }

    /// Any integer type as u64 (negative values give None).
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v as u64),
            Value::U16(v) => Some(v as u64),
            Value::U32(v) => Some(v as u64),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v as f64),
            Value::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => s.as_str(),
            _ => None,
        }
    }

    /// The bytes of a u8 array.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// Short human-readable rendering (arrays are summarised).
    pub fn display_short(&self) -> String {
        match self {
            Value::String(s) if s.len() > 60 => format!("<string, {} bytes>", s.len()),
            Value::String(s) => format!("{s:?}"),
            Value::Array(t, v) => format!("<array of {:?}, {} items>", t, v.len()),
            Value::Bytes(b) => format!("<array of U8, {} items>", b.len()),
            Value::Scalars(t, b) => format!(
                "<array of {:?}, {} items>",
                t,
                b.len() / t.fixed_width().unwrap_or(1)
            ),
            Value::F32(v) => format!("{v}"),
            Value::F64(v) => format!("{v}"),
            Value::Bool(v) => format!("{v}"),
            other => other
                .as_u64()
                .map(|v| v.to_string())
                .unwrap_or_else(|| format!("{other:?}")),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.into())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s.into())
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::U32(v)
    }
}
impl From<f32> for Value {
    fn from(v: f32) -> Self {
        Value::F32(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

/// A metadata string. Read from a file held as [`Bytes`], it shares those bytes instead of
/// copying them: the embedded tokenizer.json alone is megabytes, and on a cold start every
/// fresh page costs time.
///
/// Strings of [`LAZY_UTF8`] bytes or more are checked for UTF-8 when used rather than while
/// parsing: checking tokenizer.json's 9 MB of mixed scripts takes milliseconds, and the
/// tokenizer reads it as bytes, checking what it parses on the way. [`GgufStr::as_str`]
/// checks every time it is called (with SIMD, so a metadata string costs next to nothing):
/// the bytes may be a memory-mapped file, which another process could change after an
/// earlier check, so no check is remembered and no `unsafe` conversion trusts one.
#[derive(Clone, Default)]
pub struct GgufStr {
    bytes: Bytes,
}

/// Strings this long or longer are checked for UTF-8 lazily (see [`GgufStr`]).
pub const LAZY_UTF8: usize = 1 << 16;

impl GgufStr {
    /// Checks that `bytes` is UTF-8.
    pub fn from_utf8(bytes: Bytes) -> Result<GgufStr, std::str::Utf8Error> {
        std::str::from_utf8(&bytes)?;
        Ok(GgufStr { bytes })
    }

    /// Takes `bytes` as they are; [`GgufStr::as_str`] checks them.
    pub fn unchecked(bytes: Bytes) -> GgufStr {
        GgufStr { bytes }
    }

    /// The text, or `None` when the bytes are not UTF-8 (checked on each call).
    pub fn as_str(&self) -> Option<&str> {
        simdutf8::basic::from_utf8(&self.bytes).ok()
    }

    /// The raw bytes, not necessarily checked for UTF-8.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl PartialEq for GgufStr {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl PartialEq<str> for GgufStr {
    fn eq(&self, other: &str) -> bool {
        self.bytes == other.as_bytes()
    }
}

impl PartialEq<&str> for GgufStr {
    fn eq(&self, other: &&str) -> bool {
        self.bytes == other.as_bytes()
    }
}

impl fmt::Debug for GgufStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(s) => fmt::Debug::fmt(s, f),
            None => write!(f, "<{} bytes, not UTF-8>", self.len()),
        }
    }
}

impl From<String> for GgufStr {
    fn from(s: String) -> Self {
        GgufStr {
            bytes: Bytes::from(s),
        }
    }
}

impl From<&str> for GgufStr {
    fn from(s: &str) -> Self {
        GgufStr {
            bytes: Bytes::copy_from_slice(s.as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests;
