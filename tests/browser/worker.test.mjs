// The package's Web Worker wrapper (createAligner) and the model cache, in headless
// Chromium: progress forwarding, queueing, cancellation, errors across the worker,
// Cache API integrity, and equality with the same API used on the page directly.
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
  });
});
after(async () => {
  await b?.close();
  srv?.stop();
});

const T = { timeout: 600_000 };

test("createAligner forwards load progress and reports the backend", T, async () => {
  const r = await p.evaluate(async (url) => {
    await xl.default();
    await xl.clearCache();
    const events = [];
    window.remote = await xl.createAligner(url, { backend: "cpu", onProgress: (e) => events.push(e) });
    return { events, backend: remote.backend, model: remote.model };
  }, srv.modelUrl);
  const downloads = r.events.filter((e) => e.phase === "download");
  assert.ok(downloads.length > 5, `only ${downloads.length} download events`);
  assert.equal(downloads.at(-1).loaded, srv.modelBytes);
  assert.equal(downloads.at(-1).total, srv.modelBytes);
  assert.equal(r.events.at(-1).phase, "ready");
  assert.equal(r.backend.kind, "cpu");
  assert.equal(r.model.vocab, 250037);
});

test("queued requests all resolve, in order, and agree with the API used on the page", T, async () => {
  const r = await p.evaluate(async (url) => {
    const order = [];
    const track = (name, promise) => promise.then((v) => (order.push(name), v));
    const texts = ["The house is small.", "Das Haus ist klein."];
    const [vecs, sim, al] = await Promise.all([
      track("embed", remote.embed(texts)),
      track("similarity", remote.similarity(texts[0], texts[1])),
      track("align", remote.align(texts[0], texts[1])),
    ]);
    const direct = await xl.Aligner.load(url, { backend: "cpu" });
    const dv = await direct.embed(texts);
    const dal = await direct.align(texts[0], texts[1]);
    direct.dispose();
    const dot = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0);
    return {
      order,
      isF32: vecs[0] instanceof Float32Array,
      sameVectors: vecs.every((v, i) => v.length === 384 && v.every((x, j) => x === dv[i][j])),
      simVsDot: Math.abs(sim - dot(vecs[0], vecs[1])),
      sameLinks: JSON.stringify(al.links) === JSON.stringify(dal.links),
      nLinks: al.links.length,
    };
  }, srv.modelUrl);
  assert.deepEqual(r.order, ["embed", "similarity", "align"]);
  assert.ok(r.isF32);
  assert.ok(r.sameVectors, "worker and page embeddings differ");
  assert.ok(r.simVsDot < 1e-5, `similarity vs dot product: ${r.simVsDot}`);
  assert.ok(r.sameLinks && r.nLinks >= 4);
});

test("requests can be cancelled while running (AbortSignal) or queued (cancel(id))", T, async () => {
  const r = await p.evaluate(async () => {
    const pairs = Array.from({ length: 40 }, (_, i) => [`Sentence number ${i} is here.`, `Der Satz Nummer ${i} ist hier.`]);
    const ctl = new AbortController();
    let seen = 0;
    const running = remote.alignBatch(pairs, { batchSize: 1, signal: ctl.signal }, ({ done }) => {
      seen = done;
      if (done === 2) ctl.abort();
    });
    const queued = remote.align("A queued one.", "Eine wartende.");
    const kept = remote.similarity("kept", "behalten");
    // Handlers attached at once: a rejection left unhandled would show up as a page error.
    const outcome = (pr) => pr.then((v) => ({ ok: true, v }), (e) => ({ ok: false, name: e.name, code: e.code }));
    const results = [outcome(running), outcome(queued), outcome(kept)];
    const cancelled = remote.cancel(queued.id);
    return {
      cancelled,
      running: await results[0],
      queued: await results[1],
      kept: await results[2],
      seen,
      cancelUnknown: remote.cancel(987654),
    };
  });
  assert.equal(r.cancelled, true);
  assert.deepEqual(r.running, { ok: false, name: "AbortError", code: "cancelled" });
  assert.deepEqual(r.queued, { ok: false, name: "AbortError", code: "cancelled" });
  assert.ok(r.kept.ok && typeof r.kept.v === "number", "a request after the cancelled ones still runs");
  assert.ok(r.seen >= 2 && r.seen < 40, `progress reached ${r.seen}`);
  assert.equal(r.cancelUnknown, false);
});

