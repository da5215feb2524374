//! `xlalign`: the native command line for research use — model conversion, embeddings,
//! word alignment, AER evaluation and benchmarks.

mod backend;
mod cmd;
mod input;
mod load;
mod names;
mod progress;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "xlalign",
    version,
    about = "Cross-lingual word alignment and sentence similarity with multilingual encoders"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert a model into xlalign's GGUF file.
    Convert(cmd::convert::Args),
    /// Print a model file's architecture, tensor types and size.
    Info(cmd::info::Args),
    /// Make or apply a model delta: the tensors and metadata a fine-tune changed, stored apart
    /// from the base model they apply to.
    Delta(cmd::delta::Args),
    /// Embed sentences (one per line) and print JSON lines.
    Embed(cmd::embed::Args),
    /// Word-align sentence pairs (Pharaoh or JSON output).
    Align(cmd::align::Args),
    /// Score predicted alignments against gold alignments (precision, recall, F1, AER).
    Eval(cmd::eval::Args),
    /// Sentence similarity scores for sentence pairs.
    Similarity(cmd::similarity::Args),
    /// Quality scores per sentence pair (cosine, margin, coverage, length ratio) to filter a
    /// parallel corpus.
    ///
    /// One row per input line, in order (or, with --keep, only the kept pairs as they were
    /// read). Input words are raw text unless --words pretokenized is given.
    Score(cmd::score::Args),
    /// Cross-lingual alignment of a parallel file per encoder layer (MEXA).
    ///
    /// For each layer, the share of pairs whose two sentences are closer to each other than
    /// to any other sentence of the block on either side (mean-pooled token states, cosine;
    /// Kargaran et al. 2025), with the share of each direction alone.
    Mexa(cmd::mexa::Args),
    /// Measure load time, embedding and alignment throughput, and peak memory.
    Bench(cmd::bench::Args),
}

/// A closed pipe on stdout (`xlalign eval … | head`) ends the process quietly, as it does
/// any Unix filter, instead of Rust's default: `println!` panicking on the write error.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called first in main, before any thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() {
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Convert(a) => cmd::convert::run(a),
        Command::Info(a) => cmd::info::run(a),
        Command::Delta(a) => cmd::delta::run(a),
        Command::Embed(a) => cmd::embed::run(a),
        Command::Align(a) => cmd::align::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Similarity(a) => cmd::similarity::run(a),
        Command::Score(a) => cmd::score::run(a),
        Command::Mexa(a) => cmd::mexa::run(a),
        Command::Bench(a) => cmd::bench::run(a),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // One line, the whole cause chain: errors are for people, not backtraces.
            let msg = format!("{e:#}");
            eprintln!("error: {}", msg.replace('\n', " "));
            std::process::exit(1);
        }
    }
}
