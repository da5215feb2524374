// Progressive loading (Range requests) in headless Chromium: ready after a fraction of the
// file, the first alignment after at most 12 MB, the deeper blocks arriving afterwards
// (calls that need them wait, the default sentence cosine is left out until they are
// there), results identical to a full load on the CPU and on WebGPU, the fallback when the
// server ignores Range, the cache filled in the background and an offline reload from it.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { ROOT, browser, harness, server } from "./lib.mjs";

let srv, noRange, b, p;
before(async () => {
  srv = await server({ fresh: true });
  noRange = await server({ noRange: true });
  b = await browser();
  p = await harness(b, srv, { clearCache: true });
});
after(async () => {
  await b?.close();
  srv?.stop();
  noRange?.stop();
});

const T = { timeout: 600_000 };
const reference = JSON.parse(readFileSync(path.join(ROOT, "tests/data/e5-small-q4-reference.json"), "utf8"));
const texts = reference.sentences.map((s) => s.text);

test("ready after a fraction of the file; embeddings and links equal a full load", T, async () => {
  await srv.stats({ reset: true });
  const r = await p.evaluate(async (url, texts) => {
    const prog = await xl.Aligner.load(url, { backend: "cpu", progressive: true, cache: false });
    const atReady = prog.loading;
    const pv = await prog.embed(texts);
    const pa = await prog.align("Ancient runes ᚠᚢᚦ on the shore.", "Alte Runen ᚠᚢᚦ am Ufer.");
    const afterUse = prog.loading;
    const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
    const full = await xl.Aligner.load(bytes, { backend: "cpu" });
    const fv = await full.embed(texts);
    const fa = await full.align("Ancient runes ᚠᚢᚦ on the shore.", "Alte Runen ᚠᚢᚦ am Ufer.");
    const fullInfo = full.loading;
    prog.dispose();
    full.dispose();
    return {
      atReady,
      afterUse,
      fullInfo,
      sameVectors: pv.every((v, i) => v.every((x, j) => x === fv[i][j])),
      sameLinks: JSON.stringify(pa.links) === JSON.stringify(fa.links),
    };
  }, srv.modelUrl, texts);
  const stats = await srv.stats();
  assert.equal(r.atReady.mode, "progressive");
  assert.ok(r.atReady.readyBytes < srv.modelBytes * 0.45, `ready after ${r.atReady.readyBytes} of ${srv.modelBytes} bytes`);
  assert.ok(r.atReady.rowsPresent < r.atReady.rowsTotal / 4);
  assert.ok(r.afterUse.pagesFetched > 0, "rare rows were fetched on demand");
  assert.ok(r.afterUse.rowsPresent > r.atReady.rowsPresent);
  assert.ok(r.afterUse.networkBytes < srv.modelBytes * 0.6, `${r.afterUse.networkBytes} bytes downloaded`);
  assert.ok(r.sameVectors, "progressive and full embeddings differ");
  assert.ok(r.sameLinks, "progressive and full links differ");
  assert.equal(r.fullInfo.mode, "full");
  assert.ok(stats.rangeRequests >= 3, `range requests ${JSON.stringify(stats)}`);
});

test("concurrent calls on WebGPU take turns fetching rows, and each gets the links it gets alone", T, async () => {
  const r = await p.evaluate(async (url) => {
    const a = await xl.Aligner.load(url, { backend: "webgpu", progressive: true, cache: false });
    const kind = a.backend.kind;
    // Rare words in each pair, asked for at once: both calls need pages, their updates take
    // turns, and each call must see all of its rows (the links it gets alone).
    const pairs = [
      ["Ancient runes ᚠᚢᚦ on the shore.", "Alte Runen ᚠᚢᚦ am Ufer."],
      ["Ogham ᚁᚂᚃ stones stand here.", "Ogham-Steine ᚁᚂᚃ stehen hier."],
    ];
    const outcome = (pr) => pr.then((v) => ({ links: v.links }), (e) => ({ error: String(e?.message), trap: e instanceof WebAssembly.RuntimeError }));
    const together = await Promise.all(pairs.map(([s, t]) => outcome(a.align(s, t))));
    const alone = [];
    for (const [s, t] of pairs) alone.push(await outcome(a.align(s, t)));
    const info = a.loading;
    a.dispose();
    return { kind, together, alone, info };
  }, srv.modelUrl);
  if (r.kind !== "webgpu") {
    assert.notEqual(process.env.XLALIGN_REQUIRE_GPU, "1", "no WebGPU adapter in Chromium");
    return;
  }
  for (const [i, o] of r.together.entries()) {
    assert.equal(o.error, undefined, `concurrent call ${i}: ${o.error} (trap: ${o.trap})`);
    assert.deepEqual(o.links, r.alone[i].links, `concurrent call ${i} differs from the same call alone`);
    assert.ok(o.links.length > 0);
  }
  assert.ok(r.info.pagesFetched >= 2, `pages fetched ${r.info.pagesFetched}`);
  assert.deepEqual(p.errors, []);
});

