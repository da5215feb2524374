// Type-checked (never run) by scripts/test-browser.sh: `tsc --noEmit` over the built package's
// .d.ts files and this file, which uses every public API as a web developer would. A rename
// on the Rust side that the declarations do not follow, or a declaration that no longer
// matches its use, fails the check.
import init, {
  Aligner,
  clearCache,
  createAligner,
  hasRelaxedSimd,
  version,
  type AlignBatchOptions,
  type AlignOptions,
  type BackendInfo,
  type BatchProgress,
  type CreateAlignerOptions,
  type Encoded,
  type EncodedInfo,
  type EncodeOptions,
  type ErrorCode,
  type ExtractOptions,
  type LoadingInfo,
  type LoadOptions,
  type LoadProgress,
  type ModelInfo,
  type PairAlignment,
  type PairError,
  type RemoteAligner,
  type RemoteEncoded,
  type WorkerStatus,
  type Word,
  type WordLink,
  type XlalignError,
} from "../../pkg/index.js";

function codeOf(e: unknown): ErrorCode | undefined {
  return e instanceof Error ? (e as XlalignError).code : undefined;
}

function show(w: Word, text: string): string {
  // UTF-16 offsets slice the JavaScript string; code-point offsets index Array.from(text).
  const a: string = text.slice(w.utf16Start, w.utf16End);
  const b: string = Array.from(text).slice(w.charStart, w.charEnd).join("");
  const bytes: number = w.end - w.start;
  return `${a} ${b} ${bytes}`;
}

function readResult(r: PairAlignment, src: string): number {
  const links: WordLink[] = r.links;
  const probs: (number | null)[] = links.map((l) => l.prob);
  const cosine: number | null = r.similarity.cosine;
  const f1: number = r.similarity.bertscore.f1;
  const covered: number = r.similarity.coverage.both;
  const cell: number = r.wordSimilarity[0]?.[0] ?? 0;
  r.srcWords.forEach((w) => show(w, src));
  const method: "softmax" | "entmax" | "argmax" | "itermax" | "match" = r.method;
  return probs.length + (cosine ?? 0) + f1 + covered + cell + r.layer + method.length;
}

// `AlignOptions` is the core's request type; `encode` and `extract` take its two parts (the
// core's encoding and extraction options), which together have its keys besides `signal`.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const partsCoverTheRequest: Same<
  Exclude<keyof AlignOptions, "signal">,
  keyof EncodeOptions | keyof ExtractOptions
> = true;
export const partsAreDisjoint: Same<keyof EncodeOptions & keyof ExtractOptions, never> = true;

function isPairError(r: PairAlignment | PairError): r is PairError {
  return "error" in r;
}

