//! Tensors as they sit in a model file: a type, a shape and a slice of shared bytes.
//!
//! Weights are never expanded to f32 wholesale; kernels read the quantised blocks
//! directly (the 250k-row word-embedding table alone would be 384 MB in f32).

use bytes::Bytes;
use half::f16;

use crate::error::{Error, Result};

/// Element types a model file may hold. Block layouts are those of GGUF/ggml.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
    /// 34-byte blocks of 32 weights: `f16 d`, `i8 qs[32]`; value = d·q.
    Q8_0,
    /// 18-byte blocks of 32 weights: `f16 d`, `u8 qs[16]`; low nibbles hold weights 0..16,
    /// high nibbles weights 16..32; value = d·(nibble − 8).
    Q4_0,
}

/// Elements per quantisation block.
pub const QK: usize = 32;
pub const Q4_0_BLOCK_BYTES: usize = 18;
pub const Q8_0_BLOCK_BYTES: usize = 34;

impl DType {
    /// The `ggml_type` number GGUF stores for this type.
    pub fn ggml_type(self) -> u32 {
        match self {
            DType::F32 => 0,
            DType::F16 => 1,
            DType::Q4_0 => 2,
            DType::Q8_0 => 8,
        }
    }

    pub fn from_ggml_type(t: u32) -> Result<DType> {
        Ok(match t {
            0 => DType::F32,
            1 => DType::F16,
            2 => DType::Q4_0,
            8 => DType::Q8_0,
            other => {
                return Err(Error::Unsupported(format!(
                    "tensor type {other} (supported: F32=0, F16=1, Q4_0=2, Q8_0=8)"
                )))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::Q8_0 => "q8_0",
            DType::Q4_0 => "q4_0",
        }
    }

    pub fn parse(s: &str) -> Result<DType> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Ok(DType::F32),
            "f16" => Ok(DType::F16),
            "q8_0" | "q8" => Ok(DType::Q8_0),
            "q4_0" | "q4" => Ok(DType::Q4_0),
            other => Err(Error::Input(format!(
                "unknown tensor type `{other}` (use f32, f16, q8_0 or q4_0)"
            ))),
        }
    }

    /// Elements per block (1 for plain floats).
    pub fn block_elems(self) -> usize {
        match self {
            DType::F32 | DType::F16 => 1,
            DType::Q8_0 | DType::Q4_0 => QK,
        }
    }

    pub fn block_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 => 2,
            DType::Q8_0 => Q8_0_BLOCK_BYTES,
            DType::Q4_0 => Q4_0_BLOCK_BYTES,
        }
    }

    pub fn is_quantized(self) -> bool {
        matches!(self, DType::Q8_0 | DType::Q4_0)
    }

    /// Bytes needed for a row of `n` elements; errors if `n` does not fill whole blocks.
    pub fn row_bytes(self, n: usize) -> Result<usize> {
        let be = self.block_elems();
        if !n.is_multiple_of(be) {
            return Err(Error::Format(format!(
                "{} rows must be a multiple of {be} elements, got {n}",
                self.name()
            )));
        }
        (n / be)
            .checked_mul(self.block_bytes())
            .ok_or_else(|| Error::Format("tensor size overflows".into()))
    }
}

/// Checks that `len` bytes are exactly what a tensor `name` of `dtype` and `shape` holds.
pub fn check_size(name: &str, dtype: DType, shape: &[usize], len: usize) -> Result<()> {
    let expected =
        byte_len(dtype, shape).map_err(|e| Error::Format(format!("tensor `{name}`: {e}")))?;
    if len != expected {
        return Err(Error::Format(format!(
            "tensor `{name}`: {len} bytes for shape {shape:?} of {}, expected {expected}",
            dtype.name()
        )));
    }
    Ok(())
}

/// A tensor view: type, logical shape (row-major, outermost first, e.g. `[out, in]` for a
/// linear weight, the same order as PyTorch) and its bytes.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub data: Bytes,
}

impl Tensor {
    /// Builds a tensor and checks that `data` has exactly the size the shape implies.
    pub fn new(
        name: impl Into<String>,
        dtype: DType,
        shape: Vec<usize>,
        data: Bytes,
    ) -> Result<Tensor> {
        let name = name.into();
        check_size(&name, dtype, &shape, data.len())?;
        Ok(Tensor {
            name,
            dtype,
            shape,
            data,
        })
    }

    pub fn from_f32(name: impl Into<String>, shape: Vec<usize>, values: &[f32]) -> Result<Tensor> {
        let mut bytes = Vec::with_capacity(values.len() * 4);
        for v in values {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        Tensor::new(name, DType::F32, shape, Bytes::from(bytes))
    }

    pub fn n_elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// Length of the innermost dimension (1 for a scalar).
    pub fn row_len(&self) -> usize {
        *self.shape.last().unwrap_or(&1)
    }

    pub fn n_rows(&self) -> usize {
        self.n_elements() / self.row_len().max(1)
    }

    /// Bytes of row `r` (in the innermost dimension).
    pub fn row_bytes(&self, r: usize) -> &[u8] {
        let rb = self
            .dtype
            .row_bytes(self.row_len())
            .expect("validated at construction");
        &self.data[r * rb..(r + 1) * rb]
    }

    /// Checks the shape, naming the tensor in the error.
    pub fn expect_shape(&self, shape: &[usize]) -> Result<&Tensor> {
        if self.shape != shape {
            return Err(Error::Unsupported(format!(
                "tensor `{}` has shape {:?}, expected {:?}",
                self.name, self.shape, shape
            )));
        }
        Ok(self)
    }

    /// Dequantises row `r` into `out` (length = row_len).
    pub fn dequantize_row_into(&self, r: usize, out: &mut [f32]) {
        dequantize_into(self.dtype, self.row_bytes(r), out);
    }

    /// Whole tensor as f32 — only for small tensors (norms, biases, position tables).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.n_elements()];
        dequantize_into(self.dtype, &self.data, &mut out);
        out
    }
}

