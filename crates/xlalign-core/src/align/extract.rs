//! Subword vectors + subword→word maps → word links, at either level SimAlign offers:
//! extract between subwords and lift the links to words ([`Level::Subword`]), or average each
//! word's subword vectors and extract between words ([`Level::WordAverage`]).

use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use super::methods::{check_finite, extract, UnitLink};
use super::options::{AlignOptions, Level};
use super::words::WordMap;
use crate::error::{Error, Result};

/// A link between source word `src` and target word `tgt` (indices into the word lists).
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[cfg_attr(feature = "ts", tsify(missing_as_null))]
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WordLink {
    pub src: usize,
    pub tgt: usize,
    /// Cosine similarity behind the link: at subword level the largest cosine among the
    /// linked subword pairs of the two words, at word-average level that of the word vectors.
    pub score: f32,
    /// Softmax/entmax only: the probability that decided the link (see
    /// [`UnitLink::prob`]); at subword level the largest over the linked subword pairs.
    pub prob: Option<f32>,
}

/// Cosines between the subwords that take part in alignment, for a detailed heatmap.
#[derive(Clone, Debug, PartialEq)]
pub struct SubwordSimilarity {
    /// `[src_tokens.len(), tgt_tokens.len()]`.
    pub matrix: Array2<f32>,
    /// Token positions (in the encoded sequence) of the rows and columns.
    pub src_tokens: Vec<usize>,
    pub tgt_tokens: Vec<usize>,
}

/// The result of aligning one sentence pair.
#[derive(Clone, Debug, PartialEq)]
pub struct Alignment {
    /// Sorted by (src, tgt), no duplicates.
    pub links: Vec<WordLink>,
    /// `[n_src_words, n_tgt_words]` cosines for a heatmap: at subword level the largest
    /// subword-pair cosine of each word pair (consistent with [`WordLink::score`]), at
    /// word-average level the cosine of the averaged vectors. Words without any subword
    /// (see [`WordMap::covered`]) have 0 in their row/column and no links.
    pub word_similarity: Array2<f32>,
    /// At subword level, the subword cosines the links were extracted from.
    pub subword_similarity: Option<SubwordSimilarity>,
}

/// Aligns two sentences.
///
/// `src`/`tgt` are one layer's hidden states for the whole encoded sequences (`[n_tokens,
/// hidden]`, `<s>`, prefix and `</s>` included); `src_map`/`tgt_map` say which word each of
/// those rows belongs to ([`WordMap::from_offsets`]). Rows of no word are dropped before
/// extraction, so specials and bare `▁` never link and never take probability mass.
///
/// Zero vectors have cosine 0 with everything. Errors ([`Error::Input`]) on shape mismatches,
/// maps pointing past their word count, non-finite values and invalid options.
pub fn align_words(
    src: ArrayView2<f32>,
    tgt: ArrayView2<f32>,
    src_map: &WordMap,
    tgt_map: &WordMap,
    opts: &AlignOptions,
) -> Result<Alignment> {
    opts.validate()?;
    let src_units = side_units(src, src_map, opts.level, "source")?;
    let tgt_units = side_units(tgt, tgt_map, opts.level, "target")?;
    if src.ncols() != tgt.ncols() {
        return Err(Error::Input(format!(
            "source vectors have {} dimensions but target vectors {}",
            src.ncols(),
            tgt.ncols()
        )));
    }
    let cos = cosine_matrix(src_units.vectors.view(), tgt_units.vectors.view());
    let dot = opts
        .method
        .uses_dot_products()
        .then(|| src_units.vectors.dot(&tgt_units.vectors.t()));
    let unit_links = extract(cos.view(), dot.as_ref().map(|d| d.view()), opts)?;
    let word_similarity = word_cosines(
        cos.view(),
        &src_units.words,
        &tgt_units.words,
        (src_map.n_words, tgt_map.n_words),
    );

    let links = lift(&unit_links, &src_units.words, &tgt_units.words);
    let subword_similarity = (opts.level == Level::Subword).then(|| SubwordSimilarity {
        matrix: cos,
        src_tokens: src_units.token,
        tgt_tokens: tgt_units.token,
    });
    Ok(Alignment {
        links,
        word_similarity,
        subword_similarity,
    })
}

