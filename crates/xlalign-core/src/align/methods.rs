//! Similarity matrix → links. Rows are source units, columns target units (subwords or
//! words, the caller decides).
//!
//! The SimAlign methods (argmax, itermax, match) follow `simalign/simalign.py` (Jalili Sabet
//! et al. 2020) step by step, including numpy's tie rule (the first maximum wins) and the
//! similarity SimAlign feeds them: `(cos + 1) / 2`, which keeps values non-negative so that
//! itermax's masks and the distortion factor scale them the intended way. Softmax and entmax
//! follow awesome-align (Dou & Neubig 2021): dot products, normalised over each row and each
//! column, thresholded.
//!
//! Every function accepts empty matrices (no links) and never panics on finite input; NaN or
//! infinite input is refused by [`extract`] with [`Error::Input`].

use ndarray::{Array2, ArrayView2, Axis};
use pathfinding::prelude::{kuhn_munkres, Matrix};

use super::options::{AlignOptions, Direction, Method};
use crate::error::{Error, Result};

/// One link between source unit `row` and target unit `col`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UnitLink {
    pub row: usize,
    pub col: usize,
    /// Cosine similarity of the two units (before any distortion).
    pub score: f32,
    /// Softmax/entmax: the probability that decided the link. With [`Direction::Both`] it is
    /// the smaller of the two directional probabilities, so `prob > threshold` holds exactly
    /// for the links kept; forward/reverse give that direction's probability, union the larger.
    /// `None` for the SimAlign methods.
    pub prob: Option<f32>,
}

/// Refuses NaN and infinities, naming the first bad cell.
pub fn check_finite(m: ArrayView2<f32>, what: &str) -> Result<()> {
    if let Some(((i, j), v)) = m.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(Error::Input(format!(
            "{what} has a non-finite value {v} at row {i}, column {j}"
        )));
    }
    Ok(())
}

/// SimAlign's similarity: cosine mapped from `[-1, 1]` to `[0, 1]`.
pub fn simalign_similarity(cos: ArrayView2<f32>) -> Array2<f32> {
    cos.mapv(|c| (c + 1.0) / 2.0)
}

/// SimAlign's distortion factor `1 − ratio·(i/(m−1) − j/(n−1))²` for cell (i, j) of an m×n
/// matrix; 1 when either side has fewer than two units (SimAlign skips those).
pub fn distortion_factor(i: usize, j: usize, m: usize, n: usize, ratio: f32) -> f32 {
    if m < 2 || n < 2 || ratio == 0.0 {
        return 1.0;
    }
    let d = j as f32 / (n - 1) as f32 - i as f32 / (m - 1) as f32;
    1.0 - ratio * d * d
}

/// Multiplies `sim` by the distortion factor in place (SimAlign `apply_distortion`).
pub fn apply_distortion(sim: &mut Array2<f32>, ratio: f32) {
    let (m, n) = sim.dim();
    if m < 2 || n < 2 || ratio == 0.0 {
        return;
    }
    for ((i, j), v) in sim.indexed_iter_mut() {
        *v *= distortion_factor(i, j, m, n, ratio);
    }
}

/// Index of the first maximum of each row (numpy `argmax(axis=1)`); `None` when there are no
/// columns.
pub fn row_argmax(sim: ArrayView2<f32>) -> Vec<Option<usize>> {
    sim.axis_iter(Axis(0))
        .map(|row| first_max(row.iter().copied()))
        .collect()
}

/// Index of the first maximum of each column (numpy `argmax(axis=0)`).
pub fn col_argmax(sim: ArrayView2<f32>) -> Vec<Option<usize>> {
    sim.axis_iter(Axis(1))
        .map(|col| first_max(col.iter().copied()))
        .collect()
}

fn first_max(values: impl Iterator<Item = f32>) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (k, v) in values.enumerate() {
        // Strictly greater: the first of equal maxima wins, as in numpy.
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((k, v));
        }
    }
    best.map(|(k, _)| k)
}

/// SimAlign argmax. `Both` = "inter" (a cell that is the first maximum of its row and of its
/// column), `Forward` = "fwd" (row maxima), `Reverse` = "rev" (column maxima), `Union` = either.
/// Links are sorted by (row, col).
pub fn argmax(sim: ArrayView2<f32>, direction: Direction) -> Vec<(usize, usize)> {
    let fwd = row_argmax(sim);
    let rev = col_argmax(sim);
    let mut links = Vec::new();
    for (i, j) in cells(sim.dim()) {
        let f = fwd[i] == Some(j);
        let r = rev[j] == Some(i);
        let keep = match direction {
            Direction::Both => f && r,
            Direction::Forward => f,
            Direction::Reverse => r,
            Direction::Union => f || r,
        };
        if keep {
            links.push((i, j));
        }
    }
    links
}