export async function onThePage(bytes: Uint8Array): Promise<void> {
  await init();
  const progress: LoadProgress[] = [];
  const ctl = new AbortController();
  const load: LoadOptions = {
    backend: "auto",
    cache: true,
    progressive: false,
    onProgress: (p) => progress.push(p),
    signal: ctl.signal,
  };
  const a: Aligner = await Aligner.load(bytes, load);
  const backend: BackendInfo = a.backend;
  const kind: "cpu" | "webgpu" = backend.kind;
  const model: ModelInfo = a.model;
  const loading: LoadingInfo = a.loading;
  const total: number | null = progress[0]?.total ?? null;
  console.log(kind, model.defaults.alignLayer, model.maxPositions, loading.readyBytes, total, version());

  const opts: AlignOptions = {
    method: "softmax",
    threshold: 0.3,
    direction: "both",
    level: "word-average",
    layer: 7,
    sentenceCosine: true,
    words: { cjkJoin: "auto", kana: "run" },
    signal: ctl.signal,
  };
  const r: PairAlignment = await a.align("The house is small.", "Das Haus ist klein.", opts);
  readResult(r, "The house is small.");

  const batch: AlignBatchOptions = { batchSize: 4, method: "argmax" };
  // Progress streams the finished pairs: results[i] is pair offset + i.
  const rows: Array<PairAlignment | PairError | undefined> = [];
  const results = await a.alignBatch([["a", "b"], { src: "c", tgt: "d" }], batch, ({ done, total, offset, results }) => {
    results.forEach((r, i) => (rows[offset + i] = r));
    console.log(done, total);
  });
  for (const x of results) {
    if (isPairError(x)) {
      const code: ErrorCode = x.error.code;
      console.log(code, x.error.message);
    } else {
      readResult(x, "a");
    }
  }

  const encodeOptions: EncodeOptions = { layer: 8, pretokenized: false, sentenceCosine: false };
  const enc: Encoded = await a.encode("The house is small.", "Das Haus ist klein.", { ...encodeOptions, signal: ctl.signal });
  const words: Word[] = enc.srcWords.concat(enc.tgtWords);
  const info: EncodedInfo = enc.toJSON();
  const cos: number | null = enc.cosine;
  console.log(words.length, info.srcTokens + enc.tgtTokens, cos, enc.layer);
  const x: ExtractOptions = { method: "itermax", iterations: 3, alpha: 0.8, distortion: 0.1 };
  readResult(await enc.extract(x), "The house is small.");
  readResult(await enc.extract({ method: "entmax", temperature: 2, signal: ctl.signal }), "The house is small.");
  // @ts-expect-error an encoding option goes to encode(), not extract()
  await enc.extract({ layer: 3 });
  // @ts-expect-error an extraction option goes to extract(), not encode()
  await a.encode("a", "b", { method: "argmax" });
  enc.dispose();

  const vecs: Float32Array[] = await a.embed(["x", "y"], { prefix: "query", signal: ctl.signal });
  const sim: number = await a.similarity("x", "y", { prefix: "none" });
  const t: { ids: Uint32Array; tokens: string[] } = a.tokenize("x", { prefix: "passage" });
  console.log(vecs.length, sim, t.ids.length);
  a.dispose();
  try {
    await a.embed(["x"]);
  } catch (e) {
    const code = codeOf(e);
    if (code === "disposed" || code === "cancelled" || code === "input") console.log(code);
  }
  const cleared: boolean = await clearCache();
  console.log(cleared);
}

export async function inAWorker(url: string): Promise<void> {
  const ctl = new AbortController();
  const options: CreateAlignerOptions = {
    backend: "cpu",
    progressive: true,
    onProgress: (p: LoadProgress) => console.log(p.phase, p.loaded),
    signal: ctl.signal,
    workers: 2,
  };
  const remote: RemoteAligner = await createAligner(url, options);
  const size: number = remote.poolSize;
  // @ts-expect-error the pool size is a number of workers
  await createAligner(url, { workers: "auto" });
  const forced = await createAligner(url, { wasm: "relaxed" });
  const build: "simd128" | "relaxed" = forced.wasm;
  // @ts-expect-error "auto" is an option, not a build that runs
  const auto: typeof forced.wasm = "auto";
  // @ts-expect-error the builds are named simd128 and relaxed
  await createAligner(url, { wasm: "avx512" });
  const relaxedHere: boolean = hasRelaxedSimd();
  console.log(build, auto, relaxedHere);
  const kind: "cpu" | "webgpu" = remote.backend.kind;
  const request = remote.align("a", "b", { method: "match", signal: ctl.signal });
  remote.cancel(request.id);
  const r: PairAlignment = await request;
  readResult(r, "a");
  const shown = new Map<number, PairAlignment | PairError>();
  const onBatch = (p: BatchProgress): void => {
    p.results.forEach((r, i) => shown.set(p.offset + i, r));
    console.log(p.done / p.total);
  };
  const results: Array<PairAlignment | PairError> = await remote.alignBatch([["a", "b"]], { batchSize: 2 }, onBatch);
  const status: WorkerStatus[] = await remote.workerStatus();
  const busy: number = status.filter((w) => w.state === "ready").reduce((n, w) => n + w.pairs, 0);
  console.log(size, shown.size, busy);
  const enc: RemoteEncoded = await remote.encode("a", "b", { layer: 6 });
  const again: PairAlignment = await enc.extract({ method: "argmax", signal: ctl.signal });
  console.log(kind, results.length, enc.srcWords[0]?.utf16Start, enc.cosine, again.links.length);
  await enc.dispose();
  const vecs: Float32Array[] = await remote.embed(["x"]);
  const sim: number = await remote.similarity("x", "y");
  const t = await remote.tokenize("x");
  console.log(vecs.length, sim, t.tokens.join(" "));
  remote.cancelAll();
  await remote.clearCache();
  await remote.dispose();
}
