//! The GPU alignment step against the CPU's `align::methods::extract` on the same vectors:
//! the same links, cosines and probabilities, for argmax and softmax with every direction,
//! temperature and distortion, and for itermax with every iteration count, alpha and
//! distortion, on sizes that are not multiples of the workgroup sizes.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::collections::BTreeSet;

use common::*;
use ndarray::Array2;
use xlalign_core::align::methods::{extract, UnitLink};
use xlalign_core::align::{cosine_matrix, AlignOptions, Direction, Method};
use xlalign_core::backend::UnitPair;
use xlalign_gpu::{align_on_gpu, align_pairs_on_gpu};

/// `n` source and `m` target vectors of norm ≈ 9 (as at layer 7 of the default model);
/// target j is a noisy copy of source j·n/m for every other j, so rows have clear peaks as
/// well as flat ones.
fn vectors(n: usize, m: usize, hidden: usize, seed: u64) -> (Array2<f32>, Array2<f32>) {
    let mut rng = Rng::new(seed);
    let src = Array2::from_shape_vec((n, hidden), rng.vec(n * hidden, -0.8, 0.8)).unwrap();
    let mut tgt = Array2::from_shape_vec((m, hidden), rng.vec(m * hidden, -0.8, 0.8)).unwrap();
    for j in (0..m).step_by(2) {
        let i = j * n / m;
        for c in 0..hidden {
            tgt[[j, c]] = 0.7 * src[[i, c]] + 0.3 * tgt[[j, c]];
        }
    }
    (src, tgt)
}

/// The value the CPU decides on for a cell, to tell near-ties from real disagreements.
fn cpu_links(src: &Array2<f32>, tgt: &Array2<f32>, opts: &AlignOptions) -> Vec<UnitLink> {
    let cos = cosine_matrix(src.view(), tgt.view());
    let dot = src.dot(&tgt.t());
    extract(cos.view(), Some(dot.view()), opts).expect("cpu extract")
}

fn check(n: usize, m: usize, hidden: usize, opts: AlignOptions, seed: u64) {
    let Some(ctx) = gpu() else { return };
    let (src, tgt) = vectors(n, m, hidden, seed);
    let got =
        pollster::block_on(align_on_gpu(&ctx, src.view(), tgt.view(), &opts)).expect("gpu align");
    let want = cpu_links(&src, &tgt, &opts);
    let key = |l: &UnitLink| (l.row, l.col);
    let g: BTreeSet<_> = got.iter().map(key).collect();
    let w: BTreeSet<_> = want.iter().map(key).collect();
    assert_eq!(got.len(), g.len(), "duplicate links");
    let sorted: Vec<_> = got.iter().map(key).collect();
    assert!(sorted.windows(2).all(|p| p[0] < p[1]), "links not sorted");

    // Cells whose fate hangs on the last bits may differ: a softmax probability within 1e-4
    // of the threshold, or an argmax decided by less than 1e-5.
    let cos = cosine_matrix(src.view(), tgt.view());
    let near_tie = |(i, j): (usize, usize)| -> bool {
        if opts.method == Method::Softmax {
            // Recompute this cell's CPU probabilities in every direction.
            let mut o = opts;
            o.threshold = Some(0.0);
            let all = cpu_links(&src, &tgt, &o);
            let p = all
                .iter()
                .find(|l| (l.row, l.col) == (i, j))
                .and_then(|l| l.prob)
                .unwrap_or(0.0);
            (p - opts.effective_threshold()).abs() < 1e-4
        } else {
            let gap = |vals: Vec<f32>| {
                let mut v = vals;
                v.sort_by(|a, b| b.partial_cmp(a).unwrap());
                v.len() < 2 || v[0] - v[1] < 1e-5
            };
            gap(cos.row(i).to_vec()) || gap(cos.column(j).to_vec())
        }
    };
    for cell in g.symmetric_difference(&w) {
        assert!(
            near_tie(*cell),
            "{opts:?} {n}×{m}: link {cell:?} only on the {}",
            if g.contains(cell) { "GPU" } else { "CPU" }
        );
    }
    let mut agree = 0;
    for l in &got {
        if let Some(c) = want.iter().find(|c| key(c) == key(l)) {
            assert!(
                (l.score - c.score).abs() < 1e-5,
                "cosine of {:?}: {} vs {}",
                key(l),
                l.score,
                c.score
            );
            match (l.prob, c.prob) {
                (Some(a), Some(b)) => {
                    assert!((a - b).abs() < 1e-4, "prob of {:?}: {a} vs {b}", key(l))
                }
                (None, None) => {}
                other => panic!("probability presence differs: {other:?}"),
            }
            agree += 1;
        }
    }
    assert!(agree > 0 || want.is_empty(), "no common links");
    eprintln!(
        "{:?} {:?} t={:?} T={} d={} {n}×{m}: {} links, {} common",
        opts.method,
        opts.direction,
        opts.threshold,
        opts.temperature,
        opts.distortion,
        got.len(),
        agree
    );
}