test("a server that ignores Range gets a full download, which works the same", T, async () => {
  const r = await p.evaluate(async (url) => {
    const a = await xl.Aligner.load(url, { backend: "cpu", progressive: true, cache: false });
    const info = a.loading;
    const res = await a.align("The house is small.", "Das Haus ist klein.");
    await a.whenLoaded();
    a.dispose();
    return { info, links: res.links.length, cosine: res.similarity.cosine };
  }, noRange.modelUrl);
  assert.equal(r.info.mode, "full");
  assert.equal(r.info.rowsPresent, r.info.rowsTotal);
  assert.equal(r.info.layersPresent, r.info.layersTotal);
  assert.ok(r.links >= 4);
  assert.equal(r.cosine === null, false, "a full load gives the sentence cosine by default");
});

test("pages fetched once are cached with the header and tail for the next visit", T, async () => {
  const r = await p.evaluate(async (url, texts) => {
    const first = await xl.Aligner.load(url, { backend: "cpu", progressive: true });
    await first.embed(texts);
    const firstInfo = first.loading;
    first.dispose();
    const second = await xl.Aligner.load(url, { backend: "cpu", progressive: true });
    const secondReady = second.loading;
    await second.embed(texts);
    const secondInfo = second.loading;
    second.dispose();
    const keys = (await (await caches.open("xlalign-models-v1")).keys()).length;
    const cleared = await xl.clearCache();
    return { firstInfo, secondReady, secondInfo, keys, cleared };
  }, srv.modelUrl, texts);
  assert.ok(r.firstInfo.pagesFetched > 0);
  assert.equal(r.secondReady.requests, 0, "second load came from the cache");
  assert.equal(r.secondReady.networkBytes, 0);
  // The background fill may have cached more than the pages fetched on demand.
  assert.ok(r.secondReady.pagesFromCache >= r.firstInfo.pagesFetched);
  assert.equal(r.secondInfo.pagesFetched, 0, "no page fetched twice");
  assert.ok(r.keys > 2);
  assert.equal(r.cleared, true);
});

test("bad progressive options throw input errors", T, async () => {
  const r = await p.evaluate(async (url) => {
    const grab = (pr) => pr.then(() => null, (e) => ({ code: e.code, message: e.message }));
    return {
      page: await grab(xl.Aligner.load(url, { progressive: true, pageRows: 0 })),
      sha: await grab(xl.Aligner.load(url, { progressive: true, sha256: "0".repeat(64) })),
      unknown: await grab(xl.Aligner.load(url, { progresive: true })),
    };
  }, srv.modelUrl);
  assert.equal(r.page.code, "input");
  assert.match(r.page.message, /pageRows/);
  assert.equal(r.sha.code, "input");
  assert.match(r.sha.message, /progressive/);
  assert.equal(r.unknown.code, "input");
  assert.match(r.unknown.message, /progresive/);
  assert.deepEqual(p.errors, []);
});

const SHORT = ["Das Haus ist klein und alt.", "The house is small and old."];
// Place names, Hungarian and Icelandic: pieces far down the table.
const RARE = [
  "Eyjafjallajökull erupted near Hvolsvöllur; the Hungarian word for it is tűzhányó-kitörés.",
  "Az Eyjafjallajökull Hvolsvöllur közelében tört ki, izlandiul eldgos.",
];

/**
 * In the page: loads `url` progressively on `backend` and, as a page would, aligns SHORT the
 * moment the load resolves; then the calls that need the deeper blocks, whenLoaded(), and a
 * rare-word pair. Kept as `window.prog`; results in `window.progResults`.
 */
