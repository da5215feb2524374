//! Multi-head self-attention in f32, one sequence at a time: `softmax(q·kᵀ/√d)·v` per
//! head over every token of the sequence (no mask: sequences are never padded, each runs
//! on its own rows).

use std::ops::Range;

use super::fmatmul::matmul_with;
use super::isa::Isa;
use super::math::softmax_rows_with;
use crate::cpu::par;

/// Attention for sequences stored back to back: `q`, `k`, `v` and `ctx` are `T × hidden`
/// row-major with `hidden = heads·head_dim`, head `h` owning columns `h·head_dim..`;
/// `seqs` are the row ranges of the sequences. `ctx` is overwritten with the
/// re-concatenated heads. (Sequence, head) pairs run in parallel with `parallel`.
///
/// Panics if the lengths disagree or a range is out of bounds.
#[allow(clippy::too_many_arguments)]
pub fn attention_with(
    isa: Isa,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    seqs: &[Range<usize>],
    heads: usize,
    head_dim: usize,
    ctx: &mut [f32],
) {
    let hidden = heads * head_dim;
    assert!(hidden > 0, "attention: no heads");
    assert!(
        q.len() == ctx.len()
            && k.len() == ctx.len()
            && v.len() == ctx.len()
            && ctx.len().is_multiple_of(hidden)
    );
    let rows = ctx.len() / hidden;
    assert!(
        seqs.iter().all(|r| r.start <= r.end && r.end <= rows),
        "attention: sequence range out of bounds"
    );
    let parts = par::map(seqs.len() * heads, |i| {
        let (s, h) = (i / heads, i % heads);
        head(isa, q, k, v, seqs[s].clone(), h, heads, head_dim)
    });
    for (i, part) in parts.iter().enumerate() {
        let (s, h) = (i / heads, i % heads);
        for (t, row) in seqs[s].clone().zip(part.chunks_exact(head_dim)) {
            ctx[t * hidden + h * head_dim..t * hidden + (h + 1) * head_dim].copy_from_slice(row);
        }
    }
}

/// [`attention_with`] on the best instruction set.
pub fn attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    seqs: &[Range<usize>],
    heads: usize,
    head_dim: usize,
    ctx: &mut [f32],
) {
    attention_with(Isa::best(), q, k, v, seqs, heads, head_dim, ctx)
}

/// One head of one sequence; returns its `len × head_dim` context.
#[allow(clippy::too_many_arguments)]
fn head(
    isa: Isa,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    rows: Range<usize>,
    h: usize,
    heads: usize,
    d: usize,
) -> Vec<f32> {
    let hidden = heads * d;
    let len = rows.len();
    // Scaling q instead of the scores is one multiply per value instead of per score.
    let scale = 1.0 / (d as f32).sqrt();
    let mut qh = vec![0f32; len * d];
    let mut kt = vec![0f32; d * len];
    let mut vh = vec![0f32; len * d];
    for (t, row) in rows.enumerate() {
        let c = row * hidden + h * d;
        for j in 0..d {
            qh[t * d + j] = q[c + j] * scale;
            kt[j * len + t] = k[c + j];
            vh[t * d + j] = v[c + j];
        }
    }
    let mut scores = vec![0f32; len * len];
    matmul_with(isa, &qh, &kt, &mut scores, len, d, len);
    softmax_rows_with(isa, &mut scores, len.max(1));
    let mut out = vec![0f32; len * d];
    matmul_with(isa, &scores, &vh, &mut out, len, len, d);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Textbook attention in f64.
    fn naive(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        seqs: &[Range<usize>],
        heads: usize,
        d: usize,
    ) -> Vec<f64> {
        let hidden = heads * d;
        let mut out = vec![0f64; q.len()];
        for r in seqs {
            for h in 0..heads {
                for i in r.clone() {
                    let s: Vec<f64> = r
                        .clone()
                        .map(|j| {
                            (0..d)
                                .map(|c| {
                                    q[i * hidden + h * d + c] as f64
                                        * k[j * hidden + h * d + c] as f64
                                })
                                .sum::<f64>()
                                / (d as f64).sqrt()
                        })
                        .collect();
                    let m = s.iter().cloned().fold(f64::MIN, f64::max);
                    let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
                    for c in 0..d {
                        out[i * hidden + h * d + c] = r
                            .clone()
                            .zip(&s)
                            .map(|(j, x)| (x - m).exp() / z * v[j * hidden + h * d + c] as f64)
                            .sum();
                    }
                }
            }
        }
        out
    }

    proptest! {
        #[test]
        fn matches_naive_attention_on_every_isa(
            lens in proptest::collection::vec(1usize..20, 1..4),
            heads in 1usize..4,
            d in 1usize..12,
            seed in any::<u32>(),
        ) {
            let hidden = heads * d;
            let total: usize = lens.iter().sum();
            let mut s = seed as u64 + 1;
            let mut rnd = || {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0
            };
            let q: Vec<f32> = (0..total * hidden).map(|_| rnd()).collect();
            let k: Vec<f32> = (0..total * hidden).map(|_| rnd()).collect();
            let v: Vec<f32> = (0..total * hidden).map(|_| rnd()).collect();
            let mut seqs = Vec::new();
            let mut at = 0;
            for l in &lens {
                seqs.push(at..at + l);
                at += l;
            }
            let want = naive(&q, &k, &v, &seqs, heads, d);
            for isa in Isa::available() {
                let mut ctx = vec![f32::NAN; total * hidden];
                attention_with(isa, &q, &k, &v, &seqs, heads, d, &mut ctx);
                for (g, w) in ctx.iter().zip(&want) {
                    prop_assert!((*g as f64 - w).abs() < 1e-5, "{}: {} vs {}", isa, g, w);
                }
            }
        }
    }

    #[test]
    fn a_token_attends_only_within_its_sequence() {
        // Two one-token sequences: each context must equal its own value row exactly.
        let q = vec![1.0, 2.0, 3.0, 4.0];
        let k = vec![0.5, 0.5, -1.0, 2.0];
        let v = vec![7.0, 8.0, 9.0, 10.0];
        let mut ctx = vec![0f32; 4];
        attention(&q, &k, &v, &[0..1, 1..2], 1, 2, &mut ctx);
        assert_eq!(ctx, v);
    }
}
