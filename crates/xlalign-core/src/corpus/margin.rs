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
//! neighbours are searched among all candidates. A translation well above its neighbours
//! scores above 1; a pair no closer than the rest of the block about 1 or below.

use ndarray::{ArrayView1, ArrayView2};

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
    margin_from_cosines(cos.view(), k)
}

/// As [`margin_scores`] from the cosine matrix: `cos[i][j]` is the cosine of source i and
/// target j, pair i is `cos[i][i]`. A margin whose neighbourhood mean is not positive (never
/// with contextual sentence vectors, whose cosines sit well above 0) is reported as 0.
pub fn margin_from_cosines(cos: ArrayView2<f32>, k: usize) -> Result<Vec<f32>> {
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
    let k = k.min(n);
    Ok((0..n)
        .map(|i| {
            let denom = (top_k_mean(cos.row(i), k) + top_k_mean(cos.column(i), k)) / 2.0;
            if denom > 0.0 {
                cos[[i, i]] / denom
            } else {
                0.0
            }
        })
        .collect())
}

/// Mean of the `k` largest values (1 ≤ k ≤ len).
fn top_k_mean(line: ArrayView1<f32>, k: usize) -> f32 {
    let mut v = line.to_vec();
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
