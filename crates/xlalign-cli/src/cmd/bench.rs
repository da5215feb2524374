//! `xlalign bench`: load time, embedding throughput (single sentences and batches, cold and
//! warm), the arithmetic rate against a matmul microbenchmark, one short pair's latency,
//! sentence pairs aligned per second, and peak memory. Numbers go to README; nothing here
//! asserts a speed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use xlalign_core::embed::{embed_texts, Prefix};
use xlalign_core::pipeline::Aligner;
use xlalign_core::Backend;

use xlalign_gpu::AnyBackend;

use super::align::ExtractArgs;
use crate::{backend, load};

#[derive(clap::Args)]
pub struct Args {
    /// GGUF model file (default: the model setup installs under public/models/).
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
    /// `cpu` or `webgpu`.
    kind: String,
    /// The adapter (GPU) or instruction set and threads (CPU).
    device: String,
    model_load_ms: f64,
    tokenizer_included: bool,
    /// Backend creation: for the GPU, opening the adapter, uploading the weights and
    /// compiling the encoder's pipelines.
    backend_init_ms: f64,
    /// The first call after that (one sentence): the remaining first-use costs (activation
    /// buffers, lazily built pipelines).
    first_call_ms: f64,
    sentences: usize,
    tokens: usize,
    /// First pass (cold, right after `first_call_ms`), then the best of the repeats (warm).
    single_cold_tokens_per_s: f64,
    single_tokens_per_s: f64,
    batch32_cold_tokens_per_s: f64,
    batch32_tokens_per_s: f64,
    /// All sentences (64 in the default file) in one call.
    batch64_tokens_per_s: f64,
    /// Arithmetic rate of the batched embedding runs (matmuls and attention).
    batch32_gflops: f64,
    batch64_gflops: f64,
    /// The model's largest matrix (FFN up-projection) times 512 tokens, alone.
    matmul_gflops: f64,
    matmul_note: String,
    /// One short pair aligned with `align` (encoder up to the alignment layer, extraction,
    /// scores): the first call, then the best of the repeats.
    short_pair: String,
    short_pair_cold_ms: f64,
    short_pair_ms: f64,
    pairs_source: String,
    pairs: usize,
    pairs_cold_per_s: Option<f64>,
    pairs_per_s: Option<f64>,
    pair_tokens_per_s: Option<f64>,
    pair_gflops: Option<f64>,
    /// GPU only: the same pairs with the links extracted on the CPU from read-back states
    /// instead of on the GPU.
    pairs_per_s_cpu_extraction: Option<f64>,
    peak_rss_mb: Option<f64>,
}

/// The pair `short_pair_ms` times (pre-tokenised, as the extraction arguments default to).
const SHORT_PAIR: (&str, &str) = ("The house is big .", "Das Haus ist groß .");

/// Gold slice aligned when no `--src`/`--tgt` are given (paths from the repository root).
const DEFAULT_PAIRS: (&str, &str) = (
    "tests/data/gold/enfr/enfr.src",
    "tests/data/gold/enfr/enfr.tgt",
);

/// Floating-point operations of a forward pass over one sequence of `len` tokens through
/// `layers` blocks: the six linear layers and the two attention products.
fn forward_flops(c: &xlalign_core::model::EncoderConfig, len: usize, layers: usize) -> f64 {
    let (l, h, ff) = (len as f64, c.hidden as f64, c.ff as f64);
    layers as f64 * (2.0 * l * (4.0 * h * h + 2.0 * h * ff) + 4.0 * l * l * h)
}