fn opts(
    method: Method,
    direction: Direction,
    threshold: Option<f32>,
    temperature: f32,
    distortion: f32,
) -> AlignOptions {
    AlignOptions {
        method,
        direction,
        threshold,
        temperature,
        distortion,
        ..AlignOptions::default()
    }
}

#[test]
fn argmax_every_direction() {
    for (k, dir) in [
        Direction::Both,
        Direction::Forward,
        Direction::Reverse,
        Direction::Union,
    ]
    .into_iter()
    .enumerate()
    {
        check(
            13,
            17,
            384,
            opts(Method::Argmax, dir, None, 1.0, 0.0),
            100 + k as u64,
        );
    }
}

#[test]
fn argmax_with_distortion() {
    check(
        19,
        11,
        96,
        opts(Method::Argmax, Direction::Both, None, 1.0, 0.5),
        110,
    );
}

#[test]
fn softmax_every_direction_and_threshold() {
    let mut seed = 200;
    for dir in [
        Direction::Both,
        Direction::Forward,
        Direction::Reverse,
        Direction::Union,
    ] {
        for t in [0.001, 0.1, 0.3] {
            check(
                13,
                17,
                384,
                opts(Method::Softmax, dir, Some(t), 1.0, 0.0),
                seed,
            );
            seed += 1;
        }
    }
}

#[test]
fn softmax_with_temperature_and_distortion() {
    check(
        21,
        9,
        384,
        opts(Method::Softmax, Direction::Both, Some(0.1), 4.0, 0.0),
        220,
    );
    check(
        21,
        9,
        384,
        opts(Method::Softmax, Direction::Both, Some(0.1), 8.0, 0.7),
        221,
    );
    check(
        21,
        9,
        384,
        opts(Method::Softmax, Direction::Union, Some(0.0), 30.0, 0.0),
        222,
    );
}

#[test]
fn sizes_beyond_one_workgroup() {
    // More columns than the statistics workgroup has threads, and a partial extraction tile.
    check(
        200,
        230,
        384,
        opts(Method::Softmax, Direction::Both, None, 1.0, 0.0),
        300,
    );
    check(
        200,
        230,
        384,
        opts(Method::Argmax, Direction::Both, None, 1.0, 0.0),
        301,
    );
}

#[test]
fn single_units_and_empty_sides() {
    check(
        1,
        5,
        32,
        opts(Method::Argmax, Direction::Both, None, 1.0, 0.5),
        400,
    );
    check(
        6,
        1,
        32,
        opts(Method::Softmax, Direction::Union, Some(0.2), 1.0, 0.5),
        401,
    );
    let Some(ctx) = gpu() else { return };
    let empty = Array2::<f32>::zeros((0, 8));
    let some = Array2::<f32>::ones((3, 8));
    let links = pollster::block_on(align_on_gpu(
        &ctx,
        empty.view(),
        some.view(),
        &AlignOptions::default(),
    ))
    .unwrap();
    assert!(links.is_empty());
}

#[test]
fn zero_vectors_have_cosine_zero_as_on_the_cpu() {
    let Some(ctx) = gpu() else { return };
    let (mut src, tgt) = vectors(5, 7, 64, 500);
    src.row_mut(2).fill(0.0);
    let o = opts(Method::Softmax, Direction::Both, Some(0.0), 1.0, 0.0);
    let got = pollster::block_on(align_on_gpu(&ctx, src.view(), tgt.view(), &o)).unwrap();
    let row2: Vec<_> = got.iter().filter(|l| l.row == 2).collect();
    assert_eq!(
        row2.len(),
        7,
        "a zero row is uniform over 7 columns, all above threshold 0"
    );
    assert!(row2.iter().all(|l| l.score == 0.0));
}

