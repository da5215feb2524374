// Word-alignment extraction from the dot products of source and target token vectors
// (sims [rows, cols], computed by the matmul kernel), returning only the links. Mirrors
// `xlalign_core::align::methods::extract` for the argmax, softmax and itermax methods.
//
// Constants prepended by kernels.rs: WG (threads per row/column statistic, a power of two),
// EXTRACT_SIDE (the extraction workgroup is EXTRACT_SIDE × EXTRACT_SIDE cells), ROWS_WG
// (threads per workgroup of the per-row itermax link step), COUNTER_WORDS (words of a pair's
// counter block).
//
// The value each method decides on, per cell:
//   argmax (method 0): SimAlign's similarity (cos + 1) / 2, times the distortion factor;
//   softmax (method 1): the logit dot / temperature, plus the log of the distortion factor;
//   itermax (method 2): argmax's value, in rounds after the first times SimAlign's mask
//     clamp(alpha · (free sides), 0, 1) (see below).
// `row_col_stats`: one workgroup per row and then per column; writes its maximum, the index of the
// first maximum, and Σ exp(v − max) (the softmax denominator).
// `extract_links`: one thread per cell; the direction (0 both, 1 forward = rows, 2 reverse =
// columns, 3 union) decides which of the row and column tests must hold: for argmax, being
// the first maximum; for softmax, a probability above the threshold (the probability kept
// is the smaller of the two for both, the larger for union). Each link carries its cosine
// and, for softmax, its probability. Links are appended through an atomic counter, so their
// order is arbitrary (the host sorts them); at most `capacity` are stored.
//
// Itermax runs as rounds recorded back to back in one submission, with no read back between
// them: round 0 is `row_col_stats` then `itermax_links` (mutual first maxima, i.e. argmax
// "both"); every later round is `itermax_gate`, `row_col_stats`, `itermax_links`. The state
// between rounds lives on the GPU: each row's and column's statistics slot 3 holds the round
// in which it got its first link, plus one (0 = still free), and the counter buffer holds the
// control words below. The gate turns a round into a no-op (every kernel of the round returns
// at once) when the CPU's loop would have stopped: the previous round added nothing, every row
// or every column is aligned, or `iterations` rounds have run. A round adds only cells that are
// the first maximum of their masked row and of their masked column and whose row or column was
// free when the round began; such a cell is never already a link (a link's row and column are
// both taken), so no per-cell state is needed.

struct Params {
    rows: u32,
    cols: u32,
    method: u32,
    direction: u32,
    threshold: f32,
    inv_temperature: f32,
    distortion: f32,
    capacity: u32,
    // Itermax: total rounds (the first being argmax) and the discount of half-free cells.
    iterations: u32,
    alpha: f32,
    _pad0: u32,
    _pad1: u32,
}

// Counter words: the link count, then itermax's control words.
const LINK_COUNT: u32 = 0u;
// The current round (0 = the argmax round).
const ROUND: u32 = 1u;
// Non-zero once a round found that the loop is over; it stays set.
const STOPPED: u32 = 2u;
// Links added in the current round.
const ADDED: u32 = 3u;
// Rows, then columns, that have a link.
const ROWS_DONE: u32 = 4u;
const COLS_DONE: u32 = 5u;
// The host sizes each pair's counter block to COUNTER_WORDS words.
const_assert COLS_DONE < COUNTER_WORDS;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> sims: array<f32>;
// L2 norms: the rows' first, then the columns'.
@group(0) @binding(2) var<storage, read> norms: array<f32>;
// 4 floats per row, then per column: max, first argmax (u32 bits), softmax denominator, and
// for itermax the round of the first link + 1 (0 while free; 0 for the other methods).
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
// 4 words per link: row, column, cosine bits, probability bits.
@group(0) @binding(4) var<storage, read_write> links: array<u32>;
@group(0) @binding(5) var<storage, read_write> counter: array<atomic<u32>>;

var<workgroup> red_v: array<f32, WG>;
var<workgroup> red_i: array<u32, WG>;
var<workgroup> round_state: vec2<u32>;

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
    if (p.method != 1u) {
        return (cosine(i, j) + 1.0) * 0.5 * distortion(i, j);
    }
    var v = sims[i * p.cols + j] * p.inv_temperature;
    if (p.distortion != 0.0) {
        v += log(distortion(i, j));
    }
    return v;
}

// Itermax: whether a row (`stat` < rows) or column (`stat` = rows + column) had a link
// before round `round` began.
fn done_before(stat: u32, round: u32) -> bool {
    let r = stats[stat * 4u + 3u];
    return r > 0.0 && r <= f32(round);
}