fn check_side(vectors: ArrayView2<f32>, map: &WordMap, side: &str) -> Result<()> {
    if vectors.nrows() != map.word_of.len() {
        return Err(Error::Input(format!(
            "{side}: {} vectors but the word map covers {} tokens",
            vectors.nrows(),
            map.word_of.len()
        )));
    }
    map.check(side)?;
    check_finite(vectors, &format!("{side} vectors"))
}

/// The rows extraction works on, the word(s) of each, and at subword level its token.
/// The pipeline hands the same units to a backend that extracts on its device, and the
/// Python package hands them to training code (`Encoded.states`), so both see exactly the
/// rows extraction sees.
pub struct Units {
    pub vectors: Array2<f32>,
    pub words: Vec<Vec<usize>>,
    pub token: Vec<usize>,
}

/// Per unit of one side, the token rows averaged into it and the word(s) it belongs to.
pub(crate) type UnitGroups = (Vec<Vec<usize>>, Vec<Vec<usize>>);

/// The units of one side: per unit the token rows averaged into it and the word(s) it
/// belongs to. Subword level: every token of a word, alone. Word-average level: every word
/// with at least one subword, over all its subwords.
pub(crate) fn unit_groups(map: &WordMap, level: Level) -> UnitGroups {
    match level {
        Level::Subword => map
            .words_of_tokens()
            .into_iter()
            .enumerate()
            .filter(|(_, ws)| !ws.is_empty())
            .map(|(t, ws)| (vec![t], ws))
            .unzip(),
        Level::WordAverage => map
            .subwords()
            .into_iter()
            .enumerate()
            .filter(|(_, ts)| !ts.is_empty())
            .map(|(w, ts)| (ts, vec![w]))
            .unzip(),
    }
}

/// One side's units from its hidden states, after checking them against the word map.
pub fn side_units(
    vectors: ArrayView2<f32>,
    map: &WordMap,
    level: Level,
    side: &str,
) -> Result<Units> {
    check_side(vectors, map, side)?;
    let (rows, words) = unit_groups(map, level);
    Ok(match level {
        Level::Subword => {
            let token: Vec<usize> = rows.into_iter().flatten().collect();
            Units {
                vectors: vectors.select(Axis(0), &token),
                words,
                token,
            }
        }
        Level::WordAverage => {
            let mut out = Array2::<f32>::zeros((rows.len(), vectors.ncols()));
            for (row, tokens) in rows.iter().enumerate() {
                let mean: Array1<f32> = vectors
                    .select(Axis(0), tokens)
                    .mean_axis(Axis(0))
                    .expect("non-empty");
                out.row_mut(row).assign(&mean);
            }
            Units {
                vectors: out,
                words,
                token: Vec::new(),
            }
        }
    })
}

/// Unit cosines → the `[n_src, n_tgt]` word cosines: each word pair takes the largest cosine
/// of its unit pairs; words without units keep 0.
pub(crate) fn word_cosines(
    cos: ArrayView2<f32>,
    src_words: &[Vec<usize>],
    tgt_words: &[Vec<usize>],
    (n_src, n_tgt): (usize, usize),
) -> Array2<f32> {
    let mut word_similarity = Array2::<f32>::zeros((n_src, n_tgt));
    let mut seen = Array2::<bool>::from_elem((n_src, n_tgt), false);
    for ((r, c), &v) in cos.indexed_iter() {
        for &ws in &src_words[r] {
            for &wt in &tgt_words[c] {
                let cell = &mut word_similarity[[ws, wt]];
                if !seen[[ws, wt]] || v > *cell {
                    *cell = v;
                    seen[[ws, wt]] = true;
                }
            }
        }
    }
    word_similarity
}

/// Cosine similarity of every row of `a` with every row of `b`; 0 where a vector is zero.
pub fn cosine_matrix(a: ArrayView2<f32>, b: ArrayView2<f32>) -> Array2<f32> {
    let normalise = |m: ArrayView2<f32>| {
        let mut m = m.to_owned();
        for mut row in m.axis_iter_mut(Axis(0)) {
            let norm = row
                .iter()
                .map(|&v| (v as f64) * (v as f64))
                .sum::<f64>()
                .sqrt() as f32;
            if norm > 0.0 {
                row.mapv_inplace(|v| v / norm);
            }
        }
        m
    };
    let (a, b) = (normalise(a), normalise(b));
    // Rounding can leave |cos| a hair above 1; keep it a cosine.
    a.dot(&b.t()).mapv(|c| c.clamp(-1.0, 1.0))
}

