//! `xlalign embed`: one JSON object per input line, in input order.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;
use xlalign_core::embed::{embed_texts, Prefix};

use crate::{backend, input, load, progress};

#[derive(clap::Args)]
pub struct Args {
    /// GGUF model file (default: the model setup installs under public/models/).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Input file with one sentence per line (default: stdin).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Prefix joined before each text, as the model was trained (E5: passage or query).
    #[arg(long, default_value = "passage", value_parser = ["passage", "query", "none"])]
    prefix: String,
    /// Also output this layer's token vectors (0 = embeddings, N = after block N).
    #[arg(long)]
    layer: Option<usize>,
    /// Output format.
    #[arg(long, default_value = "jsonl", value_parser = ["jsonl"])]
    format: String,
    /// Sentences per encoder batch.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[command(flatten)]
    backend: backend::BackendArgs,
}

#[derive(Serialize)]
struct Line<'a> {
    tokens: &'a [String],
    ids: &'a [u32],
    embedding: &'a [f32],
    #[serde(skip_serializing_if = "Option::is_none")]
    layer: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hidden: Option<Vec<Vec<f32>>>,
}

pub fn run(args: Args) -> Result<i32> {
    let model = std::sync::Arc::new(load::load_model(args.model.as_deref())?);
    let prefix = Prefix::parse(&args.prefix)?;
    if let Some(l) = args.layer {
        anyhow::ensure!(
            l <= model.config.layers,
            "--layer {l}: the model has layers 0..={}",
            model.config.layers
        );
    }
    let backend = backend::create(&model, &args.backend)?;
    let name = args
        .input
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "stdin".into());
    let pb = progress::bar(0, "lines");
    pb.set_message("embedding");
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut batch: Vec<String> = Vec::new();
    let flush = |batch: &mut Vec<String>, out: &mut dyn Write| -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let texts: Vec<&str> = batch.iter().map(String::as_str).collect();
        let embedded =
            pollster::block_on(embed_texts(&model, &backend, &texts, prefix, args.layer))?;
        for e in &embedded {
            let line = Line {
                tokens: &e.tokenized.tokens,
                ids: &e.tokenized.ids,
                embedding: &e.embedding,
                layer: args.layer,
                hidden: e
                    .layer
                    .as_ref()
                    .map(|m| m.rows().into_iter().map(|r| r.to_vec()).collect()),
            };
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")?;
        }
        pb.inc(batch.len() as u64);
        batch.clear();
        Ok(())
    };
    for (n, line) in input::lines(input::open(args.input.as_deref())?, name).enumerate() {
        batch.push(line?.map_err(|e| anyhow::anyhow!("line {}: {e}", n + 1))?);
        if batch.len() >= args.batch.max(1) {
            flush(&mut batch, &mut out)?;
        }
    }
    flush(&mut batch, &mut out)?;
    out.flush()?;
    pb.finish_and_clear();
    Ok(0)
}
