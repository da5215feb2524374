// The demo's server: starts scripts/serve-web.sh (the command scripts/demo.sh runs) on a free
// port over the built app and checks what progressive loading and a fast first visit need:
// byte ranges of the model (206 with the right bytes, 416 for ranges the file cannot
// satisfy), revalidation (ETag + If-None-Match and Last-Modified + If-Modified-Since give
// 304), and the app shell compressed at build time (the .wasm with the encoding asked for,
// decoding to the file's bytes, with its wasm Content-Type; plain without Accept-Encoding),
// while the model is never compressed.
//
// Environment: XLALIGN_E2E_DIST (the built app, default dist/), XLALIGN_SERVE_PORT (default:
// a free port).
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";
import { browser, serveWeb } from "../browser/lib.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const DIST = path.resolve(process.env.XLALIGN_E2E_DIST || path.join(ROOT, "dist"));
const MODEL_REL = "models/multilingual-e5-small-q4_0.gguf";

/** One request with node:http (no automatic decompression): { status, headers, body }. */
function get(urlPath, headers = {}, method = "GET") {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}/${urlPath}`, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

let base, site;
before(async () => {
  for (const f of ["index.html", MODEL_REL]) {
    assert.ok(fs.existsSync(path.join(DIST, f)), `${f} is missing in ${DIST}: run scripts/build-web.sh`);
  }
  site = await serveWeb(DIST, { port: process.env.XLALIGN_SERVE_PORT ? +process.env.XLALIGN_SERVE_PORT : undefined });
  base = site.base;
});
after(() => {
  site?.stop();
});

const modelPath = () => path.join(DIST, MODEL_REL);

test("the app's address answers with its index.html; there are no folder listings", async () => {
  const page = await get("");
  assert.equal(page.status, 200);
  assert.match(page.headers["content-type"], /^text\/html/);
  assert.ok(page.body.equals(fs.readFileSync(path.join(DIST, "index.html"))));
  const listing = await get("models/");
  assert.ok(listing.status >= 400 && !listing.body.includes(".gguf"), `models/ answered ${listing.status}`);
});

test("a range of the model comes back as 206 with exactly those bytes", async () => {
  const size = fs.statSync(modelPath()).size;
  const fd = fs.openSync(modelPath(), "r");
  const want = Buffer.alloc(4096);
  fs.readSync(fd, want, 0, want.length, 1_000_000);
  const tail = Buffer.alloc(100);
  fs.readSync(fd, tail, 0, tail.length, size - 100);
  fs.closeSync(fd);

  const r = await get(MODEL_REL, { Range: "bytes=1000000-1004095", "Accept-Encoding": "br, gzip" });
  assert.equal(r.status, 206);
  assert.equal(r.headers["content-range"], `bytes 1000000-1004095/${size}`);
  assert.equal(r.headers["content-encoding"], undefined, "the model must never be compressed");
  assert.ok(r.body.equals(want), "the 206 body is not the asked-for bytes of the model");

  // An open-ended range runs to the end of the file.
  const open = await get(MODEL_REL, { Range: `bytes=${size - 100}-` });
  assert.equal(open.status, 206);
  assert.equal(open.headers["content-range"], `bytes ${size - 100}-${size - 1}/${size}`);
  assert.ok(open.body.equals(tail));

  const head = await get(MODEL_REL, {}, "HEAD");
  assert.equal(head.status, 200);
  assert.equal(head.headers["accept-ranges"], "bytes");
  assert.equal(+head.headers["content-length"], size);
});

test("a range the model cannot satisfy gets 416 (and the server keeps serving)", async () => {
  const size = fs.statSync(modelPath()).size;
  for (const range of [`bytes=${size}-`, `bytes=${size + 10}-${size + 20}`, "bytes=500-100", "bytes=x-y"]) {
    const r = await get(MODEL_REL, { Range: range });
    assert.equal(r.status, 416, `Range: ${range} got ${r.status}`);
  }
  assert.equal((await get(MODEL_REL, { Range: "bytes=0-3" })).body.toString("latin1"), "GGUF");
});

test("ETag + If-None-Match and Last-Modified + If-Modified-Since revalidate with 304", async () => {
  for (const f of [MODEL_REL, "index.html"]) {
    const r = await get(f, {}, "HEAD");
    assert.equal(r.status, 200);
    const { etag, "last-modified": lastModified, "cache-control": cc } = r.headers;
    assert.ok(etag, `${f}: no ETag`);
    assert.ok(lastModified, `${f}: no Last-Modified`);
    // Stored, but checked with the server on every use: a rebuilt app is never served stale.
    assert.doesNotMatch(cc ?? "", /no-store/);
    assert.equal((await get(f, { "If-None-Match": etag })).status, 304, `${f}: If-None-Match`);
    assert.equal((await get(f, { "If-Modified-Since": lastModified })).status, 304, `${f}: If-Modified-Since`);
    assert.equal((await get(f, { "If-None-Match": 'W/"another"' })).status, 200, `${f}: a stale ETag`);
  }
});

/** The wasm binaries of the build: the page's (at the top of dist/) and the package's (pkg/). */
function wasmFiles() {
  const files = fs
    .readdirSync(DIST, { recursive: true })
    .filter((f) => f.endsWith(".wasm") && !f.startsWith(".stage"))
    .map((f) => f.split(path.sep).join("/"));
  assert.ok(files.length >= 2, `no wasm in ${DIST}: ${files}`);
  return files;
}

test("the .wasm comes compressed when the browser accepts it, and decodes to the file", async () => {
  for (const f of wasmFiles()) {
    const bytes = fs.readFileSync(path.join(DIST, f));
    for (const [accept, encoding, decode] of [
      ["br, gzip", "br", zlib.brotliDecompressSync],
      ["gzip, deflate", "gzip", zlib.gunzipSync],
    ]) {
      const r = await get(f, { "Accept-Encoding": accept });
      assert.equal(r.status, 200);
      assert.equal(r.headers["content-encoding"], encoding, `${f} with Accept-Encoding: ${accept}`);
      assert.equal(r.headers["content-type"], "application/wasm");
      assert.ok(r.body.length < bytes.length / 2, `${f}: ${r.body.length} B ${encoding} for ${bytes.length} B`);
      assert.ok(decode(r.body).equals(bytes), `${f}: the ${encoding} body does not decode to the file`);
    }
    const plain = await get(f);
    assert.equal(plain.status, 200);
    assert.equal(plain.headers["content-encoding"], undefined, `${f} without Accept-Encoding`);
    assert.equal(plain.headers["content-type"], "application/wasm");
    assert.ok(plain.body.equals(bytes));
  }
});

test("every file of the app shell has a .br and a .gz of the current build; the model has none", () => {
  const shell = fs
    .readdirSync(DIST, { recursive: true })
    .filter((f) => !f.startsWith("models") && /\.(wasm|js|css|html)$/.test(f));
  assert.ok(shell.includes("index.html") && shell.includes("sw.js"), `${shell}`);
  for (const f of shell) {
    const bytes = fs.readFileSync(path.join(DIST, f));
    assert.ok(zlib.brotliDecompressSync(fs.readFileSync(path.join(DIST, `${f}.br`))).equals(bytes), `${f}.br is stale`);
    assert.ok(zlib.gunzipSync(fs.readFileSync(path.join(DIST, `${f}.gz`))).equals(bytes), `${f}.gz is stale`);
  }
  const models = fs.readdirSync(path.join(DIST, "models"));
  assert.deepEqual(models.filter((f) => /\.(br|gz)$/.test(f)), []);
});

// Last: it stops the server.
test("in Chromium the shell arrives compressed, the service worker keeps it decoded, and it opens offline", { timeout: 300_000 }, async (t) => {
  const b = await browser();
  try {
    const page = await b.newPage();
    // The wasm responses as the page and its worker get them (through the service worker or
    // not: it passes the network's headers on), registered before the page asks for them.
    // Of the package's two builds the worker fetches, and the service worker keeps, only the
    // one it runs: the relaxed-SIMD build in this Chromium.
    const wasm = wasmFiles().filter((f) => f !== "pkg/xlalign_wasm_bg.wasm");
    assert.ok(wasm.includes("pkg/xlalign_wasm_bg.relaxed.wasm"), `no relaxed-SIMD build in ${DIST}: ${wasm}`);
    const responses = wasm.map((f) =>
      page.waitForResponse((r) => r.url() === `${base}/${f}`, { timeout: 240_000 }).then((r) => r.headers()["content-encoding"]),
    );
    await page.goto(`${base}/`, { waitUntil: "load" });
    const encodings = await Promise.all(responses);
    t.diagnostic(`Chromium got ${wasm.map((f, i) => `${f} as ${encodings[i]}`).join(", ")}`);
    wasm.forEach((f, i) => assert.match(encodings[i] ?? "identity", /^(br|gzip)$/, `${f} reached the browser as`));
    await page.waitForFunction(() => navigator.serviceWorker?.controller, { timeout: 120_000 });

    // Every file the service worker keeps is the file itself, not its compressed bytes.
    const build = fs.readFileSync(path.join(DIST, "sw.js"), "utf8").match(/const BUILD = "([0-9a-f]{16})"/)?.[1];
    assert.ok(build, "dist/sw.js is not stamped with a build id");
    const cached = await page.evaluate(async (name) => {
      const cache = await caches.open(name);
      const out = {};
      for (const req of await cache.keys()) {
        const body = await (await cache.match(req)).arrayBuffer();
        const hash = await crypto.subtle.digest("SHA-256", body);
        out[new URL(req.url).pathname] = [...new Uint8Array(hash)].map((x) => x.toString(16).padStart(2, "0")).join("");
      }
      return out;
    }, `xlalign-app-${build}`);
    for (const f of wasm) assert.ok(cached[`/${f}`], `${f} is not in the service worker's cache: ${Object.keys(cached)}`);
    assert.ok(!cached["/pkg/xlalign_wasm_bg.wasm"], "the unused SIMD128 build is in the service worker's cache");
    for (const [p, hash] of Object.entries(cached)) {
      const file = path.join(DIST, p === "/" ? "index.html" : p);
      const want = crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
      assert.equal(hash, want, `the cached ${p} is not the file's bytes`);
    }

    // Offline (server stopped): the app still starts from the cache and says the model is missing.
    const { child } = site;
    child.kill();
    await new Promise((r) => (child.exitCode !== null || child.signalCode ? r() : child.once("exit", r)));
    await page.setOfflineMode(true);
    await page.reload({ waitUntil: "domcontentloaded" });
    await page.waitForSelector("main, #load-error", { timeout: 120_000 });
  } finally {
    await b.close();
  }
});
