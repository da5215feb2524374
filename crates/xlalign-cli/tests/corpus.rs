//! End-to-end tests of `xlalign score` and `xlalign mexa` on the gold-set slices in
//! tests/data/gold, with the default model (see cli.rs): true pairs against the same
//! sentences paired wrongly, filtering that keeps the input's order and form, and bad lines.

mod common;

use std::process::Output;

use common::{model, repo, text, tmp};

/// Runs `xlalign <cmd> --model M --backend cpu <args>` with `stdin`.
fn xlalign(cmd: &str, args: &[&str], stdin: &[u8]) -> Output {
    let m = model();
    let mut all = vec![cmd, "--model", m.to_str().unwrap(), "--backend", "cpu"];
    all.extend(args);
    common::xlalign(&all, stdin)
}

/// The slice's pairs, `src<TAB>tgt`.
fn gold_pairs(set: &str) -> Vec<String> {
    let d = repo().join("tests/data/gold").join(set);
    let read = |ext: &str| std::fs::read_to_string(d.join(format!("{set}.{ext}"))).unwrap();
    let (src, tgt) = (read("src"), read("tgt"));
    src.lines()
        .zip(tgt.lines())
        .map(|(s, t)| format!("{s}\t{t}"))
        .collect()
}

/// The true pairs interleaved with wrong ones (the target of the line 7 further on).
fn mixed(set: &str) -> (Vec<String>, Vec<bool>) {
    let pairs = gold_pairs(set);
    let n = pairs.len();
    let mut lines = Vec::new();
    let mut truth = Vec::new();
    for (i, p) in pairs.iter().enumerate() {
        lines.push(p.clone());
        truth.push(true);
        let src = p.split('\t').next().unwrap();
        let tgt = pairs[(i + 7) % n].split('\t').nth(1).unwrap();
        lines.push(format!("{src}\t{tgt}"));
        truth.push(false);
    }
    (lines, truth)
}

struct Row {
    line: usize,
    cosine: f64,
    margin: f64,
    keep: bool,
    error: String,
}

fn tsv_rows(out: &[u8]) -> Vec<Row> {
    let s = text(out);
    let mut lines = s.lines();
    assert_eq!(
        lines.next(),
        Some("line\tcosine\tmargin\tcoverage_src\tcoverage_tgt\tlength_ratio\tkeep\terror")
    );
    lines
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 8, "{l}");
            let num = |s: &str| s.parse::<f64>().unwrap_or(f64::NAN);
            Row {
                line: f[0].parse().unwrap(),
                cosine: num(f[1]),
                margin: num(f[2]),
                keep: f[6] == "1",
                error: f[7].to_string(),
            }
        })
        .collect()
}

