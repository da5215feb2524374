//! Element-wise functions and row normalisations, all in f32.
//!
//! These are written as plain Rust shaped for auto-vectorisation (no branches in the
//! element functions, sums kept in eight independent lanes), so one body serves every
//! instruction set: on x86-64 the same code is compiled a second time with AVX2 enabled,
//! and on wasm32 `+simd128` vectorises it. Because Rust never contracts `a*b+c` into an FMA
//! on its own, the AVX2 build gives bit-identical results to the scalar one.
//!
//! `exp` and `erf` are our own so that they vectorise (the libm calls do not) and so that
//! the GPU shaders can mirror them operation for operation.

use super::isa::Isa;
use crate::model::Activation;

/// Independent accumulators in the reductions: enough for one AVX2 register, and a fixed
/// summation order so every build adds in the same order.
const LANES: usize = 8;

/// `e^x` in f32 (Cody–Waite reduction by ln 2, degree-6 polynomial on |r| ≤ ln2/2).
///
/// Relative error ≤ 2 ulp on [−87, 88]; returns 0 below −87 (where the true value is a
/// subnormal) and +∞ above 88; NaN stays NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n·LN2_HI is exact for |n| < 2^9.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2^23 rounds to an integer (half to even) and leaves it in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let xc = x.clamp(-87.0, 88.0);
    let v = xc * LOG2E + ROUND;
    let n = v - ROUND;
    let k = (v.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let r = xc - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_2e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let y = p * r * r + r + 1.0;
    let scaled = y * f32::from_bits((k.wrapping_add(127) << 23) as u32);
    if x < -87.0 {
        0.0
    } else if x > 88.0 {
        f32::INFINITY
    } else if x.is_nan() {
        x
    } else {
        scaled
    }
}

/// Coefficients of erf(a)/a as a polynomial in a², for 0 ≤ a < 1 (highest degree first).
/// Fitted, so the constant term sits one ulp from 2/√π on purpose.
#[allow(clippy::approx_constant)]
const ERF_SMALL: [f32; 7] = [
    7.882_497_4e-5,
    -8.018_855e-4,
    5.189_312e-3,
    -2.685_432_9e-2,
    1.128_359_7e-1,
    -3.761_262_6e-1,
    1.128_379_1,
];

/// Coefficients of a·e^{a²}·erfc(a) as a polynomial in u = (1/a − 0.55)/0.45, for
/// 1 ≤ a ≤ 10 (u ∈ [−1, 1]; highest degree first). Fitted on Chebyshev nodes; relative
/// fit error 2·10⁻⁹.
const ERFC_LARGE: [f32; 13] = [
    -1.019_662_2e-5,
    1.837_082_3e-5,
    1.410_331_8e-5,
    -7.294_687e-5,
    1.435_517_5e-4,
    -2.253_708e-4,
    9.776_485e-5,
    9.196_536e-4,
    -3.978_207e-3,
    8.962_925e-3,
    -4.123_688e-3,
    -7.651_581e-2,
    5.023_534e-1,
];

#[inline(always)]
fn horner<const N: usize>(c: &[f32; N], x: f32) -> f32 {
    let mut acc = c[0];
    for &ci in &c[1..] {
        acc = acc * x + ci;
    }
    acc
}

/// `(erf(a), erfc(a))` for `a ≥ 0`, each without cancellation: erfc comes from its own
/// formula for a ≥ 1, so `1 − erf` is never formed where erf is close to 1.
#[inline(always)]
fn erf_erfc_nonneg(a: f32) -> (f32, f32) {
    let small = a * horner(&ERF_SMALL, a * a);
    // Past 10, erfc is below the smallest f32; clamping also keeps ∞ from making NaN below.
    let al = a.clamp(1.0, 10.0);
    let t = 1.0 / al;
    let u = (t - 0.55) * (1.0 / 0.45);
    // e^{−a²} with a² split exactly into hi + lo (a_hi keeps 12 significant bits, so a_hi²
    // is exact): rounding a² itself would cost up to a²·2⁻²⁴ relative error.
    let a_hi = f32::from_bits(al.to_bits() & 0xFFFF_F000);
    let a_lo = al - a_hi;
    let gauss = exp(-(a_hi * a_hi)) * exp(-(a_lo * (al + a_hi)));
    let large_c = gauss * horner(&ERFC_LARGE, u) * t;
    if a < 1.0 {
        (small, 1.0 - small)
    } else {
        (1.0 - large_c, large_c)
    }
}

/// The error function in f32: absolute error ≤ 1.5·10⁻⁷ (about 2 ulp near ±1) on the
/// whole real line.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    erf_erfc_nonneg(x.abs()).0.copysign(x)
}

