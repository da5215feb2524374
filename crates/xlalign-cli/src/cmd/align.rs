//! `xlalign align`: word alignments for sentence pairs, streamed in input order.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use xlalign_core::align::{AlignOptions, Direction, Level, Method};
use xlalign_core::pharaoh;
use xlalign_core::pipeline::{Aligner, EncodeOptions, PairAlignment};
use xlalign_core::request::AlignRequest;

use super::pairs::{read_pairs, PairInput, PairLine};
use crate::{backend, load, names, progress};

/// How to align: the core's [`AlignRequest`] as flags. Unset values take the model's
/// recommendation; the others' defaults are the core's ([`AlignOptions::default`]).
#[derive(clap::Args, Clone)]
pub struct ExtractArgs {
    /// Extraction method (default: the model's recommendation).
    #[arg(long, value_parser = names::core::<Method>())]
    pub method: Option<Method>,
    /// Hidden layer to align with (default: the model's recommendation).
    #[arg(long)]
    pub layer: Option<usize>,
    /// Softmax/entmax probability threshold (default: the model's recommendation).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Align subwords and lift links to words, or average subwords into words first.
    #[arg(long, value_parser = names::core::<Level>(), default_value_t = AlignOptions::default().level)]
    pub level: Level,
    /// Both directions must agree, only source→target (forward) / target→source (reverse),
    /// or either (union).
    #[arg(long, value_parser = names::core::<Direction>(), default_value_t = AlignOptions::default().direction)]
    pub direction: Direction,
    /// SimAlign's distortion (position prior) ratio in [0, 1]; 0 = off.
    #[arg(long, default_value_t = AlignOptions::default().distortion)]
    pub distortion: f32,
    /// Itermax rounds.
    #[arg(long, default_value_t = AlignOptions::default().iterations)]
    pub iterations: usize,
    /// Itermax discount for already aligned rows/columns.
    #[arg(long, default_value_t = AlignOptions::default().alpha)]
    pub alpha: f32,
    /// Softmax/entmax temperature (default: the model's recommendation; 1 is awesome-align's).
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Input words: space-separated tokens (gold-set style) or raw text [default:
    /// pretokenized for align and eval, raw for similarity and score].
    #[arg(long, value_parser = ["pretokenized", "raw"])]
    pub words: Option<String>,
    /// Also compute the cosine of the pooled sentence embeddings (`similarity.cosine` in
    /// JSON output; runs the layers past the alignment layer). Off for `align`, always on
    /// for `similarity`.
    #[arg(long)]
    pub sentence_cosine: bool,
}

impl ExtractArgs {
    /// The flags as the core's request.
    pub fn request(&self) -> AlignRequest {
        AlignRequest {
            layer: self.layer,
            pretokenized: Some(self.words.as_deref().unwrap_or("pretokenized") == "pretokenized"),
            sentence_cosine: Some(self.sentence_cosine),
            words: None,
            method: self.method,
            threshold: self.threshold,
            temperature: self.temperature,
            iterations: Some(self.iterations),
            alpha: Some(self.alpha),
            distortion: Some(self.distortion),
            direction: Some(self.direction),
            level: Some(self.level),
        }
    }

