//! The ratio margin of bitext mining (LASER / CCMatrix: Artetxe & Schwenk 2019, "Margin-based
//! Parallel Corpus Mining with Multilingual Sentence Embeddings").
//!
//! A raw cosine is not comparable across sentences: some sentences are close to everything
//! (short ones, lists of names), some to nothing. The margin divides a pair's cosine by how
//! close each side is to its nearest neighbours on the other side:
//!
//! ```text
//! margin(x, y) = cos(x, y) / ( Σ_{z ∈ NN_k(x)} cos(x, z) / 2k  +  Σ_{z ∈ NN_k(y)} cos(y, z) / 2k )
//! ```
//!
//! where `NN_k(x)` are the k targets most similar to source x and `NN_k(y)` the k sources
//! most similar to target y. Here the candidates are the pairs of one block (the sources and
//! targets of consecutive pairs), the pair's own partner included, as in CCMatrix where the
//! neighbours are searched among all candidates. Neighbours are distinct sentences: a
//! sentence that occurs several times in a block (the same vector) counts once, as in
//! CCMatrix, which mines deduplicated text; otherwise a pair repeated in the block would find
//! its own partner twice among its neighbours. A translation well above its neighbours scores
//! above 1; a pair no closer than the rest of the block about 1 or below.

use std::collections::HashSet;

use ndarray::{ArrayView1, ArrayView2, Axis};

use crate::error::{Error, Result};

/// Margins of the pairs `(src[i], tgt[i])` with neighbours taken among the rows of `src`
/// and `tgt` (L2-normalised sentence vectors, one per row). `k` is capped at the number of
/// pairs.
pub fn margin_scores(src: ArrayView2<f32>, tgt: ArrayView2<f32>, k: usize) -> Result<Vec<f32>> {
    if src.dim() != tgt.dim() {
        return Err(Error::Input(format!(
            "margin: {:?} source vectors against {:?} target vectors",
            src.dim(),
            tgt.dim()
        )));
    }
    let cos = src.dot(&tgt.t());
    margin_among(cos.view(), k, &first_of_each(src), &first_of_each(tgt))
}

/// Whether each row is the first of its value (bit for bit) in the matrix.
fn first_of_each(rows: ArrayView2<f32>) -> Vec<bool> {
    let mut seen = HashSet::new();
    rows.axis_iter(Axis(0))
        .map(|r| seen.insert(r.iter().map(|x| x.to_bits()).collect::<Vec<u32>>()))
        .collect()
}

/// As [`margin_scores`] from the cosine matrix: `cos[i][j]` is the cosine of source i and
/// target j, pair i is `cos[i][i]`. A margin whose neighbourhood mean is not positive (never
/// with contextual sentence vectors, whose cosines sit well above 0) is reported as 0.
pub fn margin_from_cosines(cos: ArrayView2<f32>, k: usize) -> Result<Vec<f32>> {
    let all = vec![true; cos.nrows()];
    margin_among(cos, k, &all, &all)
}

/// The margin with neighbours taken among the sources and targets marked in `src`, `tgt`.
fn margin_among(cos: ArrayView2<f32>, k: usize, src: &[bool], tgt: &[bool]) -> Result<Vec<f32>> {
    let (n, m) = cos.dim();
    if n != m {
        return Err(Error::Input(format!(
            "margin: the cosine matrix must be square, got {n} × {m}"
        )));
    }
    if k == 0 {
        return Err(Error::Input("margin: k must be at least 1".into()));
    }
    if cos.iter().any(|c| !c.is_finite()) {
        return Err(Error::Input("margin: the cosines are not finite".into()));
    }
    let among = |line: ArrayView1<f32>, keep: &[bool]| -> Vec<f32> {
        line.iter()
            .zip(keep)
            .filter(|(_, &k)| k)
            .map(|(&c, _)| c)
            .collect()
    };
    Ok((0..n)
        .map(|i| {
            let fwd = top_k_mean(among(cos.row(i), tgt), k);
            let bwd = top_k_mean(among(cos.column(i), src), k);
            let denom = (fwd + bwd) / 2.0;
            if denom > 0.0 {
                cos[[i, i]] / denom
            } else {
                0.0
            }
        })
        .collect())
}

