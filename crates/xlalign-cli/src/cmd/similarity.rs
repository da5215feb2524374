//! `xlalign similarity`: sentence-level scores per pair (pooled-embedding cosine,
//! BERTScore-style greedy match over aligned-layer words, share of words aligned).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use xlalign_core::pipeline::Aligner;

use super::align::{for_each_batch, open_output, ExtractArgs};
use super::pairs::PairInput;
use crate::{backend, load};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    model: Option<PathBuf>,
    #[command(flatten)]
    pairs: PairInput,
    #[command(flatten)]
    extract: ExtractArgs,
    /// Output: tab-separated columns with a header, or JSON lines.
    #[arg(long, default_value = "tsv", value_parser = ["tsv", "json"])]
    format: String,
    #[arg(short, long)]
    output: Option<PathBuf>,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[command(flatten)]
    backend: backend::BackendArgs,
}

pub fn run(mut args: Args) -> Result<i32> {
    if args.extract.words == "pretokenized" && std::env::args().all(|a| !a.starts_with("--words")) {
        // Similarity is mostly used on raw sentences.
        args.extract.words = "raw".into();
    }
    let model = Arc::new(load::load_model(args.model.as_deref())?);
    let backend = backend::create(&model, &args.backend)?;
    let aligner = Aligner::new(model, backend);
    let (mut enc, opts) = args.extract.options(&aligner)?;
    enc.sentence_cosine = true;
    let mut out = open_output(args.output.as_ref())?;
    let json = args.format == "json";
    if !json {
        writeln!(out, "line\tcosine\tbertscore_f1\tbertscore_src\tbertscore_tgt\tcoverage_src\tcoverage_tgt")?;
    }
    let failed = for_each_batch(&aligner, &args.pairs, &enc, &opts, args.batch, |n, a| {
        match (a, json) {
            (Some(a), true) => {
                serde_json::to_writer(&mut out, &serde_json::json!({"line": n, "similarity": a.similarity}))?;
                writeln!(out)?;
            }
            (Some(a), false) => {
                let s = &a.similarity;
                writeln!(
                    out,
                    "{n}\t{:.4}\t{:.4}\t{:.4}\t{:.4}\t{:.4}\t{:.4}",
                    s.cosine.unwrap_or(f32::NAN),
                    s.bertscore.f1,
                    s.bertscore.src,
                    s.bertscore.tgt,
                    s.coverage.src,
                    s.coverage.tgt
                )?;
            }
            (None, true) => writeln!(out, "{}", serde_json::json!({"line": n, "similarity": null}))?,
            (None, false) => writeln!(out, "{n}\t\t\t\t\t\t")?,
        }
        Ok(())
    })?;
    out.flush()?;
    Ok(if failed > 0 { 2 } else { 0 })
}
