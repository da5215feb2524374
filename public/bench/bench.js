// Browser benchmark: tokens/s and pairs/s for the WebAssembly CPU backend (SIMD128, relaxed
// SIMD, no SIMD) and WebGPU, in one page. Results land in window.benchResult (for
// tests/browser/bench.mjs) and in the page.
const params = new URLSearchParams(location.search);
const modelUrl = params.get("model") ?? new URL("../models/multilingual-e5-small-q4_0.gguf", location.href).href;
const variants = (params.get("variants") ?? "simd,relaxed,nosimd,webgpu").split(",").filter(Boolean);
const repeat = Math.max(1, Number(params.get("repeat") ?? 3));
const gpuSubset = Math.max(1, Number(params.get("gpuSubset") ?? 32));
// The relaxed-SIMD build shares pkg/'s glue: a query string makes that glue a module of its
// own, initialised with the other .wasm.
const PACKAGES = {
  simd: { js: "../../pkg/index.js" },
  relaxed: { js: "../../pkg/xlalign_wasm.js?relaxed", wasm: "../../pkg/xlalign_wasm_bg.relaxed.wasm" },
  nosimd: { js: "../../pkg/nosimd/index.js" },
  webgpu: { js: "../../pkg/index.js" },
};
const status = (t) => (document.getElementById("status").textContent = t);
const now = () => performance.now();
const pause = () => new Promise((r) => setTimeout(r, 0));

async function text(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status}`);
  return r.text();
}

/** Wall times of `n` runs of `f`: the best and the first. */
async function timed(n, f) {
  let best = Infinity;
  let first = null;
  for (let i = 0; i < n; i++) {
    await pause();
    const t = now();
    await f();
    const ms = now() - t;
    first ??= ms;
    best = Math.min(best, ms);
  }
  return { first, best };
}

async function run(variant, bytes, allSentences, allPairs) {
  const pkg = PACKAGES[variant];
  if (!pkg) throw new Error(`unknown variant ${variant} (${Object.keys(PACKAGES).join(", ")})`);
  const xl = await import(pkg.js);
  await xl.default(pkg.wasm ? { module_or_path: new URL(pkg.wasm, location.href) } : undefined);
  // Software WebGPU (SwiftShader) runs at a few tokens per second: one timed run over the
  // first `gpuSubset` sentences and pairs (32: one full batch) keeps the page within minutes.
  const gpu = variant === "webgpu";
  const n = gpu ? 1 : repeat;
  const sentences = gpu ? allSentences.slice(0, gpuSubset) : allSentences;
  const pairs = gpu ? allPairs.slice(0, gpuSubset) : allPairs;
  let t = now();
  const a = await xl.Aligner.load(bytes, { backend: variant === "webgpu" ? "webgpu" : "cpu", cache: false });
  const loadMs = now() - t;
  try {
    const tokens = sentences.reduce((s, x) => s + a.tokenize(x).ids.length, 0);
    const pairTokens = pairs.reduce((s, [x, y]) => s + a.tokenize(x).ids.length + a.tokenize(y).ids.length, 0);
    // Warm-up outside the timings: shader compilation, buffer pools, first-call setup.
    status(`${variant}: warming up…`);
    const warm = now();
    await a.embed(sentences.slice(0, 2));
    await a.alignBatch(pairs.slice(0, 2), { pretokenized: true, sentenceCosine: false });
    const warmupMs = now() - warm;
    status(`${variant}: one by one…`);
    const single = await timed(n, async () => {
      for (const s of sentences) await a.embed([s]);
    });
    status(`${variant}: batches of 32…`);
    const batch = await timed(n, async () => {
      for (let i = 0; i < sentences.length; i += 32) await a.embed(sentences.slice(i, i + 32));
    });
    status(`${variant}: alignment…`);
    const align = await timed(n, () =>
      a.alignBatch(pairs, { pretokenized: true, sentenceCosine: false, batchSize: 32 }),
    );
    const perS = (count, ms) => (count / ms) * 1000;
    return {
      variant,
      backend: a.backend,
      loadMs,
      warmupMs,
      sentences: sentences.length,
      tokens,
      singleFirstTokensPerS: perS(tokens, single.first),
      singleTokensPerS: perS(tokens, single.best),
      batch32TokensPerS: perS(tokens, batch.best),
      pairs: pairs.length,
      pairsPerS: perS(pairs.length, align.best),
      pairTokensPerS: perS(pairTokens, align.best),
      repeats: n,
    };
  } finally {
    a.dispose();
  }
}

function show(results) {
  const cols = [
    ["variant", (r) => r.variant],
    ["backend", (r) => (r.error ? "–" : `${r.backend.kind} (${r.backend.device})`)],
    ["load ms", (r) => r.loadMs?.toFixed(0) ?? "–"],
    ["1-by-1 tok/s", (r) => r.singleTokensPerS?.toFixed(0) ?? "–"],
    ["batch-32 tok/s", (r) => r.batch32TokensPerS?.toFixed(0) ?? "–"],
    ["pairs/s", (r) => r.pairsPerS?.toFixed(1) ?? r.error],
  ];
  const t = document.getElementById("table");
  t.innerHTML = "";
  const head = t.insertRow();
  for (const [name] of cols) head.appendChild(document.createElement("th")).textContent = name;
  for (const r of results) {
    const row = t.insertRow();
    for (const [, f] of cols) row.insertCell().textContent = f(r);
  }
}

async function main() {
  const base = new URL("../../", location.href);
  const sentences = (await text(new URL("tests/data/bench-sentences.txt", base))).split("\n").filter((l) => l.trim());
  const [src, tgt] = await Promise.all(["enfr.src", "enfr.tgt"].map((f) => text(new URL(`tests/data/gold/enfr/${f}`, base))));
  const tgtLines = tgt.split("\n");
  const pairs = src.split("\n").map((s, i) => [s, tgtLines[i]]).filter(([s, t]) => s?.trim() && t?.trim());
  status("downloading the model…");
  const bytes = new Uint8Array(await (await fetch(modelUrl)).arrayBuffer());
  const results = [];
  for (const v of variants) {
    status(`${v}…`);
    try {
      results.push(await run(v, bytes, sentences, pairs));
    } catch (e) {
      results.push({ variant: v, error: `${e.code ?? "error"}: ${e.message}` });
    }
    show(results);
  }
  const found = (v) => results.find((r) => r.variant === v && !r.error);
  const [simd, nosimd, relaxed] = ["simd", "nosimd", "relaxed"].map(found);
  const summary = { userAgent: navigator.userAgent, hardwareConcurrency: navigator.hardwareConcurrency, results };
  const gain = (a, b) => ({
    single: a.singleTokensPerS / b.singleTokensPerS,
    batch32: a.batch32TokensPerS / b.batch32TokensPerS,
    pairs: a.pairsPerS / b.pairsPerS,
  });
  if (simd && nosimd) summary.simdGain = gain(simd, nosimd);
  if (relaxed && simd) summary.relaxedGain = gain(relaxed, simd);
  window.benchResult = summary;
  document.getElementById("result").textContent = JSON.stringify(summary, null, 2);
  document.getElementById("status").dataset.state = "done";
  status("done");
}

main().catch((e) => {
  window.benchResult = { error: e.message };
  document.getElementById("status").dataset.state = "error";
  status(`error: ${e.message}`);
});
