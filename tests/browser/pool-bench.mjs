// Batch throughput of createAligner's worker pool against one worker, and the memory the
// pool takes, in headless Chromium (CPU backend). Usage (scripts/bench-browser.sh pool):
//   node tests/browser/pool-bench.mjs [pairs=200] [repeat=3] [batchSize=8]
// Pairs: the English–French, Romanian–English and Chinese–English gold slices, then
// Japanese–English, cycled to the count. Memory: the peak resident memory (VmHWM) of the
// page's renderer process, reset before each phase; dedicated workers are threads of the
// renderer, so their wasm memory and heaps are in it (the other Chromium processes are
// reported as a sum of their peaks). The renderer with the page loaded but no aligner is the
// baseline.
import { readFileSync } from "node:fs";
import { execSync } from "node:child_process";
import { browser, page, peakMemory, resetPeakMemory, server } from "./lib.mjs";

const nPairs = Number(process.argv[2] ?? 200);
const repeat = Number(process.argv[3] ?? 3);
const batchSize = Number(process.argv[4] ?? 8);

const srv = await server();
const b = await browser();
const root = b.process().pid;
const phase = () => {
  const p = peakMemory(root);
  resetPeakMemory(root);
  return p;
};
try {
  const p = await page(b, `${srv.base}/tests/browser/harness.html`);
  await p.evaluate(async (n) => {
    window.xl = await import("/pkg/index.js");
    await xl.default();
    const lines = async (f) => (await (await fetch(`/tests/data/gold/${f}`)).text()).split("\n").filter(Boolean);
    const all = [];
    for (const set of ["enfr", "roen", "zhen", "jaen"]) {
      const [s, t] = await Promise.all([lines(`${set}/${set}.src`), lines(`${set}/${set}.tgt`)]);
      s.forEach((x, i) => all.push([x, t[i]]));
    }
    window.pairs = Array.from({ length: n }, (_, i) => all[i % all.length]);
    window.timed = async (a, options) => {
      const t0 = performance.now();
      const r = await a.alignBatch(pairs, options);
      const ms = performance.now() - t0;
      if (r.length !== pairs.length) throw new Error("short batch");
      return { ms, pairsPerS: (pairs.length / ms) * 1000, failed: r.filter((x) => x.error).length };
    };
    window.settled = async (a) => {
      for (;;) {
        const s = await a.workerStatus();
        if (s.every((w) => w.state !== "loading")) return s;
        await new Promise((r) => setTimeout(r, 100));
      }
    };
  }, nPairs);
  const baseline = phase();

  const run = (workers) =>
    p.evaluate(
      async (url, workers, repeat, batchSize) => {
        const options = { backend: "cpu" };
        if (workers) options.workers = workers;
        const a = await xl.createAligner(url, options);
        const first = await timed(a, { batchSize }); // starts the pool's extra workers
        const status = await settled(a);
        const runs = [];
        for (let i = 0; i < repeat; i++) runs.push(await timed(a, { batchSize }));
        const size = a.poolSize;
        await a.dispose();
        return { size, first, status, runs, backend: a.backend };
      },
      srv.modelUrl,
      workers,
      repeat,
      batchSize,
    );
  const load = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  const loadBefore = load();
  phase();
  const one = await run(1);
  const oneMem = phase();
  const pool = await run(undefined);
  const poolMem = phase();
  const best = (r) => Math.max(...r.runs.map((x) => x.pairsPerS));
  const cpu = execSync("lscpu | sed -n 's/^Model name: *//p'").toString().trim();
  const flags = readFileSync("/proc/cpuinfo", "utf8").match(/\bavx512_vnni\b|\bavx_vnni\b/g) ?? [];
  const result = {
    cpu,
    flags: [...new Set(flags)],
    cores: (await p.evaluate(() => navigator.hardwareConcurrency)),
    deviceMemory: await p.evaluate(() => navigator.deviceMemory ?? null),
    pairs: nPairs,
    batchSize,
    load: { before: loadBefore, after: load() },
    one: { pairsPerS: best(one), runs: one.runs.map((x) => +x.pairsPerS.toFixed(1)), peakMiB: oneMem },
    pool: {
      size: pool.size,
      workers: pool.status.map((w) => w.state),
      firstBatchPairsPerS: pool.first.pairsPerS,
      pairsPerS: best(pool),
      runs: pool.runs.map((x) => +x.pairsPerS.toFixed(1)),
      peakMiB: poolMem,
    },
    baselineMiB: baseline,
  };
  result.speedup = result.pool.pairsPerS / result.one.pairsPerS;
  const renderer = (m) => m.renderer ?? 0;
  const others = (m) => Object.entries(m).reduce((a, [k, v]) => a + (k === "renderer" ? 0 : v), 0);
  result.perWorkerMiB = (renderer(poolMem) - renderer(oneMem)) / Math.max(1, pool.size - 1);
  console.log(`${cpu} (${result.flags.join(", ") || "no VNNI"}), navigator.hardwareConcurrency ${result.cores}, deviceMemory ${result.deviceMemory}`);
  console.log(`${nPairs} gold pairs, batchSize ${batchSize}, best of ${repeat}; load average ${loadBefore} -> ${result.load.after}`);
  console.log(`one worker:        ${best(one).toFixed(1)} pairs/s (runs ${result.one.runs.join(", ")}), renderer peak ${renderer(oneMem).toFixed(0)} MiB (other processes ${others(oneMem).toFixed(0)})`);
  console.log(
    `pool of ${pool.size} workers: ${best(pool).toFixed(1)} pairs/s (runs ${result.pool.runs.join(", ")}; first batch, workers starting: ` +
      `${pool.first.pairsPerS.toFixed(1)}), renderer peak ${renderer(poolMem).toFixed(0)} MiB (other processes ${others(poolMem).toFixed(0)})`,
  );
  console.log(
    `speed-up ${result.speedup.toFixed(2)}x; memory per extra worker ${result.perWorkerMiB.toFixed(0)} MiB; renderer with the page, no aligner: ${renderer(baseline).toFixed(0)} MiB`,
  );
  console.log(JSON.stringify(result));
} finally {
  await b.close();
  srv.stop();
}
