// Alignment units from hidden states that stay on the GPU: each unit is the mean of some
// token rows (one row for a subword, a word's subwords for word-average alignment), written
// to its own row of `out`, with its L2 norm. Mirrors the pipeline's unit selection on the
// CPU (`ndarray`'s mean: the rows summed in order, then divided by their count).
//
// Constants prepended by kernels.rs: WG (a power of two).
//
// `index` holds, for every unit g of the batch, the range index[g]..index[g + 1] of `index`
// itself where that unit's token rows (rows of `states`) are listed. One workgroup per unit;
// thread t owns columns t, t + WG, …

struct Params {
    units: u32,
    hidden: u32,
    // Index (in `index`) of this dispatch's first unit.
    first: u32,
    // Where this dispatch's norms go in `norms`.
    norm_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> states: array<f32>;
@group(0) @binding(2) var<storage, read> index: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> norms: array<f32>;

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let u = wg.x;
    if (u >= p.units) {
        return;
    }
    let start = index[p.first + u];
    let end = index[p.first + u + 1u];
    let count = f32(max(end - start, 1u));
    var sq = 0.0;
    for (var c = lid; c < p.hidden; c += WG) {
        var s = 0.0;
        for (var t = start; t < end; t++) {
            s += states[index[t] * p.hidden + c];
        }
        let v = s / count;
        out[u * p.hidden + c] = v;
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
    if (lid == 0u) {
        norms[p.norm_offset + u] = sqrt(red[0]);
    }
}
