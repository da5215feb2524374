// Embedding gather: x[t] = token_embd[id_t] + position_embd[pos_t] + token_types[0].
// The LayerNorm that follows is the layernorm kernel.
//
// Constants prepended by kernels.rs: WG, TABLE_TYPE and the WT_* enumeration.
//
// The word table may be split into several buffers by rows when it exceeds the device's
// storage-binding limit; the kernel runs once per part and fills only the tokens whose id
// lies in [row_start, row_end).

struct Params {
    tokens: u32,
    hidden: u32,
    seq_len: u32,
    pos_offset: u32,
    row_start: u32,
    row_end: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
// One part of token_embd, laid out as in matmul.wgsl (quants / f16 pairs / f32 bits).
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> w_scale: array<f32>;
@group(0) @binding(4) var<storage, read> pos: array<f32>;
@group(0) @binding(5) var<storage, read> ttype: array<f32>;
@group(0) @binding(6) var<storage, read_write> x: array<f32>;

// Element `e` (row · hidden + column, relative to this part) of the table.
fn table_value(e: u32) -> f32 {
    if (TABLE_TYPE == WT_Q4_0) {
        let block = e / 32u;
        let j = e % 32u;
        // qs[j] holds weight j in its low nibble and weight j + 16 in its high nibble.
        let q = j % 16u;
        let byte = (w[block * 4u + q / 4u] >> (8u * (q % 4u))) & 0xffu;
        let nib = select(byte >> 4u, byte & 0xfu, j < 16u);
        return w_scale[block] * (f32(nib) - 8.0);
    }
    if (TABLE_TYPE == WT_Q8_0) {
        let block = e / 32u;
        let j = e % 32u;
        let q = extractBits(bitcast<i32>(w[block * 8u + j / 4u]), 8u * (j % 4u), 8u);
        return w_scale[block] * f32(q);
    }
    if (TABLE_TYPE == WT_F16) {
        let pair = unpack2x16float(w[e / 2u]);
        return select(pair.x, pair.y, (e & 1u) == 1u);
    }
    return bitcast<f32>(w[e]);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = wg.x;
    if (t >= p.tokens) {
        return;
    }
    let id = ids[t];
    if (id < p.row_start || id >= p.row_end) {
        return;
    }
    let row = id - p.row_start;
    let position = t % p.seq_len + p.pos_offset;
    for (var i = lid; i < p.hidden; i += WG) {
        x[t * p.hidden + i] = table_value(row * p.hidden + i) + pos[position * p.hidden + i] + ttype[i];
    }
}
