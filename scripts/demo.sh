#!/usr/bin/env bash
# Sets everything up, builds the CLI and, when the web app is present, builds it and serves it on
# http://127.0.0.1:8080/ (Ctrl-C stops the server).
#
# env: XLALIGN_SKIP_SETUP=1   skip scripts/setup.sh
#      XLALIGN_PORT (8080), XLALIGN_ADDR (127.0.0.1)
#      XLALIGN_NO_SERVE=1     build everything, print the URL command, but do not serve (CI smoke)

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$XLALIGN_ROOT"

PORT="${XLALIGN_PORT:-8080}"
ADDR="${XLALIGN_ADDR:-127.0.0.1}"

if [[ ${XLALIGN_SKIP_SETUP:-0} != 1 ]]; then
    bash scripts/setup.sh
fi

step "Build the CLI"
timed cargo build --release -p xlalign-cli

# Builds the web app into dist/: the same build as scripts/test-e2e.sh (one cargo build for both).
build_web() {
    bash scripts/build-web.sh
}

# Serves dist/ with scripts/serve-web.sh: Range requests for the model, ETag/Last-Modified
# revalidation, and the precompressed (.br/.gz) app shell that scripts/build-web.sh writes.
serve_dist() {
    local url="http://$ADDR:$PORT/"
    if [[ ${XLALIGN_NO_SERVE:-0} == 1 ]]; then
        info "built dist/; serve it with: XLALIGN_PORT=$PORT XLALIGN_ADDR=$ADDR bash scripts/serve-web.sh"
        return 0
    fi
    step "Serving dist/ at $url  (Ctrl-C to stop)"
    echo
    echo "    Open ${_c_bold}$url${_c_off} in a browser with WebGPU (Chrome/Edge 113+, or Chromium with"
    echo "    --enable-unsafe-webgpu). Without WebGPU the app falls back to the CPU (WebAssembly)."
    echo
    XLALIGN_PORT=$PORT XLALIGN_ADDR=$ADDR exec bash scripts/serve-web.sh dist
}

cli_usage() {
    local bin=$XLALIGN_BIN model=$XLALIGN_ALIGN_MODEL
    step "The CLI is ready"
    cat <<EOF

    binary: $bin
    model:  $model

    $bin info
    $bin --help

    (The web app is not in this checkout yet: web/index.html is missing, so there is nothing to serve.)
EOF
    step "Model summary"
    "$bin" info "$model"
}

if [[ -f web/index.html ]]; then
    build_web
    serve_dist
else
    cli_usage
fi
