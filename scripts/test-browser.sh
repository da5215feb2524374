#!/usr/bin/env bash
# Runs every browser test in headless Chromium:
#   1. wasm-bindgen-test (crates/xlalign-wasm/tests/*.rs) through wasm-bindgen-test-runner;
#   2. the built npm package (scripts/build-wasm.sh): its TypeScript declarations checked with
#      tsc against tests/browser/types-usage.ts, then driven by puppeteer-core:
#      tests/browser/*.test.mjs (example page, worker, progressive loading).
# A local server (tests/browser/serve.py: Range + CORS) serves the model and test data.
#
# Environment: XLALIGN_MODEL (model file), XLALIGN_TEST_PORT (default 18790),
#   XLALIGN_BROWSER_TESTS=wasm|js (run only one half), XLALIGN_SKIP_WASM_BUILD=1 (reuse pkg/).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$XLALIGN_ROOT"

MODEL="${XLALIGN_MODEL:-$XLALIGN_DEFAULT_MODEL}"
[[ -f $MODEL ]] || die "model not found at $MODEL: run scripts/setup.sh first (or set XLALIGN_MODEL)"
DATA_DIR="$XLALIGN_ROOT/tests/data"
[[ -f $DATA_DIR/e5-small-q4-reference.json ]] || die "missing $DATA_DIR/e5-small-q4-reference.json"
have chromium || die "chromium is not installed (scripts/setup.sh installs it)"
have chromedriver || die "chromedriver is not installed (scripts/setup.sh installs it)"
have wasm-bindgen-test-runner || die "wasm-bindgen-test-runner missing: cargo install wasm-bindgen-cli --version 0.2.130"

PORT="${XLALIGN_TEST_PORT:-18790}"
BASE="http://127.0.0.1:$PORT"
MODEL_DIR="$(cd "$(dirname "$MODEL")" && pwd)"
python3 tests/browser/serve.py --port "$PORT" \
    --mount "/models=$MODEL_DIR" --mount "/data=$DATA_DIR" --mount "/=$XLALIGN_ROOT" >/dev/null 2>&1 &
SERVER_PID=$!
trap 'kill $SERVER_PID 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    curl -sf "$BASE/__stats" >/dev/null 2>&1 && break
    kill -0 $SERVER_PID 2>/dev/null || die "test server did not start (is port $PORT in use? set XLALIGN_TEST_PORT)"
    sleep 0.1
done
curl -sf "$BASE/__stats" >/dev/null || die "test server at $BASE does not answer"

export XLALIGN_TEST_SERVER="$BASE"
export XLALIGN_TEST_MODEL_URL="$BASE/models/$(basename "$MODEL")"
export XLALIGN_TEST_DATA_URL="$BASE/data"
which="${XLALIGN_BROWSER_TESTS:-all}"

if [[ $which == all || $which == wasm ]]; then
    step "wasm-bindgen-test in headless Chromium"
    # The runner reads webdriver.json (Chromium with --enable-unsafe-webgpu) from the crate root.
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
    CHROMEDRIVER="$(command -v chromedriver)" \
    WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-900}" \
        timed cargo test -p xlalign-wasm --target wasm32-unknown-unknown
    step "wasm kernels against the scalar kernel, relaxed-SIMD build"
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
    CHROMEDRIVER="$(command -v chromedriver)" \
    WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-900}" \
        timed cargo test -p xlalign-wasm --target wasm32-unknown-unknown --features relaxed-simd --test kernels
fi

if [[ $which == all || $which == js ]]; then
    shopt -s nullglob
    tests=(tests/browser/*.test.mjs)
    if ((${#tests[@]})); then
        [[ -d node_modules/puppeteer-core ]] || (step "npm install" && npm install --no-audit --no-fund)
        [[ ${XLALIGN_SKIP_WASM_BUILD:-} == 1 && -f pkg/xlalign_wasm.js ]] || scripts/build-wasm.sh
        step "tsc --noEmit: the package's .d.ts and tests/browser/types-usage.ts"
        [[ -x node_modules/.bin/tsc ]] || (step "npm install" && npm install --no-audit --no-fund)
        timed node_modules/.bin/tsc --noEmit --strict --target es2022 --module esnext \
            --moduleResolution bundler --lib es2022,dom \
            pkg/*.d.ts pkg/bundler/*.d.ts tests/browser/types-usage.ts
        for t in "${tests[@]}"; do
            step "node $t"
            timed node "$t"
        done
    fi
fi
step "browser tests passed ($(elapsed))"
