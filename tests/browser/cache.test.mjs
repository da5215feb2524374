// The model cache against a file replaced on the server, in headless Chromium: a cached
// model is used while the server still has the same file (one HEAD request, no bytes), is
// downloaded again once the file is replaced (new ETag / Last-Modified), and progressive
// loading never mixes rows of two versions. serve.py's /__replace makes the served file look
// replaced without touching it.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { browser, harness, server } from "./lib.mjs";

let srv, b, p;
before(async () => {
  // Its own server: /__replace must not disturb the other suites.
  srv = await server({ fresh: true });
  b = await browser();
  p = await harness(b, srv, { clearCache: true });
});
after(async () => {
  await b?.close();
  srv?.stop();
});

const T = { timeout: 600_000 };

/** Loads the model in the page with `options`, aligns one pair; the phases seen and the link count. */
async function load(url, options) {
  return p.evaluate(
    async (url, options) => {
      const phases = [];
      const a = await xl.Aligner.load(url, { backend: "cpu", ...options, onProgress: (e) => phases.push(e.phase) });
      const r = await a.align("The small house is old.", "Das kleine Haus ist alt.");
      const loading = a.loading;
      a.dispose();
      return { phases: [...new Set(phases)], links: r.links.length, loading };
    },
    url,
    options,
  );
}

async function replaceOnServer() {
  await fetch(`${srv.base}/__replace`);
}

test("a cached model is revalidated: used while unchanged, downloaded again once replaced", T, async () => {
  const first = await load(srv.modelUrl, {});
  assert.ok(first.phases.includes("download"), `first load downloads: ${first.phases}`);

  await srv.stats({ reset: true });
  const second = await load(srv.modelUrl, {});
  let stats = await srv.stats({ reset: true });
  assert.ok(second.phases.includes("cache") && !second.phases.includes("download"), `second load: ${second.phases}`);
  assert.equal(stats.bytes, 0, "an unchanged file is not downloaded again");
  assert.equal(stats.headRequests, 1, "one HEAD request checks that the file is unchanged");

  await replaceOnServer();
  const third = await load(srv.modelUrl, {});
  stats = await srv.stats({ reset: true });
  assert.ok(third.phases.includes("download"), `a replaced file is downloaded again: ${third.phases}`);
  assert.equal(stats.bytes, srv.modelBytes);

  const fourth = await load(srv.modelUrl, {});
  stats = await srv.stats();
  assert.ok(fourth.phases.includes("cache"), `the new version is cached: ${fourth.phases}`);
  assert.equal(stats.bytes, 0);
  for (const r of [first, second, third, fourth]) assert.equal(r.links, first.links);
  assert.ok(first.links >= 4);
});

test("with a sha256 the hash decides and no request is made", T, async () => {
  const sha = await p.evaluate(async (url) => {
    const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
    const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    return [...d].map((x) => x.toString(16).padStart(2, "0")).join("");
  }, srv.modelUrl);
  await load(srv.modelUrl, { sha256: sha });
  await srv.stats({ reset: true });
  const again = await load(srv.modelUrl, { sha256: sha });
  const stats = await srv.stats();
  assert.ok(again.phases.includes("cache"), `${again.phases}`);
  assert.equal(stats.requests, 0, JSON.stringify(stats));
});

test("progressive loading: cached parts of a replaced file are dropped, never mixed with new rows", T, async () => {
  await p.evaluate(() => xl.clearCache());
  // Parts cached, then the file replaced: the next load starts afresh.
  const first = await load(srv.modelUrl, { progressive: true });
  assert.equal(first.loading.mode, "progressive");
  const cachedAgain = await load(srv.modelUrl, { progressive: true });
  assert.equal(cachedAgain.loading.requests, 0, "unchanged: every part from the cache");
  await replaceOnServer();
  const fresh = await load(srv.modelUrl, { progressive: true });
  assert.ok(fresh.loading.requests >= 2, `replaced: parts fetched again (${JSON.stringify(fresh.loading)})`);
  assert.ok(fresh.loading.networkBytes > 0);
  assert.equal(fresh.loading.pagesFromCache, 0, "no page of the old version is used");
  assert.equal(fresh.links, first.links);

  // Replaced while loaded: a page of the new version is refused with a clear error.
  const r = await p.evaluate(async (url, base) => {
    const a = await xl.Aligner.load(url, { backend: "cpu", progressive: true, cache: false });
    await fetch(`${base}/__replace`);
    const err = await a.embed(["Ancient runes ᚠᚢᚦ and 𓂀 glyphs."]).then(
      () => null,
      (e) => ({ code: e.code, message: e.message }),
    );
    a.dispose();
    return err;
  }, srv.modelUrl, srv.base);
  assert.ok(r, "rows from a replaced file must not be used");
  assert.equal(r.code, "network");
  assert.match(r.message, /changed on the server/);
  assert.deepEqual(p.errors, []);
});