/// Exact (erf) GELU, `0.5·x·(1 + erf(x/√2))`. For negative `x` the factor `1 + erf` is
/// computed as `erfc(|x|/√2)`, so small outputs keep their relative precision.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    let (e, c) = erf_erfc_nonneg(x.abs() * std::f32::consts::FRAC_1_SQRT_2);
    let two_phi = if x >= 0.0 { 1.0 + e } else { c };
    0.5 * x * two_phi
}

/// Tanh-approximated GELU, `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`, rewritten as
/// `x / (1 + e^{−2y})` (the same value, with no cancellation for negative x).
#[inline(always)]
pub fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    let y = SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x);
    x / (1.0 + exp(-2.0 * y))
}

#[inline(always)]
fn combine(acc: [f32; LANES]) -> f32 {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

#[inline(always)]
fn lane_sum(xs: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rem = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            acc[i] += f(c[i]);
        }
    }
    for (a, &r) in acc.iter_mut().zip(rem) {
        *a += f(r);
    }
    combine(acc)
}

#[inline(always)]
fn lane_max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rem = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            acc[i] = acc[i].max(c[i]);
        }
    }
    for (a, &r) in acc.iter_mut().zip(rem) {
        *a = a.max(r);
    }
    acc.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v))
}

/// The bodies, written once and instantiated per instruction set below.
mod body {
    use super::*;

    /// Plain `for` loops: with `iter_mut().for_each`, the compiler kept `for_each` as a
    /// function of its own, built for the baseline instruction set (SSE2) rather than the
    /// AVX2 + FMA of `avx2::activation`, and GELU took 18 % of a batch's time.
    #[inline(always)]
    pub fn activation(xs: &mut [f32], act: Activation) {
        match act {
            Activation::GeluErf => {
                for v in xs.iter_mut() {
                    *v = gelu(*v);
                }
            }
            Activation::GeluTanh => {
                for v in xs.iter_mut() {
                    *v = gelu_tanh(*v);
                }
            }
        }
    }

    #[inline(always)]
    pub fn layer_norm(
        x: &mut [f32],
        residual: Option<&[f32]>,
        width: usize,
        w: &[f32],
        b: &[f32],
        eps: f32,
    ) {
        if let Some(res) = residual {
            x.iter_mut().zip(res).for_each(|(v, r)| *v += r);
        }
        let n = width as f32;
        for row in x.chunks_exact_mut(width) {
            let mean = lane_sum(row, |v| v) / n;
            let var = lane_sum(row, |v| (v - mean) * (v - mean)) / n;
            let inv = 1.0 / (var + eps).sqrt();
            for ((v, &wi), &bi) in row.iter_mut().zip(w).zip(b) {
                *v = (*v - mean) * inv * wi + bi;
            }
        }
    }

