// The package's two WebAssembly builds (pkg/variant.js: SIMD128, and SIMD128 + relaxed SIMD)
// in headless Chromium: the relaxed-SIMD probe, the choice createAligner makes (forced or
// automatic) and the one .wasm file it downloads, and the same results from both builds:
// bit-identical embeddings, the same links on the English–French gold slice, the AER bound
// the native CLI is held to, and embeddings at the reference. The relaxed kernels only feed
// the dot-product instruction operands on which every processor agrees, so these hold on any
// machine.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { browser, page, server } from "./lib.mjs";

let srv, b;
before(async () => {
  srv = await server();
  b = await browser();
});
after(async () => {
  await b?.close();
  srv?.stop();
});

const T = { timeout: 900_000 };
const FILES = { simd128: "/pkg/xlalign_wasm_bg.wasm", relaxed: "/pkg/xlalign_wasm_bg.relaxed.wasm" };

/**
 * A fresh page that has imported the package but not initialised it on the page, so every
 * .wasm request comes from createAligner's worker; `wasmRequests` lists their paths.
 */
async function freshPage() {
  const p = await page(b);
  p.wasmRequests = [];
  p.on("request", (r) => {
    const u = new URL(r.url());
    if (u.pathname.endsWith(".wasm")) p.wasmRequests.push(u.pathname);
  });
  await p.goto(`${srv.base}/tests/browser/harness.html`, { waitUntil: "load" });
  await p.evaluate(async () => {
    window.xl = await import("/pkg/index.js");
    window.variant = await import("/pkg/variant.js");
  });
  return p;
}

test("the probe validates only where relaxed SIMD is, and this Chromium has it", T, async () => {
  const p = await freshPage();
  try {
    const r = await p.evaluate(() => {
      const probe = variant.RELAXED_PROBE;
      const at = probe.indexOf(147); // the opcode's LEB128 0x93 0x02 after the 0xfd prefix
      const swap = (bytes) => new Uint8Array([...probe.slice(0, at - 1), ...bytes, ...probe.slice(at + 2)]);
      return {
        probe: WebAssembly.validate(new Uint8Array(probe)),
        detected: variant.hasRelaxedSimd(),
        // The same module with v128.bitselect (0xfd 0x52, its LEB128 written in two bytes as
        // 0xd2 0x00), a SIMD128 instruction of the same type: the module around the opcode is
        // well formed.
        plainSimd: WebAssembly.validate(swap([253, 0xd2, 0])),
        // An opcode no proposal defines: the engine does check it.
        unknown: WebAssembly.validate(swap([253, 255, 3])),
        pick: variant.pickVariant(),
      };
    });
    assert.deepEqual(r, { probe: true, detected: true, plainSimd: true, unknown: false, pick: "relaxed" });
  } finally {
    await p.close();
  }
});

test("a bad wasm option is an input error before any worker starts", T, async () => {
  const p = await freshPage();
  try {
    const e = await p.evaluate(async (url) => {
      try {
        await xl.createAligner(url, { wasm: "avx512" });
        return null;
      } catch (e) {
        return { code: e.code, message: e.message };
      }
    }, srv.modelUrl);
    assert.equal(e?.code, "input");
    assert.match(e.message, /"auto", "simd128", "relaxed"/);
    assert.deepEqual(p.wasmRequests, []);
  } finally {
    await p.close();
  }
});

/** The reference sentences (same tokens as the HF tokenizer) and the enfr gold slice. */
async function data(p) {
  return p.evaluate(async () => {
    const get = async (f) => (await fetch(`/tests/data/${f}`)).text();
    const reference = JSON.parse(await get("e5-small-q4-reference.json")).sentences.filter((s) => !s.hf_ids_passage);
    const [src, tgt, gold] = await Promise.all(["src", "tgt", "gold"].map((e) => get(`gold/enfr/enfr.${e}`)));
    const lines = (t) => t.split("\n").filter((l) => l.length);
    return { reference, src: lines(src), tgt: lines(tgt), gold: lines(gold) };
  });
}