test("errors cross the worker with their message and code", T, async () => {
  const r = await p.evaluate(async () => {
    const grab = (pr) => pr.then(() => null, (e) => ({ isError: e instanceof Error, message: e.message, code: e.code }));
    return {
      method: await grab(remote.align("a b", "c d", { method: "magic" })),
      empty: await grab(remote.align("", "c d")),
      texts: await grab(remote.embed("nope")),
      badModel: await grab(xl.createAligner(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]))),
      missing: await grab(xl.createAligner(location.origin + "/models/none.gguf", { cache: false })),
    };
  });
  assert.equal(r.method.code, "input");
  assert.match(r.method.message, /magic/);
  assert.ok(r.method.isError);
  assert.equal(r.empty.code, "input");
  assert.match(r.empty.message, /no words/);
  assert.equal(r.texts.code, "input");
  assert.equal(r.badModel.code, "model");
  assert.match(r.badModel.message, /GGUF|short/);
  assert.equal(r.missing.code, "network");
  assert.match(r.missing.message, /404/);
});

test("the cache serves the second load, and a corrupted entry is detected and replaced", T, async () => {
  const r = await p.evaluate(async (url) => {
    const phases = async () => {
      const seen = new Set();
      const a = await xl.createAligner(url, { backend: "cpu", onProgress: (e) => seen.add(e.phase) });
      const links = (await a.align("Good morning.", "Guten Morgen.")).links.length;
      await a.dispose();
      return { phases: [...seen], links };
    };
    const second = await phases(); // the first test's load filled the cache
    // Same headers (size, SHA-256), different bytes: must not be used.
    const cache = await caches.open("xlalign-models-v1");
    const good = await cache.match(url);
    const headers = new Headers(good.headers);
    const bytes = new Uint8Array(await good.arrayBuffer());
    bytes[bytes.length - 100] ^= 0xff;
    await cache.put(url, new Response(bytes, { headers }));
    const afterCorruption = await phases();
    const third = await phases();
    const cleared = await xl.clearCache();
    const empty = !(await (await caches.open("xlalign-models-v1")).match(url));
    return { second, afterCorruption, third, cleared, empty };
  }, srv.modelUrl);
  assert.ok(r.second.phases.includes("cache") && !r.second.phases.includes("download"), `second: ${r.second.phases}`);
  assert.ok(r.afterCorruption.phases.includes("download"), `corrupted entry used: ${r.afterCorruption.phases}`);
  assert.ok(r.afterCorruption.links > 0);
  assert.ok(r.third.phases.includes("cache") && !r.third.phases.includes("download"), `third: ${r.third.phases}`);
  assert.equal(r.cleared, true);
  assert.ok(r.empty);
});

