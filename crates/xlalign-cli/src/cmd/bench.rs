//! `xlalign bench`: load time, embedding throughput (single sentences and batches), sentence
//! pairs aligned per second, and peak memory. Numbers go to README; nothing here asserts a
//! speed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use xlalign_core::embed::{embed_texts, Prefix};
use xlalign_core::pipeline::Aligner;
use xlalign_core::Backend;

use super::align::ExtractArgs;
use crate::{backend, load};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    model: Option<PathBuf>,
    /// Sentences to embed, one per line.
    #[arg(long, default_value = "tests/data/bench-sentences.txt")]
    sentences: PathBuf,
    /// Source side of pairs to align (with --tgt), e.g. a gold set's .src file.
    #[arg(long, requires = "tgt")]
    src: Option<PathBuf>,
    #[arg(long, requires = "src")]
    tgt: Option<PathBuf>,
    /// Timed repetitions (the best is reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    extract: ExtractArgs,
    #[command(flatten)]
    backend: backend::BackendArgs,
}

#[derive(Serialize, Default)]
struct Report {
    backend: String,
    model_load_ms: f64,
    tokenizer_included: bool,
    backend_init_ms: f64,
    sentences: usize,
    tokens: usize,
    /// First call (caches, pipelines), then the best of the repeats.
    single_cold_tokens_per_s: f64,
    single_tokens_per_s: f64,
    batch32_tokens_per_s: f64,
    pairs: usize,
    pairs_per_s: Option<f64>,
    pair_tokens_per_s: Option<f64>,
    peak_rss_mb: Option<f64>,
    /// Arithmetic rate of the batched embedding runs (matmuls and attention).
    batch32_gflops: f64,
    /// The model's largest matrix (FFN up-projection) times 512 tokens, alone.
    matmul_gflops: f64,
    matmul_note: String,
}

/// Floating-point operations of a forward pass over one sequence of `len` tokens through
/// `layers` blocks: the six linear layers and the two attention products.
fn forward_flops(c: &xlalign_core::model::EncoderConfig, len: usize, layers: usize) -> f64 {
    let (l, h, ff) = (len as f64, c.hidden as f64, c.ff as f64);
    layers as f64 * (2.0 * l * (4.0 * h * h + 2.0 * h * ff) + 4.0 * l * l * h)
}

/// Microbenchmark of the backend's matmul on the model's FFN up-projection.
fn matmul_rate(model: &xlalign_core::Model, backend: &backend::SelectedBackend) -> Result<(f64, String)> {
    let w = &model.weights.layers[0].ffn_up;
    let (m, n, k) = (512usize, w.out_features(), w.in_features());
    let x: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
    let flops = 2.0 * (m * n * k) as f64;
    match backend.as_gpu() {
        Some(g) => {
            let ctx = g.context();
            let run = || pollster::block_on(xlalign_gpu::ops::matmul(ctx, &x, m, &w.weight, &w.bias, xlalign_gpu::kernels::Epilogue::None));
            run()?;
            let (secs, _) = best_of(5, || Ok(run()?))?;
            Ok((flops / secs / 1e9, format!("{m}×{k} · {k}×{n} {}, upload and readback included", w.weight.dtype.name())))
        }
        None => {
            use xlalign_core::cpu::kernels::{Isa, LinearLayer};
            let layer = LinearLayer::new(w)?;
            let mut out = vec![0f32; m * n];
            let (secs, _) = best_of(10, || {
                layer.forward(Isa::best(), &x, None, &mut out);
                Ok(())
            })?;
            Ok((flops / secs / 1e9, format!("{m}×{k} · {k}×{n} {}, activations quantised to int8", w.weight.dtype.name())))
        }
    }
}

fn best_of<T>(n: usize, mut f: impl FnMut() -> Result<T>) -> Result<(f64, T)> {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..n.max(1) {
        let t = Instant::now();
        let r = f()?;
        best = best.min(t.elapsed().as_secs_f64());
        last = Some(r);
    }
    Ok((best, last.unwrap()))
}

