// Runs public/bench/ in headless Chromium and prints its numbers (a table, then JSON).
// Usage: node tests/browser/bench.mjs [variants] [repeat] [gpuSubset]   e.g. "simd,relaxed,nosimd,webgpu" 3 32
// Build first: scripts/build-wasm.sh and XLALIGN_WASM_SIMD=0 scripts/build-wasm.sh
// (scripts/bench-browser.sh does all of it).
// The variant "native" runs `xlalign bench --backend cpu --threads 1` first, in the same run on
// the same machine (the CLI at $CARGO_TARGET_DIR/release/xlalign, or XLALIGN_BIN), and each
// browser row is then also given as a fraction of it.
import { execFileSync } from "node:child_process";
import path from "node:path";
import { ROOT, browser, page, server } from "./lib.mjs";

const asked = (process.argv[2] ?? "simd,relaxed,nosimd,webgpu").split(",");
const variants = asked.filter((v) => v !== "native").join(",");
const repeat = process.argv[3] ?? "3";
const gpuSubset = process.argv[4] ?? "32";

let native = null;
if (asked.includes("native")) {
  const bin = process.env.XLALIGN_BIN ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(ROOT, "target"), "release/xlalign");
  const out = execFileSync(bin, ["bench", "--backend", "cpu", "--threads", "1", "--repeat", repeat, "--json"], {
    cwd: ROOT,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  native = JSON.parse(out.slice(out.indexOf("{")));
}
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
  if (native) {
    console.log(
      `${"native".padEnd(8)} ${`${native.kind} (${native.device})`.slice(0, 34).padEnd(34)} ${pad(native.model_load_ms.toFixed(0), 8)} ` +
        `${pad(native.single_tokens_per_s.toFixed(0), 13)} ${pad(native.batch32_tokens_per_s.toFixed(0), 14)} ${pad(native.pairs_per_s.toFixed(1), 8)}  ` +
        `best of ${repeat}, xlalign bench --threads 1`,
    );
  }
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
  if (native) {
    r.native = native;
    for (const x of r.results.filter((x) => !x.error && x.variant !== "webgpu")) {
      console.log(
        `${x.variant} / native: ${(x.singleTokensPerS / native.single_tokens_per_s).toFixed(2)}× one by one, ` +
          `${(x.batch32TokensPerS / native.batch32_tokens_per_s).toFixed(2)}× batches, ${(x.pairsPerS / native.pairs_per_s).toFixed(2)}× pairs`,
      );
    }
  }
  if (r.relaxedGain) {
    const g = r.relaxedGain;
    console.log(`relaxed SIMD gain over simd128: ${g.single.toFixed(2)}× one by one, ${g.batch32.toFixed(2)}× batches, ${g.pairs.toFixed(2)}× pairs`);
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
