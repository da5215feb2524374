//! `xlalign info`: what is inside a model file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use xlalign_core::gguf::GgufFile;
use xlalign_core::tokenize::storage::TokenizerStorage;
use xlalign_core::Model;

use crate::load;

#[derive(clap::Args)]
pub struct Args {
    /// GGUF model file (default: the model setup installs under public/models/).
    model: Option<PathBuf>,
    /// Also list every metadata key and tensor.
    #[arg(long)]
    verbose: bool,
}

pub fn run(args: Args) -> Result<i32> {
    let path = args.model.unwrap_or_else(load::default_model_path);
    let t0 = std::time::Instant::now();
    let bytes = load::map_file(&path)?;
    let file = GgufFile::parse(bytes).with_context(|| format!("cannot read {}", path.display()))?;
    let model =
        Model::from_gguf(&file).with_context(|| format!("cannot load {}", path.display()))?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let c = &model.config;
    println!(
        "file:          {} ({:.1} MB, GGUF v{})",
        path.display(),
        file.file_len() as f64 / 1e6,
        file.version
    );
    println!("name:          {}", model.name);
    println!(
        "architecture:  bert encoder, {} layers, hidden {}, {} heads, ffn {}",
        c.layers, c.hidden, c.heads, c.ff
    );
    println!(
        "               vocab {}, {} positions (offset {}), {} token types",
        c.vocab, c.max_positions, c.position_offset, c.type_vocab
    );
    println!(
        "               activation {:?}, layer norm eps {:e}, pooling {:?}",
        c.activation, c.layer_norm_eps, c.pooling
    );
    println!(
        "tokenizer:     {} pieces, bos {} eos {} pad {} unk {}",
        model.tokenizer.vocab_size(),
        model.tokenizer.bos,
        model.tokenizer.eos,
        model.tokenizer.pad,
        model.tokenizer.unk
    );
    let storage = TokenizerStorage::of(&file);
    println!(
        "               stored as {}: {:.2} MB of the {:.2} MB header{}",
        match &storage {
            TokenizerStorage::Packed {
                unpacked: Some(n), ..
            } => format!(
                "a packed Unigram vocabulary and JSON settings in a zstd frame ({:.2} MB unpacked)",
                *n as f64 / 1e6
            ),
            TokenizerStorage::Packed { unpacked: None, .. } => {
                "a packed Unigram vocabulary and JSON settings".into()
            }
            TokenizerStorage::Json { .. } => "the whole tokenizer.json".into(),
            TokenizerStorage::Missing => "nothing".into(),
        },
        storage.bytes() as f64 / 1e6,
        file.data_offset as f64 / 1e6,
        if storage.outdated(&model.tokenizer) {
            " (older format: convert the model again for the packed, compressed one)"
        } else {
            ""
        }
    );
    println!(
        "prefixes:      passage {:?}, query {:?}",
        model.defaults.passage_prefix, model.defaults.query_prefix
    );
    println!(
        "alignment:     layer {}, method {}, threshold {}, temperature {}",
        model.defaults.align_layer,
        model.defaults.align_method,
        model.defaults.align_threshold,
        model.defaults.align_temperature
    );
    let mut by_type: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for t in &file.tensors {
        let e = by_type.entry(t.dtype.name()).or_default();
        e.0 += 1;
        e.1 += t.n_bytes;
    }
    let types: Vec<String> = by_type
        .iter()
        .map(|(k, (n, b))| format!("{k}: {n} tensors, {:.1} MB", *b as f64 / 1e6))
        .collect();
    println!(
        "tensors:       {} ({})",
        file.tensors.len(),
        types.join("; ")
    );
    println!("load time:     {load_ms:.1} ms (parse + validate + tokenizer)");
    // After the load time, which it is not part of: it reads every tensor byte.
    println!(
        "weights:       sha256 {} (of the tensors alone; metadata may differ)",
        file.weights_digest()?
    );
    if args.verbose {
        for (k, v) in &file.metadata {
            println!("  meta {k} = {}", v.display_short());
        }
        for t in &file.tensors {
            println!(
                "  tensor {} {:?} {} @{} ({} bytes)",
                t.name,
                t.shape,
                t.dtype.name(),
                t.offset,
                t.n_bytes
            );
        }
    }
    Ok(0)
}