/// Mean of the `k` largest values (all of them when there are fewer; `v` is not empty).
fn top_k_mean(mut v: Vec<f32>, k: usize) -> f32 {
    let k = k.min(v.len());
    v.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    v[..k].iter().sum::<f32>() / k as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn margin_by_hand() {
        let cos = array![[0.9f32, 0.5, 0.3], [0.6, 0.8, 0.2], [0.4, 0.7, 0.5]];
        let got = margin_from_cosines(cos.view(), 2).unwrap();
        // Pair 0: row 0 top two 0.9, 0.5 → 0.7; column 0 top two 0.9, 0.6 → 0.75;
        // 0.9 / 0.725.
        // Pair 1: row 1 → (0.8 + 0.6) / 2 = 0.7; column 1 → (0.8 + 0.7) / 2 = 0.75;
        // 0.8 / 0.725.
        // Pair 2: row 2 → (0.7 + 0.5) / 2 = 0.6; column 2 → (0.5 + 0.3) / 2 = 0.4; 0.5 / 0.5.
        let want = [0.9 / 0.725, 0.8 / 0.725, 1.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?}");
        }
        // k = 1: the nearest neighbour; pair 2's target prefers source 1 (0.7 > 0.5).
        let got = margin_from_cosines(cos.view(), 1).unwrap();
        assert!((got[0] - 1.0).abs() < 1e-6);
        assert!((got[2] - 0.5 / 0.6).abs() < 1e-6, "{got:?}");
        // k past the block's size takes every candidate.
        let all = margin_from_cosines(cos.view(), 10).unwrap();
        let three = margin_from_cosines(cos.view(), 3).unwrap();
        assert_eq!(all, three);
        // Row 0 mean 1.7/3, column 0 mean 1.9/3.
        assert!((all[0] - 0.9 / (3.6 / 6.0)).abs() < 1e-6);
    }

    #[test]
    fn margin_from_vectors_matches_the_cosines() {
        // Unit vectors in the plane at 0°, 60°, 90° (sources) and 10°, 50°, 180° (targets).
        let unit = |deg: f32| {
            let r = deg.to_radians();
            [r.cos(), r.sin()]
        };
        let src = ndarray::Array2::from_shape_vec(
            (3, 2),
            [0.0, 60.0, 90.0].iter().flat_map(|&d| unit(d)).collect(),
        )
        .unwrap();
        let tgt = ndarray::Array2::from_shape_vec(
            (3, 2),
            [10.0, 50.0, 180.0].iter().flat_map(|&d| unit(d)).collect(),
        )
        .unwrap();
        let got = margin_scores(src.view(), tgt.view(), 1).unwrap();
        // Pair 0: cos 10° is its row's and column's best → margin 1.
        assert!((got[0] - 1.0).abs() < 1e-6);
        // Pair 1: cos 10°; its row's best is target 1 itself (10°), its column's best is
        // also source 1 (10°) → 1.
        assert!((got[1] - 1.0).abs() < 1e-6);
        // Pair 2: cos(90° − 180°) = 0 → margin 0 whatever the neighbours.
        assert!(got[2].abs() < 1e-6);
    }

    #[test]
    fn a_repeated_sentence_counts_once_among_the_neighbours() {
        let unit = |deg: f32| {
            let r = deg.to_radians();
            [r.cos(), r.sin()]
        };
        let rows = |degs: &[f32]| {
            ndarray::Array2::from_shape_vec(
                (degs.len(), 2),
                degs.iter().flat_map(|&d| unit(d)).collect(),
            )
            .unwrap()
        };
        let (s, t) = ([0.0, 40.0, 90.0], [10.0, 45.0, 80.0]);
        let once = margin_scores(rows(&s).view(), rows(&t).view(), 2).unwrap();
        // The same block with pair 0 twice, and source 1 again with target 2.
        let twice = margin_scores(
            rows(&[s[0], s[0], s[1], s[2], s[1]]).view(),
            rows(&[t[0], t[0], t[1], t[2], t[2]]).view(),
            2,
        )
        .unwrap();
        assert_eq!(twice[0], once[0]);
        assert_eq!(twice[1], once[0]);
        assert_eq!(twice[2], once[1]);
        assert_eq!(twice[3], once[2]);
        // Without deduplication pair 0 would find its own partner twice (margin 1).
        let cos = rows(&[s[0], s[0]]).dot(&rows(&[t[0], t[0]]).t());
        assert!((margin_from_cosines(cos.view(), 2).unwrap()[0] - 1.0).abs() < 1e-6);
        // Pair 0 with k = 2 among distinct sentences: row cos 10°, cos 45°; column cos 10°,
        // cos 30°.
        let c = |d: f32| d.to_radians().cos();
        let want = c(10.0) / ((c(10.0) + c(45.0) + c(10.0) + c(30.0)) / 4.0);
        assert!((once[0] - want).abs() < 1e-6, "{once:?}");
    }

    #[test]
    fn bad_input_is_an_error() {
        let cos = array![[0.9f32, 0.5]];
        assert!(margin_from_cosines(cos.view(), 1).is_err());
        let cos = array![[0.9f32]];
        assert!(margin_from_cosines(cos.view(), 0).is_err());
        assert_eq!(margin_from_cosines(cos.view(), 4).unwrap(), vec![1.0]);
        let nan = array![[f32::NAN]];
        assert!(margin_from_cosines(nan.view(), 1).is_err());
        let empty = ndarray::Array2::<f32>::zeros((0, 0));
        assert!(margin_from_cosines(empty.view(), 1).unwrap().is_empty());
    }
}
