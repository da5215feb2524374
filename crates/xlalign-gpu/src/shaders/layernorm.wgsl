// x ← LayerNorm(x + r) row by row, in place (r is skipped when has_residual is 0).
//
// Constants prepended by kernels.rs: WG (threads per row, a power of two).
//
// One workgroup per row. Mean and variance are two separate reductions (the variance of
// the centred values, not E[x²] − E[x]², which loses digits when the mean is large).
// Every thread reads and writes only its own columns, so working in place is safe.

struct Params {
    rows: u32,
    n: u32,
    eps: f32,
    has_residual: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> r: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;

var<workgroup> red: array<f32, WG>;

fn value(i: u32) -> f32 {
    if (p.has_residual != 0u) {
        return x[i] + r[i];
    }
    return x[i];
}

// Sum of `v` over the workgroup; every thread gets the result.
fn workgroup_sum(v: f32, lid: u32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red[lid] += red[lid + s];
        }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wg.x;
    if (row >= p.rows) {
        return;
    }
    let base = row * p.n;
    let inv_n = 1.0 / f32(p.n);

    var s = 0.0;
    for (var i = lid; i < p.n; i += WG) {
        s += value(base + i);
    }
    let mean = workgroup_sum(s, lid) * inv_n;

    var sq = 0.0;
    for (var i = lid; i < p.n; i += WG) {
        let d = value(base + i) - mean;
        sq += d * d;
    }
    let inv_std = inverseSqrt(workgroup_sum(sq, lid) * inv_n + p.eps);

    for (var i = lid; i < p.n; i += WG) {
        x[base + i] = (value(base + i) - mean) * inv_std * gamma[i] + beta[i];
    }
}
