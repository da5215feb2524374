//! Shared test helpers: opening the device (or skipping), seeded random data, and the CPU
//! twins the kernels are held against.
#![allow(dead_code)]

use std::sync::Arc;

use xlalign_gpu::GpuContext;

/// Opens the WebGPU device. Without one the test is skipped with the reason, unless
/// `XLALIGN_REQUIRE_GPU=1` (set by the test script, where lavapipe is installed), in which
/// case a missing adapter is a failure.
pub fn gpu() -> Option<Arc<GpuContext>> {
    match pollster::block_on(GpuContext::new()) {
        Ok(ctx) => {
            eprintln!("WebGPU adapter: {}", ctx.describe());
            Some(ctx)
        }
        Err(e) => {
            if std::env::var("XLALIGN_REQUIRE_GPU").is_ok_and(|v| v == "1") {
                panic!("XLALIGN_REQUIRE_GPU=1 but no WebGPU device could be opened: {e}");
            }
            eprintln!(
                "SKIPPED: no WebGPU device ({e}); set XLALIGN_REQUIRE_GPU=1 to make this a failure"
            );
            None
        }
    }
}

/// SplitMix64: small, seeded, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }

    pub fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }

    pub fn below(&mut self, n: u32) -> u32 {
        (self.next_u64() % n as u64) as u32
    }
}

/// `y = x·Wᵀ + b` in f64 with the weights already dequantised (`w` is `[n, k]`), and the
/// magnitude Σ|x·w| + |b| of each output, which scales the rounding error a kernel may have.
pub fn matmul_ref(
    x: &[f32],
    m: usize,
    w: &[f32],
    n: usize,
    k: usize,
    b: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let mut y = vec![0f32; m * n];
    let mut mag = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = b[j] as f64;
            let mut a = (b[j] as f64).abs();
            for t in 0..k {
                let p = x[i * k + t] as f64 * w[j * k + t] as f64;
                s += p;
                a += p.abs();
            }
            y[i * n + j] = s as f32;
            mag[i * n + j] = a as f32;
        }
    }
    (y, mag)
}

/// Exact-form GELU in f64.
pub fn gelu_exact(x: f64) -> f64 {
    0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
}

pub fn gelu_tanh_exact(x: f64) -> f64 {
    let c = (2.0 / std::f64::consts::PI).sqrt();
    0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
}

/// Row-wise LayerNorm of `x + r` in f64.
pub fn layer_norm_ref(
    x: &[f32],
    r: Option<&[f32]>,
    n: usize,
    g: &[f32],
    b: &[f32],
    eps: f32,
) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    for (row, o) in out.chunks_mut(n).enumerate() {
        let v: Vec<f64> = (0..n)
            .map(|i| x[row * n + i] as f64 + r.map_or(0.0, |r| r[row * n + i] as f64))
            .collect();
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / n as f64;
        let inv = 1.0 / (var + eps as f64).sqrt();
        for i in 0..n {
            o[i] = ((v[i] - mean) * inv * g[i] as f64 + b[i] as f64) as f32;
        }
    }
    out
}

/// Masked multi-head attention over a padded batch (layout as `ops::attention`), in f64.
pub fn attention_ref(
    qkv: &[f32],
    lens: &[u32],
    seq_len: usize,
    heads: usize,
    d: usize,
) -> Vec<f32> {
    let hidden = heads * d;
    let stride = 3 * hidden;
    let scale = 1.0 / (d as f64).sqrt();
    let mut out = vec![0f32; lens.len() * seq_len * hidden];
    for (b, &len) in lens.iter().enumerate() {
        let len = len as usize;
        for h in 0..heads {
            for i in 0..seq_len {
                let q = |c: usize| qkv[(b * seq_len + i) * stride + h * d + c] as f64;
                let kv = |j: usize, part: usize, c: usize| {
                    qkv[(b * seq_len + j) * stride + part * hidden + h * d + c] as f64
                };
                let scores: Vec<f64> = (0..len)
                    .map(|j| (0..d).map(|c| q(c) * kv(j, 1, c)).sum::<f64>() * scale)
                    .collect();
                let mx = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - mx).exp()).collect();
                let z: f64 = e.iter().sum();
                for c in 0..d {
                    let v: f64 = (0..len).map(|j| e[j] * kv(j, 2, c)).sum::<f64>() / z;
                    out[(b * seq_len + i) * hidden + h * d + c] = v as f32;
                }
            }
        }
    }
    out
}

