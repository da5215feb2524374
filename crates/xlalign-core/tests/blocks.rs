//! A model that starts with its first blocks and gets the others later (progressive
//! loading's path through the core), on the real model: the blocks the first alignment
//! needs, each later block read from its own byte range and added to the running CPU
//! backend, and the result equal to the whole model's.
//!
//! Needs the converted e5-small model (`$XLALIGN_MODEL`, else
//! `public/models/multilingual-e5-small-q4_0.gguf`, written by `scripts/setup.sh`).

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use xlalign_core::backend::WriteBlocks;
use xlalign_core::cpu::CpuBackend;
use xlalign_core::gguf::{GgufFile, GgufHeader};
use xlalign_core::model::{block_range, first_blocks, read_block};
use xlalign_core::{Backend, Model};

fn model_bytes() -> Bytes {
    let path = std::env::var_os("XLALIGN_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../public/models/multilingual-e5-small-q4_0.gguf")
        });
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the model at {} ({e}); run scripts/setup.sh or set XLALIGN_MODEL",
            path.display()
        )
    }))
}

fn ready<F: Future>(f: F) -> F::Output {
    match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the CPU backend never waits"),
    }
}

#[test]
fn blocks_added_later_encode_like_the_whole_model() {
    let bytes = model_bytes();
    let file = GgufFile::parse(bytes.clone()).unwrap();
    let header = GgufHeader::parse(&bytes, bytes.len()).unwrap();
    let whole = Model::from_gguf(&file).unwrap();
    let n = whole.config.layers;
    let first = first_blocks(&header.metadata).unwrap();
    assert_eq!(first, whole.defaults.align_layer);
    assert!(first < n, "the default model aligns before its last layer");

    // The blocks lie one after the other, each in a range of its own.
    let ranges: Vec<_> = (0..n)
        .map(|i| block_range(&header.tensors, i).unwrap())
        .collect();
    for w in ranges.windows(2) {
        assert!(w[0].end <= w[1].start, "{w:?}");
    }
    assert!(block_range(&header.tensors, n).is_none());

    let partial = Model::from_gguf_with_blocks(&file, first).unwrap();
    assert_eq!(partial.weights.layers.len(), first);
    assert_eq!(partial.config, whole.config);
    assert_eq!(partial.defaults, whole.defaults);
    assert_eq!(partial.weight_type, whole.weight_type);
    let cpu = CpuBackend::new(&partial).unwrap();
    let full = CpuBackend::new(&whole).unwrap();
    let ids = whole
        .tokenizer
        .encode("Der alte Leuchtturmwärter ging jeden Morgen.", "passage: ")
        .unwrap()
        .ids;
    let run = |b: &CpuBackend, layer: usize| {
        ready(b.forward(&[&ids], &[layer])).map(|mut o| o.remove(0).layers.remove(0))
    };
    assert_eq!(
        run(&cpu, first).unwrap(),
        run(&full, first).unwrap(),
        "the alignment layer"
    );
    let e = run(&cpu, n).unwrap_err().to_string();
    assert!(e.contains(&format!("block {first} has not arrived")), "{e}");

    for (i, r) in ranges.iter().enumerate().skip(first) {
        // Only the block's own bytes, as a range request brings them.
        let part = Bytes::copy_from_slice(&bytes[r.clone()]);
        let block = read_block(&whole.config, &header.tensors, i, r.start, &part).unwrap();
        assert!(
            read_block(&whole.config, &header.tensors, i + 1, r.start, &part).is_err(),
            "another block's tensors lie outside these bytes"
        );
        cpu.add_block(i, &block).unwrap();
        assert_eq!(cpu.blocks_present(), i + 1);
    }
    assert_eq!(
        run(&cpu, n).unwrap(),
        run(&full, n).unwrap(),
        "the last layer"
    );
}
