#!/usr/bin/env bash
# Browser benchmarks in headless Chromium.
#
#   scripts/bench-browser.sh [variants] [repeat] [gpuSubset]
#       tokens/s and pairs/s for the WebAssembly CPU backend with SIMD128, relaxed SIMD and
#       without SIMD, and WebGPU (SwiftShader when there is no GPU), in one run (public/bench/
#       driven by tests/browser/bench.mjs; variants default "simd,relaxed,nosimd,webgpu", best
#       of 3 runs; WebGPU runs once over the first 32 sentences and pairs). Add "native" to
#       the variants for `xlalign bench --backend cpu --threads 1` first, in the same run.
#       Builds pkg/ and pkg/nosimd/ first.
#   scripts/bench-browser.sh progressive [mbit] [latency ms] [rounds]
#       time and bytes until the first alignment is shown, full download versus progressive
#       loading, on a connection throttled by Chromium (default 10 Mbit/s, 40 ms), cold
#       cache (tests/browser/progressive-bench.mjs). Builds pkg/ first.
#   scripts/bench-browser.sh demo [mbit] [latency ms] [rounds]
#       the demo's first visit: seconds and model bytes until the first picture is on screen,
#       app shell included, served by scripts/serve-web.sh on a connection throttled by
#       Chromium (default 10 Mbit/s, 40 ms), cold cache (tests/e2e/first-picture-bench.mjs).
#       Builds dist/ first (XLALIGN_SKIP_WEB_BUILD=1 reuses it).
#   scripts/bench-browser.sh pool [pairs] [repeat] [batchSize]
#       alignBatch pairs/s of createAligner's worker pool (its automatic size) against one
#       worker (workers: 1), and the renderer's peak memory for each, CPU backend (default 200
#       gold pairs, best of 3, batchSize 8; tests/browser/pool-bench.mjs). Builds pkg/ first.
#   scripts/bench-browser.sh demo-batch [pairs]
#       the demo's batch mode with a file of N pairs (default 10,000, one line in a thousand
#       not a pair) chosen in its file input: time, pairs/s, frame gaps, renderer peak
#       memory, problems listed, exports (tests/e2e/batch-bench.mjs). Builds dist/ first
#       (XLALIGN_SKIP_WEB_BUILD=1 reuses it).
#   scripts/bench-browser.sh bad-input [batchPairs]
#       each class of bad input through createAligner (CPU backend): the outcome, the time and
#       the renderer's peak memory (default a 10,000-pair batch; tests/browser/bad-input-bench.mjs).
#
# XLALIGN_SKIP_WASM_BUILD=1 reuses existing builds; XLALIGN_MODEL names the model file.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$XLALIGN_ROOT"
[[ -d node_modules/puppeteer-core ]] || npm install --no-audit --no-fund
have chromium || die "chromium is not installed (scripts/setup.sh installs it)"

if [[ ${1:-} == progressive ]]; then
    shift
    [[ ${XLALIGN_SKIP_WASM_BUILD:-} == 1 && -f pkg/xlalign_wasm.js ]] || scripts/build-wasm.sh
    step "progressive vs full loading on a throttled connection, headless Chromium"
    node tests/browser/progressive-bench.mjs "$@"
    exit
fi

if [[ ${1:-} == demo ]]; then
    shift
    [[ ${XLALIGN_SKIP_WEB_BUILD:-} == 1 && -f dist/index.html ]] || scripts/build-web.sh
    step "the demo's first picture on a throttled connection, headless Chromium"
    node tests/e2e/first-picture-bench.mjs "$@"
    exit
fi

if [[ ${1:-} == demo-batch ]]; then
    shift
    [[ ${XLALIGN_SKIP_WEB_BUILD:-} == 1 && -f dist/index.html ]] || scripts/build-web.sh
    step "the demo's batch mode with a large file, headless Chromium"
    node tests/e2e/batch-bench.mjs "$@"
    exit
fi

if [[ ${1:-} == pool ]]; then
    shift
    [[ ${XLALIGN_SKIP_WASM_BUILD:-} == 1 && -f pkg/xlalign_wasm.js ]] || scripts/build-wasm.sh
    step "worker pool vs one worker, alignBatch, headless Chromium ($(nproc) cores)"
    node tests/browser/pool-bench.mjs "$@"
    exit
fi

if [[ ${1:-} == bad-input ]]; then
    shift
    [[ ${XLALIGN_SKIP_WASM_BUILD:-} == 1 && -f pkg/xlalign_wasm.js ]] || scripts/build-wasm.sh
    step "bad input through createAligner, headless Chromium"
    node tests/browser/bad-input-bench.mjs "$@"
    exit
fi

if [[ ${XLALIGN_SKIP_WASM_BUILD:-} != 1 ]]; then
    scripts/build-wasm.sh
    XLALIGN_WASM_SIMD=0 scripts/build-wasm.sh
fi
step "public/bench in headless Chromium ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg))"
node tests/browser/bench.mjs "$@"
