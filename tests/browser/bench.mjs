// Runs public/bench/ in headless Chromium and prints its numbers (a table, then JSON).
// Usage: node tests/browser/bench.mjs [variants] [repeat] [gpuSubset]   e.g. "simd,nosimd,webgpu" 3 32
// Build first: scripts/build-wasm.sh and XLALIGN_WASM_SIMD=0 scripts/build-wasm.sh
// (scripts/bench-browser.sh does all of it).
import { browser, page, server } from "./lib.mjs";

const variants = process.argv[2] ?? "simd,nosimd,webgpu";
const repeat = process.argv[3] ?? "3";
const gpuSubset = process.argv[4] ?? "32";
const srv = await server();
const b = await browser();
try {
  const p = await page(b);
  const url = `${srv.base}/public/bench/?variants=${variants}&repeat=${repeat}&gpuSubset=${gpuSubset}&model=${encodeURIComponent(srv.modelUrl)}`;
  await p.goto(url, { waitUntil: "load" });
  await p.waitForFunction(() => window.benchResult, { timeout: 3_600_000, polling: 1000 });
  const r = await p.evaluate(() => window.benchResult);
  if (r.error) throw new Error(r.error);
  const pad = (s, n) => String(s).padStart(n);
  console.log(`${"variant".padEnd(8)} ${"backend".padEnd(34)} ${pad("load ms", 8)} ${pad("1-by-1 tok/s", 13)} ${pad("batch32 tok/s", 14)} ${pad("pairs/s", 8)}  runs over`);
  for (const x of r.results) {
    if (x.error) {
      console.log(`${x.variant.padEnd(8)} ${x.error}`);
      continue;
    }
    console.log(
      `${x.variant.padEnd(8)} ${`${x.backend.kind} (${x.backend.device})`.slice(0, 34).padEnd(34)} ${pad(x.loadMs.toFixed(0), 8)} ` +
        `${pad(x.singleTokensPerS.toFixed(0), 13)} ${pad(x.batch32TokensPerS.toFixed(0), 14)} ${pad(x.pairsPerS.toFixed(1), 8)}  ` +
        `best of ${x.repeats}, ${x.sentences} sentences (${x.tokens} tokens), ${x.pairs} pairs`,
    );
  }
  if (r.simdGain) {
    const g = r.simdGain;
    console.log(`simd128 gain: ${g.single.toFixed(2)}× one by one, ${g.batch32.toFixed(2)}× batches, ${g.pairs.toFixed(2)}× pairs`);
  }
  console.log(JSON.stringify(r));
} finally {
  await b.close();
  srv.stop();
}
