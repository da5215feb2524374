export * from "./xlalign_wasm.js";
export { default } from "./xlalign_wasm.js";
export { createAligner, RemoteAligner, CreateAlignerOptions, CallOptions } from "./client.js";