test("encode once, extract many: every method gives what align gives, through the worker", T, async () => {
  const r = await p.evaluate(async (url) => {
    const pairs = [
      ["The house is small.", "Das Haus ist klein."],
      ["The old lighthouse keeper walked along the shore.", "年老的灯塔看守人沿着海岸散步。"],
      ["I love 😀 and 𠀋 here.", "J'adore 😀 et 𠀋 ici."],
    ];
    const methods = ["softmax", "entmax", "argmax", "itermax", "match"];
    const variants = [{}, { level: "word-average" }, { direction: "forward", distortion: 0.2 }];
    const compared = [];
    const encodings = [];
    for (const [src, tgt] of pairs) {
      const enc = await remote.encode(src, tgt, { layer: 8 });
      encodings.push({ srcWords: enc.srcWords, tgtWords: enc.tgtWords, srcTokens: enc.srcTokens, cosine: enc.cosine, layer: enc.layer });
      for (const method of methods) {
        for (const v of variants) {
          const x = { method, ...v };
          if (v.direction && (method === "itermax" || method === "match")) continue;
          const got = await enc.extract(x);
          const want = await remote.align(src, tgt, { layer: 8, ...x });
          compared.push({ x, got, want });
        }
      }
      await enc.dispose();
    }
    const grab = (pr) => pr.then(() => null, (e) => ({ code: e.code, message: e.message }));
    const enc = await remote.encode("Ja.", "Yes.");
    const bad = {
      layer: await grab(enc.extract({ layer: 3 })),
      method: await grab(enc.extract({ method: "magic" })),
      encodeMethod: await grab(remote.encode("Ja.", "Yes.", { method: "argmax" })),
    };
    const ctl = new AbortController();
    ctl.abort();
    const aborted = await grab(enc.extract({ signal: ctl.signal }));
    await enc.dispose();
    const disposed = await grab(enc.extract());
    // Encodings die with their aligner.
    const second = await xl.createAligner(url, { backend: "cpu" });
    const orphan = await second.encode("Ja.", "Yes.");
    const before = (await orphan.extract()).links.length;
    await second.dispose();
    const afterAligner = await grab(orphan.extract());
    return { compared, encodings, bad, aborted, disposed, before, afterAligner };
  }, srv.modelUrl);
  assert.equal(r.compared.length, 3 * (5 * 2 + 3));
  for (const { x, got, want } of r.compared) assert.deepStrictEqual(got, want, JSON.stringify(x));
  assert.ok(r.compared.some(({ got }) => got.links.length > 3));
  for (const [i, e] of r.encodings.entries()) {
    assert.deepStrictEqual(e.srcWords, r.compared[i * 13].want.srcWords);
    assert.deepStrictEqual(e.tgtWords, r.compared[i * 13].want.tgtWords);
    assert.equal(e.cosine, r.compared[i * 13].want.similarity.cosine);
    assert.equal(e.layer, 8);
    assert.ok(e.srcTokens > e.srcWords.length);
  }
  assert.equal(r.bad.layer.code, "input");
  assert.match(r.bad.layer.message, /encode\(\)/);
  assert.equal(r.bad.method.code, "input");
  assert.match(r.bad.method.message, /magic/);
  assert.equal(r.bad.encodeMethod.code, "input");
  assert.match(r.bad.encodeMethod.message, /extract\(\)/);
  assert.equal(r.aborted.code, "cancelled");
  assert.equal(r.disposed.code, "disposed");
  assert.ok(r.before > 0);
  assert.equal(r.afterAligner.code, "disposed");
});

test("a relative model URL is the page's; alignDocument pairs sentences and aligns their words", T, async () => {
  const r = await p.evaluate(async (file) => {
    // harness.html is /tests/browser/harness.html; the model is /models/<file>.
    const a = await xl.createAligner(`../../models/${file}`, { backend: "cpu" });
    try {
      const src = "Das Haus ist klein. Es hat einen roten Garten, und die Katze schläft dort.";
      const tgt = "The house is small. It has a red garden. The cat sleeps there.";
      const doc = await a.alignDocument(src, tgt, { method: "itermax" });
      const merged = doc.pairs.find((p) => p.tgt.length === 2);
      const joined = await a.align(doc.srcSentences[merged.src[0]], merged.tgt.map((i) => doc.tgtSentences[i]).join(" "), { method: "itermax" });
      let bad;
      try {
        await a.alignDocument("   ", tgt);
      } catch (e) {
        bad = { code: e.code, message: e.message };
      }
      return { doc, merged, joined, bad, recommendation: a.model.recommendation };
    } finally {
      await a.dispose();
    }
  }, srv.modelUrl.split("/").pop());
  assert.deepEqual(r.doc.pairs.map((p) => [p.src, p.tgt]), [[[0], [0]], [[1], [1, 2]]]);
  assert.deepEqual(r.merged.words.links, r.joined.links, "a pair's words = align of the joined sentences");
  assert.deepEqual(r.merged.words.wordSimilarity, [], "document pairs carry no matrix");
  assert.equal(r.merged.error, null);
  assert.equal(r.bad.code, "input");
  assert.match(r.bad.message, /source text has no sentences/);
  assert.equal(r.recommendation.layer, 7);
  assert.equal(r.recommendation.options.method, "softmax");
});

test("a disposed aligner rejects further calls", T, async () => {
  const r = await p.evaluate(async () => {
    await remote.dispose();
    return remote.embed(["x"]).then(() => null, (e) => ({ code: e.code, message: e.message }));
  });
  assert.equal(r.code, "disposed");
  assert.deepEqual(p.errors, []);
});