fn cells((m, n): (usize, usize)) -> impl Iterator<Item = (usize, usize)> {
    (0..m).flat_map(move |i| (0..n).map(move |j| (i, j)))
}

/// SimAlign IterMax (`iter_max`): start from argmax; in each further round, cells whose row
/// and column are both aligned are excluded, cells with one side aligned are scaled by
/// `alpha`, and mutual maxima of the masked matrix are added. Stops after `iterations` rounds
/// in all (the first being argmax), when nothing is added, or when every row or every column
/// is aligned. Matrices with a side of two or fewer units get plain argmax, as upstream.
///
/// `sim` should be non-negative (SimAlign's `(cos + 1) / 2`): the masks multiply it.
pub fn itermax(sim: ArrayView2<f32>, iterations: usize, alpha: f32) -> Vec<(usize, usize)> {
    let (m, n) = sim.dim();
    let mut inter = Array2::<bool>::from_elem((m, n), false);
    for (i, j) in argmax(sim, Direction::Both) {
        inter[[i, j]] = true;
    }
    if m.min(n) > 2 {
        let mut count = 1;
        while count < iterations {
            let row_done: Vec<bool> = inter
                .axis_iter(Axis(0))
                .map(|r| r.iter().any(|&x| x))
                .collect();
            let col_done: Vec<bool> = inter
                .axis_iter(Axis(1))
                .map(|c| c.iter().any(|&x| x))
                .collect();
            if row_done.iter().all(|&d| d) || col_done.iter().all(|&d| d) {
                break;
            }
            // mask = clip(alpha·[row free] + alpha·[col free], 0, 1); cells with both sides
            // aligned are excluded outright (upstream's `mask_zeros`).
            let masked = Array2::from_shape_fn((m, n), |(i, j)| {
                let free = (!row_done[i]) as u8 as f32 + (!col_done[j]) as u8 as f32;
                sim[[i, j]] * (alpha * free).clamp(0.0, 1.0)
            });
            let open = |i: usize, j: usize| !(row_done[i] && col_done[j]);
            let fwd = row_argmax(masked.view());
            let rev = col_argmax(masked.view());
            let mut added = false;
            for (i, j) in cells((m, n)) {
                if open(i, j) && fwd[i] == Some(j) && rev[j] == Some(i) && !inter[[i, j]] {
                    inter[[i, j]] = true;
                    added = true;
                }
            }
            if !added {
                break;
            }
            count += 1;
        }
    }
    cells((m, n)).filter(|&(i, j)| inter[[i, j]]).collect()
}

/// Steps per unit of similarity when weights are made integers for the Hungarian algorithm;
/// finer than f32 noise in cosines of hidden states.
const MATCH_SCALE: f64 = 1e6;
/// Tie-break resolution: among matchings of equal (quantised) weight, the one closest to the
/// diagonal wins, so e.g. an all-equal matrix gives the monotone alignment.
const MATCH_TIE_STEPS: i64 = 1000;

/// SimAlign "mwmf": a maximum-weight matching with as many links as the shorter side (networkx
/// `max_weight_matching(maxcardinality=True)` on the complete bipartite graph), computed with
/// the Hungarian algorithm on integer weights. Non-square matrices are fine; ties go to the
/// matching whose links lie closest to the diagonal.
///
/// `sim` should be non-negative and at most 1 (SimAlign's `(cos + 1) / 2`, optionally
/// distorted); values outside are clamped to `[-1, 2]` to keep the integer weights in range.
pub fn max_weight_match(sim: ArrayView2<f32>) -> Vec<(usize, usize)> {
    let (m, n) = sim.dim();
    if m == 0 || n == 0 {
        return Vec::new();
    }
    // kuhn_munkres wants rows ≤ columns.
    let transposed = m > n;
    let view = if transposed { sim.t() } else { sim.view() };
    let (rows, cols) = view.dim();
    let k = rows as i64;
    // Primary weights dominate: the tie-break terms of a whole matching sum to less than one
    // primary step. Skip the tie-break if the product would not fit in i64 (absurd sizes).
    let tie_steps = if k
        .checked_mul(MATCH_TIE_STEPS)
        .and_then(|t| t.checked_mul(k * 3_000_000))
        .is_some()
    {
        MATCH_TIE_STEPS
    } else {
        0
    };
    let primary_unit = tie_steps * k + 1;
    let pos = |a: usize, len: usize| {
        if len < 2 {
            0.0
        } else {
            a as f64 / (len - 1) as f64
        }
    };
    let weights = Matrix::from_fn(rows, cols, |(r, c)| {
        let v = (view[[r, c]] as f64).clamp(-1.0, 2.0);
        let primary = (v * MATCH_SCALE).round() as i64;
        let off_diagonal = (pos(r, rows) - pos(c, cols)).abs();
        primary * primary_unit - (off_diagonal * tie_steps as f64).round() as i64
    });
    let (_, assignment) = kuhn_munkres(&weights);
    let mut links: Vec<(usize, usize)> = assignment
        .into_iter()
        .enumerate()
        .map(|(r, c)| if transposed { (c, r) } else { (r, c) })
        .collect();
    links.sort_unstable();
    links
}