    pub fn options<B: xlalign_core::Backend>(
        &self,
        aligner: &Aligner<B>,
    ) -> Result<(EncodeOptions, AlignOptions)> {
        Ok(self.request().resolve(&aligner.recommendation()?)?)
    }
}

/// What `align` and `similarity` both take: the model, the pairs, how to align them, where
/// the output goes, the batch size and the device.
#[derive(clap::Args)]
pub struct PairJob {
    /// GGUF model file (default: the model setup installs under public/models/).
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub pairs: PairInput,
    #[command(flatten)]
    pub extract: ExtractArgs,
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Pairs per encoder batch.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    #[command(flatten)]
    pub backend: backend::BackendArgs,
}

/// A [`PairJob`] ready to run: the aligner on its backend, the options and the output.
pub struct PairRun {
    pub aligner: Aligner<backend::SelectedBackend>,
    pub enc: EncodeOptions,
    pub opts: AlignOptions,
    pub out: Box<dyn Write>,
}

impl PairJob {
    /// Loads the model, opens the backend and the output, and reads the options.
    pub fn start(&self) -> Result<PairRun> {
        let model = Arc::new(load::load_model(self.model.as_deref())?);
        let backend = backend::create(&model, &self.backend)?;
        let aligner = Aligner::new(model, backend);
        let (enc, opts) = self.extract.options(&aligner)?;
        let out = open_output(self.output.as_ref())?;
        Ok(PairRun {
            aligner,
            enc,
            opts,
            out,
        })
    }
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    job: PairJob,
    /// Output: Pharaoh links (`0-0 1-2`) or one JSON object per pair.
    #[arg(long, default_value = "pharaoh", value_parser = ["pharaoh", "json"])]
    format: String,
    /// Also write each link's score to this file (one line per pair, one number per link, in
    /// the order of the links line), as awesome-align's prob file.
    #[arg(long)]
    scores: Option<PathBuf>,
}

/// Runs `f` over the pairs in batches, in order; bad lines are reported on stderr and get
/// `None`. Returns how many lines failed.
pub fn for_each_batch<B: xlalign_core::Backend>(
    aligner: &Aligner<B>,
    pairs: &PairInput,
    enc: &EncodeOptions,
    opts: &AlignOptions,
    batch_size: usize,
    mut emit: impl FnMut(usize, Option<&PairAlignment>) -> Result<()>,
) -> Result<usize> {
    let pb = progress::bar(0, "pairs");
    pb.set_message("aligning");
    let mut failed = 0usize;
    let mut line_no = 0usize;
    let mut batch: Vec<(usize, PairLine)> = Vec::new();
    let mut run = |batch: &mut Vec<(usize, PairLine)>, failed: &mut usize| -> Result<()> {
        let ok: Vec<(&str, &str)> = batch
            .iter()
            .filter_map(|(_, p)| p.as_ref().ok())
            .map(|(s, t)| (s.as_str(), t.as_str()))
            .collect();
        let results = pollster::block_on(aligner.align_batch(&ok, enc, opts))?;
        let mut results = results.into_iter();
        for (n, p) in batch.iter() {
            let r = match p {
                Err(e) => Err(e.clone()),
                Ok(_) => results
                    .next()
                    .expect("one result per pair")
                    .map_err(|e| e.to_string()),
            };
            match r {
                Ok(a) => emit(*n, Some(&a))?,
                Err(e) => {
                    eprintln!("line {n}: {e}");
                    *failed += 1;
                    emit(*n, None)?;
                }
            }
        }
        pb.inc(batch.len() as u64);
        batch.clear();
        Ok(())
    };
    for p in read_pairs(pairs)? {
        line_no += 1;
        batch.push((line_no, p?));
        if batch.len() >= batch_size.max(1) {
            run(&mut batch, &mut failed)?;
        }
    }
    run(&mut batch, &mut failed)?;
    pb.finish_and_clear();
    Ok(failed)
}

pub fn open_output(path: Option<&PathBuf>) -> Result<Box<dyn Write>> {
    Ok(match path {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    })
}

pub fn run(args: Args) -> Result<i32> {
    let PairRun {
        aligner,
        enc,
        opts,
        mut out,
    } = args.job.start()?;
    let mut scores = args
        .scores
        .as_ref()
        .map(|p| open_output(Some(p)))
        .transpose()?;
    let json = args.format == "json";
    let failed = for_each_batch(
        &aligner,
        &args.job.pairs,
        &enc,
        &opts,
        args.job.batch,
        |_, a| {
            match (a, json) {
                (Some(a), true) => serde_json::to_writer(&mut out, a)?,
                (Some(a), false) => out.write_all(pharaoh::links_line(&a.links).as_bytes())?,
                (None, true) => out.write_all(b"null")?,
                (None, false) => {}
            }
            out.write_all(b"\n")?;
            if let Some(s) = scores.as_mut() {
                if let Some(a) = a {
                    s.write_all(pharaoh::scores_line(&a.links).as_bytes())?;
                }
                s.write_all(b"\n")?;
            }
            Ok(())
        },
    )?;
    out.flush()?;
    if let Some(s) = scores.as_mut() {
        s.flush()?;
    }
    if failed > 0 {
        eprintln!("{failed} line(s) could not be aligned (empty output lines)");
        return Ok(2);
    }
    Ok(0)
}
