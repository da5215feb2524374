//! Tokens per second of the WebGPU forward pass on the first 32 benchmark sentences, as one
//! batch: end to end (upload, all 12 blocks, readback of the last layer), pooled on the GPU,
//! and GPU-only (repeated submissions, one readback). The CPU backend runs the same batch
//! for comparison.
//!
//! `WGPU_BACKEND=vulkan cargo bench -p xlalign-gpu --bench forward` (env `XLALIGN_MODEL`
//! for another model, `XLALIGN_BENCH_ITERS` for the repetitions, default 3).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use xlalign_core::backend::Backend;
use xlalign_core::cpu::CpuBackend;
use xlalign_core::Model;
use xlalign_gpu::GpuBackend;

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = std::env::var_os("XLALIGN_MODEL")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("public/models/multilingual-e5-small-q4_0.gguf"));
    let iters: usize = std::env::var("XLALIGN_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .max(1);
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let model = Arc::new(Model::from_bytes(Bytes::from(bytes)).expect("model"));
    let text = std::fs::read_to_string(root.join("tests/data/bench-sentences.txt"))
        .expect("bench sentences");
    let seqs: Vec<Vec<u32>> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(32)
        .map(|t| {
            model
                .tokenizer
                .encode(t, &model.defaults.passage_prefix)
                .expect("tokenize")
                .ids
        })
        .collect();
    let refs: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
    let tokens: usize = refs.iter().map(|s| s.len()).sum();
    let padded = refs.len() * refs.iter().map(|s| s.len()).max().unwrap_or(0);
    let last = [model.config.layers];

    let t0 = Instant::now();
    let gpu = pollster::block_on(GpuBackend::new(model.clone())).expect("GPU backend");
    println!(
        "adapter: {} (model upload + pipelines: {:.2} s)",
        gpu.info().device,
        t0.elapsed().as_secs_f64()
    );
    println!(
        "batch: {} sentences, {tokens} tokens ({padded} padded)",
        refs.len()
    );

    let time = |label: &str, f: &dyn Fn()| {
        f(); // warm-up: grows the buffers, compiles lazily created pipelines
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        let s = t.elapsed().as_secs_f64() / iters as f64;
        println!(
            "{label:<34} {:>8.1} ms/batch {:>9.0} tokens/s",
            s * 1e3,
            tokens as f64 / s
        );
    };
    time("gpu forward, last layer read back", &|| {
        pollster::block_on(gpu.forward(&refs, &last)).expect("forward");
    });
    time("gpu forward, all layers read back", &|| {
        let all: Vec<usize> = (0..=model.config.layers).collect();
        pollster::block_on(gpu.forward(&refs, &all)).expect("forward");
    });
    time("gpu forward + pooling on the GPU", &|| {
        pollster::block_on(gpu.forward_pooled(&refs)).expect("pooled");
    });
    time("gpu only (4 submissions, 1 readback)", &|| {
        pollster::block_on(gpu.run_repeated(&refs, &last, 4)).expect("repeated");
    });
    println!("  (the line above is 4 forwards per batch: divide ms by 4, multiply tokens/s by 4)");
    let cpu = CpuBackend::new(&model).expect("CPU backend");
    println!("cpu backend: {}", cpu.info().device);
    time("cpu forward, last layer", &|| {
        pollster::block_on(cpu.forward(&refs, &last)).expect("cpu forward");
    });
}
