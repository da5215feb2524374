// The worker pool behind createAligner's alignBatch, in headless Chromium: a batch split over
// several workers gives what one worker gives, in input order, per-pair errors included;
// progress streams every result exactly once; cancelling stops every worker; a worker that
// cannot start leaves a smaller pool; dispose stops them all; and the pool size rule.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { browser, page, server } from "./lib.mjs";

let srv, b, p;
before(async () => {
  srv = await server();
  b = await browser();
  p = await page(b, `${srv.base}/tests/browser/harness.html`);
  await p.evaluate(async () => {
    window.xl = await import("/pkg/index.js");
    window.poolRules = await import("/pkg/pool.js");
    await xl.default();
    const lines = async (f) => (await (await fetch(`/tests/data/gold/${f}`)).text()).split("\n").filter(Boolean);
    const pairs = [];
    for (const set of ["enfr", "roen", "zhen"]) {
      const [s, t] = await Promise.all([lines(`${set}/${set}.src`), lines(`${set}/${set}.tgt`)]);
      s.slice(0, 20).forEach((x, i) => pairs.push([x, t[i]]));
    }
    // A pair that fails (no words on one side) and a pair given as an object.
    pairs.splice(13, 0, ["", "Das Haus ist klein."]);
    pairs.splice(40, 0, { src: "The house is small.", tgt: "Das Haus ist klein." });
    window.pairs = pairs;
    // Resolves once every worker of the aligner has left the "loading" state.
    window.settled = async (a) => {
      for (;;) {
        const s = await a.workerStatus();
        if (s.every((w) => w.state !== "loading")) return s;
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    // Runs a batch, collecting what progress streams.
    window.run = async (a, list, options) => {
      const events = [];
      const results = await a.alignBatch(list, options, (e) => events.push(e));
      return { results, events };
    };
  });
});
after(async () => {
  await b?.close();
  srv?.stop();
});

const T = { timeout: 600_000 };

// Every index covered exactly once by the streamed results, each equal to the final entry.
function checkStream({ results, events }, total) {
  const seen = new Array(total).fill(0);
  let last = 0;
  for (const e of events) {
    assert.equal(e.total, total);
    assert.ok(e.done >= last, "done never goes back");
    last = e.done;
    e.results.forEach((r, i) => {
      seen[e.offset + i]++;
      assert.deepStrictEqual(r, results[e.offset + i], `streamed result ${e.offset + i}`);
    });
  }
  assert.equal(last, total);
  assert.deepEqual(seen, new Array(total).fill(1), "each pair streamed exactly once");
}

test("a batch on the pool equals the batch on one worker, in order, per-pair errors included", T, async () => {
  const r = await p.evaluate(async (url) => {
    await xl.clearCache();
    const one = await xl.createAligner(url, { backend: "cpu", workers: 1 });
    const single = await run(one, pairs, { batchSize: 4 });
    window.pool = await xl.createAligner(url, { backend: "cpu", workers: 2 });
    const before = await pool.workerStatus(); // the extra worker starts with the first big batch
    const first = await run(pool, pairs, { batchSize: 4 });
    const ready = await settled(pool);
    // Now both workers take parts from the start.
    const second = await run(pool, pairs, { batchSize: 4 });
    const status = await pool.workerStatus();
    const small = await pool.alignBatch(pairs.slice(0, 3), { batchSize: 4 });
    await one.dispose();
    return { single, first, second, before, ready, status, small, sizes: [one.poolSize, pool.poolSize] };
  }, srv.modelUrl);
  const n = 62;
  assert.deepEqual(r.sizes, [1, 2]);
  assert.equal(r.single.results.length, n);
  assert.deepEqual(r.before.map((w) => w.state), ["ready"]);
  assert.deepEqual(r.ready.map((w) => w.state), ["ready", "ready"]);
  assert.deepEqual(r.single.results[13].error.code, "input");
  assert.ok(r.single.results[40].links.length >= 4);
  assert.deepStrictEqual(r.first.results, r.single.results);
  assert.deepStrictEqual(r.second.results, r.single.results);
  assert.deepStrictEqual(r.small, r.single.results.slice(0, 3));
  checkStream(r.single, n);
  checkStream(r.first, n);
  checkStream(r.second, n);
  // Both workers aligned part of the second batch.
  const gained = r.status.map((w, i) => w.pairs - r.ready[i].pairs);
  assert.ok(gained.every((g) => g > 0), `pairs per worker in the second batch: ${gained}`);
  assert.equal(gained[0] + gained[1], n);
});

test("cancelling a pooled batch stops every worker", T, async () => {
  const r = await p.evaluate(async () => {
    const many = Array.from({ length: 20 }, () => pairs).flat(); // 1240 pairs
    const outcome = (pr) => pr.then(() => ({ ok: true }), (e) => ({ ok: false, name: e.name, code: e.code }));
    const s0 = await pool.workerStatus();
    // Abort by signal once a few parts are done.
    const ctl = new AbortController();
    let doneAtAbort = -1;
    const running = pool.alignBatch(many, { batchSize: 1, signal: ctl.signal }, ({ done }) => {
      if (done >= 6 && doneAtAbort < 0) {
        doneAtAbort = done;
        ctl.abort();
      }
    });
    const aborted = await outcome(running);
    // Each status request queues behind whatever the worker still has to do: two in a row
    // agree only if nothing of the batch ran in between.
    const s1 = await pool.workerStatus();
    const s2 = await pool.workerStatus();
    // cancel(id) right away, before any part finished.
    const next = pool.alignBatch(many, { batchSize: 1 });
    const cancelled = pool.cancel(next.id);
    const byId = await outcome(next);
    const s3 = await pool.workerStatus();
    const s4 = await pool.workerStatus();
    // The pool still works afterwards.
    const again = await pool.alignBatch(pairs, { batchSize: 4 });
    return { aborted, doneAtAbort, s0, s1, s2, cancelled, byId, s3, s4, again: again.length, total: many.length };
  });
  const sum = (s) => s.reduce((a, w) => a + w.pairs, 0);
  assert.deepEqual(r.aborted, { ok: false, name: "AbortError", code: "cancelled" });
  assert.deepEqual(r.byId, { ok: false, name: "AbortError", code: "cancelled" });
  assert.equal(r.cancelled, true);
  assert.equal(r.s1.length, 2);
  assert.deepEqual(r.s2, r.s1, "a worker went on with the cancelled batch");
  assert.deepEqual(r.s4, r.s3, "a worker went on with the batch cancelled by id");
  // Besides what progress reported, at most the part each worker was running (one pair each).
  const ran = sum(r.s1) - sum(r.s0);
  assert.ok(ran >= r.doneAtAbort && ran <= r.doneAtAbort + 2, `ran ${ran} pairs, ${r.doneAtAbort} reported`);
  assert.ok(sum(r.s3) - sum(r.s2) <= 2, `the batch cancelled by id ran ${sum(r.s3) - sum(r.s2)} pairs`);
  assert.equal(r.again, 62);
});

test("dispose stops every worker of the pool", T, async () => {
  const before = p.workers().length;
  await p.evaluate(() => pool.dispose());
  assert.ok(before >= 2, `the page has ${before} workers`);
  const gone = () => p.workers().length;
  for (let i = 0; gone() > before - 2; i++) {
    assert.ok(i < 400, `workers left: ${gone()} of ${before}`);
    await new Promise((r) => setTimeout(r, 50)); // waits for the workers' targets to go
  }
  assert.equal(gone(), before - 2);
  const r = await p.evaluate(() =>
    pool.alignBatch(pairs, {}).then(
      () => null,
      (e) => e.code,
    ),
  );
  assert.equal(r, "disposed");
});

test("progressive loading: the extra workers load the same way, the batch is the same", T, async () => {
  const r = await p.evaluate(async (url) => {
    await xl.clearCache();
    const one = await xl.createAligner(url, { backend: "cpu", workers: 1, progressive: true });
    await one.whenLoaded();
    const single = await one.alignBatch(pairs, { batchSize: 4 });
    await one.dispose();
    const a = await xl.createAligner(url, { backend: "cpu", workers: 2, progressive: true });
    // Right after loading, the workers may differ in the layers they have: the batch must
    // still be one worker's, every entry with the sentence cosine or every one without.
    const early = await a.alignBatch(pairs, { batchSize: 4 });
    const ready = await settled(a);
    await a.whenLoaded();
    const pooled = await run(a, pairs, { batchSize: 4 });
    const status = await a.workerStatus();
    await a.dispose();
    const cosines = (list) => [...new Set(list.filter((e) => !e.error).map((e) => e.similarity.cosine === null))];
    return { single, pooled, ready, status, early: cosines(early) };
  }, srv.modelUrl);
  assert.deepEqual(r.ready.map((w) => w.state), ["ready", "ready"]);
  assert.equal(r.early.length, 1, "a pooled batch mixed entries with and without the sentence cosine");
  assert.deepStrictEqual(r.pooled.results, r.single);
  checkStream(r.pooled, 62);
  assert.ok(r.status.every((w, i) => w.pairs > r.ready[i].pairs), "both workers took part");
});

test("a worker that cannot start leaves a smaller pool, and the batch completes", T, async () => {
  const r = await p.evaluate(async (url) => {
    const worker = new Worker("/pkg/worker.js", { type: "module" });
    const a = await xl.createAligner(url, { backend: "cpu", worker, workerUrl: "/pkg/missing-worker.js", workers: 3 });
    const results = await a.alignBatch(pairs, { batchSize: 4 });
    const status = await settled(a);
    const later = await a.alignBatch(pairs, { batchSize: 4 });
    await a.dispose();
    return { same: JSON.stringify(results) === JSON.stringify(later), n: results.length, status, size: a.poolSize };
  }, srv.modelUrl);
  assert.equal(r.size, 3);
  assert.equal(r.n, 62);
  assert.ok(r.same);
  assert.deepEqual(r.status.map((w) => w.state), ["ready", "failed", "failed"]);
});

test("pool size: cores, memory, WebGPU, bytes, and the workers option", T, async () => {
  const r = await p.evaluate(async () => {
    const { poolSize, checkWorkers } = poolRules;
    const nav = (hardwareConcurrency, deviceMemory) => ({ hardwareConcurrency, deviceMemory });
    const auto = { backend: "cpu", bytes: false, canStart: true };
    const grab = (f) => {
      try {
        f();
        return null;
      } catch (e) {
        return e.code;
      }
    };
    return {
      cores2: poolSize({ ...auto, nav: nav(2) }),
      cores16: poolSize({ ...auto, nav: nav(16) }),
      mem8: poolSize({ ...auto, nav: nav(16, 8) }),
      mem4: poolSize({ ...auto, nav: nav(16, 4) }),
      mem2: poolSize({ ...auto, nav: nav(16, 2) }),
      mem1: poolSize({ ...auto, nav: nav(16, 1) }),
      mem05: poolSize({ ...auto, nav: nav(16, 0.5) }),
      unknown: poolSize({ ...auto, nav: {} }),
      webgpu: poolSize({ ...auto, backend: "webgpu", nav: nav(8) }),
      webgpuAsked: poolSize({ ...auto, backend: "webgpu", workers: 2, nav: nav(8) }),
      bytes: poolSize({ ...auto, bytes: true, nav: nav(8) }),
      given: poolSize({ ...auto, canStart: false, nav: nav(8) }),
      asked: poolSize({ ...auto, workers: 6, nav: nav(2) }),
      bad: [0, 1.5, "2", 17].map((w) => grab(() => checkWorkers(w))),
      good: grab(() => checkWorkers(1)),
      badOption: await xl.createAligner("/models/none.gguf", { workers: 0 }).then(
        () => null,
        (e) => e.code,
      ),
    };
  });
  assert.equal(r.cores2, 2);
  assert.equal(r.cores16, 4);
  assert.equal(r.mem8, 4);
  assert.equal(r.mem4, 4);
  assert.equal(r.mem2, 3); // 512 MiB for workers of 160 MiB
  assert.equal(r.mem1, 1);
  assert.equal(r.mem05, 1);
  assert.equal(r.unknown, 1);
  assert.equal(r.webgpu, 1);
  assert.equal(r.webgpuAsked, 2);
  assert.equal(r.bytes, 1);
  assert.equal(r.given, 1);
  assert.equal(r.asked, 6);
  assert.deepEqual(r.bad, ["input", "input", "input", "input"]);
  assert.equal(r.good, null);
  assert.equal(r.badOption, "input");
  assert.deepEqual(p.errors, []);
});
