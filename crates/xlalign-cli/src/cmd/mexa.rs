//! `xlalign mexa`: how well the encoder aligns two languages, per layer, over a parallel
//! file (MEXA; the core's [`xlalign_core::corpus::mexa`] computes it).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Result};
use serde::Serialize;
use xlalign_core::corpus::{
    add_block, for_each_block, mexa, LayerAlignment, MexaOptions, MAX_BLOCK,
};
use xlalign_core::pipeline::Aligner;

use super::align::open_output;
use super::pairs::{read_pairs, PairInput};
use crate::{backend, load, progress};

#[derive(clap::Args)]
pub struct Args {
    /// GGUF model file (default: the model setup installs under public/models/).
    #[arg(long)]
    model: Option<PathBuf>,
    #[command(flatten)]
    pairs: PairInput,
    /// Input words: raw text, or space-separated tokens (gold-set style, joined naturally
    /// before encoding).
    #[arg(long, default_value = "raw", value_parser = ["raw", "pretokenized"])]
    words: String,
    /// Layers to score, e.g. `0,6,12` (default: every layer, 0 = embeddings).
    #[arg(long, value_delimiter = ',')]
    layers: Option<Vec<usize>>,
    /// Pairs per block (at most 10,000). Each pair competes with the other pairs of its block
    /// (consecutive lines; when more than a block is left at the end, the last two blocks
    /// share it evenly), so the score falls as blocks grow; a file longer than one block gets
    /// the pair-weighted mean of its blocks' scores. The paper scores 100 sentences.
    #[arg(long, default_value_t = xlalign_core::corpus::DEFAULT_BLOCK)]
    block: usize,
    /// Sentences per encoder batch.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Output: a tab-separated table with a header, or one JSON object.
    #[arg(long, default_value = "tsv", value_parser = ["tsv", "json"])]
    format: String,
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    backend: backend::BackendArgs,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    pairs: usize,
    blocks: usize,
    /// Input lines that were not pairs (left out).
    skipped: usize,
    layers: Vec<LayerAlignment>,
}

pub fn run(args: Args) -> Result<i32> {
    if !(1..=MAX_BLOCK).contains(&args.block) {
        bail!("--block must be between 1 and {MAX_BLOCK}");
    }
    let model = Arc::new(load::load_model(args.model.as_deref())?);
    let backend = backend::create(&model, &args.backend)?;
    let aligner = Aligner::new(model, backend);
    let opts = MexaOptions {
        layers: args.layers.clone(),
        pretokenized: args.words == "pretokenized",
        batch: args.batch,
    };
    let mut out = open_output(args.output.as_ref())?;

    let pb = progress::bar(0, "sentences");
    pb.set_message("embedding");
    let mut report = Report {
        pairs: 0,
        blocks: 0,
        skipped: 0,
        layers: Vec::new(),
    };
    let mut skipped = 0;
    let pairs = read_pairs(&args.pairs)?
        .enumerate()
        .filter_map(|(n, p)| match p {
            Err(e) => Some(Err(e)),
            Ok(Ok(pair)) => Some(Ok(pair)),
            Ok(Err(e)) => {
                pb.suspend(|| eprintln!("line {}: {e} (left out)", n + 1));
                skipped += 1;
                None
            }
        });
    let run_block = |block: Vec<(String, String)>| -> Result<()> {
        let src: Vec<&str> = block.iter().map(|(s, _)| s.as_str()).collect();
        let tgt: Vec<&str> = block.iter().map(|(_, t)| t.as_str()).collect();
        let mut before = 0;
        let got = pollster::block_on(mexa(&aligner, &src, &tgt, &opts, |n| {
            pb.inc((n - before) as u64);
            before = n;
        }))?;
        add_block(&mut report.layers, got);
        report.pairs += block.len();
        report.blocks += 1;
        Ok(())
    };
    for_each_block(pairs, args.block, run_block)?;
    report.skipped = skipped;
    pb.finish_and_clear();

    if args.format == "json" {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(out, "layer\tmexa\tsrc_to_tgt\ttgt_to_src\tpairs")?;
        for l in &report.layers {
            writeln!(
                out,
                "{}\t{:.4}\t{:.4}\t{:.4}\t{}",
                l.layer, l.mexa, l.src_to_tgt, l.tgt_to_src, l.pairs
            )?;
        }
    }
    out.flush()?;
    if report.skipped > 0 {
        eprintln!(
            "{} line(s) were not pairs and were left out",
            report.skipped
        );
        return Ok(2);
    }
    Ok(0)
}
