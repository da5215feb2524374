// Word-alignment extraction from the dot products of source and target token vectors
// (sims [rows, cols], computed by the matmul kernel), returning only the links. Mirrors
// `xlalign_core::align::methods::extract` for the argmax and softmax methods.
//
// Constants prepended by kernels.rs: WG (threads per row/column statistic, a power of two),
// EXTRACT_SIDE (the extraction workgroup is EXTRACT_SIDE × EXTRACT_SIDE cells).
//
// The value each method decides on, per cell:
//   argmax (method 0): SimAlign's similarity (cos + 1) / 2, times the distortion factor;
//   softmax (method 1): the logit dot / temperature, plus the log of the distortion factor.
// `row_col_stats`: one workgroup per row and then per column; writes its maximum, the index of the
// first maximum, and Σ exp(v − max) (the softmax denominator).
// `extract_links`: one thread per cell; the direction (0 both, 1 forward = rows, 2 reverse =
// columns, 3 union) decides which of the row and column tests must hold: for argmax, being
// the first maximum; for softmax, a probability above the threshold (the probability kept
// is the smaller of the two for both, the larger for union). Each link carries its cosine
// and, for softmax, its probability. Links are appended through an atomic counter, so their
// order is arbitrary (the host sorts them); at most `capacity` are stored.

struct Params {
    rows: u32,
    cols: u32,
    method: u32,
    direction: u32,
    threshold: f32,
    inv_temperature: f32,
    distortion: f32,
    capacity: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> sims: array<f32>;
// L2 norms: the rows' first, then the columns'.
@group(0) @binding(2) var<storage, read> norms: array<f32>;
// 4 floats per row, then per column: max, first argmax (u32 bits), softmax denominator, 0.
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
// 4 words per link: row, column, cosine bits, probability bits.
@group(0) @binding(4) var<storage, read_write> links: array<u32>;
@group(0) @binding(5) var<storage, read_write> counter: array<atomic<u32>>;

var<workgroup> red_v: array<f32, WG>;
var<workgroup> red_i: array<u32, WG>;

fn cosine(i: u32, j: u32) -> f32 {
    let n = norms[i] * norms[p.rows + j];
    if (n == 0.0) {
        return 0.0;
    }
    return clamp(sims[i * p.cols + j] / n, -1.0, 1.0);
}

// SimAlign's 1 − ratio·(i/(m−1) − j/(n−1))²; 1 when off or a side has fewer than 2 units.
fn distortion(i: u32, j: u32) -> f32 {
    if (p.distortion == 0.0 || p.rows < 2u || p.cols < 2u) {
        return 1.0;
    }
    let d = f32(j) / f32(p.cols - 1u) - f32(i) / f32(p.rows - 1u);
    return 1.0 - p.distortion * d * d;
}

fn decision_value(i: u32, j: u32) -> f32 {
    if (p.method == 0u) {
        return (cosine(i, j) + 1.0) * 0.5 * distortion(i, j);
    }
    var v = sims[i * p.cols + j] * p.inv_temperature;
    if (p.distortion != 0.0) {
        v += log(distortion(i, j));
    }
    return v;
}

@compute @workgroup_size(WG)
fn row_col_stats(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = wg.x;
    if (g >= p.rows + p.cols) {
        return;
    }
    let is_row = g < p.rows;
    let count = select(p.rows, p.cols, is_row);

    var best = -3.0e38;
    var best_i = 0xffffffffu;
    for (var t = lid; t < count; t += WG) {
        let v = select(decision_value(t, g - p.rows), decision_value(g, t), is_row);
        if (v > best) {
            best = v;
            best_i = t;
        }
    }
    red_v[lid] = best;
    red_i[lid] = best_i;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            let ov = red_v[lid + s];
            let oi = red_i[lid + s];
            // Ties go to the smaller index, as a sequential (numpy) argmax would.
            if (ov > red_v[lid] || (ov == red_v[lid] && oi < red_i[lid])) {
                red_v[lid] = ov;
                red_i[lid] = oi;
            }
        }
        workgroupBarrier();
    }
    let m = red_v[0];
    let arg = red_i[0];
    workgroupBarrier();

    var sum = 0.0;
    if (p.method == 1u) {
        for (var t = lid; t < count; t += WG) {
            let v = select(decision_value(t, g - p.rows), decision_value(g, t), is_row);
            sum += exp(v - m);
        }
    }
    red_v[lid] = sum;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red_v[lid] += red_v[lid + s];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        stats[g * 4u] = m;
        stats[g * 4u + 1u] = bitcast<f32>(arg);
        stats[g * 4u + 2u] = red_v[0];
        stats[g * 4u + 3u] = 0.0;
    }
}

@compute @workgroup_size(EXTRACT_SIDE, EXTRACT_SIDE)
fn extract_links(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    let i = gid.y;
    if (i >= p.rows || j >= p.cols) {
        return;
    }
    let r = i * 4u;
    let c = (p.rows + j) * 4u;
    var fwd = false;
    var rev = false;
    // Argmax links have no probability; the host ignores this field for them.
    var prob = -1.0;
    if (p.method == 0u) {
        fwd = bitcast<u32>(stats[r + 1u]) == j;
        rev = bitcast<u32>(stats[c + 1u]) == i;
    } else {
        let v = decision_value(i, j);
        let pf = exp(v - stats[r]) / stats[r + 2u];
        let pr = exp(v - stats[c]) / stats[c + 2u];
        if (p.direction == 0u) {
            prob = min(pf, pr);
        } else if (p.direction == 1u) {
            prob = pf;
        } else if (p.direction == 2u) {
            prob = pr;
        } else {
            prob = max(pf, pr);
        }
        fwd = prob > p.threshold;
        rev = fwd;
    }
    var keep = fwd && rev;
    if (p.direction == 1u) {
        keep = fwd;
    } else if (p.direction == 2u) {
        keep = rev;
    } else if (p.direction == 3u) {
        keep = fwd || rev;
    }
    if (keep) {
        let slot = atomicAdd(&counter[0], 1u);
        if (slot < p.capacity) {
            links[slot * 4u] = i;
            links[slot * 4u + 1u] = j;
            links[slot * 4u + 2u] = bitcast<u32>(cosine(i, j));
            links[slot * 4u + 3u] = bitcast<u32>(prob);
        }
    }
}