/// Total bytes of a tensor of this type and shape.
pub fn byte_len(dtype: DType, shape: &[usize]) -> Result<usize> {
    let row = *shape.last().unwrap_or(&1);
    let rows = shape[..shape.len().saturating_sub(1)]
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| Error::Format("tensor size overflows".into()))?;
    dtype
        .row_bytes(row)?
        .checked_mul(rows)
        .ok_or_else(|| Error::Format("tensor size overflows".into()))
}

/// Reference dequantisation (scalar). `src` holds whole blocks for `out.len()` elements.
pub fn dequantize_into(dtype: DType, src: &[u8], out: &mut [f32]) {
    match dtype {
        DType::F32 => {
            for (o, c) in out.iter_mut().zip(src.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        DType::F16 => {
            for (o, c) in out.iter_mut().zip(src.chunks_exact(2)) {
                *o = f16::from_le_bytes([c[0], c[1]]).to_f32();
            }
        }
        DType::Q8_0 => {
            for (o, b) in out
                .chunks_exact_mut(QK)
                .zip(src.chunks_exact(Q8_0_BLOCK_BYTES))
            {
                let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
                for (j, v) in o.iter_mut().enumerate() {
                    *v = d * (b[2 + j] as i8) as f32;
                }
            }
        }
        DType::Q4_0 => {
            for (o, b) in out
                .chunks_exact_mut(QK)
                .zip(src.chunks_exact(Q4_0_BLOCK_BYTES))
            {
                let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
                for j in 0..16 {
                    let q = b[2 + j];
                    o[j] = d * ((q & 0x0F) as i32 - 8) as f32;
                    o[j + 16] = d * ((q >> 4) as i32 - 8) as f32;
                }
            }
        }
    }
}

/// Quantises `src` (length a multiple of 32 for the block types) as ggml's reference
/// quantiser does: Q4_0 with `d = max / −8` (the signed value of largest magnitude),
/// Q8_0 with `d = amax / 127`.
pub fn quantize(dtype: DType, src: &[f32]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(dtype.row_bytes(src.len())?);
    match dtype {
        DType::F32 => src
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        DType::F16 => src
            .iter()
            .for_each(|v| out.extend_from_slice(&f16::from_f32(*v).to_le_bytes())),
        DType::Q8_0 => {
            for block in src.chunks_exact(QK) {
                let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
                let d = amax / 127.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                for v in block {
                    out.push(((v * id).round() as i32).clamp(-128, 127) as i8 as u8);
                }
            }
        }
        DType::Q4_0 => {
            for block in src.chunks_exact(QK) {
                let mut max = 0f32;
                for &v in block {
                    if v.abs() > max.abs() {
                        max = v;
                    }
                }
                let d = max / -8.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                for j in 0..16 {
                    let q0 = ((block[j] * id + 8.5) as i32).clamp(0, 15) as u8;
                    let q1 = ((block[j + 16] * id + 8.5) as i32).clamp(0, 15) as u8;
                    out.push(q0 | (q1 << 4));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_0_roundtrip_is_close() {
        let src: Vec<f32> = (0..64)
            .map(|i| ((i * 37 % 17) as f32 - 8.0) * 0.11)
            .collect();
        let q = quantize(DType::Q4_0, &src).unwrap();
        assert_eq!(q.len(), 2 * Q4_0_BLOCK_BYTES);
        let mut back = vec![0.0; 64];
        dequantize_into(DType::Q4_0, &q, &mut back);
        // Per block, d = max/−8 covers [−8d, 7d]: values round to half a step, except that
        // the far end of the signed range clips by up to one whole step (|max|/8).
        for (blk, back) in src.chunks(32).zip(back.chunks(32)) {
            let max_abs = blk.iter().fold(0f32, |m, v| m.max(v.abs()));
            let step = max_abs / 8.0;
            for (a, b) in blk.iter().zip(back) {
                let err = (a - b).abs();
                assert!(err <= step * 1.001, "{a} vs {b}: error above one step");
                if a.abs() < 7.0 * step {
                    assert!(
                        err <= step * 0.501 + 1e-6,
                        "{a} vs {b}: not rounded to the nearest level"
                    );
                }
            }
        }
    }

    #[test]
    fn q8_0_roundtrip_is_close() {
        let src: Vec<f32> = (0..96).map(|i| (i as f32 * 0.731).sin()).collect();
        let q = quantize(DType::Q8_0, &src).unwrap();
        let mut back = vec![0.0; 96];
        dequantize_into(DType::Q8_0, &q, &mut back);
        for (a, b) in src.iter().zip(&back) {
            assert!((a - b).abs() < 1.0 / 127.0, "{a} vs {b}");
        }
    }

    #[test]
    fn tensor_rejects_wrong_size() {
        let err =
            Tensor::new("w", DType::Q4_0, vec![2, 32], Bytes::from(vec![0u8; 35])).unwrap_err();
        assert!(err.to_string().contains("expected 36"), "{err}");
        assert!(Tensor::new("w", DType::Q4_0, vec![2, 33], Bytes::new()).is_err());
    }
}