/** Loads with `wasm`, then embeds the reference sentences and aligns the gold slice. */
async function runVariant(wasm, d) {
  const p = await freshPage();
  try {
    const r = await p.evaluate(
      async (url, wasm, d) => {
        const a = await xl.createAligner(url, { backend: "cpu", wasm, workers: 1 });
        try {
          const vecs = [];
          for (const s of d.reference) vecs.push(...(await a.embed([s.text])));
          const pairs = d.src.map((s, i) => [s, d.tgt[i]]);
          const out = await a.alignBatch(pairs, { pretokenized: true, sentenceCosine: false });
          const dot = (x, y) => x.reduce((s, v, i) => s + v * y[i], 0);
          const cos = (x, y) => dot(x, y) / Math.sqrt(dot(x, x) * dot(y, y));
          return {
            wasm: a.wasm,
            device: a.backend.device,
            vectors: vecs.map((v) => Array.from(v)),
            cosines: vecs.map((v, i) => [cos(v, d.reference[i].embedding_passage), cos(v, d.reference[i].embedding_passage_fp32_dequant)]),
            links: out.map((x) => (x.error ? x.error : x.links.map((l) => [l.src, l.tgt, l.score]))),
          };
        } finally {
          await a.dispose();
        }
      },
      srv.modelUrl,
      wasm,
      d,
    );
    return { ...r, requests: p.wasmRequests };
  } finally {
    await p.close();
  }
}

function aer(links, gold) {
  let aS = 0, aP = 0, nA = 0, nS = 0;
  links.forEach((pred, i) => {
    assert.ok(Array.isArray(pred), `pair ${i} failed: ${JSON.stringify(pred)}`);
    const sure = new Set(), possible = new Set();
    for (const g of gold[i].split(/\s+/).filter(Boolean)) {
      const sep = g.includes("-") ? "-" : "?";
      const key = g.split(sep).join("-");
      if (sep === "-") sure.add(key);
      possible.add(key);
    }
    nA += pred.length;
    nS += sure.size;
    for (const [s, t] of pred) {
      aS += sure.has(`${s}-${t}`) ? 1 : 0;
      aP += possible.has(`${s}-${t}`) ? 1 : 0;
    }
  });
  return 100 * (1 - (aS + aP) / (nA + nS));
}

test("both builds give the same embeddings and links, the native AER bound and the reference embeddings; each downloads only its own .wasm", T, async () => {
  const p = await page(b, `${srv.base}/tests/browser/harness.html`);
  const d = await data(p);
  await p.close();
  assert.equal(d.src.length, 60);
  assert.ok(d.reference.length >= 15, `only ${d.reference.length} reference sentences`);
  const runs = {};
  for (const wasm of ["simd128", "relaxed", "auto"]) runs[wasm] = await runVariant(wasm, d);

  for (const [asked, r] of Object.entries(runs)) {
    const want = asked === "auto" ? "relaxed" : asked; // this Chromium has relaxed SIMD (test above)
    assert.equal(r.wasm, want, `${asked}: ran ${r.wasm}`);
    assert.match(r.device, want === "relaxed" ? /relaxed-simd/ : /simd128/, `${asked}: ${r.device}`);
    assert.deepEqual(r.requests, [FILES[want]], `${asked}: .wasm requests ${JSON.stringify(r.requests)}`);
    r.cosines.forEach(([c, f], i) => {
      assert.ok(c >= 0.999 && f >= 0.999, `${asked}: \`${d.reference[i].name}\`: cosine ${c} to the reference, ${f} to the f32 version`);
    });
    const score = aer(r.links, d.gold);
    assert.ok(score <= 9.0, `${asked}: AER ${score.toFixed(1)} on enfr (native bound 9.0)`);
  }
  // Each i32 lane of the relaxed kernels holds the simd128 kernels' products and the float
  // steps are the same: the same bits, so the same links.
  const bits = runs.relaxed.vectors.map((v, i) => i).filter((i) => runs.relaxed.vectors[i].some((x, j) => !Object.is(x, runs.simd128.vectors[i][j])));
  assert.deepEqual(bits, [], "reference sentences whose embeddings differ between the builds");
  const differ = runs.relaxed.links.map((l, i) => i).filter((i) => JSON.stringify(runs.relaxed.links[i]) !== JSON.stringify(runs.simd128.links[i]));
  assert.deepEqual(differ, [], "pairs whose links (or their scores) differ between the relaxed-SIMD and SIMD128 builds");
  assert.deepEqual(runs.auto.links, runs.relaxed.links);
});