/// Microbenchmark of the backend's matmul on the model's FFN up-projection.
fn matmul_rate(
    model: &xlalign_core::Model,
    backend: &backend::SelectedBackend,
) -> Result<(f64, String)> {
    let w = &model.weights.layers[0].ffn_up;
    let (m, n, k) = (512usize, w.out_features(), w.in_features());
    let x: Vec<f32> = (0..m * k)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let flops = 2.0 * (m * n * k) as f64;
    match backend.as_gpu() {
        Some(g) => {
            // Kernel time alone: one submission of `REPEATS` dispatches against one of a
            // single dispatch, so uploads, submission and readback cancel out.
            const REPEATS: usize = 21;
            let ctx = g.context();
            let run = |repeats: usize| {
                pollster::block_on(xlalign_gpu::ops::matmul_repeated(
                    ctx,
                    &x,
                    m,
                    &w.weight,
                    &w.bias,
                    xlalign_gpu::kernels::Epilogue::None,
                    repeats,
                ))
            };
            run(REPEATS)?;
            let (once, _) = best_of(5, || Ok(run(1)?))?;
            let (many, _) = best_of(3, || Ok(run(REPEATS)?))?;
            let per_matmul = ((many - once) / (REPEATS - 1) as f64).max(1e-9);
            Ok((
                flops / per_matmul / 1e9,
                format!(
                    "{m}×{k} · {k}×{n} {}, kernel time only ({:.2} ms per matmul; {:.1} GFLOP/s with upload and readback)",
                    w.weight.dtype.name(),
                    per_matmul * 1e3,
                    flops / once / 1e9
                ),
            ))
        }
        None => {
            use xlalign_core::cpu::kernels::{Isa, LinearLayer};
            let layer = LinearLayer::new(w)?;
            let mut out = vec![0f32; m * n];
            let isa = match backend {
                AnyBackend::Cpu { backend, .. } => backend.isa(),
                _ => Isa::best(),
            };
            let (secs, _) = best_of(10, || {
                layer.forward(isa, &x, None, &mut out);
                Ok(())
            })?;
            Ok((
                flops / secs / 1e9,
                format!(
                    "{m}×{k} · {k}×{n} {}, activations quantised to int8",
                    w.weight.dtype.name()
                ),
            ))
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
    r.kind = info.kind.clone();
    r.device = info.device.clone();
    r.backend = if info.reason.is_empty() {
        info.device
    } else {
        format!("{} ({})", info.device, info.reason)
    };

    let text = std::fs::read_to_string(&args.sentences).with_context(|| {
        format!(
            "cannot read {} (run from the repository root or pass --sentences)",
            args.sentences.display()
        )
    })?;
    let sentences: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    anyhow::ensure!(
        !sentences.is_empty(),
        "{} has no sentences",
        args.sentences.display()
    );
    r.sentences = sentences.len();
    let prefix = Prefix::Passage;
    let lens: Vec<usize> = sentences
        .iter()
        .map(|s| {
            model
                .tokenizer
                .encode(s, prefix.text(&model))
                .map(|t| t.len())
        })
        .collect::<Result<_, _>>()?;
    r.tokens = lens.iter().sum();
    let tokens = r.tokens as f64;
    let flops: f64 = lens
        .iter()
        .map(|&l| forward_flops(&model.config, l, model.config.layers))
        .sum();

    let t = Instant::now();
    pollster::block_on(embed_texts(&model, &backend, &sentences[..1], prefix, None))?;
    r.first_call_ms = t.elapsed().as_secs_f64() * 1e3;

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
    let (sentences_ref, model_ref, backend_ref) = (&sentences, &model, &backend);
    let batches = |size: usize| {
        move || -> Result<()> {
            for chunk in sentences_ref.chunks(size) {
                pollster::block_on(embed_texts(model_ref, backend_ref, chunk, prefix, None))?;
            }
            Ok(())
        }
    };
    let t = Instant::now();
    batches(32)()?;
    r.batch32_cold_tokens_per_s = tokens / t.elapsed().as_secs_f64();
    let (secs, _) = best_of(args.repeat, batches(32))?;
    r.batch32_tokens_per_s = tokens / secs;
    r.batch32_gflops = flops / secs / 1e9;
    let (secs, _) = best_of(args.repeat, batches(64))?;
    r.batch64_tokens_per_s = tokens / secs;
    r.batch64_gflops = flops / secs / 1e9;
    (r.matmul_gflops, r.matmul_note) = matmul_rate(&model, &backend)?;

    let mut aligner = Aligner::new(model.clone(), backend);
    let (enc, opts) = args.extract.options(&aligner)?;
    r.short_pair = format!("{} ||| {}", SHORT_PAIR.0, SHORT_PAIR.1);
    let t = Instant::now();
    pollster::block_on(aligner.align(SHORT_PAIR.0, SHORT_PAIR.1, &enc, &opts))?;
    r.short_pair_cold_ms = t.elapsed().as_secs_f64() * 1e3;
    let (secs, _) = best_of(args.repeat.max(10), || {
        Ok(pollster::block_on(aligner.align(
            SHORT_PAIR.0,
            SHORT_PAIR.1,
            &enc,
            &opts,
        ))?)
    })?;
    r.short_pair_ms = secs * 1e3;

    let files = match (&args.src, &args.tgt) {
        (Some(s), Some(t)) => Some((s.clone(), t.clone())),
        _ => Some((
            PathBuf::from(DEFAULT_PAIRS.0),
            PathBuf::from(DEFAULT_PAIRS.1),
        ))
        .filter(|(s, t)| s.exists() && t.exists()),
    };
    if let Some((src, tgt)) = files {
        let s = std::fs::read_to_string(&src)
            .with_context(|| format!("cannot read {}", src.display()))?;
        let t = std::fs::read_to_string(&tgt)
            .with_context(|| format!("cannot read {}", tgt.display()))?;
        let pairs: Vec<(&str, &str)> = s.lines().zip(t.lines()).collect();
        r.pairs_source = src.display().to_string();
        let layer = enc.layer.unwrap_or(model.defaults.align_layer);
        let (mut n_tokens, mut pair_flops) = (0usize, 0f64);
        for (a, b) in &pairs {
            for text in [a, b] {
                let n = model
                    .tokenizer
                    .encode(text, &model.defaults.passage_prefix)?
                    .len();
                n_tokens += n;
                pair_flops += forward_flops(&model.config, n, layer);
            }
        }
        let all_pairs = |aligner: &Aligner<backend::SelectedBackend>| -> Result<()> {
            for chunk in pairs.chunks(32) {
                pollster::block_on(aligner.align_batch(chunk, &enc, &opts))?;
            }
            Ok(())
        };
        let t = Instant::now();
        all_pairs(&aligner)?;
        r.pairs_cold_per_s = Some(pairs.len() as f64 / t.elapsed().as_secs_f64());
        let (secs, _) = best_of(args.repeat.min(2), || all_pairs(&aligner))?;
        r.pairs = pairs.len();
        r.pairs_per_s = Some(pairs.len() as f64 / secs);
        r.pair_tokens_per_s = Some(n_tokens as f64 / secs);
        r.pair_gflops = Some(pair_flops / secs / 1e9);
        if let AnyBackend::Gpu(g) = &mut aligner.backend {
            g.set_device_alignment(false);
            let (secs, _) = best_of(args.repeat.min(2), || all_pairs(&aligner))?;
            r.pairs_per_s_cpu_extraction = Some(pairs.len() as f64 / secs);
            if let AnyBackend::Gpu(g) = &mut aligner.backend {
                g.set_device_alignment(true);
            }
        }
    }
    r.peak_rss_mb = peak_rss_mb();

    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(0);
    }
    println!("backend:                {}", r.backend);
    println!(
        "model load:             {:.1} ms (mmap + validation + tokenizer build)",
        r.model_load_ms
    );
    println!(
        "backend init:           {:.1} ms (a GPU: adapter, weight upload, pipelines)",
        r.backend_init_ms
    );
    println!(
        "first call:             {:.1} ms (one sentence, right after init)",
        r.first_call_ms
    );
    println!(
        "sentences:              {} ({} tokens with prefix and specials)",
        r.sentences, r.tokens
    );
    println!(
        "embed, one at a time:   {:.0} tokens/s warm, {:.0} cold",
        r.single_tokens_per_s, r.single_cold_tokens_per_s
    );
    println!(
        "embed, batches of 32:   {:.0} tokens/s warm ({:.1} GFLOP/s), {:.0} cold",
        r.batch32_tokens_per_s, r.batch32_gflops, r.batch32_cold_tokens_per_s
    );
    println!(
        "embed, batches of 64:   {:.0} tokens/s warm ({:.1} GFLOP/s)",
        r.batch64_tokens_per_s, r.batch64_gflops
    );
    println!(
        "matmul alone:           {:.1} GFLOP/s ({})",
        r.matmul_gflops, r.matmul_note
    );
    println!(
        "short pair, align:      {:.1} ms warm, {:.1} ms cold (`{}`)",
        r.short_pair_ms, r.short_pair_cold_ms, r.short_pair
    );
    if let Some(p) = r.pairs_per_s {
        println!(
            "align, batches of 32:   {:.1} pairs/s warm ({} pairs of {}, {:.0} tokens/s, {:.1} GFLOP/s), {:.1} cold",
            p,
            r.pairs,
            r.pairs_source,
            r.pair_tokens_per_s.unwrap_or(0.0),
            r.pair_gflops.unwrap_or(0.0),
            r.pairs_cold_per_s.unwrap_or(0.0)
        );
    }
    if let Some(p) = r.pairs_per_s_cpu_extraction {
        println!(
            "  links on the CPU:     {p:.1} pairs/s warm (states read back, extraction on the CPU)"
        );
    }
    if let Some(m) = r.peak_rss_mb {
        println!("peak memory (RSS):      {m:.0} MB");
    }
    Ok(0)
}