#[test]
fn unsupported_methods_and_bad_input_are_errors() {
    let Some(ctx) = gpu() else { return };
    let (src, tgt) = vectors(4, 4, 32, 600);
    for m in [Method::Match, Method::Entmax] {
        let e = pollster::block_on(align_on_gpu(
            &ctx,
            src.view(),
            tgt.view(),
            &AlignOptions::new(m),
        ))
        .unwrap_err();
        assert!(e.to_string().contains("CPU"), "{e}");
    }
    let narrow = Array2::<f32>::zeros((3, 16));
    assert!(pollster::block_on(align_on_gpu(
        &ctx,
        src.view(),
        narrow.view(),
        &AlignOptions::default()
    ))
    .is_err());
    let mut bad = src.clone();
    bad[[1, 1]] = f32::NAN;
    assert!(pollster::block_on(align_on_gpu(
        &ctx,
        bad.view(),
        tgt.view(),
        &AlignOptions::default()
    ))
    .is_err());
    let o = AlignOptions {
        threshold: Some(1.5),
        ..AlignOptions::default()
    };
    assert!(pollster::block_on(align_on_gpu(&ctx, src.view(), tgt.view(), &o)).is_err());
}

#[test]
fn a_batch_of_pairs_gives_each_pairs_links_and_cosines() {
    let Some(ctx) = gpu() else { return };
    // Odd sizes, an empty side and a pair larger than one workgroup, in one submission.
    let sizes = [(7, 9), (0, 4), (1, 1), (33, 70), (12, 5)];
    let data: Vec<(Array2<f32>, Array2<f32>)> = sizes
        .iter()
        .enumerate()
        .map(|(k, &(n, m))| match n {
            0 => (Array2::zeros((0, 48)), vectors(m, m, 48, 700).1),
            _ => vectors(n, m, 48, 700 + k as u64),
        })
        .collect();
    let pairs = unit_pairs(&data);
    for o in [
        opts(Method::Argmax, Direction::Both, None, 1.0, 0.0),
        opts(Method::Softmax, Direction::Union, Some(0.1), 0.5, 0.3),
        AlignOptions {
            iterations: 4,
            alpha: 0.7,
            ..opts(Method::Itermax, Direction::Both, None, 1.0, 0.2)
        },
    ] {
        let batch = pollster::block_on(align_pairs_on_gpu(&ctx, &pairs, &o)).expect("batch");
        assert_eq!(batch.len(), pairs.len());
        for ((got, (s, t)), &(n, m)) in batch.iter().zip(&data).zip(&sizes) {
            let alone =
                pollster::block_on(align_on_gpu(&ctx, s.view(), t.view(), &o)).expect("alone");
            assert_eq!(got.links, alone, "{n}×{m} in a batch vs alone");
            assert_eq!(got.cosine.dim(), (n, m));
            let want = cosine_matrix(s.view(), t.view());
            let worst = got
                .cosine
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(worst < 1e-5, "{n}×{m}: cosines off by {worst}");
            for l in &got.links {
                assert_eq!(
                    l.score,
                    got.cosine[[l.row, l.col]],
                    "link score = its cosine"
                );
            }
        }
        assert!(batch.iter().map(|b| b.links.len()).sum::<usize>() > 10);
    }
}

/// Pairs for the itermax checks: odd shapes (single units, sides of two, 3×3, tall, wide,
/// beyond one statistics workgroup and one link-step workgroup), with duplicated source and
/// target vectors, whose exactly equal cosines make ties in rows, columns and masked rounds,
/// and an all-equal pair where every cell ties.
fn itermax_pairs(hidden: usize, seed: u64) -> Vec<(Array2<f32>, Array2<f32>)> {
    let sizes = [
        (1, 7),
        (6, 1),
        (2, 9),
        (11, 2),
        (3, 3),
        (4, 4),
        (3, 11),
        (13, 3),
        (13, 17),
        (29, 9),
        (9, 29),
        (70, 33),
        (131, 200),
    ];
    let mut out: Vec<_> = sizes
        .iter()
        .enumerate()
        .map(|(k, &(n, m))| {
            let (mut src, mut tgt) = vectors(n, m, hidden, seed + k as u64);
            // Copies of earlier rows and columns: the first copy must win every tie.
            for i in (3..n).step_by(3) {
                let from = src.row(i / 3).to_owned();
                src.row_mut(i).assign(&from);
            }
            for j in (4..m).step_by(4) {
                let from = tgt.row(j - 3).to_owned();
                tgt.row_mut(j).assign(&from);
            }
            (src, tgt)
        })
        .collect();
    out.push((Array2::ones((5, hidden)), Array2::ones((7, hidden))));
    out
}

/// Views of source and target vectors as the GPU alignment's input.
fn unit_pairs(data: &[(Array2<f32>, Array2<f32>)]) -> Vec<UnitPair<'_>> {
    data.iter()
        .map(|(s, t)| UnitPair {
            src: s.view(),
            tgt: t.view(),
        })
        .collect()
}

