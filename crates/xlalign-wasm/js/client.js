// createAligner(): the aligner in a Web Worker behind a promise API, so model loading and
// the encoder never block the page. Requests are queued in the worker and run one at a
// time; each can be cancelled (AbortSignal or cancel(id)) while queued or, for loads,
// embed and alignBatch, between steps while running. Progress events are forwarded.
// Big batches are split over a pool of workers (pool.js); everything else runs on one.
import { Pool, checkWorkers, poolSize } from "./pool.js";
import { checkWasm } from "./variant.js";

function abortError() {
  const e = new Error("the operation was aborted");
  e.name = "AbortError";
  e.code = "cancelled";
  return e;
}

function reviveError(e) {
  const err = new Error(e.message);
  if (e.name) err.name = e.name;
  if (e.code) err.code = e.code;
  return err;
}

class Rpc {
  #worker;
  #next = 1;
  #pending = new Map(); // id -> { resolve, reject, onProgress, cleanup }
  #dead = null;

  constructor(worker) {
    this.#worker = worker;
    worker.addEventListener("message", (ev) => this.#onMessage(ev.data));
    worker.addEventListener("error", (ev) => {
      ev.preventDefault?.();
      this.#fail(new Error(`the xlalign worker failed: ${ev.message || "could not start (check the worker URL)"}`));
    });
    worker.addEventListener("messageerror", () => this.#fail(new Error("the xlalign worker sent an unreadable message")));
  }

  call(op, args, { signal, onProgress, transfer = [] } = {}) {
    const id = this.#next++;
    let cleanup = () => {};
    const promise = new Promise((resolve, reject) => {
      if (this.#dead) return reject(this.#dead);
      if (signal?.aborted) return reject(abortError());
      if (signal) {
        const onAbort = () => this.cancel(id);
        signal.addEventListener("abort", onAbort, { once: true });
        cleanup = () => signal.removeEventListener("abort", onAbort);
      }
      this.#pending.set(id, { resolve, reject, onProgress, cleanup });
      this.#worker.postMessage({ id, op, args }, transfer);
    });
    promise.id = id;
    return promise;
  }

  /** An id no request of this worker has or will have (for requests spanning several workers). */
  newId() {
    return this.#next++;
  }

  /** The error the worker died with (failed to start, crashed, terminated), or null. */
  get failed() {
    return this.#dead;
  }

  cancel(id) {
    const p = this.#pending.get(id);
    if (!p) return false;
    this.#pending.delete(id);
    p.cleanup();
    this.#worker.postMessage({ op: "cancel", target: id });
    p.reject(abortError());
    return true;
  }

  cancelAll() {
    for (const id of [...this.#pending.keys()]) this.cancel(id);
  }

  terminate(reason = new Error("the aligner was disposed")) {
    reason.code ??= "disposed";
    this.#fail(reason);
    this.#worker.terminate();
  }

  #onMessage(msg) {
    const p = this.#pending.get(msg.id);
    if (!p) return; // cancelled meanwhile
    if (msg.type === "progress") {
      try {
        p.onProgress?.(msg.data);
      } catch (e) {
        console.warn("xlalign: onProgress threw", e);
      }
      return;
    }
    this.#pending.delete(msg.id);
    p.cleanup();
    if (msg.type === "result") p.resolve(msg.value);
    else p.reject(reviveError(msg.error));
  }

  #fail(err) {
    this.#dead ??= err;
    for (const [id, p] of this.#pending) {
      this.#pending.delete(id);
      p.cleanup();
      p.reject(err);
    }
  }
}

// Frees the worker's states of an Encoded the page dropped without disposing it.
const dropped = new FinalizationRegistry(({ rpc, handle }) => {
  rpc.call("disposeEncoded", { handle }).catch(() => {});
});

// An encoded pair living in the worker (see Aligner.encode): extract() re-runs only the
// extraction there; dispose() frees the states.
class RemoteEncoded {
  #rpc;
  #handle;
  #disposed = false;
  constructor(rpc, { handle, ...info }) {
    this.#rpc = rpc;
    this.#handle = handle;
    Object.assign(this, info);
    dropped.register(this, { rpc, handle }, this);
  }

  extract(options = {}) {
    if (this.#disposed) {
      const e = new Error("this encoding was disposed; encode the pair again");
      e.code = "disposed";
      return Object.assign(Promise.reject(e), { id: 0 });
    }
    const { signal, ...rest } = options;
    return this.#rpc.call("extract", { handle: this.#handle, options: rest }, { signal });
  }

  async dispose() {
    if (this.#disposed) return;
    this.#disposed = true;
    dropped.unregister(this);
    try {
      await this.#rpc.call("disposeEncoded", { handle: this.#handle });
    } catch {
      // The worker is gone (the aligner was disposed), and the states with it.
    }
  }
}

class RemoteAligner {
  #rpc;
  #pool;
  #called = false;
  constructor(rpc, info, pool, idleStartMs = null) {
    this.#rpc = rpc;
    this.#pool = pool;
    this.backend = info.backend;
    this.model = info.model;
    // "simd128" | "relaxed": the WebAssembly build every worker of this aligner runs.
    this.wasm = info.wasm;
    this.poolSize = pool.size;
    // Progressive loading: the worker starts the deeper layers and the cache fill after the
    // first call; when none comes for idleStartMs, measured here on the page's thread (a
    // page too busy to call is too busy for this timer too), ask for them.
    if (idleStartMs !== null) {
      setTimeout(() => {
        if (!this.#called) this.#rpc.call("whenLoaded", {}).catch(() => {});
      }, idleStartMs);
    }
  }

  tokenize(text, options = {}) {
    this.#called = true;
    const { signal, ...rest } = options;
    return this.#rpc.call("tokenize", { text, options: rest }, { signal });
  }

  embed(texts, options = {}) {
    this.#called = true;
    const { signal, ...rest } = options;
    return this.#rpc.call("embed", { texts, options: rest }, { signal });
  }

  similarity(a, b, options = {}) {
    this.#called = true;
    const { signal, ...rest } = options;
    return this.#rpc.call("similarity", { a, b, options: rest }, { signal });
  }

  align(src, tgt, options = {}) {
    this.#called = true;
    const { signal, ...rest } = options;
    return this.#rpc.call("align", { src, tgt, options: rest }, { signal });
  }

  alignBatch(pairs, options = {}, onProgress) {
    this.#called = true;
    if (this.#pool.takes(pairs, options)) return this.#pool.alignBatch(pairs, options, onProgress);
    const { signal, ...rest } = options;
    return this.#rpc.call("alignBatch", { pairs, options: rest, progress: !!onProgress }, { signal, onProgress });
  }

  alignDocument(src, tgt, options = {}) {
    this.#called = true;
    const { signal, ...rest } = options;
    return this.#rpc.call("alignDocument", { src, tgt, options: rest }, { signal });
  }

  encode(src, tgt, options = {}) {
    this.#called = true;
    const { signal, ...rest } = options;
    const request = this.#rpc.call("encode", { src, tgt, options: rest }, { signal });
    const encoded = request.then((info) => new RemoteEncoded(this.#rpc, info));
    encoded.id = request.id;
    return encoded;
  }

  whenLoaded() {
    this.#called = true;
    return this.#rpc.call("whenLoaded", {});
  }

  whenStored() {
    this.#called = true;
    return this.#rpc.call("whenStored", {});
  }

  cancel(id) {
    return this.#pool.cancel(id) || this.#rpc.cancel(id);
  }

  cancelAll() {
    this.#pool.cancelAll();
    this.#rpc.cancelAll();
  }

  workerStatus() {
    return this.#pool.status();
  }

  clearCache() {
    return this.#rpc.call("clearCache", {});
  }

  async dispose() {
    this.#pool.terminate(Object.assign(new Error("the aligner was disposed"), { code: "disposed" }));
    try {
      await this.#rpc.call("dispose", {});
    } finally {
      this.#rpc.terminate();
    }
  }
}

// Vite and webpack find (and bundle) the worker only in this literal form: keep it inline.
function startWorker(workerUrl) {
  return workerUrl
    ? new Worker(workerUrl, { type: "module", name: "xlalign" })
    : new Worker(new URL("./worker.js", import.meta.url), { type: "module", name: "xlalign" });
}

export async function createAligner(source, options = {}) {
  const { onProgress, signal, workerUrl, worker: given, workers, wasm, ...userLoad } = options;
  // Progressive loading's idle timer runs here, not in the worker (see RemoteAligner); an
  // invalid idleStartMs goes to the worker as given, which says what is wrong with it.
  const idle = userLoad.idleStartMs ?? 1500; // the package's default (fill.rs, IDLE_START_MS)
  const pageTimer = userLoad.progressive === true && Number.isInteger(idle);
  const loadOptions = pageTimer ? { ...userLoad, idleStartMs: -1 } : userLoad;
  checkWorkers(workers);
  checkWasm(wasm);
  if (source instanceof URL) source = source.href;
  // A relative URL is relative to the page, as for fetch() there (the worker would resolve
  // it against its own script's URL).
  else if (typeof source === "string" && typeof location !== "undefined") {
    source = new URL(source, globalThis.document?.baseURI ?? location.href).href;
  }
  const rpc = new Rpc(given ?? startWorker(workerUrl));
  try {
    const info = await rpc.call("load", { source, options: loadOptions, wasm }, { signal, onProgress });
    const size = poolSize({
      workers,
      backend: info.backend.kind,
      bytes: typeof source !== "string",
      canStart: !given || !!workerUrl,
    });
    // Extra workers load what the main one loaded, on the backend it chose (bytes are kept
    // only for a pool: they are copied into each worker).
    const extra = { ...loadOptions, backend: info.backend.kind };
    const kept = size > 1 ? source : null;
    const pool = new Pool({
      main: rpc,
      size,
      newId: () => rpc.newId(),
      spawn: () => new Rpc(startWorker(workerUrl)),
      // The pool runs the main worker's build, so every part of a batch gives the same bits.
      load: (r) => r.call("load", { source: kept, options: extra, wasm: info.wasm }),
    });
    return new RemoteAligner(rpc, info, pool, pageTimer && idle >= 0 ? idle : null);
  } catch (e) {
    rpc.terminate(e);
    throw e;
  }
}

export { RemoteAligner, RemoteEncoded };