/// Unit links → word links: a word pair is linked when any of its unit pairs is; score and
/// probability are the largest among those. The pipeline lifts a device's links with it too.
pub(crate) fn lift(
    units: &[UnitLink],
    src_words: &[Vec<usize>],
    tgt_words: &[Vec<usize>],
) -> Vec<WordLink> {
    let mut links: Vec<WordLink> = units
        .iter()
        .flat_map(|u| {
            src_words[u.row].iter().flat_map(move |&src| {
                tgt_words[u.col].iter().map(move |&tgt| WordLink {
                    src,
                    tgt,
                    score: u.score,
                    prob: u.prob,
                })
            })
        })
        .collect();
    links.sort_by_key(|l| (l.src, l.tgt));
    links.dedup_by(|later, kept| {
        if (later.src, later.tgt) != (kept.src, kept.tgt) {
            return false;
        }
        kept.score = kept.score.max(later.score);
        kept.prob = match (kept.prob, later.prob) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        true
    });
    links
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::align::options::{Direction, Method};
    use ndarray::array;

    fn map(word_of: &[Option<usize>], n_words: usize) -> WordMap {
        WordMap {
            word_of: word_of.to_vec(),
            shared: Vec::new(),
            n_words,
        }
    }

    fn pairs(a: &Alignment) -> Vec<(usize, usize)> {
        a.links.iter().map(|l| (l.src, l.tgt)).collect()
    }

    /// Source tokens: <s>, Ha- -us (word 0 "Haus"), a bare ▁ (no word), groß (word 1), </s>.
    /// Target tokens: <s>, house (word 0), big (word 1), </s>.
    fn example() -> (Array2<f32>, WordMap, Array2<f32>, WordMap) {
        let src = array![
            [1.0, 1.0, 1.0, 1.0], // <s>: similar to everything, must be ignored
            [1.0, 0.0, 0.0, 0.0], // Ha-
            [0.9, 0.1, 0.0, 0.0], // -us
            [1.0, 1.0, 1.0, 0.9], // bare ▁
            [0.0, 1.0, 0.0, 0.0], // groß
            [1.0, 1.0, 1.0, 1.0], // </s>
        ];
        let tgt = array![
            [1.0, 1.0, 1.0, 1.0],
            [0.95, 0.05, 0.0, 0.0], // house
            [0.0, 0.9, 0.1, 0.0],   // big
            [1.0, 1.0, 1.0, 1.0],
        ];
        (
            src,
            map(&[None, Some(0), Some(0), None, Some(1), None], 2),
            tgt,
            map(&[None, Some(0), Some(1), None], 2),
        )
    }

    #[test]
    fn subword_level_lifts_links_to_words() {
        let (src, sm, tgt, tm) = example();
        let a = align_words(
            src.view(),
            tgt.view(),
            &sm,
            &tm,
            &AlignOptions::new(Method::Argmax),
        )
        .unwrap();
        assert_eq!(pairs(&a), vec![(0, 0), (1, 1)]);
        // Score of (0,0): the linked subword pair's cosine (Ha- × house, the mutual maximum).
        let expected = 0.95 / (0.95f32 * 0.95 + 0.05 * 0.05).sqrt();
        assert!((a.links[0].score - expected).abs() < 1e-6);
        assert_eq!(a.links[0].prob, None);
        let sub = a.subword_similarity.as_ref().unwrap();
        assert_eq!(sub.src_tokens, vec![1, 2, 4]);
        assert_eq!(sub.tgt_tokens, vec![1, 2]);
        assert_eq!(sub.matrix.dim(), (3, 2));
        // Word heatmap = max over subword pairs.
        assert_eq!(a.word_similarity.dim(), (2, 2));
        let best_haus_house = sub.matrix[[0, 0]].max(sub.matrix[[1, 0]]);
        assert_eq!(a.word_similarity[[0, 0]], best_haus_house);
    }

    #[test]
    fn specials_never_link_even_when_most_similar() {
        let (src, sm, tgt, tm) = example();
        // If the two <s> rows (identical vectors) were given to different words, they would
        // be each other's best match and link those words.
        let all_src = map(&[Some(1), Some(0), Some(0), Some(0), Some(1), Some(1)], 2);
        let all_tgt = map(&[Some(0), Some(0), Some(1), Some(1)], 2);
        let noisy = align_words(
            src.view(),
            tgt.view(),
            &all_src,
            &all_tgt,
            &AlignOptions::new(Method::Argmax),
        )
        .unwrap();
        assert!(pairs(&noisy).contains(&(1, 0)));
        let clean = align_words(
            src.view(),
            tgt.view(),
            &sm,
            &tm,
            &AlignOptions::new(Method::Argmax),
        )
        .unwrap();
        assert_eq!(pairs(&clean), vec![(0, 0), (1, 1)]);
    }

    #[test]
    fn word_average_level() {
        let (src, sm, tgt, tm) = example();
        let o = AlignOptions {
            level: Level::WordAverage,
            ..AlignOptions::new(Method::Argmax)
        };
        let a = align_words(src.view(), tgt.view(), &sm, &tm, &o).unwrap();
        assert_eq!(pairs(&a), vec![(0, 0), (1, 1)]);
        assert!(a.subword_similarity.is_none());
        // "Haus" = mean(Ha-, -us) = [0.95, 0.05, 0, 0], identical in direction to "house".
        assert!((a.word_similarity[[0, 0]] - 1.0).abs() < 1e-6);
        assert!((a.links[0].score - 1.0).abs() < 1e-6);
    }

    #[test]
    fn softmax_reports_probabilities_per_word() {
        let (src, sm, tgt, tm) = example();
        let a = align_words(
            src.view(),
            tgt.view(),
            &sm,
            &tm,
            &AlignOptions::new(Method::Softmax),
        )
        .unwrap();
        // Dot products are small here (≤ 1), so probabilities are soft; Ha- and -us both
        // pass 0.3 with "house" in both directions, groß with "big".
        assert_eq!(pairs(&a), vec![(0, 0), (1, 1)]);
        for l in &a.links {
            let p = l.prob.unwrap();
            assert!(p > 0.3 && p <= 1.0, "{l:?}");
        }
        // The word link's probability is the max over its subword links, so at least the
        // probability of the Ha-×house subword link computed directly.
        let units = array![
            [1.0f32, 0.0, 0.0, 0.0],
            [0.9, 0.1, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0]
        ];
        let tv = array![[0.95f32, 0.05, 0.0, 0.0], [0.0, 0.9, 0.1, 0.0]];
        let dot = units.dot(&tv.t());
        let cos = cosine_matrix(units.view(), tv.view());
        let direct = extract(
            cos.view(),
            Some(dot.view()),
            &AlignOptions::new(Method::Softmax),
        )
        .unwrap();
        let best = direct
            .iter()
            .filter(|u| u.col == 0 && u.row < 2)
            .map(|u| u.prob.unwrap())
            .fold(0.0, f32::max);
        assert_eq!(a.links[0].prob.unwrap(), best);
    }

    #[test]
    fn union_of_subword_links_keeps_one_link_per_word_pair() {
        let (src, sm, tgt, tm) = example();
        let o = AlignOptions {
            direction: Direction::Forward,
            ..AlignOptions::new(Method::Argmax)
        };
        let a = align_words(src.view(), tgt.view(), &sm, &tm, &o).unwrap();
        // Ha- and -us both point at "house": one word link.
        assert_eq!(pairs(&a), vec![(0, 0), (1, 1)]);
    }

    #[test]
    fn words_without_subwords_stay_unlinked() {
        let (src, _, tgt, tm) = example();
        // Three source words; word 2 owns no token.
        let sm = map(&[None, Some(0), Some(0), None, Some(1), None], 3);
        for level in [Level::Subword, Level::WordAverage] {
            let o = AlignOptions {
                level,
                ..AlignOptions::new(Method::Argmax)
            };
            let a = align_words(src.view(), tgt.view(), &sm, &tm, &o).unwrap();
            assert_eq!(a.word_similarity.dim(), (3, 2));
            assert!(a.word_similarity.row(2).iter().all(|&v| v == 0.0));
            assert!(a.links.iter().all(|l| l.src != 2));
        }
    }

    #[test]
    fn empty_sides_give_empty_alignments() {
        let src = Array2::<f32>::zeros((2, 4));
        let none = map(&[None, None], 0);
        let (_, _, tgt, tm) = example();
        for method in Method::ALL {
            for level in [Level::Subword, Level::WordAverage] {
                let o = AlignOptions {
                    level,
                    ..AlignOptions::new(method)
                };
                let a = align_words(src.view(), tgt.view(), &none, &tm, &o).unwrap();
                assert!(a.links.is_empty());
                assert_eq!(a.word_similarity.dim(), (0, 2));
            }
        }
        let zero_rows = Array2::<f32>::zeros((0, 4));
        let a = align_words(
            zero_rows.view(),
            zero_rows.view(),
            &map(&[], 0),
            &map(&[], 0),
            &AlignOptions::default(),
        )
        .unwrap();
        assert!(a.links.is_empty());
    }

    #[test]
    fn zero_vectors_have_zero_cosine() {
        let a = array![[0.0f32, 0.0], [1.0, 0.0]];
        let b = array![[1.0f32, 0.0], [0.0, 2.0]];
        let c = cosine_matrix(a.view(), b.view());
        assert_eq!(c, array![[0.0, 0.0], [1.0, 0.0]]);
    }

    #[test]
    fn shared_tokens_link_every_word_they_span() {
        let (src, _, tgt, tm) = example();
        // Source token 4 (groß) spans words 1 and 2, as a CJK piece over two gold words would.
        let sm = WordMap {
            word_of: vec![None, Some(0), Some(0), None, Some(1), None],
            shared: vec![(4, 2)],
            n_words: 3,
        };
        let a = align_words(
            src.view(),
            tgt.view(),
            &sm,
            &tm,
            &AlignOptions::new(Method::Argmax),
        )
        .unwrap();
        assert_eq!(pairs(&a), vec![(0, 0), (1, 1), (2, 1)]);
        assert_eq!(a.links[1].score, a.links[2].score);
        assert_eq!(a.word_similarity.row(1), a.word_similarity.row(2));
        // At word-average level both words get the shared token's vector.
        let o = AlignOptions {
            level: Level::WordAverage,
            ..AlignOptions::new(Method::Argmax)
        };
        let a = align_words(src.view(), tgt.view(), &sm, &tm, &o).unwrap();
        assert_eq!(a.word_similarity.row(1), a.word_similarity.row(2));
        assert!(a.word_similarity[[2, 1]] > 0.99);
        // A shared entry pointing past the words is refused.
        let bad = WordMap {
            shared: vec![(4, 7)],
            ..sm
        };
        assert!(align_words(src.view(), tgt.view(), &bad, &tm, &AlignOptions::default()).is_err());
    }

    #[test]
    fn bad_inputs_are_refused() {
        let (src, sm, tgt, tm) = example();
        let o = AlignOptions::default();
        let short = map(&[None, Some(0)], 1);
        let e = align_words(src.view(), tgt.view(), &short, &tm, &o).unwrap_err();
        assert!(e.to_string().contains("source: 6 vectors"), "{e}");
        let past = map(&[None, Some(5), Some(0), None, Some(1), None], 2);
        assert!(align_words(src.view(), tgt.view(), &past, &tm, &o).is_err());
        let narrow = Array2::<f32>::zeros((4, 3));
        let e = align_words(src.view(), narrow.view(), &sm, &tm, &o).unwrap_err();
        assert!(e.to_string().contains("dimensions"), "{e}");
        let mut nan = src.clone();
        nan[[2, 1]] = f32::NAN;
        let e = align_words(nan.view(), tgt.view(), &sm, &tm, &o).unwrap_err();
        assert!(e.to_string().contains("source vectors"), "{e}");
        let bad = AlignOptions {
            temperature: -1.0,
            ..o
        };
        assert!(align_words(src.view(), tgt.view(), &sm, &tm, &bad).is_err());
    }
}
