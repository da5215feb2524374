// The package as web developers use it: for Vite and for webpack, a minimal app that imports
// `createAligner` from "xlalign" (the built package in pkg/, installed the way npm installs a
// `file:` dependency: a link in the app's node_modules) and calls it without options is built
// for production by the bundler from the repository's node_modules (nothing is downloaded),
// served on its own origin (scripts/serve-web.sh) and opened in headless Chromium. The test
// waits for the page to show the aligned pair and checks that the worker and the .wasm came
// from the bundler's output (not a `data:` URL, not pkg/), and that the links equal those of
// the page-level `Aligner` on the same model and backend.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { build as viteBuild } from "vite";
import webpack from "webpack";
import { browser, harness, page, ROOT, server, serveWeb } from "./lib.mjs";

const SRC = "The old fisherman sells fresh fish at the market every morning.";
const TGT = "Der alte Fischer verkauft jeden Morgen frische Fische auf dem Markt.";
const PKG = path.join(ROOT, "pkg");

// The app: no options to createAligner, the model URL from the query string.
const MAIN_JS = `import { createAligner } from "xlalign";

const out = document.getElementById("out");
async function main() {
  const model = new URLSearchParams(location.search).get("model");
  const aligner = await createAligner(model);
  const r = await aligner.align(${JSON.stringify(SRC)}, ${JSON.stringify(TGT)});
  out.textContent = JSON.stringify({ backend: aligner.backend.kind, links: r.links });
  out.dataset.state = "done";
}
main().catch((e) => {
  out.textContent = \`\${e.code ?? "error"}: \${e.message}\`;
  out.dataset.state = "error";
});
`;
const pageHtml = (script) => `<!doctype html>
<meta charset="utf-8">
<title>xlalign in a bundled app</title>
<pre id="out" data-state="loading"></pre>
${script}
`;

/** A new app folder with main.js, index.html and xlalign installed as a file: dependency. */
function makeApp(dir, indexScript) {
  fs.mkdirSync(path.join(dir, "node_modules"), { recursive: true });
  fs.writeFileSync(
    path.join(dir, "package.json"),
    JSON.stringify({ name: "bundled-app", private: true, type: "module", dependencies: { xlalign: `file:${PKG}` } }, null, 2),
  );
  // What `npm install` does for a file: dependency on a folder.
  fs.symlinkSync(PKG, path.join(dir, "node_modules/xlalign"), "dir");
  fs.writeFileSync(path.join(dir, "main.js"), MAIN_JS);
  if (indexScript) fs.writeFileSync(path.join(dir, "index.html"), pageHtml(indexScript));
}

const BUNDLERS = {
  /** `vite build` with no config file. */
  async vite(dir) {
    makeApp(dir, `<script type="module" src="./main.js"></script>`);
    const out = path.join(dir, "dist");
    await viteBuild({ root: dir, configFile: false, logLevel: "warn", build: { outDir: out, emptyOutDir: true } });
    return out;
  },
  /** webpack in production mode with an entry and an output folder only. */
  async webpack(dir) {
    makeApp(dir);
    const out = path.join(dir, "dist");
    const stats = await new Promise((resolve, reject) => {
      const compiler = webpack({ mode: "production", context: dir, entry: "./main.js", output: { path: out } });
      compiler.run((err, s) => compiler.close(() => (err ? reject(err) : resolve(s))));
    });
    assert.ok(!stats.hasErrors(), stats.toString({ all: false, errors: true }));
    fs.writeFileSync(path.join(out, "index.html"), pageHtml(`<script src="./main.js"></script>`));
    return out;
  },
};

let srv, b, tmp;
const reference = new Map(); // backend kind -> JSON of the page-level Aligner's links
before(async () => {
  assert.ok(fs.existsSync(path.join(PKG, "index.js")), "pkg/ is not built: run scripts/build-wasm.sh");
  srv = await server();
  b = await browser();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "xlalign-bundlers-"));
});
after(async () => {
  await b?.close();
  srv?.stop();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** The links of the same pair from the page-level Aligner (no worker, no bundler). */
async function referenceLinks(backend) {
  if (!reference.has(backend)) {
    const p = await harness(b, srv);
    const links = await p.evaluate(
      async (url, backend, src, tgt) => {
        const aligner = await xl.Aligner.load(url, { backend });
        const r = await aligner.align(src, tgt);
        aligner.dispose();
        return JSON.stringify(r.links);
      },
      srv.modelUrl,
      backend,
      SRC,
      TGT,
    );
    await p.close();
    reference.set(backend, links);
  }
  return reference.get(backend);
}

for (const [name, bundle] of Object.entries(BUNDLERS)) {
  test(`a ${name} production build runs createAligner(url) and aligns like the page-level Aligner`, { timeout: 600_000 }, async () => {
    const out = await bundle(path.join(tmp, name));
    const built = fs.readdirSync(out, { recursive: true });
    assert.ok(built.some((f) => f.endsWith(".wasm")), `${name} emitted no .wasm: ${built}`);
    const site = await serveWeb(out);
    try {
      const p = await page(b);
      const workers = [];
      p.on("workercreated", (w) => workers.push(w));
      await p.goto(`${site.base}/?model=${encodeURIComponent(srv.modelUrl)}`, { waitUntil: "load" });
      await p.waitForFunction(() => document.getElementById("out").dataset.state !== "loading", {
        timeout: 590_000,
        polling: 200,
      });
      const state = await p.$eval("#out", (e) => e.dataset.state);
      const text = await p.$eval("#out", (e) => e.textContent);
      assert.equal(state, "done", `${name}: ${text}\n${p.logs.join("\n")}`);
      assert.deepEqual(p.errors, []);

      // The worker and the wasm it instantiated are files of the bundler's output.
      assert.equal(workers.length, 1, `${workers.length} workers`);
      const workerUrl = workers[0].url();
      assert.ok(workerUrl.startsWith(`${site.base}/`), `${name} started its worker from ${workerUrl.slice(0, 80)}`);
      const fetched = await workers[0].evaluate(() => performance.getEntriesByType("resource").map((e) => e.name));
      const wasm = fetched.filter((u) => /\.wasm(\?|$)/.test(u));
      assert.equal(wasm.length, 1, `${name}'s worker fetched: ${fetched}`);
      assert.ok(wasm[0].startsWith(`${site.base}/`), `${name}'s worker fetched the wasm from ${wasm[0]}`);
      const served = path.join(out, decodeURIComponent(new URL(wasm[0]).pathname));
      assert.ok(fs.existsSync(served), `${name}'s worker fetched ${wasm[0]}, which is not in its output`);

      const { backend, links } = JSON.parse(text);
      assert.ok(links.length >= 4, `${name}: only ${links.length} links`);
      assert.equal(JSON.stringify(links), await referenceLinks(backend), `${name}: the links differ from the page-level Aligner's (${backend})`);
      await p.close();
    } finally {
      site.stop();
    }
  });
}
