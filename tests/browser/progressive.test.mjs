// Progressive loading (Range requests for the word-embedding table) in headless Chromium:
// ready after a fraction of the file, results identical to a full load, the fallback when
// the server ignores Range, and pages kept in the Cache API.
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
    a.dispose();
    return { info, links: res.links.length };
  }, noRange.modelUrl);
  assert.equal(r.info.mode, "full");
  assert.equal(r.info.rowsPresent, r.info.rowsTotal);
  assert.ok(r.links >= 4);
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
  assert.equal(r.secondReady.pagesFromCache, r.firstInfo.pagesFetched);
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
