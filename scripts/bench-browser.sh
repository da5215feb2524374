#!/usr/bin/env bash
# Browser benchmark in headless Chromium: tokens/s and pairs/s for the WebAssembly CPU
# backend with and without SIMD, and WebGPU (SwiftShader when there is no GPU), in one run.
# Builds pkg/ and pkg/nosimd/ first. Arguments go to tests/browser/bench.mjs
# ([variants] [repeat]); set XLALIGN_SKIP_WASM_BUILD=1 to reuse existing builds.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$XLALIGN_ROOT"
[[ -d node_modules/puppeteer-core ]] || npm install --no-audit --no-fund
if [[ ${XLALIGN_SKIP_WASM_BUILD:-} != 1 ]]; then
    scripts/build-wasm.sh
    XLALIGN_WASM_SIMD=0 scripts/build-wasm.sh
fi
step "public/bench in headless Chromium"
node tests/browser/bench.mjs "$@"