#[test]
fn true_pairs_score_above_wrong_pairs() {
    for set in ["zhen", "roen"] {
        let (lines, truth) = mixed(set);
        let out = xlalign(
            "score",
            &["--words", "pretokenized"],
            (lines.join("\n") + "\n").as_bytes(),
        );
        assert!(out.status.success(), "{set}: {}", text(&out.stderr));
        let rows = tsv_rows(&out.stdout);
        assert_eq!(rows.len(), lines.len());
        assert!(rows.iter().enumerate().all(|(i, r)| r.line == i + 1));
        let mean = |real: bool, f: fn(&Row) -> f64| {
            let v: Vec<f64> = rows
                .iter()
                .zip(&truth)
                .filter(|(_, &t)| t == real)
                .map(|(r, _)| f(r))
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        let (real, wrong) = (mean(true, |r| r.margin), mean(false, |r| r.margin));
        assert!(
            real > 1.0 && wrong < 1.0,
            "{set}: margin {real:.3} / {wrong:.3}"
        );
        assert!(mean(true, |r| r.cosine) > mean(false, |r| r.cosine));
        // The margin separates them: nearly every true pair is above every wrong pair's
        // median.
        let mut w: Vec<f64> = rows
            .iter()
            .zip(&truth)
            .filter(|(_, &t)| !t)
            .map(|(r, _)| r.margin)
            .collect();
        w.sort_by(f64::total_cmp);
        let median = w[w.len() / 2];
        let above = rows
            .iter()
            .zip(&truth)
            .filter(|(r, &t)| t && r.margin > median)
            .count();
        assert!(
            above * 10 >= 9 * w.len(),
            "{set}: {above} of {} true pairs",
            w.len()
        );
    }
}

#[test]
fn keep_writes_the_kept_pairs_in_order_and_form() {
    let (lines, truth) = mixed("enfr");
    let input = lines.join("\n") + "\n";
    let args = [
        "--words",
        "pretokenized",
        "--min-margin",
        "1.0",
        "--block",
        "50",
    ];
    let rows = xlalign("score", &args, input.as_bytes());
    assert!(rows.status.success(), "{}", text(&rows.stderr));
    let rows = tsv_rows(&rows.stdout);
    let kept = xlalign(
        "score",
        &[&args[..], &["--keep"]].concat(),
        input.as_bytes(),
    );
    assert!(kept.status.success(), "{}", text(&kept.stderr));
    let kept = text(&kept.stdout);
    let want: Vec<&str> = rows
        .iter()
        .filter(|r| r.keep)
        .map(|r| lines[r.line - 1].as_str())
        .collect();
    assert_eq!(kept.lines().collect::<Vec<_>>(), want);
    let true_kept = rows.iter().filter(|r| r.keep && truth[r.line - 1]).count();
    assert!(
        want.len() > 40 && true_kept * 10 >= want.len() * 9,
        "{true_kept} true pairs among {} kept",
        want.len()
    );
    // The same pairs from parallel files: the kept lines go to two parallel files.
    let (src, tgt) = (tmp("mixed.src"), tmp("mixed.tgt"));
    let side = |k: usize| {
        lines
            .iter()
            .map(|l| l.split('\t').nth(k).unwrap().to_string() + "\n")
            .collect::<String>()
    };
    std::fs::write(&src, side(0)).unwrap();
    std::fs::write(&tgt, side(1)).unwrap();
    let (ksrc, ktgt) = (tmp("kept.src"), tmp("kept.tgt"));
    let files = [
        "--src",
        src.to_str().unwrap(),
        "--tgt",
        tgt.to_str().unwrap(),
        "--keep",
        "-o",
        ksrc.to_str().unwrap(),
        "--output-tgt",
        ktgt.to_str().unwrap(),
    ];
    let out = xlalign("score", &[&args[..], &files].concat(), b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let joined: Vec<String> = std::fs::read_to_string(&ksrc)
        .unwrap()
        .lines()
        .zip(std::fs::read_to_string(&ktgt).unwrap().lines())
        .map(|(s, t)| format!("{s}\t{t}"))
        .collect();
    assert_eq!(joined, want);
    let missing = xlalign("score", &[&args[..], &files[..5]].concat(), b"");
    assert!(text(&missing.stderr).contains("--output-tgt"));
}

#[test]
fn bad_lines_get_error_rows_and_exit_2() {
    let good = gold_pairs("roen");
    let long = "word ".repeat(300_000);
    let input = format!(
        "{}\nnot a pair\n{} ||| \n{}\n{long}\t{long}\n{}\n",
        good[0], good[1], good[2], good[3]
    );
    for format in ["tsv", "json"] {
        let out = xlalign(
            "score",
            &["--format", format, "--min-cosine", "0.5"],
            input.as_bytes(),
        );
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.contains("line 2:") && err.contains("line 3:") && err.contains("line 5:"));
        assert!(!err.contains("panicked"), "{err}");
        if format == "tsv" {
            let rows = tsv_rows(&out.stdout);
            assert_eq!(
                rows.iter().map(|r| r.line).collect::<Vec<_>>(),
                [1, 2, 3, 4, 5, 6]
            );
            for r in &rows {
                let bad = [2, 3, 5].contains(&r.line);
                assert_eq!(!r.error.is_empty(), bad, "line {}", r.line);
                assert_eq!(r.keep, !bad, "line {}", r.line);
            }
            assert!(rows[4].error.contains("byte limit"), "{}", rows[4].error);
        } else {
            let rows: Vec<serde_json::Value> = text(&out.stdout)
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(rows.len(), 6);
            assert_eq!(rows[1]["keep"], false);
            assert!(rows[1]["error"].as_str().unwrap().contains("|||"));
            assert_eq!(rows[3]["line"], 4);
            assert!(rows[3]["margin"].as_f64().unwrap() > 0.0);
            assert!(rows[3]["coverage"]["src"].as_f64().unwrap() > 0.0);
        }
    }
    let kept = xlalign("score", &["--keep"], input.as_bytes());
    assert_eq!(kept.status.code(), Some(2));
    let kept = text(&kept.stdout);
    assert_eq!(
        kept.lines().collect::<Vec<_>>(),
        [good[0].as_str(), good[2].as_str(), good[3].as_str()]
    );
}

#[test]
fn empty_input_scores_nothing() {
    let out = xlalign("score", &[], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(tsv_rows(&out.stdout).is_empty());
    let out = xlalign("score", &["--format", "json"], b"");
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let out = xlalign("score", &["--block", "0"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--block"));
}

/// `mexa`'s TSV table: (layer, mexa, src_to_tgt, tgt_to_src, pairs) per row.
fn mexa_rows(out: &[u8]) -> Vec<(usize, f64, f64, f64, usize)> {
    let s = text(out);
    let mut lines = s.lines();
    assert_eq!(
        lines.next(),
        Some("layer\tmexa\tsrc_to_tgt\ttgt_to_src\tpairs")
    );
    lines
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn mexa_per_layer_on_a_gold_slice() {
    let pairs = gold_pairs("zhen");
    let input = pairs.join("\n") + "\n";
    let out = xlalign("mexa", &["--words", "pretokenized"], input.as_bytes());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = mexa_rows(&out.stdout);
    assert_eq!(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        (0..=12).collect::<Vec<_>>()
    );
    for &(layer, mexa, fwd, bwd, n) in &rows {
        assert_eq!(n, 60);
        assert!(mexa <= fwd.min(bwd), "layer {layer}: both directions count");
    }
    // Measured: layer 0 0.12, layer 12 0.97. The last layer is what E5 was trained for.
    assert!(rows[12].1 >= 0.9, "{:?}", rows[12]);
    assert!(rows[0].1 < 0.5 && rows[0].1 < rows[12].1, "{:?}", rows[0]);

    // Wrong pairs: each target belongs to another line, so its own source is nowhere near.
    let n = pairs.len();
    let shifted: String = (0..n)
        .map(|i| {
            let src = pairs[i].split('\t').next().unwrap();
            let tgt = pairs[(i + 7) % n].split('\t').nth(1).unwrap();
            format!("{src}\t{tgt}\n")
        })
        .collect();
    let out = xlalign(
        "mexa",
        &[
            "--words",
            "pretokenized",
            "--layers",
            "12,0",
            "--format",
            "json",
        ],
        shifted.as_bytes(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pairs"], 60);
    assert_eq!(v["layers"][0]["layer"], 12);
    assert_eq!(v["layers"][1]["layer"], 0);
    assert!(v["layers"][0]["mexa"].as_f64().unwrap() < 0.1, "{v}");
}

#[test]
fn mexa_leaves_out_bad_lines_and_scores_in_blocks() {
    let pairs = gold_pairs("enfr");
    let mut input = pairs[..30].join("\n") + "\nnot a pair\n";
    input += &(pairs[30..].join("\n") + "\n");
    let out = xlalign(
        "mexa",
        &["--layers", "12", "--block", "25"],
        input.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("line 31:"));
    let rows = mexa_rows(&out.stdout);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].4, 60, "the bad line is left out, the rest counted");
    let out = xlalign("mexa", &[], b"");
    assert!(out.status.success());
    assert!(mexa_rows(&out.stdout).is_empty());
}