/// Softmax of each row (the distribution of a source unit over target units).
pub fn softmax_rows(logits: ArrayView2<f32>) -> Array2<f32> {
    let mut out = logits.to_owned();
    for mut row in out.axis_iter_mut(Axis(0)) {
        softmax_in_place(row.iter_mut());
    }
    out
}

/// Softmax of each column (the distribution of a target unit over source units).
pub fn softmax_cols(logits: ArrayView2<f32>) -> Array2<f32> {
    softmax_rows(logits.t()).reversed_axes()
}

fn softmax_in_place<'a>(values: impl Iterator<Item = &'a mut f32>) {
    let mut values: Vec<&mut f32> = values.collect();
    let max = values.iter().map(|v| **v).fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        // Only -inf entries (a fully masked row): nothing can be linked.
        values.iter_mut().for_each(|v| **v = 0.0);
        return;
    }
    // f64 sums: rows can hold hundreds of terms of very different size.
    let mut sum = 0.0f64;
    for v in values.iter_mut() {
        let e = ((**v - max) as f64).exp();
        **v = e as f32;
        sum += e;
    }
    for v in values.iter_mut() {
        **v = (**v as f64 / sum) as f32;
    }
}

/// entmax-1.5 of each row (Peters, Niculae & Martins 2019; the exact sort-based algorithm of
/// the `entmax` package): like softmax but with exact zeros for unlikely entries.
pub fn entmax15_rows(logits: ArrayView2<f32>) -> Array2<f32> {
    let mut out = logits.to_owned();
    for mut row in out.axis_iter_mut(Axis(0)) {
        let p = entmax15(&row.to_vec());
        row.iter_mut().zip(p).for_each(|(o, p)| *o = p);
    }
    out
}

/// entmax-1.5 of each column.
pub fn entmax15_cols(logits: ArrayView2<f32>) -> Array2<f32> {
    entmax15_rows(logits.t()).reversed_axes()
}

/// entmax-1.5 of one vector. `-inf` entries get probability 0.
pub fn entmax15(x: &[f32]) -> Vec<f32> {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return vec![0.0; x.len()];
    }
    // Solve on z = (x − max)/2; then p = max(z − τ, 0)² with τ chosen so Σp = 1.
    let z: Vec<f64> = x.iter().map(|&v| (v - max) as f64 / 2.0).collect();
    let mut sorted: Vec<f64> = z.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_unstable_by(|a, b| b.total_cmp(a));
    let (mut sum, mut sum_sq) = (0.0f64, 0.0f64);
    let mut tau_star = f64::NEG_INFINITY;
    for (k, &v) in sorted.iter().enumerate() {
        let rho = (k + 1) as f64;
        sum += v;
        sum_sq += v * v;
        let mean = sum / rho;
        let ss = rho * (sum_sq / rho - mean * mean);
        let delta = ((1.0 - ss) / rho).max(0.0);
        let tau = mean - delta.sqrt();
        // The support is the largest prefix for which τ stays below its smallest member.
        if tau <= v {
            tau_star = tau;
        }
    }
    z.iter()
        .map(|&v| ((v - tau_star).max(0.0).powi(2)) as f32)
        .collect()
}

/// Links from directional probabilities: `p_fwd` normalised over each row, `p_rev` over each
/// column. A direction votes for a cell when its probability is strictly above `threshold`.
/// Returns (row, col, prob) with prob as documented on [`UnitLink::prob`].
pub fn threshold_links(
    p_fwd: ArrayView2<f32>,
    p_rev: ArrayView2<f32>,
    threshold: f32,
    direction: Direction,
) -> Vec<(usize, usize, f32)> {
    let mut links = Vec::new();
    for ((i, j), &f) in p_fwd.indexed_iter() {
        let r = p_rev[[i, j]];
        let prob = match direction {
            Direction::Both => f.min(r),
            Direction::Forward => f,
            Direction::Reverse => r,
            Direction::Union => f.max(r),
        };
        if prob > threshold {
            links.push((i, j, prob));
        }
    }
    links
}

