// The xlalign Web Worker: owns one Aligner and runs the requests client.js sends, one at a
// time, in arrival order. Message protocol:
//   in:  { id, op: "load" | "tokenize" | "embed" | "similarity" | "align" | "alignBatch" | "alignDocument" | "encode"
//              | "extract" | "disposeEncoded" | "dispose" | "clearCache" | "status", args }
//        { op: "cancel", target: id }
//        The first request's args.wasm ("auto" | "simd128" | "relaxed", see variant.js) picks
//        the .wasm file this worker instantiates; load's result names it (`wasm`).
//        { id, op: "whenLoaded" | "whenStored" } (answered when the model's blocks / the whole
//          file have arrived, outside the queue)
//   out: { id, type: "progress", data } | { id, type: "result", value } | { id, type: "error", error: { message, code, name } }
import init, { Aligner, clearCache } from "./xlalign_wasm.js";
import { pickVariant, wasmUrl } from "./variant.js";

let wasmReady = null;
// "simd128" or "relaxed": the .wasm this worker runs, fixed by its first request.
let variant = null;
let aligner = null;
// Encoded pairs (`encode`), by the handle the client's Encoded proxy names them with.
const encodings = new Map();
let nextHandle = 1;
// Set when the WebAssembly instance trapped (a bug, not bad input): its state can no longer
// be trusted, so every later request fails with this error and the page should reload.
let broken = null;
let lastConsoleError = "";
const controllers = new Map();
let queue = Promise.resolve();
// Pairs aligned by alignBatch here, also by batches cancelled later (`status`: the pool's
// workerStatus() shows it, and its tests prove a cancelled batch stops in every worker).
let batchPairs = 0;

// The panic hook prints the Rust panic message with console.error; keep it for the error.
const consoleError = console.error.bind(console);
console.error = (...args) => {
  lastConsoleError = args.map(String).join(" ");
  consoleError(...args);
};

function post(msg, transfer) {
  self.postMessage(msg, transfer ?? []);
}

function abortError() {
  const e = new Error("the operation was aborted");
  e.name = "AbortError";
  e.code = "cancelled";
  return e;
}

function plainError(e) {
  if (e instanceof WebAssembly.RuntimeError) {
    const panic = lastConsoleError.split("\n")[0];
    broken = {
      message: `internal error in xlalign (${panic || e.message}); create the aligner again`,
      code: "internal",
      name: "Error",
    };
    return broken;
  }
  return { message: e?.message ?? String(e), code: e?.code ?? "internal", name: e?.name ?? "Error" };
}

function freeEncodings() {
  for (const enc of encodings.values()) enc.free();
  encodings.clear();
}

function needEncoded(handle) {
  const enc = encodings.get(handle);
  if (!enc) {
    const e = new Error("this encoding was disposed; encode the pair again");
    e.code = "disposed";
    throw e;
  }
  return enc;
}

function need() {
  if (!aligner) {
    const e = new Error("no model is loaded");
    e.code = "disposed";
    throw e;
  }
  return aligner;
}

async function run({ id, op, args }, signal) {
  if (signal.aborted) throw abortError();
  if (broken) throw broken;
  if (!wasmReady) {
    variant = pickVariant(args?.wasm);
    wasmReady = init({ module_or_path: wasmUrl(variant) });
  }
  await wasmReady;
  const progress = (data) => post({ id, type: "progress", data });
  switch (op) {
    case "load": {
      const next = await Aligner.load(args.source, { ...args.options, signal, onProgress: progress });
      freeEncodings();
      aligner?.free();
      aligner = next;
      return { value: { backend: aligner.backend, model: aligner.model, wasm: variant } };
    }
    case "embed": {
      const vecs = await need().embed(args.texts, { ...args.options, signal });
      return { value: vecs, transfer: vecs.map((v) => v.buffer) };
    }
    case "tokenize":
      return { value: need().tokenize(args.text, args.options) };
    case "similarity":
      return { value: await need().similarity(args.a, args.b, { ...args.options, signal }) };
    case "align":
      return { value: await need().align(args.src, args.tgt, { ...args.options, signal }) };
    case "alignBatch": {
      const step = (p) => {
        batchPairs += p.results.length;
        if (args.progress) progress(p);
      };
      return { value: await need().alignBatch(args.pairs, { ...args.options, signal }, step) };
    }
    case "status": {
      // complete: every layer is here (the sentence cosine is computed by default).
      const l = aligner?.loading;
      return { value: { pairs: batchPairs, complete: !l || l.layersPresent >= l.layersTotal } };
    }
    case "alignDocument":
      return { value: await need().alignDocument(args.src, args.tgt, { ...args.options, signal }) };
    case "encode": {
      const enc = await need().encode(args.src, args.tgt, { ...args.options, signal });
      if (signal.aborted) {
        // The client has already given up on this request: nobody could dispose it.
        enc.free();
        throw abortError();
      }
      const handle = nextHandle++;
      encodings.set(handle, enc);
      return { value: { handle, ...enc.toJSON() } };
    }
    case "extract":
      return { value: await needEncoded(args.handle).extract({ ...args.options, signal }) };
    case "disposeEncoded":
      encodings.get(args.handle)?.free();
      encodings.delete(args.handle);
      return { value: true };
    case "clearCache":
      return { value: await clearCache() };
    case "dispose":
      freeEncodings();
      aligner?.free();
      aligner = null;
      return { value: true };
    default:
      throw Object.assign(new Error(`unknown request \`${op}\``), { code: "input" });
  }
}

self.onmessage = (ev) => {
  const msg = ev.data;
  if (msg?.op === "cancel") {
    controllers.get(msg.target)?.abort();
    return;
  }
  if (msg?.op === "whenLoaded" || msg?.op === "whenStored") {
    // Waits for the model's deeper blocks (or the whole file in the cache): outside the
    // queue, so that calls go on meanwhile.
    (async () => (msg.op === "whenLoaded" ? need().whenLoaded() : need().whenStored()))().then(
      (value) => post({ id: msg.id, type: "result", value }),
      (e) => post({ id: msg.id, type: "error", error: plainError(e) }),
    );
    return;
  }
  const ctl = new AbortController();
  controllers.set(msg.id, ctl);
  queue = queue
    .then(() => run(msg, ctl.signal))
    .then(
      ({ value, transfer }) => post({ id: msg.id, type: "result", value }, transfer),
      (e) => post({ id: msg.id, type: "error", error: plainError(e) }),
    )
    .finally(() => controllers.delete(msg.id));
};
