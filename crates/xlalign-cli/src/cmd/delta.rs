//! `xlalign delta`: cut a model delta from a tuned model, or rebuild the tuned model from its
//! base and a delta (the core's `gguf::delta`). Setup rebuilds the tuned models shipped under
//! `models/` this way.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use xlalign_core::gguf::delta::{apply_delta, make_delta};
use xlalign_core::gguf::{sha256_hex, GgufFile, WeightsDigest};
use xlalign_core::Model;

use crate::cmd::convert::write_gguf;
use crate::load;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Write the delta that turns BASE into TUNED: the tensors whose data differ and the
    /// metadata keys TUNED adds or changes (or only those given with --key).
    Make {
        /// The base model the delta will apply to.
        #[arg(long)]
        base: PathBuf,
        /// The full tuned model (same tensors, types and shapes as the base).
        #[arg(long)]
        tuned: PathBuf,
        /// Carry only this metadata key (repeatable); default: every key added or changed.
        #[arg(long = "key")]
        keys: Vec<String>,
        /// Output delta file (`models/<name>.delta.gguf` for a shipped model).
        #[arg(short, long)]
        output: PathBuf,
        /// Also write the manifest setup reads (`models/<name>.json`), `<name>` being the
        /// output's file name without `.delta.gguf`.
        #[arg(long)]
        manifest: Option<PathBuf>,
    },
    /// Rebuild a tuned model from its base and a delta.
    Apply {
        /// The base model (its weights digest must be the one the delta names).
        #[arg(long)]
        base: PathBuf,
        /// The delta file.
        #[arg(long)]
        delta: PathBuf,
        /// Output model file.
        #[arg(short, long)]
        output: PathBuf,
        /// Refuse to write a result whose weights sha256 is not this.
        #[arg(long, value_name = "HEX")]
        expect_weights_sha256: Option<String>,
    },
}

fn open(path: &Path, what: &str) -> Result<GgufFile> {
    let bytes = load::map_file(path)?;
    GgufFile::parse(bytes).with_context(|| format!("cannot read the {what} {}", path.display()))
}

fn file_name(p: &Path) -> Result<&str> {
    p.file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} has no file name", p.display()))
}

pub fn run(args: Args) -> Result<i32> {
    match args.action {
        Action::Make {
            base,
            tuned,
            keys,
            output,
            manifest,
        } => {
            let b = open(&base, "base model")?;
            let t = open(&tuned, "tuned model")?;
            let keys = (!keys.is_empty()).then_some(&keys[..]);
            let writer = make_delta(&b, &t, keys).with_context(|| {
                format!(
                    "cannot make a delta from {} to {}",
                    base.display(),
                    tuned.display()
                )
            })?;
            let base_digest = b.weights_digest()?;
            let result_digest = t.weights_digest()?;
            write_gguf(&writer, &output)?;
            let delta_sha = sha256_hex(&std::fs::read(&output)?);
            println!(
                "delta:   {} tensors, {} bytes, sha256 {delta_sha}",
                writer.tensors().len(),
                writer.file_len()
            );
            println!("base:    weights sha256 {base_digest}");
            println!("result:  weights sha256 {result_digest}");
            if let Some(m) = manifest {
                let delta_name = file_name(&output)?;
                let Some(name) = delta_name.strip_suffix(".delta.gguf") else {
                    bail!("a shipped delta is named <name>.delta.gguf, not {delta_name}");
                };
                let json = serde_json::json!({
                    "name": name,
                    "base": file_name(&base)?,
                    "base_weights_sha256": base_digest.hex(),
                    "delta_sha256": delta_sha,
                    "result": format!("{name}.gguf"),
                    "result_weights_sha256": result_digest.hex(),
                });
                std::fs::write(&m, serde_json::to_string_pretty(&json)? + "\n")
                    .with_context(|| format!("cannot write {}", m.display()))?;
                eprintln!("wrote {}", m.display());
            }
            Ok(0)
        }
        Action::Apply {
            base,
            delta,
            output,
            expect_weights_sha256,
        } => {
            let expect = expect_weights_sha256
                .as_deref()
                .map(WeightsDigest::parse_hex)
                .transpose()?;
            let b = open(&base, "base model")?;
            let d = open(&delta, "delta")?;
            let writer = apply_delta(&b, &d).with_context(|| {
                format!("cannot apply {} to {}", delta.display(), base.display())
            })?;
            let digest = WeightsDigest::of(writer.tensors());
            if let Some(want) = expect {
                if want != digest {
                    bail!(
                        "applying {} to {} gives weights sha256 {digest}, not the expected {want}; nothing written",
                        delta.display(),
                        base.display()
                    );
                }
            }
            write_gguf(&writer, &output)?;
            // The result must load as a model: a delta may carry metadata the loader refuses.
            let loaded = load::map_file(&output).and_then(|bytes| {
                let file = GgufFile::parse(bytes)?;
                Model::from_gguf(&file)?;
                Ok(())
            });
            if let Err(e) = loaded {
                let _ = std::fs::remove_file(&output);
                return Err(e.context(format!(
                    "the model {} rebuilt does not load; removed it",
                    output.display()
                )));
            }
            println!("weights sha256 {digest}");
            Ok(0)
        }
    }
}