async function progressiveRun(backend) {
  return p.evaluate(
    async (url, backend, SHORT, RARE) => {
      const a = await xl.Aligner.load(url, { backend, progressive: true, cache: false });
      const atReady = a.loading;
      const first = await a.align(...SHORT);
      const afterFirst = a.loading;
      const explicit = await a.align(...SHORT, { sentenceCosine: true });
      const deep = await a.align(...SHORT, { layer: 11, sentenceCosine: false });
      const loaded = await a.whenLoaded();
      const later = await a.align(...SHORT);
      const beforeRare = a.loading;
      const rare = await a.align(...RARE);
      const afterRare = a.loading;
      window.progResults = { first, explicit, deep, later, rare };
      a.dispose();
      return { atReady, afterFirst, loaded, beforeRare, afterRare, firstCosine: first.similarity.cosine, laterCosine: later.similarity.cosine };
    },
    srv.modelUrl,
    backend,
    SHORT,
    RARE,
  );
}

/** In the page: the same calls on a full load of the file's bytes, compared with `window.progResults`. */
async function compareWithFull(backend) {
  return p.evaluate(
    async (url, backend, SHORT, RARE) => {
      const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
      const full = await xl.Aligner.load(bytes, { backend });
      const kind = full.backend.kind;
      const want = {
        first: await full.align(...SHORT, { sentenceCosine: false }),
        explicit: await full.align(...SHORT, { sentenceCosine: true }),
        deep: await full.align(...SHORT, { layer: 11, sentenceCosine: false }),
        later: await full.align(...SHORT),
        rare: await full.align(...RARE),
      };
      full.dispose();
      const got = window.progResults;
      const same = {};
      for (const k of Object.keys(want)) {
        same[k] = {
          links: JSON.stringify(got[k].links) === JSON.stringify(want[k].links),
          words: JSON.stringify(got[k].wordSimilarity) === JSON.stringify(want[k].wordSimilarity),
          scores: JSON.stringify({ ...got[k].similarity, cosine: 0 }) === JSON.stringify({ ...want[k].similarity, cosine: 0 }),
          cosine: got[k].similarity.cosine === want[k].similarity.cosine,
          layer: got[k].layer === want[k].layer,
        };
      }
      return { kind, same, cosines: [got.explicit.similarity.cosine, want.explicit.similarity.cosine] };
    },
    srv.modelUrl,
    backend,
    SHORT,
    RARE,
  );
}

function checkRun(r, layersAtReady) {
  assert.equal(r.atReady.mode, "progressive");
  assert.equal(r.atReady.layersTotal, 12);
  assert.equal(r.atReady.layersPresent, layersAtReady, "ready with the blocks up to the alignment layer");
  assert.ok(r.afterFirst.networkBytes <= 12e6, `${r.afterFirst.networkBytes} bytes before the first alignment`);
  assert.equal(r.firstCosine, null, "the default sentence cosine is left out while the deeper blocks arrive");
  assert.equal(r.loaded.layersPresent, 12, "whenLoaded resolves with every block present");
  assert.equal(typeof r.laterCosine, "number", "once loaded, the sentence cosine is there by default");
  assert.ok(r.afterRare.pagesFetched > r.beforeRare.pagesFetched, "the rare pair's rows were fetched");
}

function checkSame(c) {
  for (const [k, s] of Object.entries(c.same)) {
    for (const [what, ok] of Object.entries(s)) assert.ok(ok, `${k}: ${what} differs from a full load`);
  }
}

test("the first alignment after at most 12 MB; deeper blocks arrive later, waited for where needed; all equal a full load", T, async () => {
  await srv.stats({ reset: true });
  const r = await progressiveRun("cpu");
  const served = await srv.stats();
  checkRun(r, 7);
  // Ready, the pages, the deeper blocks, and what the server had sent of the first request
  // when it was cancelled: never the whole model.
  assert.ok(served.bytes < srv.modelBytes / 2, `the server sent ${served.bytes} of ${srv.modelBytes} bytes`);
  checkSame(await compareWithFull("cpu"));
  assert.deepEqual(p.errors, []);
});

test("on WebGPU, blocks and rows written into the running backend give a full load's results", T, async () => {
  const r = await progressiveRun("webgpu");
  const c = await compareWithFull("webgpu");
  if (c.kind !== "webgpu") {
    assert.notEqual(process.env.XLALIGN_REQUIRE_GPU, "1", "no WebGPU adapter in Chromium");
    return;
  }
  checkRun(r, 7);
  checkSame(c);
  assert.deepEqual(p.errors, []);
});

