// Word-alignment extraction from a similarity matrix sim [rows, cols] (source tokens ×
// target tokens, computed by the matmul kernel), returning only the links.
//
// Constants prepended by kernels.rs: WG (threads per row/column statistic, a power of two),
// EXTRACT_SIDE (the extraction workgroup is EXTRACT_SIDE × EXTRACT_SIDE cells).
//
// `stats`: one workgroup per row and then per column; writes for each its maximum, the
// index of the first maximum, and Σ exp(s − max) (the softmax denominator).
// `extract`: one thread per cell; a cell is a link when
//   method 0 (mutual argmax): it is the maximum of both its row and its column; its score
//     is the similarity;
//   method 1 (softmax): its probability is above `threshold` in both the row-wise and the
//     column-wise softmax; its score is the smaller of the two probabilities.
// Links are appended through an atomic counter, so their order is arbitrary (the host
// sorts them); at most `capacity` are stored, the counter still counts them all.

struct Params {
    rows: u32,
    cols: u32,
    method: u32,
    capacity: u32,
    threshold: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> sim: array<f32>;
// 4 floats per row, then per column: max, first argmax (u32 bits), softmax denominator, 0.
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
// 3 words per link: row, column, score bits.
@group(0) @binding(3) var<storage, read_write> links: array<u32>;
@group(0) @binding(4) var<storage, read_write> counter: array<atomic<u32>>;

var<workgroup> red_v: array<f32, WG>;
var<workgroup> red_i: array<u32, WG>;

@compute @workgroup_size(WG)
fn stats(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = wg.x;
    if (g >= p.rows + p.cols) {
        return;
    }
    let is_row = g < p.rows;
    // A row walks along columns (stride 1), a column along rows (stride cols).
    let count = select(p.rows, p.cols, is_row);
    let base = select(g - p.rows, g * p.cols, is_row);
    let stride = select(p.cols, 1u, is_row);

    var best = -3.0e38;
    var best_i = 0xffffffffu;
    for (var t = lid; t < count; t += WG) {
        let v = sim[base + t * stride];
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
            // Ties go to the smaller index, as a sequential argmax would.
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
    for (var t = lid; t < count; t += WG) {
        sum += exp(sim[base + t * stride] - m);
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
fn extract(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    let i = gid.y;
    if (i >= p.rows || j >= p.cols) {
        return;
    }
    let s = sim[i * p.cols + j];
    let r = (i) * 4u;
    let c = (p.rows + j) * 4u;
    var linked = false;
    var score = 0.0;
    if (p.method == 0u) {
        linked = bitcast<u32>(stats[r + 1u]) == j && bitcast<u32>(stats[c + 1u]) == i;
        score = s;
    } else {
        let fwd = exp(s - stats[r]) / stats[r + 2u];
        let bwd = exp(s - stats[c]) / stats[c + 2u];
        score = min(fwd, bwd);
        linked = score > p.threshold;
    }
    if (linked) {
        let slot = atomicAdd(&counter[0], 1u);
        if (slot < p.capacity) {
            links[slot * 3u] = i;
            links[slot * 3u + 1u] = j;
            links[slot * 3u + 2u] = bitcast<u32>(score);
        }
    }
}