// The value `row_col_stats` ranks for cell (i, j) in itermax round `round` (> 0):
// SimAlign's sim · clamp(alpha·[row free] + alpha·[column free], 0, 1), computed with the
// CPU's operations in the CPU's order.
fn masked_value(i: u32, j: u32, round: u32) -> f32 {
    let free = f32(u32(!done_before(i, round)) + u32(!done_before(p.rows + j, round)));
    return decision_value(i, j) * clamp(p.alpha * free, 0.0, 1.0);
}

// Cell t of row or column statistic g.
fn cell_of(g: u32, t: u32, is_row: bool) -> vec2<u32> {
    if (is_row) {
        return vec2<u32>(g, t);
    }
    return vec2<u32>(t, g - p.rows);
}

// The current itermax round and whether it is a no-op (the same for every thread of a
// dispatch: only the gate, a dispatch of its own, writes them).
fn itermax_round() -> vec2<u32> {
    return vec2<u32>(atomicLoad(&counter[ROUND]), atomicLoad(&counter[STOPPED]));
}

@compute @workgroup_size(WG)
fn row_col_stats(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let g = wg.x;
    if (g >= p.rows + p.cols) {
        return;
    }
    var round = 0u;
    if (p.method == 2u) {
        // Read through workgroup memory so that the exit is uniform for the barriers below.
        if (lid == 0u) {
            round_state = itermax_round();
        }
        let state = workgroupUniformLoad(&round_state);
        if (state.y != 0u) {
            return;
        }
        round = state.x;
    }
    let is_row = g < p.rows;
    let count = select(p.rows, p.cols, is_row);

    var best = -3.0e38;
    var best_i = 0xffffffffu;
    for (var t = lid; t < count; t += WG) {
        let c = cell_of(g, t, is_row);
        var v: f32;
        if (round == 0u) {
            v = decision_value(c.x, c.y);
        } else {
            v = masked_value(c.x, c.y, round);
        }
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
            let c = cell_of(g, t, is_row);
            sum += exp(decision_value(c.x, c.y) - m);
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
        // Later itermax rounds keep the round marks; the first one starts them.
        if (round == 0u) {
            stats[g * 4u + 3u] = 0.0;
        }
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
        let slot = atomicAdd(&counter[LINK_COUNT], 1u);
        if (slot < p.capacity) {
            links[slot * 4u] = i;
            links[slot * 4u + 1u] = j;
            links[slot * 4u + 2u] = bitcast<u32>(cosine(i, j));
            links[slot * 4u + 3u] = bitcast<u32>(prob);
        }
    }
}

// Decides whether the itermax round about to run does anything (one thread, before the
// round's other dispatches). It mirrors the CPU loop's exits, in its order: the previous
// round added nothing, every row or every column is aligned, or all rounds have run.
@compute @workgroup_size(1)
fn itermax_gate() {
    let round = atomicLoad(&counter[ROUND]) + 1u;
    atomicStore(&counter[ROUND], round);
    let stop = atomicLoad(&counter[STOPPED]) != 0u
        || atomicLoad(&counter[ADDED]) == 0u
        || atomicLoad(&counter[ROWS_DONE]) >= p.rows
        || atomicLoad(&counter[COLS_DONE]) >= p.cols
        || round >= p.iterations;
    atomicStore(&counter[STOPPED], u32(stop));
    atomicStore(&counter[ADDED], 0u);
}

// One thread per row: the row's first maximum (from `row_col_stats` of this round) is a new
// link when it is also its column's first maximum and, after round 0, the row or the column
// was free when the round began. Only this row's thread can link the row, and only the thread
// of the column's first maximum can link the column, so the round marks need no atomics.
@compute @workgroup_size(ROWS_WG)
fn itermax_links(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= p.rows) {
        return;
    }
    let state = itermax_round();
    let round = state.x;
    if (state.y != 0u) {
        return;
    }
    let j = bitcast<u32>(stats[i * 4u + 1u]);
    if (j >= p.cols || bitcast<u32>(stats[(p.rows + j) * 4u + 1u]) != i) {
        return;
    }
    let row_free = !done_before(i, round);
    let col_free = !done_before(p.rows + j, round);
    if (round > 0u && !row_free && !col_free) {
        return;
    }
    let mark = f32(round + 1u);
    if (row_free) {
        stats[i * 4u + 3u] = mark;
        atomicAdd(&counter[ROWS_DONE], 1u);
    }
    if (col_free) {
        stats[(p.rows + j) * 4u + 3u] = mark;
        atomicAdd(&counter[COLS_DONE], 1u);
    }
    atomicAdd(&counter[ADDED], 1u);
    let slot = atomicAdd(&counter[LINK_COUNT], 1u);
    if (slot < p.capacity) {
        links[slot * 4u] = i;
        links[slot * 4u + 1u] = j;
        links[slot * 4u + 2u] = bitcast<u32>(cosine(i, j));
        links[slot * 4u + 3u] = bitcast<u32>(f32(-1.0));
    }
}
