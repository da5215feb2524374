// The worker pool behind RemoteAligner.alignBatch (createAligner). WebAssembly threads would
// need a standard library rebuilt with atomics, which stable Rust cannot build, so a batch is
// split over several Web Workers instead, each its own wasm instance with its own copy of the
// model. The main worker (the one align, encode and the rest run on) is worker 0; the extra
// workers start lazily, at the first batch big enough to gain from them, load the model with
// the main worker's source, load options and backend (from the Cache API, so without a second
// download), and stay for later batches. A batch is cut into parts of `batchSize` pairs
// (one encoder pass each) that the workers take one at a time as they finish the previous
// one, so a worker still loading, or busy with another request, simply takes fewer parts.
// A worker that fails to start or load leaves the pool smaller; it never fails a batch.

/** The most workers chosen automatically (`workers` in createAligner's options may set more). */
export const MAX_AUTO_WORKERS = 4;
/**
 * Memory one worker takes with the model loaded (wasm memory, JS heap and thread), in MiB:
 * the growth of the renderer's peak resident memory per extra worker in headless Chromium,
 * CPU backend, was 94–139 MiB (tests/browser/pool-bench.mjs); rounded up with a margin.
 */
export const WORKER_MIB = 160;
/** Share of the device's memory (`navigator.deviceMemory`) the pool may take. */
const MEMORY_SHARE = 0.25;
/** The first batch that starts the extra workers has at least this many pairs. */
export const START_MIN_PAIRS = 32;
/** alignBatch's default `batchSize` (crates/xlalign-wasm/src/options.rs). */
const DEFAULT_BATCH = 8;
/** The most workers `workers` may ask for. */
const MAX_WORKERS = 16;

function abortError() {
  const e = new Error("the operation was aborted");
  e.name = "AbortError";
  e.code = "cancelled";
  return e;
}

/** Checks createAligner's `workers` option; returns it, or undefined when unset. */
export function checkWorkers(workers) {
  if (workers === undefined) return undefined;
  if (!Number.isInteger(workers) || workers < 1 || workers > MAX_WORKERS) {
    const e = new Error(`workers must be a whole number from 1 to ${MAX_WORKERS}, got ${String(workers)}`);
    e.code = "input";
    throw e;
  }
  return workers;
}

/**
 * How many workers (the main one included) a batch is split over: `workers` when given;
 * otherwise one on WebGPU (one GPU: more workers would only queue on it), with the model given
 * as bytes (they would be copied into every worker) or when no more workers can be started;
 * else the logical cores (`navigator.hardwareConcurrency`), at most MAX_AUTO_WORKERS, and at
 * most as many model copies as fit in a quarter of `navigator.deviceMemory` where the browser
 * reports it.
 */
export function poolSize({ workers, backend, bytes, canStart, nav = globalThis.navigator }) {
  if (workers !== undefined) return workers;
  if (backend === "webgpu" || bytes || !canStart) return 1;
  let n = Math.min(MAX_AUTO_WORKERS, nav?.hardwareConcurrency || 1);
  const gib = nav?.deviceMemory;
  if (typeof gib === "number" && gib > 0) n = Math.min(n, Math.floor((gib * 1024 * MEMORY_SHARE) / WORKER_MIB));
  return Math.max(1, n);
}

/** A pair the worker will accept as it is (the rest go to one worker, which names the error). */
function wellFormed(p) {
  if (Array.isArray(p)) return p.length === 2 && typeof p[0] === "string" && typeof p[1] === "string";
  return p !== null && typeof p === "object" && typeof p.src === "string" && typeof p.tgt === "string";
}

function partSize(options) {
  const n = options?.batchSize;
  return Number.isInteger(n) && n >= 1 ? n : DEFAULT_BATCH;
}

export class Pool {
  #main; // { rpc, state: "ready" }
  #extras = []; // { rpc, state: "loading" | "ready" | "failed" }
  #spawn; // () => Rpc of a new worker (not loaded)
  #load; // (rpc) => Promise: loads the model in that worker
  #newId; // () => a request id unique among the main worker's
  #size;
  #started = false;
  #disposed = false;
  #batches = new Map(); // id -> batch

  constructor({ main, spawn, load, newId, size }) {
    this.#main = { rpc: main, state: "ready" };
    this.#spawn = spawn;
    this.#load = load;
    this.#newId = newId;
    this.#size = size;
  }

  get size() {
    return this.#size;
  }

