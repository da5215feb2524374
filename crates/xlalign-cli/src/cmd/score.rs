//! `xlalign score`: quality scores per sentence pair for filtering a parallel corpus, streamed
//! in blocks (the core's [`xlalign_core::corpus::score`] does the scoring).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Result};
use serde::Serialize;
use xlalign_core::corpus::{score_block, PairScore, ScoreOptions, Thresholds, MAX_BLOCK};

use super::align::{open_output, PairJob, PairRun};
use super::pairs::{read_raw_pairs, PairLine, RawPair};
use crate::progress;
use xlalign_core::corpus::for_each_block;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    job: PairJob,
    /// Neighbours per side in the margin score (LASER uses 4).
    #[arg(long, default_value_t = ScoreOptions::default().k)]
    k: usize,
    /// Pairs per block. The margin compares each pair with its k nearest neighbours among
    /// the pairs of its block (consecutive input lines; when more than a block is left at the
    /// end, the last two blocks share it evenly, so a block holds half to all of this), so it
    /// depends on the block: a larger block finds closer neighbours (a harder test), and
    /// memory and time grow with its square. At most 10,000.
    #[arg(long, default_value_t = xlalign_core::corpus::DEFAULT_BLOCK)]
    block: usize,
    /// Keep only pairs whose sentence cosine is at least this.
    #[arg(long)]
    min_cosine: Option<f32>,
    /// Keep only pairs whose margin score is at least this.
    #[arg(long)]
    min_margin: Option<f32>,
    /// Keep only pairs with at least this share of words linked, on each side.
    #[arg(long)]
    min_coverage: Option<f32>,
    /// Keep only pairs whose longer side has at most this many times the subword tokens of
    /// the shorter side.
    #[arg(long)]
    max_length_ratio: Option<f32>,
    /// Write only the kept pairs, as they were read (a line of --input, or the source line to
    /// --output and the target line to --output-tgt for --src/--tgt), instead of a row of
    /// scores per line.
    #[arg(long)]
    keep: bool,
    /// With --keep and --src/--tgt: the file for the kept target lines.
    #[arg(long, requires = "keep")]
    output_tgt: Option<PathBuf>,
    /// Rows: tab-separated columns with a header, or JSON lines.
    #[arg(long, default_value = "tsv", value_parser = ["tsv", "json"])]
    format: String,
}

/// A JSON row: the line number and the pair's scores.
#[derive(Serialize)]
struct Row<'a> {
    line: usize,
    #[serde(flatten)]
    score: &'a PairScore,
}

pub fn run(mut args: Args) -> Result<i32> {
    // Corpora to clean are raw sentences.
    args.job.extract.words.get_or_insert_with(|| "raw".into());
    if !(1..=MAX_BLOCK).contains(&args.block) {
        bail!("--block must be between 1 and {MAX_BLOCK}");
    }
    let parallel = args.job.pairs.src.is_some();
    if args.keep && parallel && args.output_tgt.is_none() {
        bail!("--keep with --src/--tgt needs --output-tgt for the kept target lines");
    }
    let opts = ScoreOptions {
        k: args.k,
        batch: args.job.batch,
        thresholds: Thresholds {
            min_cosine: args.min_cosine,
            min_margin: args.min_margin,
            min_coverage: args.min_coverage,
            max_length_ratio: args.max_length_ratio,
        },
    };
    opts.thresholds.validate()?;
    if opts.k == 0 {
        bail!("--k must be at least 1");
    }
    let PairRun {
        aligner,
        enc,
        opts: align,
        out,
    } = args.job.start()?;
    let mut sink = Sink {
        out,
        out_tgt: args
            .output_tgt
            .as_ref()
            .map(|p| open_output(Some(p)))
            .transpose()?,
        keep: args.keep,
        json: args.format == "json",
    };
    sink.header()?;

    let pb = progress::bar(0, "pairs");
    pb.set_message("scoring");
    let mut failed = 0usize;
    let mut run_block = |block: Vec<(usize, RawPair, PairLine)>| -> Result<()> {
        let ok: Vec<(&str, &str)> = block
            .iter()
            .filter_map(|(_, _, p)| p.as_ref().ok())
            .map(|(s, t)| (s.as_str(), t.as_str()))
            .collect();
        let mut before = 0;
        let scores = pollster::block_on(score_block(&aligner, &ok, &enc, &align, &opts, |n| {
            pb.inc((n - before) as u64);
            before = n;
        }))?;
        let mut scores = scores.into_iter();
        for (n, raw, pair) in block.iter() {
            let r = match pair {
                Err(e) => {
                    pb.inc(1);
                    Err(e.clone())
                }
                Ok(_) => scores
                    .next()
                    .expect("one score per pair")
                    .map_err(|e| e.to_string()),
            };
            if let Err(e) = &r {
                pb.suspend(|| eprintln!("line {n}: {e}"));
                failed += 1;
            }
            sink.row(*n, raw, r)?;
        }
        Ok(())
    };
    let lines = read_raw_pairs(&args.job.pairs)?
        .enumerate()
        .map(|(n, r)| r.map(|(raw, pair)| (n + 1, raw, pair)));
    for_each_block(lines, args.block, &mut run_block)?;
    pb.finish_and_clear();
    sink.flush()?;
    if failed > 0 {
        eprintln!("{failed} line(s) could not be scored (error rows, never kept)");
        return Ok(2);
    }
    Ok(0)
}

/// Where rows (or kept pairs) go.
struct Sink {
    out: Box<dyn Write>,
    out_tgt: Option<Box<dyn Write>>,
    keep: bool,
    json: bool,
}

impl Sink {
    fn header(&mut self) -> Result<()> {
        if !self.keep && !self.json {
            writeln!(
                self.out,
                "line\tcosine\tmargin\tcoverage_src\tcoverage_tgt\tlength_ratio\tkeep\terror"
            )?;
        }
        Ok(())
    }

    fn row(
        &mut self,
        n: usize,
        raw: &RawPair,
        r: std::result::Result<PairScore, String>,
    ) -> Result<()> {
        if self.keep {
            if r.is_ok_and(|s| s.keep) {
                match raw {
                    RawPair::Line(l) => writeln!(self.out, "{l}")?,
                    RawPair::Parallel(s, t) => {
                        writeln!(self.out, "{s}")?;
                        let tgt = self
                            .out_tgt
                            .as_mut()
                            .expect("checked before the first pair");
                        writeln!(tgt, "{t}")?;
                    }
                }
            }
            return Ok(());
        }
        match (r, self.json) {
            (Ok(s), true) => {
                serde_json::to_writer(&mut self.out, &Row { line: n, score: &s })?;
                writeln!(self.out)?;
            }
            (Ok(s), false) => writeln!(
                self.out,
                "{n}\t{:.4}\t{:.4}\t{:.4}\t{:.4}\t{:.3}\t{}\t",
                s.cosine,
                s.margin,
                s.coverage.src,
                s.coverage.tgt,
                s.length_ratio,
                u8::from(s.keep)
            )?,
            (Err(e), true) => writeln!(
                self.out,
                "{}",
                serde_json::json!({"line": n, "keep": false, "error": e})
            )?,
            (Err(e), false) => {
                let e = e.replace(['\t', '\n', '\r'], " ");
                writeln!(self.out, "{n}\t\t\t\t\t\t0\t{e}")?
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.out.flush()?;
        if let Some(t) = self.out_tgt.as_mut() {
            t.flush()?;
        }
        Ok(())
    }
}
