#!/usr/bin/env bash
# Builds the web app (web/) into dist/: the one build command that scripts/demo.sh and
# scripts/test-e2e.sh both run, so a test run and a demo share one cargo build. Steps: the
# package (scripts/build-wasm.sh → pkg/), the page's wasm (cargo, wasm-bindgen --target web,
# wasm-opt -Oz), then web/assemble.py puts the page, its files, the package's browser files
# and the models into a staging folder and stamps the service worker; the staging folder
# replaces dist/ only when it is complete. Then writes a brotli and a gzip copy of each
# app-shell file next to it, for scripts/serve-web.sh.
#
# Nothing is downloaded but crates cargo lacks: wasm-bindgen is the
# 0.2.130 CLI setup installs (it must equal the crate web/Cargo.toml pins) and wasm-opt is
# binaryen 132 from npm (node_modules/.bin). Debian's wasm-opt 108 miscompiles current
# wasm-bindgen output.

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$XLALIGN_ROOT"

have wasm-bindgen || die "wasm-bindgen is not installed: cargo install wasm-bindgen-cli --version $WASM_BINDGEN_VERSION (scripts/setup.sh does)"
WASM_OPT="$XLALIGN_ROOT/node_modules/.bin/wasm-opt"
[[ -x $WASM_OPT ]] || die "node_modules/.bin/wasm-opt (binaryen 132) is missing: run npm install (scripts/setup.sh does)"
for m in "$XLALIGN_DEFAULT_MODEL" "$XLALIGN_ALIGN_MODEL"; do
    [[ -f public/models/$(basename "$m") ]] || die "public/models/ has no $(basename "$m"): run scripts/setup.sh"
done

# The page is a client of the JavaScript package: its worker and wasm come from pkg/ (built
# with wasm SIMD, LTO and wasm-opt -O3 there).
"$XLALIGN_ROOT/scripts/build-wasm.sh"

step "Build the page (cargo build xlalign-web, release, wasm32)"
timed cargo build -p xlalign-web --bin xlalign-web --release --target wasm32-unknown-unknown
page_wasm="$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/xlalign-web.wasm"
[[ -f $page_wasm ]] || die "no xlalign-web.wasm after the build"

stage="$XLALIGN_ROOT/.dist-staging"
bindgen="$stage.bindgen"
rm -rf "$stage" "$bindgen"
step "wasm-bindgen --target web, wasm-opt -Oz"
wasm-bindgen "$page_wasm" --target web --no-typescript --out-dir "$bindgen" --out-name xlalign-web
timed "$WASM_OPT" -Oz "${WASM_OPT_FEATURES[@]}" "$bindgen/xlalign-web_bg.wasm" -o "$bindgen/xlalign-web_bg.wasm"

step "Assemble the app (web/assemble.py → dist/)"
python3 web/assemble.py --out "$stage" --app-js "$bindgen/xlalign-web.js" --app-wasm "$bindgen/xlalign-web_bg.wasm" ||
    die "web/assemble.py failed"
rm -rf "$bindgen" "$XLALIGN_ROOT/dist"
mv "$stage" "$XLALIGN_ROOT/dist"
[[ -f dist/index.html && -f dist/pkg/client.js && -f dist/pkg/pool.js && -f dist/pkg/worker.js && -f dist/pkg/xlalign_wasm_bg.wasm && -f dist/sw.js ]] || die "dist/ is incomplete after the build"
grep -q '^const BUILD = "[0-9a-f]\{16\}";' dist/sw.js || die "dist/sw.js was not stamped with a build id (web/sw_stamp.py)"
[[ -f dist/pkg/variant.js && -f dist/pkg/xlalign_wasm_bg.relaxed.wasm ]] || die "dist/pkg lacks variant.js or the relaxed-SIMD .wasm"
# The service worker keeps its own copy of the relaxed-SIMD probe: it must be the package's.
probe() { tr -d ' \n' < "$1" | grep -o 'RELAXED_PROBE=\[[0-9,]*' | sed 's/,*$//' ; }
[[ -n $(probe web/sw.js) && "$(probe web/sw.js)" == "$(probe <(sed 's,//.*,,' crates/xlalign-wasm/js/variant.js))" ]] ||
    die "web/sw.js's RELAXED_PROBE differs from crates/xlalign-wasm/js/variant.js's"

# The app shell precompressed for scripts/serve-web.sh (and any static host that serves
# precompressed files): a .br (brotli, quality 11) and a .gz (gzip -9) next to each file, so
# the 4.8 MB shell travels as 1.2 MB (brotli) or 1.7 MB (gzip) without the server compressing
# on every request. Browsers ask for `br` from secure origins only (https, localhost); the .gz
# serves the others. The model (models/) is never compressed: it is read in byte ranges of
# the file.
step "Precompress the app shell (brotli and gzip, not the model)"
timed node --input-type=module - "$XLALIGN_ROOT/dist" <<'JS'
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";

const dist = process.argv[2];
const SHELL = /\.(wasm|js|css|html|svg|json)$/;
let raw = 0, br = 0, gz = 0;
for (const rel of fs.readdirSync(dist, { recursive: true })) {
  if (rel.split(path.sep)[0] === "models" || !SHELL.test(rel)) continue;
  const file = path.join(dist, rel);
  const bytes = fs.readFileSync(file);
  const b = zlib.brotliCompressSync(bytes, {
    params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: 11,
      [zlib.constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
    },
  });
  const g = zlib.gzipSync(bytes, { level: 9 });
  fs.writeFileSync(`${file}.br`, b);
  fs.writeFileSync(`${file}.gz`, g);
  raw += bytes.length;
  br += b.length;
  gz += g.length;
}
const mb = (n) => (n / 1e6).toFixed(2);
console.log(`    app shell: ${mb(raw)} MB raw, ${mb(br)} MB brotli, ${mb(gz)} MB gzip`);
JS
