#!/usr/bin/env bash
# End-to-end test of the demo app: builds it (scripts/build-web.sh, the same build as
# scripts/demo.sh, into dist/), builds the CLI if it is missing, checks
# the demo's server over it (tests/e2e/serve.test.mjs), and runs tests/e2e/app.test.mjs, which
# serves dist/ on a local port and drives headless Chromium (puppeteer-core). Writes
# docs/screenshot.png.
#
# env: XLALIGN_SKIP_WEB_BUILD=1  reuse dist/ if it exists (no web build)
#      XLALIGN_DEMO_MODEL        the model file the demo loads, for the CLI to compare with
#                                (default: the alignment-tuned model, public/models/…-align-…)
#      XLALIGN_E2E_WEBGPU=0      skip the WebGPU (SwiftShader) step
#      XLALIGN_E2E_PORT          serve on this port instead of a free one
#      XLALIGN_SERVE_PORT        the port of the demo server's test (default: a free one)
#      XLALIGN_SCREENSHOT        write the screenshot here instead of docs/screenshot.png

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$XLALIGN_ROOT"

# Not XLALIGN_MODEL: test.sh sets that to the base model for the other suites.
MODEL="${XLALIGN_DEMO_MODEL:-$XLALIGN_ALIGN_MODEL}"
[[ -f $MODEL ]] || die "model not found at $MODEL: run scripts/setup.sh first (or set XLALIGN_DEMO_MODEL)"
have chromium || die "chromium is not installed (scripts/setup.sh installs it)"
if [[ ! -d node_modules/puppeteer-core || ! -x node_modules/.bin/wasm-opt || ! -x node_modules/.bin/http-server ]]; then
    step "npm install (puppeteer-core, binaryen, http-server)"
    npm install --no-audit --no-fund
fi

if [[ ${XLALIGN_SKIP_WEB_BUILD:-0} == 1 && -f dist/index.html ]]; then
    skip "reusing dist/ (XLALIGN_SKIP_WEB_BUILD=1)"
else
    # The same build as scripts/demo.sh, so the two share the cargo build.
    bash scripts/build-web.sh
fi
[[ -f dist/index.html && -f dist/pkg/worker.js && -f dist/sw.js ]] || die "dist/ is incomplete: run scripts/build-web.sh"
[[ -f dist/models/$(basename "$MODEL") ]] || die "dist/models/ has no model: is public/models/ filled (scripts/setup.sh)?"

if [[ ! -x $XLALIGN_BIN ]]; then
    step "Build the CLI (the test compares the page with it)"
    timed cargo build --release -p xlalign-cli
fi

# The demo's own server (scripts/serve-web.sh) over this build: ranges, revalidation, and the
# precompressed app shell. XLALIGN_SERVE_PORT picks its port, else a free one.
step "node tests/e2e/serve.test.mjs"
XLALIGN_E2E_DIST="$XLALIGN_ROOT/dist" timed node tests/e2e/serve.test.mjs

# The test serves dist/ itself (it stops the server to check offline use); XLALIGN_E2E_PORT
# picks the port, else a free one.
step "node tests/e2e/app.test.mjs"
XLALIGN_E2E_DIST="$XLALIGN_ROOT/dist" XLALIGN_BIN="$XLALIGN_BIN" XLALIGN_MODEL="$MODEL" \
    timed node tests/e2e/app.test.mjs
