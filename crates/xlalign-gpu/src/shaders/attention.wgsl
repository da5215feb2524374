// Multi-head self-attention over a padded batch: ctx = softmax(q·kᵀ/√d + mask)·v per head.
//
// Constants prepended by kernels.rs: HEAD_DIM, Q_TILE (threads = queries per workgroup),
// KV_TILE (keys staged per step).
//
// Layout: qkv is [batch · seq_len, 3 · hidden] (q, k, v side by side, head h in columns
// h·HEAD_DIM … of each third); ctx is [batch · seq_len, hidden]. Sequence b has lens[b]
// real tokens; keys at or beyond it are padding and are never read, which is the attention
// mask. Padding queries are computed like real ones (over the real keys) so that every row
// of ctx stays finite.
//
// One workgroup per (query tile, head, sequence); each thread owns one query. Keys and
// values go through workgroup memory KV_TILE at a time, and the softmax is the streaming
// form: a running maximum m and sum l, with the accumulator rescaled when m grows, so the
// result equals the max-subtracted softmax without storing a score row.

struct Params {
    batch: u32,
    seq_len: u32,
    heads: u32,
    hidden: u32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> lens: array<u32>;
@group(0) @binding(3) var<storage, read_write> ctx: array<f32>;

var<workgroup> ks: array<f32, KV_TILE * HEAD_DIM>;
var<workgroup> vs: array<f32, KV_TILE * HEAD_DIM>;

@compute @workgroup_size(Q_TILE)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let h = wg.y;
    let b = wg.z;
    let i = wg.x * Q_TILE + lid;
    let row_stride = 3u * p.hidden;
    let len = min(lens[b], p.seq_len);
    let q_valid = i < p.seq_len;

    var q: array<f32, HEAD_DIM>;
    var acc: array<f32, HEAD_DIM>;
    let q_base = (b * p.seq_len + i) * row_stride + h * HEAD_DIM;
    for (var d = 0u; d < HEAD_DIM; d++) {
        q[d] = select(0.0, qkv[q_base + d] * p.scale, q_valid);
        acc[d] = 0.0;
    }
    var m = -3.0e38;
    var l = 0.0;

    for (var k0 = 0u; k0 < len; k0 += KV_TILE) {
        let n_keys = min(KV_TILE, len - k0);
        for (var idx = lid; idx < n_keys * HEAD_DIM; idx += Q_TILE) {
            let j = idx / HEAD_DIM;
            let d = idx % HEAD_DIM;
            let base = (b * p.seq_len + k0 + j) * row_stride + h * HEAD_DIM + d;
            ks[idx] = qkv[base + p.hidden];
            vs[idx] = qkv[base + 2u * p.hidden];
        }
        workgroupBarrier();

        var s: array<f32, KV_TILE>;
        var tile_max = -3.0e38;
        for (var j = 0u; j < n_keys; j++) {
            var dot = 0.0;
            for (var d = 0u; d < HEAD_DIM; d++) {
                dot = fma(q[d], ks[j * HEAD_DIM + d], dot);
            }
            s[j] = dot;
            tile_max = max(tile_max, dot);
        }
        let m_new = max(m, tile_max);
        let correction = exp(m - m_new);
        l *= correction;
        for (var d = 0u; d < HEAD_DIM; d++) {
            acc[d] *= correction;
        }
        for (var j = 0u; j < n_keys; j++) {
            let e = exp(s[j] - m_new);
            l += e;
            for (var d = 0u; d < HEAD_DIM; d++) {
                acc[d] = fma(e, vs[j * HEAD_DIM + d], acc[d]);
            }
        }
        m = m_new;
        workgroupBarrier();
    }

    if (q_valid) {
        let out_base = (b * p.seq_len + i) * p.hidden + h * HEAD_DIM;
        let inv_l = select(0.0, 1.0 / l, l > 0.0);
        for (var d = 0u; d < HEAD_DIM; d++) {
            ctx[out_base + d] = acc[d] * inv_l;
        }
    }
}
