// Error paths of the package as a page uses it: every failure is a thrown JS `Error` with
// a `code` and a message, never a WebAssembly trap ("unreachable") or a silently ignored
// value; and a failure part-way (the server gone during progressive loading) leaves the
// aligner usable for what it already has.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { browser, harness, server } from "./lib.mjs";

let srv, b, p;
before(async () => {
  srv = await server();
  b = await browser();
  p = await harness(b, srv);
  await p.evaluate(async (url) => {
    window.aligner = await xl.Aligner.load(url, { backend: "cpu", cache: false });
    // What a rejection looks like from the outside.
    window.outcome = (await import("/tests/browser/page.js")).outcome;
  }, srv.modelUrl);
});
after(async () => {
  await p?.evaluate(() => window.aligner?.dispose());
  await b?.close();
  srv?.stop();
});

const T = { timeout: 600_000 };

function expectError(r, code, pattern, what) {
  assert.ok(!r.ok, `${what}: resolved instead of throwing`);
  assert.ok(r.isError && !r.trap, `${what}: not a plain Error: ${JSON.stringify(r)}`);
  assert.equal(r.code, code, `${what}: ${r.message}`);
  assert.match(r.message, pattern, what);
}

test("NaN and Infinity in options are refused by name, not read as unset", T, async () => {
  const r = await p.evaluate(async () => {
    const A = "The house is small.", B = "Das Haus ist klein.";
    return {
      threshold: await outcome(() => aligner.align(A, B, { threshold: NaN })),
      temperature: await outcome(() => aligner.alignBatch([[A, B]], { temperature: Infinity })),
      alpha: await outcome(() => aligner.align(A, B, { method: "itermax", alpha: -Infinity })),
      prefetch: await outcome(() => xl.Aligner.load("/models/x.gguf", { progressive: true, prefetchRows: NaN })),
      // Finite values still work.
      fine: await outcome(() => aligner.align(A, B, { threshold: 0.25, temperature: 1 })),
    };
  });
  expectError(r.threshold, "input", /`threshold` must be a finite number, got NaN/, "threshold NaN");
  expectError(r.temperature, "input", /`temperature` must be a finite number, got Infinity/, "temperature Infinity");
  expectError(r.alpha, "input", /`alpha` must be a finite number, got -Infinity/, "alpha -Infinity");
  expectError(r.prefetch, "input", /`prefetchRows` must be a finite number/, "prefetchRows NaN");
  assert.ok(r.fine.ok && r.fine.v.links.length >= 3, JSON.stringify(r.fine));
  assert.deepEqual(p.errors, []);
});

test("bad calls and bad files throw Errors with codes", T, async () => {
  const r = await p.evaluate(async () => {
    const A = "The house is small.", B = "Das Haus ist klein.";
    const cases = {
      "empty sentence": [() => aligner.align("", B), "input", "no words"],
      "layer past the last": [() => aligner.align(A, B, { layer: 13 }), "input", "layer 13"],
      "negative layer": [() => aligner.align(A, B, { layer: -1 }), "input", "layer|-1"],
      "fractional batchSize": [() => aligner.alignBatch([[A, B]], { batchSize: 1.5 }), "input", "batchSize"],
      "pair of one": [() => aligner.alignBatch([["a"]]), "input", "pairs\\[0\\]"],
      "progress not a function": [() => aligner.alignBatch([[A, B]], {}, 5), "input", "onProgress"],
      "texts not an array": [() => aligner.embed("abc"), "input", "array"],
      "unknown prefix": [() => aligner.embed(["a"], { prefix: "x" }), "input", "prefix"],
      "tokenize a number": [() => aligner.tokenize(5), "input", "string"],
      "HTML instead of a model": [() => xl.Aligner.load("/tests/browser/harness.html", { cache: false }), "model", "not a GGUF file"],
      "HTML, progressive": [() => xl.Aligner.load("/tests/browser/harness.html", { progressive: true, cache: false }), "model", "not a GGUF file"],
      "missing file, progressive": [() => xl.Aligner.load("/models/missing.gguf", { progressive: true, cache: false }), "network", "404"],
      "unparsable URL": [() => xl.Aligner.load("http://[::1", { cache: false }), "input", "URL"],
      "negative prefetchRows": [() => xl.Aligner.load("/models/x.gguf", { progressive: true, prefetchRows: -1 }), "input", "-1"],
    };
    const out = {};
    for (const [name, [call, code, pattern]] of Object.entries(cases)) out[name] = { ...(await outcome(call)), want: [code, pattern] };
    return out;
  });
  for (const [name, x] of Object.entries(r)) expectError(x, x.want[0], new RegExp(x.want[1]), name);
  assert.deepEqual(p.errors, []);
});

