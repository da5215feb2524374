// Helpers that run inside the test page (imported with `await import("/tests/browser/page.js")`
// in page.evaluate), shared by the browser suites and benchmarks.

/** What a call's promise gave, as seen from the outside: `{ ok: true, v }` or the error's
 * kind, code and message (`trap` when it is a wasm trap rather than an Error). */
export const outcome = (call) =>
  Promise.resolve()
    .then(() => call())
    .then(
      (v) => ({ ok: true, v }),
      (e) => ({ ok: false, isError: e instanceof Error, trap: e instanceof WebAssembly.RuntimeError, code: e?.code, message: String(e?.message) }),
    );

/** A valid GGUF file (version 3, no tensors) whose one metadata entry says its
 * architecture is `llama`: a model file that is not a BERT encoder. */
export function notBertGguf() {
  const enc = new TextEncoder();
  const key = enc.encode("general.architecture"), val = enc.encode("llama");
  const parts = [
    enc.encode("GGUF"), new Uint32Array([3]), new BigUint64Array([0n, 1n]), // version, tensors, entries
    new BigUint64Array([BigInt(key.length)]), key, new Uint32Array([8]), // key, type string
    new BigUint64Array([BigInt(val.length)]), val,
  ];
  const out = new Uint8Array(parts.reduce((n, x) => n + x.byteLength, 0));
  let at = 0;
  for (const x of parts) {
    out.set(new Uint8Array(x.buffer, x.byteOffset, x.byteLength), at);
    at += x.byteLength;
  }
  return out;
}
