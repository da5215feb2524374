/** The WebAssembly builds of the package (see `CreateAlignerOptions.wasm`). */
export declare const WASM_VARIANTS: readonly ["auto", "simd128", "relaxed"];
/** The bytes of the module whose validation tells whether relaxed SIMD is supported. */
export declare const RELAXED_PROBE: readonly number[];
/** Whether this browser's WebAssembly has relaxed SIMD (probed once). */
export declare function hasRelaxedSimd(): boolean;
/** Throws an `input` error unless `wasm` is one of `WASM_VARIANTS` or undefined. */
export declare function checkWasm(wasm: unknown): void;
/** The build `wasm` resolves to here ("auto": relaxed where supported). */
export declare function pickVariant(wasm?: "auto" | "simd128" | "relaxed"): "simd128" | "relaxed";
/** The URL of a build's `.wasm`, next to the package's files. */
export declare function wasmUrl(variant: "simd128" | "relaxed"): URL;
