import type {
  AlignBatchOptions, AlignOptions, BackendInfo, BatchProgress, DocumentAlignment, EmbedOptions, EncodedInfo, EncodeOptions, ExtractOptions,
  LoadOptions, LoadProgress, LoadingInfo, ModelInfo, PairAlignment, PairError,
} from "./xlalign_wasm.js";

export interface CreateAlignerOptions extends Omit<LoadOptions, "onProgress" | "signal"> {
  onProgress?: (p: LoadProgress) => void;
  /** Aborts the load (the worker is terminated). */
  signal?: AbortSignal;
  /** Where worker.js lives, when you serve it yourself (Vite and webpack bundle it without this). */
  workerUrl?: string | URL;
  /** Use this worker instead of starting one (it must run worker.js). */
  worker?: Worker;
  /**
   * How many workers `alignBatch` splits big batches over, the main one included (each loads
   * its own copy of the model); 1 turns the pool off. Unset: one per logical core, at most 4,
   * and at most as many as fit in a quarter of `navigator.deviceMemory`; one on WebGPU, with
   * the model given as bytes, or with `worker` and no `workerUrl`.
   */
  workers?: number;
  /**
   * Which WebAssembly build the workers run: `"auto"` (default) takes the relaxed-SIMD build
   * where the browser supports relaxed SIMD, the SIMD128 build otherwise; `"simd128"` or
   * `"relaxed"` force one (forcing `"relaxed"` where it is missing rejects with code
   * `backend`). Only the chosen `.wasm` is downloaded. Both give the same links.
   */
  wasm?: WasmVariant;
}

/** A WebAssembly build of the package (see `CreateAlignerOptions.wasm`). */
export type WasmVariant = "auto" | "simd128" | "relaxed";

/** One worker of the pool (`RemoteAligner.workerStatus`); the first is the main worker. */
export interface WorkerStatus {
  state: "loading" | "ready" | "failed";
  /** Pairs this worker has aligned in `alignBatch` calls, cancelled ones included. */
  pairs: number;
}

export interface CallOptions { signal?: AbortSignal }

/** A promise for a request; `id` can be passed to `cancel(id)`. */
export type Request<T> = Promise<T> & { id: number };

/** A pair encoded in the worker (`RemoteAligner.encode`): its words, token counts and cosine. */
export interface RemoteEncoded extends EncodedInfo {
  /** What `align` gives for the same sentences with these options, without running the encoder again. */
  extract(options?: ExtractOptions & CallOptions): Request<PairAlignment>;
  /** Frees the states in the worker; later `extract` calls reject with code `disposed`. */
  dispose(): Promise<void>;
}

export interface RemoteAligner {
  readonly backend: BackendInfo;
  readonly model: ModelInfo;
  /** The WebAssembly build the workers run (`"auto"` resolved). */
  readonly wasm: "simd128" | "relaxed";
  /** The most workers a batch is split over (see `CreateAlignerOptions.workers`); 1: no pool. */
  readonly poolSize: number;
  tokenize(text: string, options?: EmbedOptions & CallOptions): Request<{ ids: Uint32Array; tokens: string[] }>;
  embed(texts: string[], options?: EmbedOptions & CallOptions): Request<Float32Array[]>;
  similarity(a: string, b: string, options?: EmbedOptions & CallOptions): Request<number>;
  align(src: string, tgt: string, options?: AlignOptions & CallOptions): Request<PairAlignment>;
  alignBatch(
    pairs: Array<[string, string] | { src: string; tgt: string }>,
    options?: AlignBatchOptions & CallOptions,
    onProgress?: (p: BatchProgress) => void,
  ): Request<Array<PairAlignment | PairError>>;
  /** Pairs the sentences of two texts and aligns the words of each pair (see `Aligner.alignDocument`). */
  alignDocument(src: string, tgt: string, options?: AlignOptions & CallOptions): Request<DocumentAlignment>;
  /** The state of each worker (the main one first); a ready worker answers once the work it was given is done. */
  workerStatus(): Promise<WorkerStatus[]>;
  /** Encodes a pair once for many extractions (see `Aligner.encode`). */
  encode(src: string, tgt: string, options?: EncodeOptions & CallOptions): Request<RemoteEncoded>;
  /**
   * Resolves to the loading counters once every block of the model is present (at once
   * after a full load; after `progressive: true`, once the deeper blocks have streamed in).
   * From then on `align` includes the sentence cosine by default. Not queued behind other calls.
   */
  whenLoaded(): Request<LoadingInfo>;
  /**
   * Resolves once the whole model file is here and kept in the Cache API (a later visit,
   * or offline use, needs no network). Rejects with `input` under `cache: false`.
   */
  whenStored(): Request<LoadingInfo>;
  /** Cancels a queued or running request: its promise rejects with an AbortError. */
  cancel(id: number): boolean;
  /** Cancels every queued or running request. */
  cancelAll(): void;
  clearCache(): Request<boolean>;
  /** Frees the model and stops the worker. */
  dispose(): Promise<void>;
}

/** Starts a Web Worker, loads the model there and resolves once it is ready. */
export function createAligner(
  source: string | URL | ArrayBuffer | Uint8Array,
  options?: CreateAlignerOptions,
): Promise<RemoteAligner>;