/// Aligns `data` as one batch with itermax and checks every pair's links against the CPU's
/// `extract` on the cosines the GPU decided on (returned with the links): the same links,
/// exactly, with those cosines as scores. Returns the number of links.
fn check_itermax(data: &[(Array2<f32>, Array2<f32>)], o: &AlignOptions) -> usize {
    let Some(ctx) = gpu() else { return 0 };
    let pairs = unit_pairs(data);
    let got = pollster::block_on(align_pairs_on_gpu(&ctx, &pairs, o)).expect("gpu itermax");
    assert_eq!(got.len(), data.len());
    let mut links = 0;
    for (g, (s, t)) in got.iter().zip(data) {
        let (n, m) = (s.nrows(), t.nrows());
        let want = extract(g.cosine.view(), None, o).expect("cpu itermax");
        let key = |l: &UnitLink| (l.row, l.col);
        assert_eq!(
            g.links.iter().map(key).collect::<Vec<_>>(),
            want.iter().map(key).collect::<Vec<_>>(),
            "itermax {n}×{m}, iterations {}, alpha {}, distortion {}",
            o.iterations,
            o.alpha,
            o.distortion
        );
        for (a, b) in g.links.iter().zip(&want) {
            assert_eq!(a.score, b.score, "{n}×{m}: score of {:?}", key(a));
            assert_eq!(a.prob, None);
        }
        links += g.links.len();
    }
    links
}

#[test]
fn itermax_matches_the_cpu_for_every_option() {
    if gpu().is_none() {
        return;
    }
    let data = itermax_pairs(48, 800);
    for distortion in [0.0, 0.5] {
        // Links per iteration count, summed over the alphas.
        let mut by_rounds = Vec::new();
        for iterations in [1, 2, 3, 5, 60] {
            let mut links = 0;
            // Below 0.5 even cells with both sides free are discounted; 0 and 1 are the ends.
            for alpha in [0.9, 0.5, 0.3, 0.0, 1.0] {
                let o = AlignOptions {
                    iterations,
                    alpha,
                    ..opts(Method::Itermax, Direction::Both, None, 1.0, distortion)
                };
                links += check_itermax(&data, &o);
            }
            by_rounds.push(links);
        }
        eprintln!("itermax, distortion {distortion}: links by rounds {by_rounds:?}");
        // The later rounds must have had work to do, or they went untested.
        assert!(
            by_rounds.windows(2).all(|w| w[0] < w[1]),
            "links by rounds {by_rounds:?}"
        );
    }
}

#[test]
fn itermax_on_model_sized_vectors_and_zero_vectors() {
    if gpu().is_none() {
        return;
    }
    let mut data = itermax_pairs(384, 900);
    // A zero source vector has cosine 0 with everything: its row ties throughout.
    let (mut src, tgt) = vectors(8, 10, 384, 950);
    src.row_mut(5).fill(0.0);
    data.push((src, tgt));
    let o = opts(Method::Itermax, Direction::Both, None, 1.0, 0.0);
    assert!(check_itermax(&data, &o) > data.len());
    // Each pair alone (its own submission) and through the single-pair entry point agrees.
    let Some(ctx) = gpu() else { return };
    let (s, t) = &data[8];
    let alone = pollster::block_on(align_on_gpu(&ctx, s.view(), t.view(), &o)).expect("alone");
    let cos = cosine_matrix(s.view(), t.view());
    let want = extract(cos.view(), None, &o).expect("cpu");
    assert_eq!(
        alone.iter().map(|l| (l.row, l.col)).collect::<Vec<_>>(),
        want.iter().map(|l| (l.row, l.col)).collect::<Vec<_>>(),
        "itermax on the CPU's own cosines"
    );
}

#[test]
fn itermax_refuses_directions_as_the_cpu_does() {
    let Some(ctx) = gpu() else { return };
    let (src, tgt) = vectors(5, 6, 32, 990);
    for direction in [Direction::Forward, Direction::Reverse, Direction::Union] {
        let o = opts(Method::Itermax, direction, None, 1.0, 0.0);
        let e = pollster::block_on(align_on_gpu(&ctx, src.view(), tgt.view(), &o)).unwrap_err();
        let cos = cosine_matrix(src.view(), tgt.view());
        let c = extract(cos.view(), None, &o).unwrap_err();
        assert_eq!(e.to_string(), c.to_string());
    }
}
