// Sentence vectors: mean over each sequence's real tokens (or its first token), then L2
// normalisation with the squared norm clamped to 1e-12, as the reference does.
//
// Constants prepended by kernels.rs: WG (a power of two).
//
// One workgroup per sequence; thread t owns columns t, t + WG, …

struct Params {
    batch: u32,
    seq_len: u32,
    hidden: u32,
    // 0: mean over lens[b] tokens, 1: first token.
    mode: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> lens: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let b = wg.x;
    if (b >= p.batch) {
        return;
    }
    var n = max(min(lens[b], p.seq_len), 1u);
    if (p.mode == 1u) {
        n = 1u;
    }
    var sq = 0.0;
    for (var c = lid; c < p.hidden; c += WG) {
        var s = 0.0;
        for (var t = 0u; t < n; t++) {
            s += x[(b * p.seq_len + t) * p.hidden + c];
        }
        let v = s / f32(n);
        out[b * p.hidden + c] = v;
        sq += v * v;
    }
    red[lid] = sq;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red[lid] += red[lid + s];
        }
        workgroupBarrier();
    }
    let inv_norm = 1.0 / sqrt(max(red[0], 1e-12));
    for (var c = lid; c < p.hidden; c += WG) {
        out[b * p.hidden + c] *= inv_norm;
    }
}