/// Runs the method chosen in `opts` on one pair of matrices.
///
/// `cos` holds cosine similarities (always needed: the SimAlign methods decide on them and
/// every link reports its cosine). `dot` holds raw dot products, needed by softmax and entmax
/// (awesome-align normalises dot products, so the vectors' norms act as a temperature); it
/// must have the shape of `cos`. Links come sorted by (row, col).
pub fn extract(
    cos: ArrayView2<f32>,
    dot: Option<ArrayView2<f32>>,
    opts: &AlignOptions,
) -> Result<Vec<UnitLink>> {
    opts.validate()?;
    check_finite(cos, "the cosine similarity matrix")?;
    let (m, n) = cos.dim();
    let unit = |(row, col): (usize, usize)| UnitLink {
        row,
        col,
        score: cos[[row, col]],
        prob: None,
    };
    if opts.method.uses_dot_products() {
        let dot = dot.ok_or_else(|| {
            Error::Input(format!(
                "{} needs the dot-product matrix, not only cosine similarities",
                opts.method
            ))
        })?;
        if dot.dim() != cos.dim() {
            return Err(Error::Input(format!(
                "dot-product matrix is {:?} but the cosine matrix is {:?}",
                dot.dim(),
                cos.dim()
            )));
        }
        check_finite(dot, "the dot-product matrix")?;
        let mut logits = dot.mapv(|d| d / opts.temperature);
        if opts.distortion > 0.0 {
            for ((i, j), v) in logits.indexed_iter_mut() {
                *v += distortion_factor(i, j, m, n, opts.distortion).ln();
            }
        }
        let (p_fwd, p_rev) = if opts.method == Method::Entmax {
            (entmax15_rows(logits.view()), entmax15_cols(logits.view()))
        } else {
            (softmax_rows(logits.view()), softmax_cols(logits.view()))
        };
        let links = threshold_links(
            p_fwd.view(),
            p_rev.view(),
            opts.effective_threshold(),
            opts.direction,
        );
        return Ok(links
            .into_iter()
            .map(|(row, col, p)| UnitLink {
                prob: Some(p),
                ..unit((row, col))
            })
            .collect());
    }
    let mut sim = simalign_similarity(cos);
    apply_distortion(&mut sim, opts.distortion);
    let links = match opts.method {
        Method::Argmax => argmax(sim.view(), opts.direction),
        Method::Itermax => itermax(sim.view(), opts.iterations, opts.alpha),
        Method::Match => max_weight_match(sim.view()),
        Method::Softmax | Method::Entmax => unreachable!("handled above"),
    };
    Ok(links.into_iter().map(unit).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    fn pairs(links: &[UnitLink]) -> Vec<(usize, usize)> {
        links.iter().map(|l| (l.row, l.col)).collect()
    }

    fn opts(method: Method) -> AlignOptions {
        AlignOptions::new(method)
    }

    #[test]
    fn argmax_directions() {
        // Row 0 → col 0, row 1 → col 0, row 2 → col 2; col 0 → row 0, col 1 → row 1, col 2 → row 2.
        let s = array![[0.9, 0.1, 0.0], [0.8, 0.7, 0.1], [0.0, 0.2, 0.6]];
        assert_eq!(argmax(s.view(), Direction::Both), vec![(0, 0), (2, 2)]);
        assert_eq!(
            argmax(s.view(), Direction::Forward),
            vec![(0, 0), (1, 0), (2, 2)]
        );
        assert_eq!(
            argmax(s.view(), Direction::Reverse),
            vec![(0, 0), (1, 1), (2, 2)]
        );
        assert_eq!(
            argmax(s.view(), Direction::Union),
            vec![(0, 0), (1, 0), (1, 1), (2, 2)]
        );
    }

    #[test]
    fn argmax_ties_take_the_first_maximum() {
        let s = Array2::from_elem((3, 4), 0.5f32);
        // Every row picks column 0, every column picks row 0: only (0, 0) is mutual.
        assert_eq!(argmax(s.view(), Direction::Both), vec![(0, 0)]);
        assert_eq!(
            argmax(s.view(), Direction::Forward),
            vec![(0, 0), (1, 0), (2, 0)]
        );
        assert_eq!(
            argmax(s.view(), Direction::Reverse),
            vec![(0, 0), (0, 1), (0, 2), (0, 3)]
        );
    }

    #[test]
    fn empty_matrices_give_no_links() {
        for shape in [(0, 0), (0, 3), (3, 0)] {
            let cos = Array2::<f32>::zeros(shape);
            for method in Method::ALL {
                let links = extract(cos.view(), Some(cos.view()), &opts(method)).unwrap();
                assert!(links.is_empty(), "{method} on {shape:?}");
            }
            assert!(row_argmax(cos.view()).iter().all(Option::is_none));
        }
    }

    #[test]
    fn single_cell() {
        let cos = array![[-0.3f32]];
        for method in Method::ALL {
            let links = extract(cos.view(), Some(cos.view()), &opts(method)).unwrap();
            assert_eq!(pairs(&links), vec![(0, 0)], "{method}");
            assert_eq!(links[0].score, -0.3);
        }
    }

    #[test]
    fn nan_is_refused() {
        let cos = array![[0.5f32, f32::NAN]];
        let e = extract(cos.view(), None, &opts(Method::Argmax)).unwrap_err();
        assert!(matches!(e, Error::Input(_)));
        assert!(e.to_string().contains("row 0, column 1"), "{e}");
        let good = array![[0.5f32, 0.1]];
        let bad_dot = array![[f32::INFINITY, 0.0]];
        assert!(extract(good.view(), Some(bad_dot.view()), &opts(Method::Softmax)).is_err());
    }

    #[test]
    fn softmax_needs_matching_dot_products() {
        let cos = array![[0.5f32, 0.1]];
        let e = extract(cos.view(), None, &opts(Method::Softmax)).unwrap_err();
        assert!(e.to_string().contains("dot-product"), "{e}");
        let wrong = array![[0.5f32], [0.1]];
        assert!(extract(cos.view(), Some(wrong.view()), &opts(Method::Entmax)).is_err());
    }

    #[test]
    fn itermax_adds_a_second_round_for_unaligned_rows() {
        // Round 1: (0,0), (2,2), (3,3) are mutual; row 1 prefers col 0, which prefers row 0.
        // Round 2: row 1 and col 1 are free. Masked, row 1 sees col 0 at 0.8·0.9 = 0.72 and
        // col 1 at 0.75 (unscaled, both sides free), and col 1's best is row 1: (1,1) is added.
        let cos = array![
            [0.9, 0.2, 0.1, 0.0],
            [0.6, 0.5, 0.1, 0.0],
            [0.1, 0.1, 0.9, 0.2],
            [0.0, 0.1, 0.2, 0.9],
        ];
        let sim = simalign_similarity(cos.view());
        assert_eq!(itermax(sim.view(), 1, 0.9), vec![(0, 0), (2, 2), (3, 3)]);
        assert_eq!(
            itermax(sim.view(), 2, 0.9),
            vec![(0, 0), (1, 1), (2, 2), (3, 3)]
        );
        let links = extract(cos.view(), None, &opts(Method::Itermax)).unwrap();
        assert_eq!(pairs(&links), vec![(0, 0), (1, 1), (2, 2), (3, 3)]);
        assert_eq!(links[1].score, 0.5);
    }

    #[test]
    fn itermax_alpha_lets_an_aligned_column_take_a_second_row() {
        // Row 1's only good partner is col 0, already aligned to row 0. With col 1 free but
        // poor (0.1 → sim 0.55) and col 0 scaled by alpha (0.95·0.9 = 0.855), the masked
        // maximum of row 1 is col 0; col 0's masked maximum is row 1 (row 0 is excluded as
        // both its sides are aligned), so (1, 0) is added.
        let cos = array![[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 0.0, 1.0]];
        let sim = simalign_similarity(cos.view());
        assert_eq!(itermax(sim.view(), 2, 0.9), vec![(0, 0), (1, 0), (2, 2)]);
        // With alpha 0.5 the aligned column is discounted to 0.475 < 0.55: row 1 takes col 1,
        // and col 1's masked maximum (rows 0 and 2 at 0.5·0.5=0.25 each, row 1 at 0.55) is row 1.
        assert_eq!(itermax(sim.view(), 2, 0.5), vec![(0, 0), (1, 1), (2, 2)]);
    }

    #[test]
    fn itermax_small_and_complete_cases_stay_argmax() {
        // A side of two units: upstream returns argmax unchanged.
        let cos = array![[0.9, 0.1, 0.0], [0.8, 0.2, 0.1]];
        let sim = simalign_similarity(cos.view());
        assert_eq!(
            itermax(sim.view(), 5, 0.9),
            argmax(sim.view(), Direction::Both)
        );
        // Everything aligned after round 1: nothing changes however many rounds.
        let eye = Array2::<f32>::eye(4);
        assert_eq!(
            itermax(eye.view(), 10, 0.9),
            vec![(0, 0), (1, 1), (2, 2), (3, 3)]
        );
    }

    #[test]
    fn itermax_matches_a_literal_port_of_upstream_on_random_matrices() {
        // Independent, literal transcription of simalign's numpy code, used as the oracle.
        fn upstream(sim: &Array2<f32>, max_count: usize, alpha: f32) -> Array2<f32> {
            let (m, n) = sim.dim();
            let onehot_rows = |s: &Array2<f32>| {
                let mut f = Array2::<f32>::zeros((m, n));
                for (i, a) in row_argmax(s.view()).into_iter().enumerate() {
                    f[[i, a.unwrap()]] = 1.0;
                }
                f
            };
            let onehot_cols = |s: &Array2<f32>| {
                let mut b = Array2::<f32>::zeros((m, n));
                for (j, a) in col_argmax(s.view()).into_iter().enumerate() {
                    b[[a.unwrap(), j]] = 1.0;
                }
                b
            };
            let mut inter = onehot_rows(sim) * onehot_cols(sim);
            if m.min(n) <= 2 {
                return inter;
            }
            let mut count = 1;
            while count < max_count {
                let rs = inter.sum_axis(Axis(1));
                let cs = inter.sum_axis(Axis(0));
                let mask_x = Array2::from_shape_fn((m, n), |(i, _)| 1.0 - rs[i].clamp(0.0, 1.0));
                let mask_y = Array2::from_shape_fn((m, n), |(_, j)| 1.0 - cs[j].clamp(0.0, 1.0));
                let mut mask = (&mask_x * alpha + &mask_y * alpha).mapv(|v| v.clamp(0.0, 1.0));
                let mut mask_zeros = (&mask_x * -1.0 + 1.0) * (&mask_y * -1.0 + 1.0) * -1.0 + 1.0;
                if mask_x.sum() < 1.0 || mask_y.sum() < 1.0 {
                    mask *= 0.0;
                    mask_zeros *= 0.0;
                }
                let new_sim = sim * &mask;
                let fwd = onehot_rows(&new_sim) * &mask_zeros;
                let bac = onehot_cols(&new_sim) * &mask_zeros;
                let new_inter = fwd * bac;
                if new_inter.sum() == 0.0 {
                    break;
                }
                inter = inter + new_inter;
                count += 1;
            }
            inter
        }
        // Small deterministic generator (no dependency needed for a handful of matrices).
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        for case in 0..200 {
            let (m, n) = (1 + case % 7, 1 + (case / 7) % 9);
            // Coarse values make ties common, which is where ports usually diverge.
            let sim = Array2::from_shape_fn((m, n), |_| (next() * 5.0).floor() / 5.0);
            for iters in [1, 2, 3, 5] {
                let expected: Vec<(usize, usize)> = upstream(&sim, iters, 0.9)
                    .indexed_iter()
                    .filter(|(_, &v)| v > 0.0)
                    .map(|(ij, _)| ij)
                    .collect();
                assert_eq!(
                    itermax(sim.view(), iters, 0.9),
                    expected,
                    "case {case}, iterations {iters}\n{sim}"
                );
            }
        }
    }

    #[test]
    fn match_is_one_to_one_and_maximal() {
        // Greedy would take (0,0)=0.9 then (1,1)=0.1; the optimum is (0,1)+(1,0) = 1.6.
        let sim = array![[0.9, 0.8], [0.8, 0.1]];
        assert_eq!(max_weight_match(sim.view()), vec![(0, 1), (1, 0)]);
    }

    #[test]
    fn match_non_square_both_ways() {
        let wide = array![[0.1, 0.9, 0.2, 0.3], [0.8, 0.7, 0.1, 0.0]];
        assert_eq!(max_weight_match(wide.view()), vec![(0, 1), (1, 0)]);
        let tall = wide.t().to_owned();
        assert_eq!(max_weight_match(tall.view()), vec![(0, 1), (1, 0)]);
    }

    #[test]
    fn match_ties_go_to_the_diagonal() {
        let flat = Array2::from_elem((3, 3), 0.7f32);
        assert_eq!(max_weight_match(flat.view()), vec![(0, 0), (1, 1), (2, 2)]);
        // 2×4 all equal: row 0 → col 0, row 1 → col 3 (positions 0 and 1 on both sides).
        let wide = Array2::from_elem((2, 4), 0.5f32);
        assert_eq!(max_weight_match(wide.view()), vec![(0, 0), (1, 3)]);
        // A real weight difference still beats the diagonal preference.
        let mut s = Array2::from_elem((3, 3), 0.5f32);
        s[[0, 2]] = 0.51;
        s[[2, 0]] = 0.51;
        assert_eq!(max_weight_match(s.view()), vec![(0, 2), (1, 1), (2, 0)]);
    }

    #[test]
    fn match_via_extract_uses_cosines() {
        let cos = array![[0.2, -0.5, 0.9], [0.7, 0.6, -0.1]];
        let links = extract(cos.view(), None, &opts(Method::Match)).unwrap();
        assert_eq!(pairs(&links), vec![(0, 2), (1, 0)]);
        assert_eq!(links[0].score, 0.9);
        assert_eq!(links[0].prob, None);
    }

    #[test]
    fn softmax_probabilities() {
        let logits = array![[0.0f32, 0.0, 2.0f32.ln()], [1.0, 1.0, 1.0]];
        let p = softmax_rows(logits.view());
        // Row 0: weights 1, 1, 2 → 0.25, 0.25, 0.5.
        for (a, b) in p.row(0).iter().zip([0.25, 0.25, 0.5]) {
            assert!((a - b).abs() < 1e-6);
        }
        for (a, b) in p.row(1).iter().zip([1.0 / 3.0; 3]) {
            assert!((a - b).abs() < 1e-6);
        }
        let c = softmax_cols(logits.view());
        assert!((c[[0, 0]] - 1.0 / (1.0 + 1f32.exp())).abs() < 1e-6);
        assert!((c.column(2).sum() - 1.0).abs() < 1e-6);
        // Large logits (norms ≈ 9 give dot products near 90) must not overflow.
        let big = array![[900.0f32, 890.0]];
        let p = softmax_rows(big.view());
        assert!((p[[0, 0]] - 1.0 / (1.0 + (-10f32).exp())).abs() < 1e-6);
    }

    #[test]
    fn softmax_links_threshold_and_probability() {
        // Logits are logs of small integers so the probabilities are simple fractions.
        let dot = array![[2f32.ln(), 0.0, 0.0], [0.0, 0.0, 0.0]];
        let cos = array![[0.8f32, 0.1, 0.1], [0.2, 0.3, 0.4]];
        // p_fwd row 0 = [.5,.25,.25], row 1 = [1/3]*3.
        // p_rev col 0 = [2/3, 1/3], cols 1, 2 = [.5, .5].
        let o = AlignOptions {
            threshold: Some(0.3),
            ..opts(Method::Softmax)
        };
        let links = extract(cos.view(), Some(dot.view()), &o).unwrap();
        // Both: min(p_fwd, p_rev) > 0.3 → (0,0) min .5; (1,0) min 1/3; (1,1) 1/3; (1,2) 1/3.
        assert_eq!(pairs(&links), vec![(0, 0), (1, 0), (1, 1), (1, 2)]);
        assert!((links[0].prob.unwrap() - 0.5).abs() < 1e-6);
        assert_eq!(links[0].score, 0.8);
        let o = AlignOptions {
            threshold: Some(0.4),
            ..o
        };
        assert_eq!(
            pairs(&extract(cos.view(), Some(dot.view()), &o).unwrap()),
            vec![(0, 0)]
        );
        // Forward only at 0.3: row 0 → col 0; row 1 → all three.
        let f = AlignOptions {
            direction: Direction::Forward,
            ..o
        };
        let f = AlignOptions {
            threshold: Some(0.3),
            ..f
        };
        assert_eq!(
            pairs(&extract(cos.view(), Some(dot.view()), &f).unwrap()),
            vec![(0, 0), (1, 0), (1, 1), (1, 2)]
        );
        // Reverse at 0.45: col 0 → row 0 (2/3); cols 1, 2 → both rows (0.5).
        let r = AlignOptions {
            direction: Direction::Reverse,
            threshold: Some(0.45),
            ..o
        };
        let links = extract(cos.view(), Some(dot.view()), &r).unwrap();
        assert_eq!(pairs(&links), vec![(0, 0), (0, 1), (0, 2), (1, 1), (1, 2)]);
        assert!((links[0].prob.unwrap() - 2.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn temperature_flattens() {
        let dot = array![[10.0f32, 0.0], [0.0, 10.0]];
        let cos = dot.mapv(|d| d / 10.0);
        let sharp = extract(cos.view(), Some(dot.view()), &opts(Method::Softmax)).unwrap();
        assert_eq!(pairs(&sharp), vec![(0, 0), (1, 1)]);
        assert!(sharp[0].prob.unwrap() > 0.9999);
        // At temperature 1000 every cell is ≈ 0.5 in both directions: all four pass 0.3.
        let soft = AlignOptions {
            temperature: 1000.0,
            ..opts(Method::Softmax)
        };
        assert_eq!(
            extract(cos.view(), Some(dot.view()), &soft).unwrap().len(),
            4
        );
    }

    #[test]
    fn all_equal_matrices() {
        let cos = Array2::from_elem((3, 3), 0.4f32);
        // Softmax: every probability is 1/3, above 0.3: everything links.
        assert_eq!(
            extract(cos.view(), Some(cos.view()), &opts(Method::Softmax))
                .unwrap()
                .len(),
            9
        );
        // Entmax: uniform too (all in the support), above 0.
        let e = extract(cos.view(), Some(cos.view()), &opts(Method::Entmax)).unwrap();
        assert_eq!(e.len(), 9);
        assert!((e[0].prob.unwrap() - 1.0 / 3.0).abs() < 1e-6);
        // Argmax: only the first cell is mutual; itermax adds (1,1) then stops (max 2 rounds).
        assert_eq!(
            pairs(&extract(cos.view(), None, &opts(Method::Argmax)).unwrap()),
            vec![(0, 0)]
        );
        assert_eq!(
            pairs(&extract(cos.view(), None, &opts(Method::Itermax)).unwrap()),
            vec![(0, 0), (1, 1)]
        );
    }

    #[test]
    fn entmax_known_values() {
        let p = entmax15(&[0.0, 0.0]);
        assert!((p[0] - 0.5).abs() < 1e-6 && (p[1] - 0.5).abs() < 1e-6);
        // A gap of 4 or more in logits (2 in z) leaves only the top entry.
        assert_eq!(entmax15(&[5.0, 0.0, -1.0]), vec![1.0, 0.0, 0.0]);
        let p = entmax15(&[1.0, 0.0, -3.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[0] > p[1] && p[1] > 0.0 && p[2] == 0.0);
        // Two entries whose halved logits differ by d < 1: from (z0−τ)² + (z0−d−τ)² = 1,
        // z0 − τ = (d + √(2 − d²)) / 2.
        let d = 0.5f32;
        let p = entmax15(&[2.0 * d, 0.0]);
        let top = ((d + (2.0 - d * d).sqrt()) / 2.0).powi(2);
        assert!((p[0] - top).abs() < 1e-6, "{p:?} vs {top}");
        // -inf entries are simply outside the support.
        let p = entmax15(&[f32::NEG_INFINITY, 0.0]);
        assert_eq!(p, vec![0.0, 1.0]);
        assert_eq!(entmax15(&[]), Vec::<f32>::new());
    }

    #[test]
    fn entmax_is_sparse_where_softmax_is_not() {
        let dot = array![[6.0f32, 5.0, 0.0], [0.0, 1.0, 6.0]];
        let cos = dot.mapv(|d| d / 6.0);
        // Row 0 keeps cols 0 and 1 (halved logit gap 0.5 < 1), row 1 only col 2; every column
        // keeps one row. Softmax gives every cell some mass, so threshold 0 links all six.
        let e = extract(cos.view(), Some(dot.view()), &opts(Method::Entmax)).unwrap();
        assert_eq!(pairs(&e), vec![(0, 0), (0, 1), (1, 2)]);
        let s0 = AlignOptions {
            threshold: Some(0.0),
            ..opts(Method::Softmax)
        };
        assert_eq!(extract(cos.view(), Some(dot.view()), &s0).unwrap().len(), 6);
        let pe = entmax15_rows(dot.view());
        assert_eq!(pe[[0, 2]], 0.0);
        let ps = softmax_rows(dot.view());
        assert!(ps[[0, 2]] > 0.0);
        let sums = pe.sum_axis(Axis(1));
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5));
        let col_sums = entmax15_cols(dot.view()).sum_axis(Axis(0));
        assert!(col_sums.iter().all(|s| (s - 1.0).abs() < 1e-5));
    }

    #[test]
    fn distortion_factor_values() {
        assert_eq!(distortion_factor(0, 0, 3, 5, 0.5), 1.0);
        assert_eq!(distortion_factor(2, 4, 3, 5, 0.5), 1.0);
        assert!((distortion_factor(0, 4, 3, 5, 0.5) - 0.5).abs() < 1e-6);
        assert!((distortion_factor(1, 0, 3, 5, 1.0) - 0.75).abs() < 1e-6);
        assert_eq!(distortion_factor(0, 3, 1, 5, 0.5), 1.0);
    }

    #[test]
    fn distortion_moves_a_near_tie_to_the_diagonal() {
        // Row 1 slightly prefers the far column 0 (cos .52 vs .50) — distortion flips it.
        let cos = array![[0.9, 0.1, 0.0], [0.52, 0.5, 0.1], [0.0, 0.1, 0.9]];
        let plain = AlignOptions {
            direction: Direction::Forward,
            ..opts(Method::Argmax)
        };
        assert!(pairs(&extract(cos.view(), None, &plain).unwrap()).contains(&(1, 0)));
        let dist = AlignOptions {
            distortion: 0.5,
            ..plain
        };
        let links = extract(cos.view(), None, &dist).unwrap();
        assert_eq!(pairs(&links), vec![(0, 0), (1, 1), (2, 2)]);
        // Reported scores stay the undistorted cosines.
        assert_eq!(links[1].score, 0.5);
        // Softmax: the position prior works on the logits.
        let dot = array![[1.0f32, 1.0], [1.0, 1.0]];
        let sm = AlignOptions {
            threshold: Some(0.55),
            distortion: 1.0,
            ..opts(Method::Softmax)
        };
        assert_eq!(
            pairs(&extract(dot.view(), Some(dot.view()), &sm).unwrap()),
            vec![(0, 0), (1, 1)]
        );
        let em = AlignOptions {
            threshold: Some(0.55),
            ..sm
        };
        let em = AlignOptions {
            method: Method::Entmax,
            ..em
        };
        assert_eq!(
            pairs(&extract(dot.view(), Some(dot.view()), &em).unwrap()),
            vec![(0, 0), (1, 1)]
        );
    }

    #[test]
    fn invalid_options_are_refused_before_work() {
        let cos = array![[1.0f32]];
        let o = AlignOptions {
            direction: Direction::Reverse,
            ..opts(Method::Match)
        };
        assert!(matches!(
            extract(cos.view(), None, &o),
            Err(Error::Input(_))
        ));
    }
}
