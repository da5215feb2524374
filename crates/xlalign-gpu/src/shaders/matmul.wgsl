// y = x · Wᵀ + b (optionally followed by GELU), with W stored as [n, k] in its model type.
//
// Constants prepended by kernels.rs: TILE_M, TILE_N, TILE_K, WG_X, WG_Y, WEIGHT_TYPE,
// EPILOGUE and the WT_* / EPI_* enumerations.
//
// Tiling: a workgroup of WG_X × WG_Y threads owns a TILE_M × TILE_N block of y. For each
// TILE_K-wide slice of k (one quantisation block) it stages the x tile and the dequantised
// W tile in workgroup memory, so every weight is read and dequantised once per workgroup
// instead of once per output; each thread then accumulates a 4 × 4 register block. Rows and columns beyond m / n are
// loaded as zeros and never written, so any m and n work; quantised weights need k to be a
// whole number of blocks (checked on the Rust side), float weights any k.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// Quants (Q4_0: 4 words per block, Q8_0: 8), f16 pairs or f32 bits; see weights.rs.
@group(0) @binding(2) var<storage, read> w: array<u32>;
// One f32 scale per block (unused for float weights).
@group(0) @binding(3) var<storage, read> w_scale: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

const THREADS: u32 = WG_X * WG_Y;
// One padding column keeps threads that read different rows off the same memory bank.
const STRIDE: u32 = TILE_K + 1u;

var<workgroup> xs: array<f32, TILE_M * STRIDE>;
var<workgroup> ws: array<f32, TILE_N * STRIDE>;

// Abramowitz & Stegun 7.1.26: erfc(z) for z ≥ 0 with absolute error ≤ 1.5e-7. WGSL has no
// erf; computing erfc directly avoids the cancellation of 1 − erf for negative inputs.
fn erfc_pos(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.3275911 * z);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return poly * exp(-z * z);
}

// Exact-form GELU, 0.5·x·(1 + erf(x/√2)).
fn gelu_erf(v: f32) -> f32 {
    let c = erfc_pos(abs(v) * 0.70710678118654752);
    return select(0.5 * v * c, 0.5 * v * (2.0 - c), v >= 0.0);
}

// tanh GELU; the argument is clamped because some tanh implementations overflow to NaN.
fn gelu_tanh(v: f32) -> f32 {
    let u = clamp(0.7978845608028654 * (v + 0.044715 * v * v * v), -15.0, 15.0);
    return 0.5 * v * (1.0 + tanh(u));
}

// Stages W rows [col0, col0 + TILE_N) × columns [k0, k0 + TILE_K) into `ws`, dequantised.
fn load_w_tile(col0: u32, k0: u32, tid: u32) {
    if (WEIGHT_TYPE == WT_Q4_0) {
        // 4 words per block row: each thread unpacks one word = 8 weights.
        let blocks_per_row = p.k / 32u;
        for (var idx = tid; idx < TILE_N * 4u; idx += THREADS) {
            let nl = idx / 4u;
            let word = idx % 4u;
            let n = col0 + nl;
            var d = 0.0;
            var q = 0x88888888u; // nibble 8 = 0 after the offset
            if (n < p.n) {
                let block = n * blocks_per_row + k0 / 32u;
                d = w_scale[block];
                q = w[block * 4u + word];
            }
            for (var b = 0u; b < 4u; b++) {
                let byte = (q >> (8u * b)) & 0xffu;
                ws[nl * STRIDE + 4u * word + b] = d * (f32(byte & 0xfu) - 8.0);
                ws[nl * STRIDE + 16u + 4u * word + b] = d * (f32(byte >> 4u) - 8.0);
            }
        }
    } else if (WEIGHT_TYPE == WT_Q8_0) {
        let blocks_per_row = p.k / 32u;
        for (var idx = tid; idx < TILE_N * 8u; idx += THREADS) {
            let nl = idx / 8u;
            let word = idx % 8u;
            let n = col0 + nl;
            var d = 0.0;
            var q = 0u;
            if (n < p.n) {
                let block = n * blocks_per_row + k0 / 32u;
                d = w_scale[block];
                q = w[block * 8u + word];
            }
            for (var b = 0u; b < 4u; b++) {
                let v = extractBits(bitcast<i32>(q), 8u * b, 8u); // sign-extending
                ws[nl * STRIDE + 4u * word + b] = d * f32(v);
            }
        }
    } else {
        for (var idx = tid; idx < TILE_N * TILE_K; idx += THREADS) {
            let nl = idx / TILE_K;
            let kl = idx % TILE_K;
            let n = col0 + nl;
            let kk = k0 + kl;
            var v = 0.0;
            if (n < p.n && kk < p.k) {
                let e = n * p.k + kk;
                if (WEIGHT_TYPE == WT_F16) {
                    let pair = unpack2x16float(w[e / 2u]);
                    v = select(pair.x, pair.y, (e & 1u) == 1u);
                } else {
                    v = bitcast<f32>(w[e]);
                }
            }
            ws[nl * STRIDE + kl] = v;
        }
    }
}