test("the cache fills in the background after a progressive visit; an offline reload needs no network", T, async () => {
  await p.evaluate(() => xl.clearCache());
  const first = await p.evaluate(async (url, SHORT) => {
    const a = await xl.Aligner.load(url, { backend: "cpu", progressive: true });
    const r = await a.align(...SHORT);
    await a.whenLoaded();
    const stored = await a.whenStored();
    const info = a.loading;
    let uncached;
    const b = await xl.Aligner.load(url, { backend: "cpu", progressive: true, cache: false });
    try {
      await b.whenStored();
    } catch (e) {
      uncached = e.code;
    }
    b.dispose();
    a.dispose();
    return { info, stored, uncached, links: r.links };
  }, srv.modelUrl, SHORT);
  assert.equal(first.info.rowsPresent, first.info.rowsTotal);
  assert.equal(first.stored.rowsPresent, first.stored.rowsTotal, "whenStored resolves once every row is here");
  assert.equal(first.uncached, "input", "whenStored under cache: false");
  await srv.stats({ reset: true });
  await p.setOfflineMode(true);
  let second;
  try {
    second = await p.evaluate(async (url, SHORT, RARE) => {
      const a = await xl.Aligner.load(url, { backend: "cpu", progressive: true });
      const ready = a.loading;
      const short = await a.align(...SHORT);
      const rare = await a.align(...RARE);
      const loaded = await a.whenLoaded();
      const withCosine = await a.align(...SHORT);
      const info = a.loading;
      a.dispose();
      return { ready, info, loaded, links: short.links, rare: rare.links.length, cosine: withCosine.similarity.cosine };
    }, srv.modelUrl, SHORT, RARE);
  } finally {
    await p.setOfflineMode(false);
  }
  const stats = await srv.stats();
  assert.equal(stats.requests, 0, `offline: nothing reached the server (${JSON.stringify(stats)})`);
  assert.equal(second.info.requests, 0);
  assert.equal(second.info.networkBytes, 0);
  assert.equal(second.ready.rowsPresent, second.ready.rowsTotal, "every row came from the cache");
  assert.equal(second.loaded.layersPresent, 12);
  assert.deepEqual(second.links, first.links);
  assert.ok(second.rare > 0);
  assert.equal(typeof second.cosine, "number");
  await p.evaluate(() => xl.clearCache());
  assert.deepEqual(p.errors, []);
});

test("through the worker: whenLoaded() waits outside the queue, and the cosine is there afterwards", T, async () => {
  const r = await p.evaluate(async (url, SHORT) => {
    const a = await xl.createAligner(url, { backend: "cpu", progressive: true, cache: false });
    const waiting = a.whenLoaded();
    const meanwhile = await a.align(...SHORT, { sentenceCosine: false });
    const info = await waiting;
    const later = await a.align(...SHORT);
    await a.dispose();
    return { info, meanwhile: meanwhile.links, later: later.links, cosine: later.similarity.cosine };
  }, srv.modelUrl, SHORT);
  assert.equal(r.info.mode, "progressive");
  assert.equal(r.info.layersPresent, r.info.layersTotal);
  assert.deepEqual(r.meanwhile, r.later);
  assert.equal(typeof r.cosine, "number");
  assert.deepEqual(p.errors, []);
});

test("through the worker: the idle timer runs on the page, and with no call it starts the deeper layers", T, async () => {
  await srv.stats({ reset: true });
  const r = await p.evaluate(async (url) => {
    // Our own worker, to see the load options createAligner sends it.
    const worker = new Worker("/pkg/worker.js", { type: "module" });
    const sent = [];
    const post = worker.postMessage.bind(worker);
    worker.postMessage = (m, t) => {
      sent.push(m);
      post(m, t);
    };
    const a = await xl.createAligner(url, { backend: "cpu", progressive: true, cache: false, worker, workers: 1, idleStartMs: 50 });
    window.idleAligner = a;
    return { load: sent.find((m) => m.op === "load")?.args?.options };
  }, srv.modelUrl);
  // The worker keeps no timer of its own (-1); the page's, 50 ms, asks for the deeper layers.
  assert.equal(r.load.idleStartMs, -1, JSON.stringify(r.load));
  const atReady = (await srv.stats()).rangeRequests;
  // Five deeper blocks (12 layers, ready after 7), one range request each, and no call made.
  let now = atReady;
  while (now < atReady + 5) {
    await new Promise((ok) => setTimeout(ok, 50)); // polls the server's count (a state)
    now = (await srv.stats()).rangeRequests;
  }
  const info = await p.evaluate(async () => {
    const info = await window.idleAligner.whenLoaded();
    await window.idleAligner.dispose();
    return info;
  });
  assert.equal(info.layersPresent, info.layersTotal);
  assert.deepEqual(p.errors, []);
});
