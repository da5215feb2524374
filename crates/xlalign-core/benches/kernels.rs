//! CPU kernel and encoder benchmarks.
//!
//! `cargo bench -p xlalign-core --bench kernels [--features parallel]`
//!
//! The matmul benches use random Q4_0 weights of e5-small's shapes; the forward benches
//! need the converted model (`$XLALIGN_MODEL`, else `public/models/…`) and are skipped
//! with a note when it is absent.

use std::hint::black_box;
use std::path::PathBuf;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use xlalign_core::cpu::kernels::{qmatmul_with, Isa, Q8Rows, QMatrix};
use xlalign_core::cpu::CpuBackend;
use xlalign_core::tensor::{quantize, DType, Tensor};
use xlalign_core::Model;

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
        })
        .collect()
}

fn q4_matmul(c: &mut Criterion) {
    const TOKENS: usize = 32;
    let mut g = c.benchmark_group("q4_0_matmul_32_tokens");
    for (rows, cols) in [(384, 384), (1536, 384), (384, 1536)] {
        let w = quantize(DType::Q4_0, &random(rows * cols, 1)).unwrap();
        let w = Tensor::new("w", DType::Q4_0, vec![rows, cols], Bytes::from(w)).unwrap();
        let w = QMatrix::from_tensor(&w).unwrap();
        let x = Q8Rows::quantize(&random(TOKENS * cols, 2), cols);
        let bias = random(rows, 3);
        let mut out = vec![0f32; TOKENS * rows];
        g.throughput(Throughput::Elements((rows * cols * TOKENS) as u64));
        for isa in Isa::available() {
            g.bench_with_input(
                BenchmarkId::new(isa.name(), format!("{rows}x{cols}")),
                &isa,
                |b, &isa| b.iter(|| qmatmul_with(isa, &w, black_box(&x), Some(&bias), &mut out)),
            );
        }
    }
    g.finish();
}

fn model() -> Option<Model> {
    let path = std::env::var_os("XLALIGN_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../public/models/multilingual-e5-small-q4_0.gguf")
        });
    match std::fs::read(&path) {
        Ok(bytes) => Some(Model::from_bytes(Bytes::from(bytes)).expect("the model file loads")),
        Err(e) => {
            eprintln!(
                "skipping the forward benches: cannot read {} ({e})",
                path.display()
            );
            None
        }
    }
}

/// Sentences of everyday length in several languages (about 24 tokens each with the prefix).
const SENTENCES: &[&str] = &[
    "The old lighthouse keeper walked along the rocky shore every morning before sunrise.",
    "Der alte Leuchtturmwärter ging jeden Morgen vor Sonnenaufgang an der felsigen Küste entlang.",
    "He forgot his umbrella on the train and got soaked on the way to the office.",
    "Elle a acheté du pain frais, un pot de miel et quelques pommes au marché du samedi.",
    "年老的灯塔看守人每天早上日出之前都会沿着岩石海岸散步。",
    "Bătrânul paznic al farului se plimba în fiecare dimineață pe țărmul stâncos.",
    "안녕하세요 세계. مرحبا بالعالم. Привет, мир!",
    "Version 3.14.159, e-mail: test@example.org, price $1,299.99 (−15 %)!",
];

fn forward(c: &mut Criterion) {
    let Some(model) = model() else { return };
    let cpu = CpuBackend::new(&model).unwrap();
    let last = model.config.layers;

    // One sentence of exactly 32 tokens: `<s>`, 30 pieces of text, `</s>`.
    let mut ids = model
        .tokenizer
        .encode(&SENTENCES.concat(), "passage: ")
        .unwrap()
        .ids;
    ids.truncate(31);
    ids.push(model.tokenizer.eos);
    let mut g = c.benchmark_group("forward");
    g.sample_size(20);
    g.throughput(Throughput::Elements(ids.len() as u64));
    for isa in Isa::available() {
        let cpu = cpu.clone().with_isa(isa);
        g.bench_function(
            BenchmarkId::new("sentence_32_tokens", format!("{isa}_{}t", cpu.threads())),
            |b| b.iter(|| cpu.forward_sync(&[black_box(&ids)], &[last]).unwrap()),
        );
    }

    // A batch of 32 sentences.
    let batch: Vec<Vec<u32>> = (0..32)
        .map(|i| {
            model
                .tokenizer
                .encode(SENTENCES[i % SENTENCES.len()], "passage: ")
                .unwrap()
                .ids
        })
        .collect();
    let seqs: Vec<&[u32]> = batch.iter().map(|s| s.as_slice()).collect();
    let tokens: usize = batch.iter().map(|s| s.len()).sum();
    g.throughput(Throughput::Elements(tokens as u64));
    // With the `parallel` feature, one thread first, then every thread.
    #[cfg(feature = "parallel")]
    let variants = vec![cpu.clone().with_threads(1).unwrap(), cpu.clone()];
    #[cfg(not(feature = "parallel"))]
    let variants = vec![cpu.clone()];
    for cpu in variants {
        g.bench_function(
            BenchmarkId::new(
                format!("batch_32_sentences_{tokens}_tokens"),
                format!("{}t", cpu.threads()),
            ),
            |b| b.iter(|| cpu.forward_sync(black_box(&seqs), &[last]).unwrap()),
        );
    }
    g.finish();
}

criterion_group!(benches, q4_matmul, forward);
criterion_main!(benches);
