// The demo's batch mode with a large file, as a visitor uses it: a file of N pairs (default
// 10,000: gold sentence pairs of tests/data/gold over and over, one line in a thousand not a
// pair) chosen in the "file of pairs" input, aligned with the Align button, in headless
// Chromium, after 1 MB pasted into the pair boxes. Prints the time, pairs/s as the page shows it, how long the page went without
// busy while the batch ran (main-thread tasks over 50 ms), the renderer's peak memory, the problems
// listed and the table's pages, and what the exports hold.
//
// Usage: node tests/e2e/batch-bench.mjs [pairs] [words]   (`scripts/bench-browser.sh
//        demo-batch` builds dist/ first): `words` cuts each side to its first words (default 0:
//        whole lines; 8 is what the package's bad-input bench aligns). Environment:
//        XLALIGN_E2E_DIST (default dist/); XLALIGN_PROFILE=FILE also records the page's main
//        thread with the DevTools profiler, writes FILE (.cpuprofile) and prints the functions
//        that took most of its time.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { browser, page, peakMemory, resetPeakMemory, ROOT, serveWeb } from "../browser/lib.mjs";

const n = Number(process.argv[2] ?? 10_000);
const words = Number(process.argv[3] ?? 0);
if (!(n >= 1000) || !(words >= 0)) throw new Error("usage: batch-bench.mjs [pairs >= 1000] [words >= 0]");
const cut = (x) => (words ? x.split(" ").slice(0, words).join(" ") : x);
const DIST = path.resolve(process.env.XLALIGN_E2E_DIST || path.join(ROOT, "dist"));

// Every gold slice's pairs (tokenised text, as the slices hold it), cycled.
const gold = path.join(ROOT, "tests/data/gold");
const pool = [];
for (const set of ["enfr", "roen", "zhen", "jaen"]) {
  const read = (ext) => fs.readFileSync(path.join(gold, set, `${set}.${ext}`), "utf8").split("\n").filter(Boolean);
  const [s, t] = [read("src"), read("tgt")];
  s.forEach((x, i) => pool.push(`${cut(x)} ||| ${cut(t[i])}`));
}
const lines = Array.from({ length: n }, (_, i) => (i % 1000 === 999 ? `line ${i + 1} is not a pair` : pool[i % pool.length]));
const bad = lines.filter((l) => !l.includes("|||")).length;
const file = path.join(os.tmpdir(), `xlalign-batch-${process.pid}.txt`);
fs.writeFileSync(file, lines.join("\n") + "\n");

