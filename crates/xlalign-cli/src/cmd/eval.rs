//! `xlalign eval`: precision, recall, F1 and AER of predicted links against gold links —
//! either given prediction files, or by aligning every gold set of a directory.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use xlalign_core::pharaoh::{self, AerCounts};
use xlalign_core::pipeline::Aligner;

use super::align::ExtractArgs;
use super::gold;
use crate::{backend, load};

#[derive(clap::Args)]
pub struct Args {
    /// Gold Pharaoh file(s) (`i-j` sure, `i?j` or `i-jp` possible). Repeat with --pred for several sets.
    #[arg(long, required_unless_present = "gold_dir")]
    gold: Vec<PathBuf>,
    /// Predicted Pharaoh file(s), parallel to --gold.
    #[arg(long, required_unless_present = "gold_dir")]
    pred: Vec<PathBuf>,
    /// Instead of prediction files: align and score every set in this directory
    /// (`<set>/<set>.src`, `.tgt`, `.gold`, pre-tokenised).
    #[arg(long, conflicts_with_all = ["gold", "pred"])]
    gold_dir: Option<PathBuf>,
    /// With --gold-dir: only these sets (comma-separated).
    #[arg(long, value_delimiter = ',')]
    sets: Vec<String>,
    /// With --gold-dir: layers to evaluate (comma-separated; default: the model's).
    #[arg(long, value_delimiter = ',')]
    layers: Vec<usize>,
    /// With --gold-dir: evaluate every method (with its default settings) instead of the
    /// one chosen by --method.
    #[arg(long)]
    all_methods: bool,
    /// GGUF model file (default: the model setup installs under public/models/).
    #[arg(long)]
    model: Option<PathBuf>,
    #[command(flatten)]
    extract: ExtractArgs,
    #[command(flatten)]
    backend: backend::BackendArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<i32> {
    if let Some(dir) = &args.gold_dir {
        let model = Arc::new(load::load_model(args.model.as_deref())?);
        let backend = backend::create(&model, &args.backend)?;
        let aligner = Arc::new(Aligner::new(model.clone(), backend));
        let (enc, opts) = args.extract.options(&aligner)?;
        let layers = if args.layers.is_empty() {
            vec![enc.layer.unwrap_or(model.defaults.align_layer)]
        } else {
            args.layers.clone()
        };
        let methods = if args.all_methods {
            gold::all_methods(opts, &aligner.recommendation()?)?
        } else {
            vec![opts]
        };
        return gold::run_gold_dir(aligner, dir, &args.sets, &layers, &methods, &enc, args.json);
    }
    anyhow::ensure!(
        args.gold.len() == args.pred.len(),
        "{} --gold files but {} --pred files; give them in pairs",
        args.gold.len(),
        args.pred.len()
    );
    let mut total = AerCounts::default();
    let mut rows = Vec::new();
    for (g, p) in args.gold.iter().zip(&args.pred) {
        let gold =
            std::fs::read_to_string(g).with_context(|| format!("cannot read {}", g.display()))?;
        let pred =
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        let m = pharaoh::evaluate_text(&gold, &pred)
            .with_context(|| format!("{} vs {}", g.display(), p.display()))?;
        let c = m.counts;
        total.sentences += c.sentences;
        total.predicted += c.predicted;
        total.sure += c.sure;
        total.possible += c.possible;
        total.hit_sure += c.hit_sure;
        total.hit_possible += c.hit_possible;
        rows.push((p.display().to_string(), m));
    }
    let all = total.metrics();
    if args.json {
        let files: Vec<_> = rows
            .iter()
            .map(|(n, m)| serde_json::json!({"file": n, "metrics": m}))
            .collect();
        println!("{}", serde_json::json!({"files": files, "micro": all}));
        return Ok(0);
    }
    println!(
        "{:<40} {:>6} {:>7} {:>7} {:>7} {:>7}",
        "file", "lines", "P", "R", "F1", "AER"
    );
    let show = |name: &str, m: &pharaoh::Metrics| {
        println!(
            "{:<40} {:>6} {:>7.2} {:>7.2} {:>7.2} {:>7.2}",
            name,
            m.counts.sentences,
            100.0 * m.precision,
            100.0 * m.recall,
            100.0 * m.f1,
            100.0 * m.aer
        )
    };
    for (n, m) in &rows {
        show(n, m);
    }
    if rows.len() > 1 {
        show("micro-average", &all);
    }
    Ok(0)
}
