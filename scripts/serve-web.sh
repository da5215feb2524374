#!/usr/bin/env bash
# Serves the built web app (dist/, or the folder given) the way the demo needs it, with npm
# http-server (pinned in package.json): the one serve command of scripts/demo.sh, and the one
# tests/e2e/serve.test.mjs checks.
#   - Range requests (206 + Content-Range, 416 for a range the file cannot satisfy): the
#     model is read in ranges;
#   - ETag and Last-Modified, with conditional requests (304), and `Cache-Control: max-age=0`,
#     so the browser revalidates instead of downloading the app again;
#   - the .br / .gz files scripts/build-web.sh writes next to the app shell (.wasm, .js, .css,
#     .html, .svg) for a request that accepts that encoding, with the original Content-Type
#     (`application/wasm` for the .wasm); the model is never compressed;
#   - no directory listings.
#
# usage: scripts/serve-web.sh [DIR]   (default dist/; runs in the foreground, Ctrl-C stops it)
# env:   XLALIGN_PORT (8080), XLALIGN_ADDR (127.0.0.1)

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dir="${1:-$XLALIGN_ROOT/dist}"
[[ -f $dir/index.html ]] || die "$dir has no index.html: build the app first (scripts/build-web.sh)"
server="$XLALIGN_ROOT/node_modules/.bin/http-server"
[[ -x $server ]] || die "node_modules/.bin/http-server is missing: run npm ci (scripts/setup.sh does)"

# -b/-g: precompressed .br/.gz (brotli first); -c0: max-age=0; -d false: no listings (a
# folder still answers with its index.html); -s: no request log. Node's DEP0066 warning
# (http-server reads a deprecated response field) says nothing to a user of the demo.
exec env NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--no-deprecation" "$server" "$dir" \
    -a "${XLALIGN_ADDR:-127.0.0.1}" -p "${XLALIGN_PORT:-8080}" \
    -b -g -c0 -d false --no-dotfiles -s
