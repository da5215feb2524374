//! `xlalign eval --gold-dir DIR`: align every gold set in a directory and score it, for several
//! methods and layers at once (each set is encoded once per run; extraction is cheap).
//!
//! A gold directory holds `<set>/<set>.src`, `<set>.tgt` and `<set>.gold` (pre-tokenised,
//! Pharaoh links), as the project's test data does.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::Serialize;
use xlalign_core::align::{AlignOptions, Level, Method};
use xlalign_core::pharaoh::{self, AerCounts, Metrics};
use xlalign_core::pipeline::{Aligner, EncodeOptions, EncodedPair};
use xlalign_core::request::{AlignRequest, Recommendation};
use xlalign_core::Backend;

use crate::progress;

#[derive(Serialize)]
pub struct Row {
    pub set: String,
    pub layer: usize,
    pub method: String,
    pub metrics: Metrics,
}

/// Sets found in `dir` (folders with the three files), sorted by name.
pub fn find_sets(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut sets = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let p = e?.path();
        let Some(name) = p.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            continue;
        };
        if ["src", "tgt", "gold"]
            .iter()
            .all(|x| p.join(format!("{name}.{x}")).exists())
        {
            sets.push((name, p));
        }
    }
    sets.sort();
    anyhow::ensure!(
        !sets.is_empty(),
        "no gold sets (<set>/<set>.src, .tgt, .gold) in {}",
        dir.display()
    );
    Ok(sets)
}

/// Encodes each set once at every layer and scores every (layer, method) combination.
pub fn evaluate<B: Backend>(
    aligner: &Aligner<B>,
    sets: &[(String, PathBuf)],
    layers: &[usize],
    methods: &[AlignOptions],
    enc: &EncodeOptions,
    batch: usize,
) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (name, dir) in sets {
        let read = |ext: &str| -> Result<String> {
            let p = dir.join(format!("{name}.{ext}"));
            std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))
        };
        let (src, tgt, gold) = (read("src")?, read("tgt")?, read("gold")?);
        let (src, tgt, gold): (Vec<&str>, Vec<&str>, Vec<&str>) = (
            src.lines().collect(),
            tgt.lines().collect(),
            gold.lines().collect(),
        );
        anyhow::ensure!(
            src.len() == tgt.len() && src.len() == gold.len(),
            "{name}: {} source, {} target and {} gold lines",
            src.len(),
            tgt.len(),
            gold.len()
        );
        let gold: Vec<_> = gold
            .iter()
            .enumerate()
            .map(|(i, g)| pharaoh::parse_line(g, i + 1, "gold"))
            .collect::<xlalign_core::Result<_>>()?;
        let pairs: Vec<(&str, &str)> = src.iter().copied().zip(tgt.iter().copied()).collect();
        let pb = progress::bar(pairs.len() as u64, "pairs");
        pb.set_message(name.to_string());
        // encoded[layer index][pair]
        let mut encoded: Vec<Vec<Option<EncodedPair>>> =
            vec![Vec::with_capacity(pairs.len()); layers.len()];
        for chunk in pairs.chunks(batch.max(1)) {
            for r in pollster::block_on(aligner.encode_pairs_at(chunk, enc, layers))? {
                match r {
                    Ok(per_layer) => per_layer
                        .into_iter()
                        .enumerate()
                        .for_each(|(i, p)| encoded[i].push(Some(p))),
                    Err(e) => {
                        eprintln!("{name}: a pair could not be encoded: {e}");
                        encoded.iter_mut().for_each(|v| v.push(None));
                    }
                }
            }
            pb.inc(chunk.len() as u64);
        }
        pb.finish_and_clear();
        for (li, &layer) in layers.iter().enumerate() {
            for opts in methods {
                let mut counts = AerCounts::default();
                for (p, g) in encoded[li].iter().zip(&gold) {
                    let links = match p {
                        Some(p) => aligner
                            .extract(p, opts)?
                            .links
                            .iter()
                            .map(|l| pharaoh::PharaohLink {
                                src: l.src,
                                tgt: l.tgt,
                                sure: true,
                            })
                            .collect(),
                        None => Vec::new(),
                    };
                    counts.add(g, &links);
                }
                rows.push(Row {
                    set: name.clone(),
                    layer,
                    method: describe(opts),
                    metrics: counts.metrics(),
                });
            }
        }
    }
    Ok(rows)
}

/// A short name for a configuration: `softmax 0.3`, `argmax`, `itermax`, `argmax word-avg`.
pub fn describe(o: &AlignOptions) -> String {
    let mut s = o.method.name().to_string();
    if o.method.uses_dot_products() {
        s.push_str(&format!(" {}", o.effective_threshold()));
        if o.temperature != 1.0 {
            s.push_str(&format!(" T{}", o.temperature));
        }
    }
    if o.level != Level::Subword {
        s.push_str(&format!(" {}", o.level.name()));
    }
    if o.direction != xlalign_core::align::Direction::Both {
        s.push_str(&format!(" {}", o.direction.name()));
    }
    if o.distortion > 0.0 {
        s.push_str(&format!(" distortion {}", o.distortion));
    }
    s
}

/// `chosen`, every other method as the model's recommendation gives it
/// ([`AlignRequest::align_options`]), plus the word-average variant of argmax.
pub fn all_methods(chosen: AlignOptions, rec: &Recommendation) -> Result<Vec<AlignOptions>> {
    let with = |method: Method, level: Option<Level>| {
        AlignRequest {
            method: Some(method),
            level,
            ..Default::default()
        }
        .align_options(rec)
    };
    let mut v = Vec::new();
    for m in Method::ALL {
        v.push(if m == chosen.method {
            chosen
        } else {
            with(m, None)?
        });
    }
    v.push(with(Method::Argmax, Some(Level::WordAverage))?);
    Ok(v)
}

pub fn print_markdown(rows: &[Row]) {
    println!("| set | layer | method | AER | P | R | F1 |");
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        let m = &r.metrics;
        println!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            r.set,
            r.layer,
            r.method,
            100.0 * m.aer,
            100.0 * m.precision,
            100.0 * m.recall,
            100.0 * m.f1
        );
    }
}

pub fn run_gold_dir<B: Backend>(
    aligner: Arc<Aligner<B>>,
    dir: &Path,
    only: &[String],
    layers: &[usize],
    methods: &[AlignOptions],
    enc: &EncodeOptions,
    json: bool,
) -> Result<i32> {
    let mut sets = find_sets(dir)?;
    if !only.is_empty() {
        sets.retain(|(n, _)| only.contains(n));
        anyhow::ensure!(
            !sets.is_empty(),
            "none of the sets {only:?} is in {}",
            dir.display()
        );
    }
    let rows = evaluate(&aligner, &sets, layers, methods, enc, 32)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print_markdown(&rows);
    }
    Ok(0)
}