fn epilogue(v: f32) -> f32 {
    if (EPILOGUE == EPI_GELU_ERF) {
        return gelu_erf(v);
    } else if (EPILOGUE == EPI_GELU_TANH) {
        return gelu_tanh(v);
    }
    return v;
}

// Writes one thread's row r (4 columns, WG_X apart) with bias and epilogue.
fn store_row(r: u32, c0: u32, acc: vec4<f32>) {
    if (r >= p.m) {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        let c = c0 + j * WG_X;
        if (c < p.n) {
            y[r * p.n + c] = epilogue(acc[j] + bias[c]);
        }
    }
}

// The register block is four rows (WG_Y apart) by four columns (WG_X apart, the lanes of a
// vec4), held in four named vec4 accumulators: dynamically indexed per-thread arrays end
// up in memory on some implementations (CPU ones in particular).
const_assert TILE_M == 4u * WG_Y;
const_assert TILE_N == 4u * WG_X;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let col0 = wg.x * TILE_N;
    let row0 = wg.y * TILE_M;
    let tid = lid.y * WG_X + lid.x;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);

    for (var k0 = 0u; k0 < p.k; k0 += TILE_K) {
        for (var idx = tid; idx < TILE_M * TILE_K; idx += THREADS) {
            let ml = idx / TILE_K;
            let kl = idx % TILE_K;
            let r = row0 + ml;
            let kk = k0 + kl;
            var v = 0.0;
            if (r < p.m && kk < p.k) {
                v = x[r * p.k + kk];
            }
            xs[ml * STRIDE + kl] = v;
        }
        load_w_tile(col0, k0, tid);
        workgroupBarrier();

        let wb = lid.x * STRIDE;
        let xb = lid.y * STRIDE;
        for (var kl = 0u; kl < TILE_K; kl++) {
            let b = vec4<f32>(
                ws[wb + kl],
                ws[wb + WG_X * STRIDE + kl],
                ws[wb + 2u * WG_X * STRIDE + kl],
                ws[wb + 3u * WG_X * STRIDE + kl],
            );
            acc0 = fma(vec4<f32>(xs[xb + kl]), b, acc0);
            acc1 = fma(vec4<f32>(xs[xb + WG_Y * STRIDE + kl]), b, acc1);
            acc2 = fma(vec4<f32>(xs[xb + 2u * WG_Y * STRIDE + kl]), b, acc2);
            acc3 = fma(vec4<f32>(xs[xb + 3u * WG_Y * STRIDE + kl]), b, acc3);
        }
        workgroupBarrier();
    }

    let r = row0 + lid.y;
    let c = col0 + lid.x;
    store_row(r, c, acc0);
    store_row(r + WG_Y, c, acc1);
    store_row(r + 2u * WG_Y, c, acc2);
    store_row(r + 3u * WG_Y, c, acc3);
}