/// Peak resident memory of this process (Linux), in MB.
fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub fn run(args: Args) -> Result<i32> {
    let mut r = Report::default();
    let t = Instant::now();
    let model = Arc::new(load::load_model(args.model.as_deref())?);
    r.model_load_ms = t.elapsed().as_secs_f64() * 1e3;
    r.tokenizer_included = true;
    let t = Instant::now();
    let backend = backend::create(&model, &args.backend)?;
    r.backend_init_ms = t.elapsed().as_secs_f64() * 1e3;
    let info = backend.info();
    r.backend = if info.reason.is_empty() { info.device } else { format!("{} ({})", info.device, info.reason) };

    let text = std::fs::read_to_string(&args.sentences)
        .with_context(|| format!("cannot read {} (run from the repository root or pass --sentences)", args.sentences.display()))?;
    let sentences: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    anyhow::ensure!(!sentences.is_empty(), "{} has no sentences", args.sentences.display());
    r.sentences = sentences.len();
    let prefix = Prefix::Passage;
    r.tokens = sentences
        .iter()
        .map(|s| model.tokenizer.encode(s, prefix.text(&model)).map(|t| t.len()))
        .sum::<Result<usize, _>>()?;
    let tokens = r.tokens as f64;

    let one_by_one = || -> Result<()> {
        for s in &sentences {
            pollster::block_on(embed_texts(&model, &backend, &[s], prefix, None))?;
        }
        Ok(())
    };
    let t = Instant::now();
    one_by_one()?;
    r.single_cold_tokens_per_s = tokens / t.elapsed().as_secs_f64();
    let (secs, _) = best_of(args.repeat, one_by_one)?;
    r.single_tokens_per_s = tokens / secs;
    let (secs, _) = best_of(args.repeat, || {
        for chunk in sentences.chunks(32) {
            pollster::block_on(embed_texts(&model, &backend, chunk, prefix, None))?;
        }
        Ok(())
    })?;
    r.batch32_tokens_per_s = tokens / secs;
    let flops: f64 = sentences
        .iter()
        .map(|s| model.tokenizer.encode(s, prefix.text(&model)).map(|t| forward_flops(&model.config, t.len(), model.config.layers)))
        .sum::<Result<f64, _>>()?;
    r.batch32_gflops = flops / secs / 1e9;
    (r.matmul_gflops, r.matmul_note) = matmul_rate(&model, &backend)?;

    if let (Some(src), Some(tgt)) = (&args.src, &args.tgt) {
        let s = std::fs::read_to_string(src).with_context(|| format!("cannot read {}", src.display()))?;
        let t = std::fs::read_to_string(tgt).with_context(|| format!("cannot read {}", tgt.display()))?;
        let pairs: Vec<(&str, &str)> = s.lines().zip(t.lines()).collect();
        let aligner = Aligner::new(model.clone(), backend);
        let (enc, opts) = args.extract.options(&aligner)?;
        let n_tokens: usize = pairs
            .iter()
            .map(|(a, b)| {
                let p = &model.defaults.passage_prefix;
                Ok(model.tokenizer.encode(a, p)?.len() + model.tokenizer.encode(b, p)?.len())
            })
            .sum::<xlalign_core::Result<usize>>()?;
        let (secs, _) = best_of(args.repeat.min(2), || {
            for chunk in pairs.chunks(32) {
                pollster::block_on(aligner.align_batch(chunk, &enc, &opts))?;
            }
            Ok(())
        })?;
        r.pairs = pairs.len();
        r.pairs_per_s = Some(pairs.len() as f64 / secs);
        r.pair_tokens_per_s = Some(n_tokens as f64 / secs);
    }
    r.peak_rss_mb = peak_rss_mb();

    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(0);
    }
    println!("backend:                {}", r.backend);
    println!("model load:             {:.1} ms (mmap + validation + tokenizer build)", r.model_load_ms);
    println!("backend init:           {:.1} ms", r.backend_init_ms);
    println!("sentences:              {} ({} tokens with prefix and specials)", r.sentences, r.tokens);
    println!("embed, one at a time:   {:.0} tokens/s (cold {:.0})", r.single_tokens_per_s, r.single_cold_tokens_per_s);
    println!("embed, batches of 32:   {:.0} tokens/s ({:.1} GFLOP/s)", r.batch32_tokens_per_s, r.batch32_gflops);
    println!("matmul alone:           {:.1} GFLOP/s ({})", r.matmul_gflops, r.matmul_note);
    if let Some(p) = r.pairs_per_s {
        println!("align, batches of 32:   {:.1} pairs/s ({} pairs, {:.0} tokens/s)", p, r.pairs, r.pair_tokens_per_s.unwrap_or(0.0));
    }
    if let Some(m) = r.peak_rss_mb {
        println!("peak memory (RSS):      {m:.0} MB");
    }
    Ok(0)
}