const srv = await serveWeb(DIST);
const b = await browser();
try {
  const p = await page(b, `${srv.base}/`);
  await p.waitForSelector("main[data-ready='true']", { timeout: 300_000 });
  // First, 1 MB pasted into the pair boxes (half a megabyte a side): a notice, no trap, and
  // the next pair aligns.
  const root = b.process().pid;
  resetPeakMemory(root);
  const paste = (sel, text) =>
    p.$eval(sel, (el, text) => {
      el.value = text;
      el.dispatchEvent(new Event("input", { bubbles: true }));
    }, text);
  const resultId = () => p.$eval("section.picture", (x) => +x.dataset.resultId || 0);
  const before = await resultId();
  const t1 = Date.now();
  await paste("#src", "The old lighthouse keeper walked along the rocky shore. ".repeat(9000));
  await paste("#tgt", "Der alte Leuchtturmwärter ging am felsigen Ufer entlang. ".repeat(9000));
  await p.waitForFunction(() => document.querySelector(".notice.error"), { timeout: 60_000, polling: 500 });
  const notice = await p.$eval(".notice.error", (e) => e.textContent);
  await paste("#src", "The house is small.");
  await paste("#tgt", "Das Haus ist klein.");
  await p.waitForFunction(
    (after) => {
      const x = document.querySelector("section.picture");
      return x && x.dataset.busy === "false" && +x.dataset.resultId > after && document.querySelectorAll("#alignment g.link").length > 0;
    },
    { timeout: 120_000, polling: 500 },
    before,
  );
  const pasted = { seconds: +((Date.now() - t1) / 1000).toFixed(1), notice: notice.slice(0, 120), rendererPeakMiB: Math.round(peakMemory(root).renderer ?? 0) };
  console.log(`1 MB pasted: ${JSON.stringify(pasted)}`);

  await p.click("#tab-batch");
  const input = await p.$("#batch-file");
  await input.uploadFile(file);
  await p.waitForFunction((n) => document.querySelector("#batch-input").value.split("\n").filter(Boolean).length === n, { timeout: 60_000, polling: 1000 }, n);
  // Main-thread tasks over 50 ms while the batch runs (the Long Tasks API: it watches
  // without asking for frames, which would load the 2 cores the workers need).
  await p.evaluate(() => {
    window.__long = [];
    new PerformanceObserver((l) => window.__long.push(...l.getEntries().map((e) => e.duration))).observe({ type: "longtask" });
  });
  const cdp = process.env.XLALIGN_PROFILE ? await p.createCDPSession() : null;
  if (cdp) {
    await cdp.send("Profiler.enable");
    await cdp.send("Profiler.setSamplingInterval", { interval: 1000 });
    await cdp.send("Profiler.start");
  }
  resetPeakMemory(root);
  const t0 = Date.now();
  await p.click("#batch-run");
  // Waits for the state "not running, every pair done", a minute at a time, saying how far
  // it got meanwhile. Every wait polls on a timer: puppeteer's default polls on each
  // animation frame, which makes the page paint 60 times a second (a 10,000-line text box
  // included) and took a core from the workers.
  const good = n - bad;
  for (;;) {
    try {
      await p.waitForFunction(
        (good) => document.querySelector("#batch-status")?.dataset.running === "false" && document.querySelector("#batch-progress")?.value === good,
        { timeout: 60_000, polling: 1000 },
        good,
      );
      break;
    } catch (e) {
      if (e.name !== "TimeoutError") throw e;
      const done = await p.$eval("#batch-progress", (e) => e.value);
      console.log(`  ${done} / ${good} pairs after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    }
  }
  const s = (Date.now() - t0) / 1000;
  const peak = peakMemory(root);
  if (cdp) {
    const { profile } = await cdp.send("Profiler.stop");
    fs.writeFileSync(process.env.XLALIGN_PROFILE, JSON.stringify(profile));
    // Self time by function: samples are node ids, one per interval.
    const self = new Map();
    const byId = new Map(profile.nodes.map((x) => [x.id, x]));
    for (const id of profile.samples) {
      const f = byId.get(id).callFrame;
      const name = `${f.functionName || "(anonymous)"} ${f.url.split("/").pop()}:${f.lineNumber}`;
      self.set(name, (self.get(name) ?? 0) + 1);
    }
    const total = profile.samples.length;
    console.log(`main thread, ${total} samples; most self time:`);
    for (const [name, k] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`  ${((100 * k) / total).toFixed(1).padStart(5)} %  ${name}`);
  }
  const long = await p.evaluate(() => window.__long.sort((a, b) => a - b));
  const status = await p.$eval("#batch-status", (e) => e.textContent);
  const problems = await p.$$eval(".problems li", (l) => l.map((x) => x.textContent));
  const rows = await p.$$eval("#batch-table tbody tr", (r) => r.map((x) => +x.dataset.line));
  const flagged = await p.$eval("#flagged-count", (e) => e.textContent);
  assert.equal(problems.length, bad, `every bad line is listed: ${problems}`);
  assert.ok(problems.every((x, i) => x.startsWith(`line ${1000 * (i + 1)}:`)), problems.join("; "));
  assert.deepEqual(rows, Array.from({ length: rows.length }, (_, i) => i + 1), "the first page, in line order");
  assert.deepEqual(p.errors, []);
  // The exports hold every pair: the JSON download as the page builds it (a Blob URL).
  const exported = await p.evaluate(async () => {
    const made = [];
    const create = URL.createObjectURL;
    URL.createObjectURL = (blob) => (made.push(blob), create.call(URL, blob));
    const t = performance.now();
    for (const id of ["#export-pharaoh", "#export-json", "#export-csv"]) document.querySelector(id).click();
    URL.createObjectURL = create;
    const texts = await Promise.all(made.map((x) => x.text()));
    return { ms: performance.now() - t, lines: texts.map((x) => x.split("\n").filter(Boolean).length), bytes: made.map((x) => x.size) };
  });
  console.log(
    JSON.stringify(
      {
        pairs: n,
        wordsPerSide: words || "whole lines",
        notPairs: bad,
        seconds: +s.toFixed(1),
        pairsPerS: +(good / s).toFixed(1),
        status,
        flagged,
        longTasks: { over50ms: long.length, totalMs: Math.round(long.reduce((a, b) => a + b, 0)), worstMs: Math.round(long.at(-1) ?? 0) },
        rendererPeakMiB: Math.round(peak.renderer ?? 0),
        browserPeakMiB: Math.round(peak.browser ?? 0),
        problemsListed: problems.length,
        firstPageRows: rows.length,
        exports: { ms: +exported.ms.toFixed(0), lines: exported.lines, bytes: exported.bytes },
        cpu: os.cpus()[0].model,
        cores: os.cpus().length,
      },
      null,
      1,
    ),
  );
} finally {
  await b.close();
  srv.stop();
  fs.rmSync(file, { force: true });
}
