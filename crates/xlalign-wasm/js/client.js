// createAligner(): the aligner in a Web Worker behind a promise API, so model loading and
// the encoder never block the page. Requests are queued in the worker and run one at a
// time; each can be cancelled (AbortSignal or cancel(id)) while queued or, for loads,
// embed and alignBatch, between steps while running. Progress events are forwarded.

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
  constructor(rpc, info) {
    this.#rpc = rpc;
    this.backend = info.backend;
    this.model = info.model;
  }

  tokenize(text, options = {}) {
    const { signal, ...rest } = options;
    return this.#rpc.call("tokenize", { text, options: rest }, { signal });
  }

  embed(texts, options = {}) {
    const { signal, ...rest } = options;
    return this.#rpc.call("embed", { texts, options: rest }, { signal });
  }

  similarity(a, b, options = {}) {
    const { signal, ...rest } = options;
    return this.#rpc.call("similarity", { a, b, options: rest }, { signal });
  }

  align(src, tgt, options = {}) {
    const { signal, ...rest } = options;
    return this.#rpc.call("align", { src, tgt, options: rest }, { signal });
  }

  alignBatch(pairs, options = {}, onProgress) {
    const { signal, ...rest } = options;
    return this.#rpc.call("alignBatch", { pairs, options: rest, progress: !!onProgress }, { signal, onProgress });
  }

  encode(src, tgt, options = {}) {
    const { signal, ...rest } = options;
    const request = this.#rpc.call("encode", { src, tgt, options: rest }, { signal });
    const encoded = request.then((info) => new RemoteEncoded(this.#rpc, info));
    encoded.id = request.id;
    return encoded;
  }

  whenLoaded() {
    return this.#rpc.call("whenLoaded", {});
  }

  cancel(id) {
    return this.#rpc.cancel(id);
  }

  cancelAll() {
    this.#rpc.cancelAll();
  }

  clearCache() {
    return this.#rpc.call("clearCache", {});
  }

  async dispose() {
    try {
      await this.#rpc.call("dispose", {});
    } finally {
      this.#rpc.terminate();
    }
  }
}

export async function createAligner(source, options = {}) {
  const { onProgress, signal, workerUrl, worker: given, ...loadOptions } = options;
  if (source instanceof URL) source = source.href;
  // Vite and webpack find (and bundle) the worker only in this literal form: keep it inline.
  const worker =
    given ??
    (workerUrl
      ? new Worker(workerUrl, { type: "module", name: "xlalign" })
      : new Worker(new URL("./worker.js", import.meta.url), { type: "module", name: "xlalign" }));
  const rpc = new Rpc(worker);
  try {
    const info = await rpc.call("load", { source, options: loadOptions }, { signal, onProgress });
    return new RemoteAligner(rpc, info);
  } catch (e) {
    rpc.terminate(e);
    throw e;
  }
}

export { RemoteAligner, RemoteEncoded };
