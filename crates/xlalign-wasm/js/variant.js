// Which build of the WebAssembly module this browser runs: the package carries two, the same
// code compiled for SIMD128 (xlalign_wasm_bg.wasm, every browser with wasm SIMD) and for
// SIMD128 + relaxed SIMD (xlalign_wasm_bg.relaxed.wasm: int8 dot products with
// i32x4.relaxed_dot_i8x16_i7x16_add_s, faster on the CPU backend). Both give the same links
// on any processor (the kernels only feed the instruction operands it defines exactly), and
// they share one wasm-bindgen glue (scripts/build-wasm.sh checks), so only the .wasm file
// differs and only the chosen one is downloaded.

// Set to false by scripts/build-wasm.sh for a build without the relaxed file (pkg/nosimd).
const HAS_RELAXED = true;

/** The values of the `wasm` option of createAligner. */
export const WASM_VARIANTS = ["auto", "simd128", "relaxed"];

// A module whose one function runs i32x4.relaxed_dot_i8x16_i7x16_add_s (opcode 0xfd 0x113,
// LEB128 0x93 0x02) on splatted constants: it validates only where relaxed SIMD is supported.
// web/sw.js keeps a copy of these bytes (a service worker cannot import this module
// everywhere); scripts/build-web.sh checks that the two agree.
// prettier-ignore
export const RELAXED_PROBE = [
  0, 97, 115, 109, 1, 0, 0, 0, // "\0asm", version 1
  1, 5, 1, 96, 0, 1, 123, // type section: () -> v128
  3, 2, 1, 0, // function section: one function of type 0
  10, 19, 1, 17, 0, // code section: one body of 17 bytes, no locals
  65, 1, 253, 15, // i32.const 1, i8x16.splat
  65, 2, 253, 15, // i32.const 2, i8x16.splat
  65, 3, 253, 17, // i32.const 3, i32x4.splat
  253, 147, 2, // i32x4.relaxed_dot_i8x16_i7x16_add_s
  11, // end
];

let relaxedSupported = null;

/** Whether this browser's WebAssembly has relaxed SIMD (probed once). */
export function hasRelaxedSimd() {
  relaxedSupported ??= (() => {
    try {
      return typeof WebAssembly === "object" && WebAssembly.validate(new Uint8Array(RELAXED_PROBE));
    } catch {
      return false;
    }
  })();
  return relaxedSupported;
}

/** Throws a coded `input` error unless `wasm` is one of WASM_VARIANTS (or undefined). */
export function checkWasm(wasm) {
  if (wasm === undefined || WASM_VARIANTS.includes(wasm)) return;
  const e = new Error(`wasm must be one of ${WASM_VARIANTS.map((v) => `"${v}"`).join(", ")}, not ${JSON.stringify(wasm)}`);
  e.code = "input";
  throw e;
}

/**
 * The variant to run for the `wasm` option: "auto" (or undefined) takes relaxed SIMD where
 * the browser has it and the package carries it, simd128 otherwise. Forcing "relaxed" where
 * the browser lacks it is a `backend` error (the module would not compile).
 */
export function pickVariant(wasm = "auto") {
  checkWasm(wasm);
  if (wasm === "simd128") return "simd128";
  if (wasm === "relaxed") {
    if (!HAS_RELAXED) throw Object.assign(new Error("this build of the package has no relaxed-SIMD module"), { code: "backend" });
    if (!hasRelaxedSimd()) throw Object.assign(new Error("this browser's WebAssembly has no relaxed SIMD"), { code: "backend" });
    return "relaxed";
  }
  return HAS_RELAXED && hasRelaxedSimd() ? "relaxed" : "simd128";
}

/**
 * The URL of a variant's .wasm. Each URL is written out as `new URL("literal",
 * import.meta.url)`, the form Vite and webpack turn into an emitted asset, so a bundled
 * worker finds either file.
 */
export function wasmUrl(variant) {
  return variant === "relaxed"
    ? new URL("./xlalign_wasm_bg.relaxed.wasm", import.meta.url)
    : new URL("./xlalign_wasm_bg.wasm", import.meta.url);
}
