import type {
  AlignBatchOptions, AlignOptions, BackendInfo, EmbedOptions, EncodedInfo, EncodeOptions, ExtractOptions,
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
  tokenize(text: string, options?: EmbedOptions & CallOptions): Request<{ ids: Uint32Array; tokens: string[] }>;
  embed(texts: string[], options?: EmbedOptions & CallOptions): Request<Float32Array[]>;
  similarity(a: string, b: string, options?: EmbedOptions & CallOptions): Request<number>;
  align(src: string, tgt: string, options?: AlignOptions & CallOptions): Request<PairAlignment>;
  alignBatch(
    pairs: Array<[string, string] | { src: string; tgt: string }>,
    options?: AlignBatchOptions & CallOptions,
    onProgress?: (p: { done: number; total: number }) => void,
  ): Request<Array<PairAlignment | PairError>>;
  /** Encodes a pair once for many extractions (see `Aligner.encode`). */
  encode(src: string, tgt: string, options?: EncodeOptions & CallOptions): Request<RemoteEncoded>;
  /**
   * Resolves to the loading counters once every block of the model is present (at once
   * after a full load; after `progressive: true`, once the deeper blocks have streamed in).
   * From then on `align` includes the sentence cosine by default. Not queued behind other calls.
   */
  whenLoaded(): Request<LoadingInfo>;
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
