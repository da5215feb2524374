// Bad input in the browser, measured: what the package (createAligner, CPU backend, as a page
// uses it) does with each class of bad input, how long it takes, and the peak resident
// memory of the page's renderer (the workers are its threads) for each. Usage
// (scripts/bench-browser.sh bad-input):
//   node tests/browser/bad-input-bench.mjs [batchPairs=10000]
// The batch: the gold slices' lines cut to their first 8 words, cycled to the count, with an
// empty source every 1,000 pairs (those must come back as errors in their place).
import { execSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { browser, page, peakMemory, resetPeakMemory, server } from "./lib.mjs";

const nPairs = Number(process.argv[2] ?? 10000);
const srv = await server();
const b = await browser();
const root = b.process().pid;
const rows = [];
const measure = async (name, fn) => {
  resetPeakMemory(root);
  const t0 = Date.now();
  const out = await fn();
  const ms = Date.now() - t0;
  const peak = peakMemory(root).renderer ?? 0;
  rows.push({ name, ms, rendererPeakMiB: Math.round(peak), ...out });
  console.log(`${name.padEnd(46)} ${(ms / 1000).toFixed(1).padStart(7)} s  renderer peak ${peak.toFixed(0).padStart(5)} MiB  ${JSON.stringify(out)}`);
};
try {
  const p = await page(b, `${srv.base}/tests/browser/harness.html`);
  await p.evaluate(async (n) => {
    window.xl = await import("/pkg/index.js");
    await xl.default();
    window.page = await import("/tests/browser/page.js");
    window.outcome = page.outcome;
    const lines = async (f) => (await (await fetch(`/tests/data/gold/${f}`)).text()).split("\n").filter(Boolean);
    const all = [];
    for (const set of ["enfr", "roen", "zhen", "jaen"]) {
      const [s, t] = await Promise.all([lines(`${set}/${set}.src`), lines(`${set}/${set}.tgt`)]);
      const cut = (x) => x.split(" ").slice(0, 8).join(" ");
      s.forEach((x, i) => all.push([cut(x), cut(t[i])]));
    }
    window.batch = Array.from({ length: n }, (_, i) => (i % 1000 === 999 ? ["", all[i % all.length][1]] : all[i % all.length]));
  }, nPairs);
  const pageOnly = peakMemory(root).renderer ?? 0;

  await measure("load the model (createAligner, full download)", () =>
    p.evaluate(async (url) => {
      window.a = await xl.createAligner(url, { backend: "cpu", cache: false });
      return { backend: a.backend.device };
    }, srv.modelUrl),
  );
  await measure("1 MB pasted, 0.5 MB a side", () =>
    p.evaluate(async () => {
      const r = await outcome(() => a.align("The old lighthouse keeper walked along the rocky shore. ".repeat(9000), "Der alte Leuchtturmwärter ging am felsigen Ufer entlang. ".repeat(9000)));
      const after = await a.align("The house is small.", "Das Haus ist klein.");
      return { code: r.code ?? "ok", trap: r.trap ?? false, alignsAfter: after.links.length };
    }),
  );
  await measure("lone surrogates, RTL marks, zero-width", () =>
    p.evaluate(async () => {
      const r = await Promise.all([
        outcome(() => a.align("The \uD800house is small.", "Das Haus\uDC00 ist klein.")),
        outcome(() => a.align("\u200Fשלום עולם\u200E", "Hello world")),
        outcome(() => a.align("The\u200B house\u200D is\uFEFF small.", "Das Haus ist klein.")),
      ]);
      return { ok: r.map((x) => x.ok), words: r.map((x) => x.v?.srcWords.length) };
    }),
  );
  await measure(`a batch of ${nPairs} pairs (pool, batchSize 32)`, () =>
    p.evaluate(async () => {
      const t0 = performance.now();
      const r = await a.alignBatch(batch, { batchSize: 32 });
      const s = (performance.now() - t0) / 1000;
      const failed = r.map((x, i) => (x.error ? i : -1)).filter((i) => i >= 0);
      const inPlace = failed.every((i) => i % 1000 === 999) && failed.length === Math.floor(batch.length / 1000);
      return { results: r.length, pairsPerS: +(batch.length / s).toFixed(1), failed: failed.length, errorsInPlace: inPlace, poolSize: a.poolSize };
    }),
  );
  await measure("models that are not models", () =>
    p.evaluate(async (url) => {
      const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
      const cases = {
        html: () => xl.createAligner("/tests/browser/harness.html", { cache: false }),
        missing: () => xl.createAligner("/models/none.gguf", { cache: false }),
        truncated: () => xl.createAligner(bytes.slice(0, 20_000_000), { backend: "cpu" }),
        llama: () => xl.createAligner(page.notBertGguf(), { backend: "cpu" }),
      };
      const out = {};
      for (const [k, f] of Object.entries(cases)) {
        const r = await outcome(f);
        out[k] = r.ok ? "loaded?!" : `${r.code}${r.trap ? " (trap)" : ""}: ${r.message.slice(0, 60)}`;
        if (r.ok) await r.v.dispose();
      }
      const after = await a.align("The house is small.", "Das Haus ist klein.");
      return { ...out, alignsAfter: after.links.length };
    }, srv.modelUrl),
  );
  await p.evaluate(() => a.dispose());
  const cpu = execSync("lscpu | sed -n 's/^Model name: *//p'").toString().trim();
  console.log(`${cpu}, ${execSync("nproc").toString().trim()} cores; load average ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}; renderer with the page only: ${pageOnly.toFixed(0)} MiB`);
  console.log(JSON.stringify(rows));
} finally {
  await b.close();
  srv.stop();
}
