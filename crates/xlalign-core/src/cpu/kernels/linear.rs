//! Linear layers `y = x·Wᵀ + b` over whatever type the weights are stored in.
//!
//! Q4_0/Q8_0 weights stay in their blocks and run through the integer kernels
//! ([`super::qmatmul`]) after the activations are quantised; F32/F16 weights are widened
//! to f32 once, stored transposed (`in × out`), and run through [`super::fmatmul`].

use super::fmatmul::matmul_with;
use super::isa::Isa;
use super::qmatmul::{qmatmul_with, QMatrix};
use super::quant::Q8Rows;
use crate::cpu::par;
use crate::error::{Error, Result};
use crate::model::Linear;
use crate::tensor::{DType, Tensor};

/// How a linear layer's weight is held for the CPU.
#[derive(Clone, Debug)]
pub enum LinearWeight {
    /// Block-quantised, multiplied with int8 activations.
    Quant(QMatrix),
    /// `Wᵀ` in f32, `in × out` row-major.
    Dense {
        wt: Vec<f32>,
        out_features: usize,
        in_features: usize,
    },
}

/// A linear layer ready for the CPU kernels.
#[derive(Clone, Debug)]
pub struct LinearLayer {
    pub weight: LinearWeight,
    pub bias: Vec<f32>,
}

impl LinearLayer {
    pub fn new(l: &Linear) -> Result<LinearLayer> {
        let w = &l.weight;
        let [out_f, in_f] = w.shape[..] else {
            return Err(Error::Unsupported(format!(
                "`{}` has shape {:?}, expected [out, in]",
                w.name, w.shape
            )));
        };
        if l.bias.len() != out_f {
            return Err(Error::Unsupported(format!(
                "`{}` has {} outputs but {} biases",
                w.name,
                out_f,
                l.bias.len()
            )));
        }
        let weight = match w.dtype {
            DType::Q4_0 | DType::Q8_0 => LinearWeight::Quant(QMatrix::from_tensor(w)?),
            DType::F32 | DType::F16 => {
                let full = w.to_f32_vec();
                let mut wt = vec![0f32; full.len()];
                for o in 0..out_f {
                    for i in 0..in_f {
                        wt[i * out_f + o] = full[o * in_f + i];
                    }
                }
                LinearWeight::Dense {
                    wt,
                    out_features: out_f,
                    in_features: in_f,
                }
            }
        };
        Ok(LinearLayer {
            weight,
            bias: l.bias.clone(),
        })
    }

    pub fn in_features(&self) -> usize {
        match &self.weight {
            LinearWeight::Quant(q) => q.cols(),
            LinearWeight::Dense { in_features, .. } => *in_features,
        }
    }

    pub fn out_features(&self) -> usize {
        match &self.weight {
            LinearWeight::Quant(q) => q.rows(),
            LinearWeight::Dense { out_features, .. } => *out_features,
        }
    }

    /// Whether [`LinearLayer::forward`] wants quantised activations.
    pub fn is_quantized(&self) -> bool {
        matches!(self.weight, LinearWeight::Quant(_))
    }

    /// `out = x·Wᵀ + b` for `x` as `T × in`, `out` as `T × out`. For quantised weights,
    /// `xq` may carry `x` already quantised (layers reading the same input share it);
    /// otherwise `x` is quantised here.
    ///
    /// Panics if the lengths disagree.
    pub fn forward(&self, isa: Isa, x: &[f32], xq: Option<&Q8Rows>, out: &mut [f32]) {
        let (inp, n) = (self.in_features(), self.out_features());
        assert!(
            x.len().is_multiple_of(inp.max(1)),
            "linear: input is not rows of {inp}"
        );
        let rows = x.len() / inp.max(1);
        assert_eq!(out.len(), rows * n, "linear: output is not {rows}×{n}");
        match &self.weight {
            LinearWeight::Quant(w) => {
                let owned;
                let xq = match xq {
                    Some(q) => {
                        assert_eq!(
                            (q.rows(), q.cols()),
                            (rows, inp),
                            "linear: quantised input has the wrong shape"
                        );
                        q
                    }
                    None => {
                        owned = Q8Rows::quantize_with(isa, x, inp);
                        &owned
                    }
                };
                qmatmul_with(isa, w, xq, Some(&self.bias), out);
            }
            LinearWeight::Dense { wt, .. } => {
                if n == 0 {
                    return;
                }
                let chunk = par::token_chunk(rows, 4);
                par::for_each_chunk_mut(out, chunk * n, |ci, o| {
                    let r = o.len() / n;
                    let xs = &x[ci * chunk * inp..(ci * chunk + r) * inp];
                    matmul_with(isa, xs, wt, o, r, inp, n);
                    for row in o.chunks_exact_mut(n) {
                        row.iter_mut().zip(&self.bias).for_each(|(v, b)| *v += b);
                    }
                });
            }
        }
    }
}

/// `x·Wᵀ + b` with the weights dequantised to f32 and the activations left unquantised:
/// a plain reference (f32 sums in input order) for other backends to compare against.
/// `x` is `rows × in`; the result is `rows × out`.
pub fn linear_reference(x: &[f32], w: &Tensor, bias: &[f32]) -> Vec<f32> {
    let (out_f, in_f) = (w.shape[0], w.shape[1]);
    let full = w.to_f32_vec();
    let rows = x.len() / in_f;
    let mut out = vec![0f32; rows * out_f];
    for t in 0..rows {
        for o in 0..out_f {
            let mut s = 0f32;
            for i in 0..in_f {
                s += x[t * in_f + i] * full[o * in_f + i];
            }
            out[t * out_f + o] = s + bias[o];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::quantize;
    use bytes::Bytes;

    fn layer(dtype: DType, out_f: usize, in_f: usize) -> (Linear, Vec<f32>) {
        let vals: Vec<f32> = (0..out_f * in_f)
            .map(|i| ((i * 7919 % 211) as f32 / 211.0 - 0.5) * 0.3)
            .collect();
        let bytes = quantize(dtype, &vals).unwrap();
        let weight = Tensor::new("w", dtype, vec![out_f, in_f], Bytes::from(bytes)).unwrap();
        let bias = (0..out_f).map(|i| i as f32 * 0.1).collect();
        (Linear { weight, bias }, vals)
    }

    #[test]
    fn every_weight_type_agrees_with_the_reference() {
        let (out_f, in_f, rows) = (37, 64, 9);
        let x: Vec<f32> = (0..rows * in_f)
            .map(|i| ((i * 31 % 97) as f32 / 97.0 - 0.5) * 2.0)
            .collect();
        for dtype in [DType::F32, DType::F16, DType::Q8_0, DType::Q4_0] {
            let (lin, _) = layer(dtype, out_f, in_f);
            let want = linear_reference(&x, &lin.weight, &lin.bias);
            let l = LinearLayer::new(&lin).unwrap();
            assert_eq!(l.is_quantized(), dtype.is_quantized());
            for isa in Isa::available() {
                let mut got = vec![0f32; rows * out_f];
                l.forward(isa, &x, None, &mut got);
                // Only quantised layers round the activations (to 1/254 of each block's max).
                let tol = if dtype.is_quantized() { 2e-2 } else { 1e-5 };
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() <= tol, "{dtype:?} {isa}: {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn rejects_mismatched_bias() {
        let (mut lin, _) = layer(DType::Q4_0, 4, 32);
        lin.bias.pop();
        assert!(LinearLayer::new(&lin).is_err());
    }
}
