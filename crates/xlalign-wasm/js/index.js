// Entry point of the package: the WebAssembly API for use on the page (or in your own
// worker) and createAligner(), which runs it in a Web Worker for you.
export { default, initSync, Aligner, Encoded, clearCache, version } from "./xlalign_wasm.js";
export { createAligner } from "./client.js";
export { hasRelaxedSimd } from "./variant.js";
