export * from "./xlalign_wasm.js";
export { default } from "./xlalign_wasm.js";
export { createAligner, RemoteAligner, RemoteEncoded, CreateAlignerOptions, CallOptions, WorkerStatus, WasmVariant } from "./client.js";
export { hasRelaxedSimd } from "./variant.js";