    #[inline(always)]
    pub fn softmax_rows(x: &mut [f32], width: usize) {
        for row in x.chunks_exact_mut(width) {
            let m = lane_max(row);
            // `for` loops rather than `for_each`, as in `activation`.
            for v in row.iter_mut() {
                *v = exp(*v - m);
            }
            let inv = 1.0 / lane_sum(row, |v| v);
            for v in row.iter_mut() {
                *v *= inv;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::*;

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn activation(xs: &mut [f32], act: Activation) {
        body::activation(xs, act)
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn layer_norm(
        x: &mut [f32],
        residual: Option<&[f32]>,
        width: usize,
        w: &[f32],
        b: &[f32],
        eps: f32,
    ) {
        body::layer_norm(x, residual, width, w, b, eps)
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn softmax_rows(x: &mut [f32], width: usize) {
        body::softmax_rows(x, width)
    }
}

/// The same element-wise code compiled for 16 lanes.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::*;

    #[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl")]
    pub unsafe fn activation(xs: &mut [f32], act: Activation) {
        body::activation(xs, act)
    }
}

/// Applies the model's activation in place.
pub fn activation_with(isa: Isa, xs: &mut [f32], act: Activation) {
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx512vnni() {
        // SAFETY: an `Isa` with AVX-512 VNNI exists only when the CPU has AVX512F too.
        return unsafe { avx512::activation(xs, act) };
    }
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        // SAFETY: an `Isa` with AVX2 exists only when the CPU has AVX2 and FMA.
        return unsafe { avx2::activation(xs, act) };
    }
    let _ = isa;
    body::activation(xs, act)
}

/// [`activation_with`] on the best instruction set.
pub fn activation(xs: &mut [f32], act: Activation) {
    activation_with(Isa::best(), xs, act)
}

fn check_norm(x: &[f32], residual: Option<&[f32]>, width: usize, w: &[f32], b: &[f32]) {
    assert!(
        width > 0 && x.len().is_multiple_of(width),
        "layer_norm: {} values are not rows of {width}",
        x.len()
    );
    assert!(
        w.len() == width && b.len() == width,
        "layer_norm: weight/bias length differs from {width}"
    );
    if let Some(r) = residual {
        assert_eq!(r.len(), x.len(), "layer_norm: residual length differs");
    }
}

/// LayerNorm of each row of `x` (`width` values per row), in place: mean, biased variance
/// (divided by `width`), `(x − μ)/√(σ² + eps)·w + b`, as BERT does.
///
/// Panics if the lengths disagree.
pub fn layer_norm(x: &mut [f32], width: usize, weight: &[f32], bias: &[f32], eps: f32) {
    layer_norm_with(Isa::best(), x, None, width, weight, bias, eps)
}

/// `x ← LayerNorm(x + residual)`: the post-LN residual step of every BERT block.
pub fn add_layer_norm(
    x: &mut [f32],
    residual: &[f32],
    width: usize,
    weight: &[f32],
    bias: &[f32],
    eps: f32,
) {
    layer_norm_with(Isa::best(), x, Some(residual), width, weight, bias, eps)
}

/// [`layer_norm`] / [`add_layer_norm`] on a chosen instruction set.
pub fn layer_norm_with(
    isa: Isa,
    x: &mut [f32],
    residual: Option<&[f32]>,
    width: usize,
    weight: &[f32],
    bias: &[f32],
    eps: f32,
) {
    check_norm(x, residual, width, weight, bias);
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        // SAFETY: see `activation_with`.
        return unsafe { avx2::layer_norm(x, residual, width, weight, bias, eps) };
    }
    let _ = isa;
    body::layer_norm(x, residual, width, weight, bias, eps)
}

/// Numerically stable softmax of each row (max subtracted before `exp`), in place.
///
/// Panics if `x.len()` is not a multiple of `width`.
pub fn softmax_rows(x: &mut [f32], width: usize) {
    softmax_rows_with(Isa::best(), x, width)
}

/// [`softmax_rows`] on a chosen instruction set.
pub fn softmax_rows_with(isa: Isa, x: &mut [f32], width: usize) {
    assert!(
        width > 0 && x.len().is_multiple_of(width),
        "softmax_rows: {} values are not rows of {width}",
        x.len()
    );
    #[cfg(target_arch = "x86_64")]
    if isa.has_avx2() {
        // SAFETY: see `activation_with`.
        return unsafe { avx2::softmax_rows(x, width) };
    }
    let _ = isa;
    body::softmax_rows(x, width)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // erf / GELU values from Python's math.erf / math.erfc (double precision).
    const ERF_KNOWN: &[(f32, f64)] = &[
        (0.0, 0.0),
        (0.001, 0.0011283787909692365),
        (0.1, 0.1124629160182849),
        (0.5, 0.5204998778130465),
        (0.8, 0.7421009647076605),
        (0.99, 0.8385080695553698),
        (1.0, 0.8427007929497149),
        (1.5, 0.9661051464753108),
        (2.0, 0.9953222650189527),
        (2.5, 0.999593047982555),
        (3.0, 0.9999779095030014),
        (3.5, 0.9999992569016276),
        (4.0, 0.9999999845827421),
        (5.0, 0.9999999999984626),
        (-0.3, -0.3286267594591274),
        (-2.2, -0.9981371537020182),
    ];

    const GELU_KNOWN: &[(f32, f64)] = &[
        (-8.0, -4.9767684594174555e-15),
        (-5.0, -1.4332578593959731e-06),
        (-3.0, -0.004049694094890287),
        (-1.5, -0.10021080190328713),
        (-1.0, -0.15865525393145707),
        (-0.5, -0.15426876936299344),
        (-0.1, -0.0460172162722971),
        (0.0, 0.0),
        (0.1, 0.053982783727702904),
        (0.5, 0.34573123063700656),
        (1.0, 0.8413447460685429),
        (1.5, 1.399789198096713),
        (3.0, 2.99595030590511),
        (5.0, 4.99999856674214),
    ];

    #[test]
    fn erf_matches_known_values() {
        for &(x, want) in ERF_KNOWN {
            let got = erf(x) as f64;
            assert!(
                (got - want).abs() <= 1.5e-7,
                "erf({x}) = {got}, want {want}"
            );
        }
        assert_eq!(erf(40.0), 1.0);
        assert_eq!(erf(-40.0), -1.0);
        assert!(erf(f32::NAN).is_nan());
    }

    #[test]
    fn gelu_matches_known_values_with_relative_precision() {
        for &(x, want) in GELU_KNOWN {
            let got = gelu(x) as f64;
            // Relative everywhere, the tiny negative tail included: there 1 + erf would have
            // cancelled, so this checks that erfc is used instead.
            let tol = 1.5e-6 * want.abs();
            assert!(
                (got - want).abs() <= tol,
                "gelu({x}) = {got:e}, want {want:e}"
            );
        }
        assert_eq!(gelu(100.0), 100.0);
        assert!(gelu(-100.0) == 0.0);
    }

    #[test]
    fn gelu_tanh_is_close_to_gelu() {
        // The two forms differ by < 1e-3 everywhere.
        for i in -800..800 {
            let x = i as f32 / 100.0;
            assert!((gelu_tanh(x) - gelu(x)).abs() < 1e-3, "x = {x}");
        }
        assert_eq!(gelu_tanh(-100.0), 0.0);
        assert_eq!(gelu_tanh(100.0), 100.0);
    }

    #[test]
    fn exp_is_accurate_over_its_range() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let got = exp(x) as f64;
            let want = (x as f64).exp();
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 2.5e-7, "worst relative error {worst:e}");
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn erf_is_accurate_on_a_dense_grid() {
        // Reference in f64 from the series / continued fraction is overkill here: the f64
        // libm erf is not in std, so compare against erf = 1 − erfc through an
        // independent route, the f64 Taylor series (converges fast for |x| ≤ 3).
        fn erf64(x: f64) -> f64 {
            let mut term = x;
            let mut sum = x;
            let x2 = x * x;
            for n in 1..200 {
                term *= -x2 / n as f64;
                let add = term / (2 * n + 1) as f64;
                sum += add;
                if add.abs() < 1e-18 {
                    break;
                }
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        }
        let mut worst = 0f64;
        for i in -3000..=3000 {
            let x = i as f32 * 0.001;
            worst = worst.max((erf(x) as f64 - erf64(x as f64)).abs());
        }
        assert!(worst <= 1.5e-7, "worst absolute error {worst:e}");
    }

    fn rows(max_rows: usize, max_width: usize) -> impl Strategy<Value = (Vec<f32>, usize)> {
        (1..=max_rows, 1..=max_width)
            .prop_flat_map(|(r, w)| (proptest::collection::vec(-20.0f32..20.0, r * w), Just(w)))
    }

    proptest! {
        #[test]
        fn simd_builds_equal_scalar_exactly((x, w) in rows(5, 77)) {
            let gamma: Vec<f32> = (0..w).map(|i| 1.0 + i as f32 * 0.01).collect();
            let beta: Vec<f32> = (0..w).map(|i| i as f32 * -0.02).collect();
            let res: Vec<f32> = x.iter().map(|v| v * 0.5 - 1.0).collect();
            for isa in Isa::available() {
                let mut a = x.clone();
                let mut b = x.clone();
                layer_norm_with(Isa::scalar(), &mut a, Some(&res), w, &gamma, &beta, 1e-12);
                layer_norm_with(isa, &mut b, Some(&res), w, &gamma, &beta, 1e-12);
                prop_assert_eq!(&a, &b);
                softmax_rows_with(Isa::scalar(), &mut a, w);
                softmax_rows_with(isa, &mut b, w);
                prop_assert_eq!(&a, &b);
                let mut a = x.clone();
                let mut b = x.clone();
                activation_with(Isa::scalar(), &mut a, Activation::GeluErf);
                activation_with(isa, &mut b, Activation::GeluErf);
                prop_assert_eq!(&a, &b);
                activation_with(Isa::scalar(), &mut a, Activation::GeluTanh);
                activation_with(isa, &mut b, Activation::GeluTanh);
                prop_assert_eq!(&a, &b);
            }
        }

        #[test]
        fn layer_norm_and_softmax_match_f64((x, w) in rows(4, 50)) {
            let gamma: Vec<f32> = (0..w).map(|i| 0.5 + i as f32 * 0.03).collect();
            let beta: Vec<f32> = (0..w).map(|i| (i as f32).sin()).collect();
            let mut got = x.clone();
            layer_norm(&mut got, w, &gamma, &beta, 1e-5);
            let mut sm = x.clone();
            softmax_rows(&mut sm, w);
            for (r, row) in x.chunks(w).enumerate() {
                let n = w as f64;
                let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n;
                let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
                let max = row.iter().fold(f64::MIN, |m, &v| m.max(v as f64));
                let z: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
                for j in 0..w {
                    let want = (row[j] as f64 - mean) / (var + 1e-5).sqrt() * gamma[j] as f64 + beta[j] as f64;
                    prop_assert!((got[r * w + j] as f64 - want).abs() < 2e-4, "ln {} vs {}", got[r * w + j], want);
                    let want = (row[j] as f64 - max).exp() / z;
                    prop_assert!((sm[r * w + j] as f64 - want).abs() < 1e-6, "softmax {} vs {}", sm[r * w + j], want);
                }
            }
        }
    }
}
