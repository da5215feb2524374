//! `xlalign similarity`: sentence-level scores per pair (pooled-embedding cosine,
//! BERTScore-style greedy match over aligned-layer words, share of words aligned).

use std::io::Write;

use anyhow::Result;

use super::align::{for_each_batch, PairJob, PairRun};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    job: PairJob,
    /// Output: tab-separated columns with a header, or JSON lines.
    #[arg(long, default_value = "tsv", value_parser = ["tsv", "json"])]
    format: String,
}

pub fn run(mut args: Args) -> Result<i32> {
    // Similarity is mostly used on raw sentences.
    args.job.extract.words.get_or_insert_with(|| "raw".into());
    args.job.extract.sentence_cosine = true;
    let PairRun {
        aligner,
        enc,
        opts,
        mut out,
    } = args.job.start()?;
    let json = args.format == "json";
    if !json {
        writeln!(
            out,
            "line\tcosine\tbertscore_f1\tbertscore_src\tbertscore_tgt\tcoverage_src\tcoverage_tgt"
        )?;
    }
    let failed = for_each_batch(
        &aligner,
        &args.job.pairs,
        &enc,
        &opts,
        args.job.batch,
        |n, a| {
            match (a, json) {
                (Some(a), true) => {
                    serde_json::to_writer(
                        &mut out,
                        &serde_json::json!({"line": n, "similarity": a.similarity}),
                    )?;
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
                (None, true) => writeln!(
                    out,
                    "{}",
                    serde_json::json!({"line": n, "similarity": null})
                )?,
                (None, false) => writeln!(out, "{n}\t\t\t\t\t\t")?,
            }
            Ok(())
        },
    )?;
    out.flush()?;
    Ok(if failed > 0 { 2 } else { 0 })
}