test("odd text aligns or gets an input Error; truncated and non-BERT model files get model Errors", T, async () => {
  const r = await p.evaluate(async (url) => {
    const A = "The house is small.", B = "Das Haus ist klein.";
    // Lone UTF-16 surrogates (JavaScript strings may hold them; they become U+FFFD on the way
    // into wasm), right-to-left text with its marks, and zero-width characters.
    const surrogates = await outcome(() => aligner.align("The \uD800house is small.", "Das Haus\uDC00 ist klein."));
    const rtl = await aligner.align("\u200Fשלום עולם\u200E", "Hello world");
    const zw = await aligner.align("The\u200B house\u200D is\uFEFF small.", B);
    // Two pasted half-megabyte texts: refused before the encoder, the aligner still works.
    const big = await outcome(() => aligner.align("The old lighthouse keeper walked along the rocky shore. ".repeat(9000), "Der alte Leuchtturmwärter ging am felsigen Ufer entlang. ".repeat(9000)));
    const after = await aligner.align(A, B);
    // A model cut short, and a valid GGUF file whose architecture is not a BERT encoder.
    const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
    const truncated = await outcome(() => xl.Aligner.load(bytes.slice(0, 5_000_000), { backend: "cpu" }));
    const { notBertGguf } = await import("/tests/browser/page.js");
    const llama = await outcome(() => xl.Aligner.load(notBertGguf(), { backend: "cpu" }));
    const words = (a) => a.srcWords.map((w) => w.text);
    return {
      surrogates, rtlLinks: rtl.links.length, rtlWords: words(rtl), zwWords: words(zw), zwLinks: zw.links.length,
      big, afterLinks: after.links.length, truncated, llama,
    };
  }, srv.modelUrl);
  assert.ok(r.surrogates.ok, `lone surrogates: ${JSON.stringify(r.surrogates)}`);
  assert.deepEqual(r.rtlWords, ["שלום", "עולם"]);
  assert.ok(r.rtlLinks >= 1);
  assert.deepEqual(r.zwWords, ["The", "house", "is", "small", "."]);
  assert.ok(r.zwLinks >= 4);
  expectError(r.big, "input", /too long to align/, "1 MB pasted");
  assert.ok(r.afterLinks >= 4, "the aligner works after the refusal");
  expectError(r.truncated, "model", /truncated|past the end/, "a truncated model");
  expectError(r.llama, "model", /llama|architecture|bert/i, "a GGUF that is not a BERT");
  assert.deepEqual(p.errors, []);
});

test("a server gone during progressive loading: network Error for new rows, the rest still works", T, async () => {
  const own = await server({ fresh: true }); // a server this test may stop
  let stopped = false;
  try {
    await p.evaluate(async (url) => {
      window.prog = await xl.Aligner.load(url, { backend: "cpu", progressive: true, cache: false });
      await prog.align("The house is small.", "Das Haus ist klein.");
    }, own.modelUrl);
    own.stop();
    stopped = true;
    const r = await p.evaluate(async () => {
      const before = prog.loading;
      // Rare pieces (Icelandic place names) whose rows lie past the prefetched part.
      const rare = await outcome(() => prog.align("Eyjafjallajökull erupted near Hvolsvöllur.", "Az Eyjafjallajökull Hvolsvöllur közelében tört ki."));
      const afterFail = prog.loading;
      const common = await prog.align("The house is small.", "Das Haus ist klein.");
      const batch = await prog.alignBatch([["Eyjafjallajökull", "Hvolsvöllur"]]).catch((e) => ({ thrown: e.code }));
      prog.dispose();
      return { before, rare, afterFail, commonLinks: common.links.length, batch };
    });
    assert.equal(r.before.mode, "progressive");
    expectError(r.rare, "network", /download|fetch/i, "rows from a stopped server");
    assert.equal(r.afterFail.rowsPresent, r.before.rowsPresent, "no rows were marked present by the failed fetch");
    assert.ok(r.commonLinks >= 3, "rows already present still align");
    // alignBatch reports the failure for the whole call or per pair, as an error either way.
    const batchFailed = r.batch.thrown === "network" || r.batch[0]?.error?.code === "network";
    assert.ok(batchFailed, `alignBatch after the server left: ${JSON.stringify(r.batch).slice(0, 200)}`);
    assert.deepEqual(p.errors, []);
  } finally {
    if (!stopped) own.stop();
  }
});