  /** Whether this batch goes over the pool; if not, the caller sends it to the main worker. */
  takes(pairs, options) {
    if (this.#size < 2 || this.#disposed || !Array.isArray(pairs)) return false;
    if (pairs.length < 2 * partSize(options) || !pairs.every(wellFormed)) return false;
    if (this.#started) return this.#extras.some((w) => w.state !== "failed");
    return pairs.length >= START_MIN_PAIRS;
  }

  alignBatch(pairs, options, onProgress) {
    const { signal, ...rest } = options;
    const id = this.#newId();
    const batch = {
      pairs,
      options: rest,
      part: partSize(rest),
      next: 0,
      retry: [], // parts of workers that died
      results: new Array(pairs.length),
      done: 0,
      running: new Map(), // request id -> { worker, rpc }
      onProgress,
      finished: false,
      cleanup: () => {},
    };
    const promise = new Promise((resolve, reject) => {
      batch.resolve = resolve;
      batch.reject = reject;
    });
    promise.id = id;
    if (signal?.aborted) {
      batch.reject(abortError());
      return promise;
    }
    if (signal) {
      const onAbort = () => this.cancel(id);
      signal.addEventListener("abort", onAbort, { once: true });
      batch.cleanup = () => signal.removeEventListener("abort", onAbort);
    }
    this.#batches.set(id, batch);
    this.#start();
    this.#report(batch, 0, []);
    // Every worker must give the entries one worker gives. An extra worker that loaded
    // progressively may still lack the deeper layers the main one has (or have them when the
    // main one does not yet), and would leave the sentence cosine out where another computes
    // it: unless the caller said, the main worker's state decides it for the whole batch.
    const decided =
      rest.sentenceCosine !== undefined
        ? Promise.resolve()
        : this.#main.rpc.call("status", {}).then(
            (s) => {
              batch.options = { ...rest, sentenceCosine: s.complete !== false };
            },
            () => {},
          );
    decided.then(() => {
      batch.decided = true;
      for (const w of this.#workers()) if (w.state === "ready") this.#pump(batch, w);
    });
    return promise;
  }

  /** Cancels a pooled batch: running parts are aborted in their workers, queued ones dropped. */
  cancel(id) {
    const batch = this.#batches.get(id);
    if (!batch) return false;
    this.#fail(batch, abortError());
    return true;
  }

  cancelAll() {
    for (const id of [...this.#batches.keys()]) this.cancel(id);
  }

  /** Each worker's state and pairs aligned; ready workers answer after the work they were given. */
  status() {
    return Promise.all(
      this.#workers().map(async (w) => {
        if (w.state !== "ready") return { state: w.state, pairs: 0 };
        try {
          const { pairs } = await w.rpc.call("status", {});
          return { state: "ready", pairs };
        } catch {
          return { state: w.rpc.failed ? "failed" : w.state, pairs: 0 };
        }
      }),
    );
  }

  /** Fails running batches with `reason` and stops the extra workers (the caller stops the main one). */
  terminate(reason) {
    this.#disposed = true;
    for (const batch of [...this.#batches.values()]) this.#fail(batch, reason);
    for (const w of this.#extras) {
      w.state = "failed";
      w.rpc?.terminate(reason);
    }
  }

  #workers() {
    return [this.#main, ...this.#extras];
  }

  #start() {
    if (this.#started) return;
    this.#started = true;
    for (let i = 1; i < this.#size; i++) {
      const w = { rpc: null, state: "loading" };
      this.#extras.push(w);
      try {
        w.rpc = this.#spawn();
      } catch (e) {
        this.#retire(w, e);
        continue;
      }
      this.#load(w.rpc).then(
        () => {
          if (this.#disposed || w.state !== "loading") return;
          w.state = "ready";
          for (const batch of this.#batches.values()) this.#pump(batch, w);
        },
        (e) => this.#retire(w, e),
      );
    }
  }

  // A worker that could not start or load, or died: the pool goes on without it.
  #retire(w, why) {
    if (w.state === "failed") return;
    w.state = "failed";
    if (!this.#disposed) console.warn(`xlalign: a pool worker stopped, batches go on with fewer: ${why?.message ?? why}`);
    w.rpc?.terminate(why instanceof Error ? why : new Error(String(why)));
    // Its parts go to the others; those that are idle take them now.
    for (const batch of this.#batches.values()) {
      for (const v of this.#workers()) {
        if (v.state === "ready" && ![...batch.running.values()].some((r) => r.worker === v)) this.#pump(batch, v);
      }
    }
  }

  // Gives worker w the batch's next part, and the next when that one is done.
  #pump(batch, w) {
    if (batch.finished || !batch.decided || w.state !== "ready") return;
    let start;
    if (batch.retry.length) start = batch.retry.shift();
    else if (batch.next < batch.pairs.length) {
      start = batch.next;
      batch.next += batch.part;
    } else return;
    const end = Math.min(start + batch.part, batch.pairs.length);
    const req = w.rpc.call("alignBatch", { pairs: batch.pairs.slice(start, end), options: batch.options, progress: false });
    batch.running.set(req.id, { worker: w, rpc: w.rpc });
    req.then(
      (values) => {
        batch.running.delete(req.id);
        if (batch.finished) return;
        for (let i = 0; i < values.length; i++) batch.results[start + i] = values[i];
        batch.done += values.length;
        this.#report(batch, start, values);
        if (batch.done === batch.pairs.length) this.#finish(batch);
        else this.#pump(batch, w);
      },
      (e) => {
        batch.running.delete(req.id);
        if (batch.finished) return;
        if (w !== this.#main && w.rpc.failed) {
          batch.retry.push(start);
          this.#retire(w, e);
        } else this.#fail(batch, e);
      },
    );
  }

  #report(batch, offset, results) {
    if (!batch.onProgress) return;
    try {
      batch.onProgress({ done: batch.done, total: batch.pairs.length, offset, results });
    } catch (e) {
      console.warn("xlalign: onProgress threw", e);
    }
  }

  #finish(batch) {
    batch.finished = true;
    batch.cleanup();
    for (const [id, b] of this.#batches) if (b === batch) this.#batches.delete(id);
    batch.resolve(batch.results);
  }

  #fail(batch, err) {
    if (batch.finished) return;
    batch.finished = true;
    batch.cleanup();
    for (const [id, b] of this.#batches) if (b === batch) this.#batches.delete(id);
    for (const [id, { rpc }] of batch.running) rpc.cancel(id);
    batch.running.clear();
    batch.reject(err);
  }
}