/// Largest |a − b| and where it is.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> (f32, usize) {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .enumerate()
        .map(|(i, (x, y))| ((x - y).abs(), i))
        .fold(
            (0.0, 0),
            |acc, v| if v.0 > acc.0 || v.0.is_nan() { v } else { acc },
        )
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// A small random encoder with the given storage type for its matrices (and word table),
/// for whole-model tests without the model file. Sizes are deliberately not multiples of
/// the kernels' tiles: hidden 96 in 4 heads of 24, FFN 160, 3 blocks.
pub fn tiny_model(
    dtype: xlalign_core::tensor::DType,
    activation: xlalign_core::model::Activation,
    pooling: xlalign_core::model::Pooling,
    seed: u64,
) -> (
    xlalign_core::model::EncoderConfig,
    xlalign_core::model::EncoderWeights,
) {
    use xlalign_core::model::{EncoderConfig, EncoderLayer, EncoderWeights, LayerNorm, Linear};
    use xlalign_core::tensor::{quantize, Tensor};
    let c = EncoderConfig {
        hidden: 96,
        layers: 3,
        heads: 4,
        ff: 160,
        vocab: 301,
        max_positions: 40,
        type_vocab: 2,
        layer_norm_eps: 1e-12,
        activation,
        position_offset: 0,
        pooling,
    };
    let mut rng = Rng::new(seed);
    let mut matrix = |name: &str, rows: usize, cols: usize, scale: f32| {
        let v = rng.vec(rows * cols, -scale, scale);
        Tensor::new(
            name,
            dtype,
            vec![rows, cols],
            bytes::Bytes::from(quantize(dtype, &v).unwrap()),
        )
        .unwrap()
    };
    let token_embd =
        xlalign_core::table::RowTable::from_tensor(matrix("token_embd", c.vocab, c.hidden, 1.0))
            .unwrap();
    let mut rng = Rng::new(seed ^ 0xABCDEF);
    let norm = |rng: &mut Rng| LayerNorm {
        weight: rng.vec(c.hidden, 0.7, 1.3),
        bias: rng.vec(c.hidden, -0.2, 0.2),
    };
    let (h, ff) = (c.hidden, c.ff);
    let mut rng2 = Rng::new(seed.wrapping_mul(31));
    let mut linear = |rng: &mut Rng, out: usize, inp: usize| {
        let v = rng2
            .vec(out * inp, -1.0, 1.0)
            .into_iter()
            .map(|x| x / (inp as f32).sqrt() * 1.7)
            .collect::<Vec<_>>();
        Linear {
            weight: Tensor::new(
                "w",
                dtype,
                vec![out, inp],
                bytes::Bytes::from(quantize(dtype, &v).unwrap()),
            )
            .unwrap(),
            bias: rng.vec(out, -0.1, 0.1),
        }
    };
    let layers = (0..c.layers)
        .map(|_| EncoderLayer {
            query: linear(&mut rng, h, h),
            key: linear(&mut rng, h, h),
            value: linear(&mut rng, h, h),
            attn_output: linear(&mut rng, h, h),
            attn_norm: norm(&mut rng),
            ffn_up: linear(&mut rng, ff, h),
            ffn_down: linear(&mut rng, h, ff),
            output_norm: norm(&mut rng),
        })
        .collect();
    let w = EncoderWeights {
        token_embd,
        position_embd: rng.vec(c.max_positions * h, -0.3, 0.3).into(),
        token_types: rng.vec(c.type_vocab * h, -0.1, 0.1),
        embd_norm: norm(&mut rng),
        layers,
    };
    (c, w)
}

/// The same encoder with every matrix dequantised to f32: the CPU then computes in f32
/// throughout (no int8 activations), which is what the GPU does with the quantised weights.
pub fn dequantized(w: &xlalign_core::model::EncoderWeights) -> xlalign_core::model::EncoderWeights {
    use xlalign_core::model::Linear;
    use xlalign_core::tensor::Tensor;
    let f =
        |t: &Tensor| Tensor::from_f32(t.name.clone(), t.shape.clone(), &t.to_f32_vec()).unwrap();
    let lin = |l: &Linear| Linear {
        weight: f(&l.weight),
        bias: l.bias.clone(),
    };
    let mut out = w.clone();
    let t = &w.token_embd;
    out.token_embd = xlalign_core::table::RowTable::from_tensor(
        Tensor::from_f32(t.name.clone(), t.shape.clone(), &t.to_f32_vec()).unwrap(),
    )
    .unwrap();
    for (o, l) in out.layers.iter_mut().zip(&w.layers) {
        o.query = lin(&l.query);
        o.key = lin(&l.key);
        o.value = lin(&l.value);
        o.attn_output = lin(&l.attn_output);
        o.ffn_up = lin(&l.ffn_up);
        o.ffn_down = lin(&l.ffn_down);
    }
    out
}
