#!/usr/bin/env bash
# Builds the npm package of the browser library into pkg/:
#   pkg/xlalign_wasm.{js,d.ts} + xlalign_wasm_bg.wasm   wasm-bindgen --target web (ES module, fetches the .wasm itself)
#   pkg/xlalign_wasm_bg.relaxed.wasm                    the same crate with its feature relaxed-simd: the
#                                                       int8 products use i32x4.relaxed_dot_i8x16_i7x16_add_s.
#                                                       Its wasm-bindgen glue must equal the simd128 build's
#                                                       (checked here), so one xlalign_wasm.js serves both;
#                                                       worker.js picks the file by feature detection.
#   pkg/bundler/                                        wasm-bindgen --target bundler (webpack 5 / vite with a wasm plugin)
#   pkg/index.{js,d.ts}, client.js, pool.js, worker.js  the Web Worker wrapper (createAligner) and its worker pool
#   pkg/package.json, README.md
# Release profile: opt-level 3, fat LTO, one codegen unit, no debug info; then wasm-opt -O3
# from npm binaryen (node_modules/.bin; Debian's binaryen 108 miscompiles
# wasm-bindgen 0.2.130 output). The CPU kernels use wasm SIMD (simd128), and relaxed SIMD in
# the second variant. The bundler target (pkg/bundler) carries the simd128 build only.
#
# Environment:
#   XLALIGN_WASM_SIMD=0        build without simd128 (for the benchmark's comparison) into pkg/nosimd/
#                              (one variant only: HAS_RELAXED is false in its variant.js)
#   XLALIGN_WASM_OPT_LEVEL     rustc opt-level for the whole crate graph (default 3). Measured in
#                              headless Chromium: "s" is 125 KB smaller gzipped (0.91 vs 1.04 MB, next
#                              to a 76 MB model) but loads the model 2.5-4x slower (the tokenizer's
#                              vocabulary build) and embeds 1.3-1.9x slower.
#   XLALIGN_WASM_OPT=0         skip wasm-opt; XLALIGN_WASM_OPT_FLAGS (default -O3)
#   XLALIGN_PKG_DIR            output folder (default pkg/, or pkg/nosimd/ without simd128)
#   XLALIGN_WASM_SIZE_REPORT=1 also print code bytes per crate and the largest functions
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$XLALIGN_ROOT"

simd="${XLALIGN_WASM_SIMD:-1}"
opt_level="${XLALIGN_WASM_OPT_LEVEL:-3}"
if [[ $simd == 1 ]]; then
    out="${XLALIGN_PKG_DIR:-$XLALIGN_ROOT/pkg}"
    target_dir="$CARGO_TARGET_DIR/wasm-pkg"
    rustflags="-C target-feature=+simd128"
else
    out="${XLALIGN_PKG_DIR:-$XLALIGN_ROOT/pkg/nosimd}"
    target_dir="$CARGO_TARGET_DIR/wasm-pkg-nosimd"
    rustflags=""
fi
js_src="$XLALIGN_ROOT/crates/xlalign-wasm/js"

have wasm-bindgen || die "wasm-bindgen missing: cargo install wasm-bindgen-cli --version $WASM_BINDGEN_VERSION"
got=$(wasm-bindgen --version | awk '{print $2}')
[[ $got == "$WASM_BINDGEN_VERSION" ]] || die "wasm-bindgen $got on PATH, the crate pins $WASM_BINDGEN_VERSION (cargo install wasm-bindgen-cli --version $WASM_BINDGEN_VERSION)"
rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

if [[ ${XLALIGN_WASM_OPT:-1} == 1 ]]; then
    if [[ ! -x node_modules/.bin/wasm-opt ]]; then
        step "npm install (binaryen's wasm-opt)"
        npm install --no-audit --no-fund
    fi
    WASM_OPT="$XLALIGN_ROOT/node_modules/.bin/wasm-opt"
    "$WASM_OPT" --version | grep -q "version 1[3-9][0-9]" || die "node_modules/.bin/wasm-opt is not binaryen >= 130: $("$WASM_OPT" --version)"
fi

# TOML: opt-level is a number (0-3) or a string ("s", "z").
if [[ $opt_level =~ ^[0-3]$ ]]; then opt_toml=$opt_level; else opt_toml="'$opt_level'"; fi

# A separate target dir: these RUSTFLAGS and profile settings would otherwise force the
# test and demo builds sharing the wasm32 target to rebuild from scratch each time.
build() { # build <label> <target dir> <rustflags> [cargo arguments]
    step "cargo build xlalign-wasm (release, wasm32, opt-level $opt_level, $1)"
    RUSTFLAGS="${RUSTFLAGS:-} $3" timed cargo build -p xlalign-wasm --release --target wasm32-unknown-unknown "${@:4}" \
        --target-dir "$2" \
        --config "profile.release.opt-level=$opt_toml" \
        --config 'profile.release.lto="fat"' \
        --config 'profile.release.codegen-units=1' \
        --config 'profile.release.debug=false' \
        --config 'profile.release.strip="debuginfo"'
    [[ -f $2/wasm32-unknown-unknown/release/xlalign_wasm.wasm ]] || die "no xlalign_wasm.wasm in $2 after the build"
}
build "simd128 $([[ $simd == 1 ]] && echo on || echo off)" "$target_dir" "$rustflags"
wasm="$target_dir/wasm32-unknown-unknown/release/xlalign_wasm.wasm"
relaxed=""
if [[ $simd == 1 ]]; then
    # The crate feature, not -C target-feature=+relaxed-simd, under which matrixmultiply
    # would use f32x4.relaxed_madd (fused on some processors only): see crates/xlalign-core/Cargo.toml.
    build "simd128 + relaxed-simd" "$CARGO_TARGET_DIR/wasm-pkg-relaxed" "-C target-feature=+simd128" --features relaxed-simd
    relaxed="$CARGO_TARGET_DIR/wasm-pkg-relaxed/wasm32-unknown-unknown/release/xlalign_wasm.wasm"
fi

# Clear earlier output, except a comparison build kept inside it (pkg/nosimd).
mkdir -p "$out"
find "$out" -mindepth 1 -maxdepth 1 ! -name nosimd -exec rm -rf {} +
mkdir -p "$out/bundler"
step "wasm-bindgen --target web and --target bundler"
wasm-bindgen "$wasm" --target web --out-dir "$out" --out-name xlalign_wasm
wasm-bindgen "$wasm" --target bundler --out-dir "$out/bundler" --out-name xlalign_wasm
if [[ -n $relaxed ]]; then
    # One glue for both variants: the JS wasm-bindgen writes depends on the exports and
    # imports only, which the target features do not change. If it ever differs, a page
    # would run one variant's .wasm under the other's glue: stop here instead.
    glue=$(mktemp -d)
    wasm-bindgen "$relaxed" --target web --out-dir "$glue" --out-name xlalign_wasm
    for f in xlalign_wasm.js xlalign_wasm.d.ts xlalign_wasm_bg.wasm.d.ts; do
        cmp -s "$out/$f" "$glue/$f" || {
            diff "$out/$f" "$glue/$f" | head -20 >&2
            die "the relaxed-simd build's wasm-bindgen glue ($f) differs from the simd128 build's"
        }
    done
    mv "$glue/xlalign_wasm_bg.wasm" "$out/xlalign_wasm_bg.relaxed.wasm"
    rm -rf "$glue"
fi

# The size report reads function names, which wasm-opt drops unless told (-g) to keep them:
# a copy is optimised with names kept, the same way as the real file otherwise.
report=""
if [[ ${XLALIGN_WASM_SIZE_REPORT:-0} == 1 ]]; then
    report="$(mktemp -d)/xlalign_wasm_named.wasm"
    cp "$out/xlalign_wasm_bg.wasm" "$report"
fi

if [[ ${XLALIGN_WASM_OPT:-1} == 1 ]]; then
    flags="${XLALIGN_WASM_OPT_FLAGS:--O3}"
    step "wasm-opt $flags ($("$WASM_OPT" --version))"
    # The two builds differ only in their import module names; optimise them side by side.
    pids=()
    for f in "$out/xlalign_wasm_bg.wasm" "$out/bundler/xlalign_wasm_bg.wasm" ${relaxed:+"$out/xlalign_wasm_bg.relaxed.wasm"} $report; do
        # Features the module was compiled with (see its target_features section).
        "$WASM_OPT" $flags $([[ $f == "$report" ]] && echo -g) $([[ $f == *.relaxed.wasm ]] && echo --enable-relaxed-simd) \
            "${WASM_OPT_FEATURES[@]}" "$f" -o "$f.opt" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || die "wasm-opt failed"; done
    for f in "$out/xlalign_wasm_bg.wasm" "$out/bundler/xlalign_wasm_bg.wasm" ${relaxed:+"$out/xlalign_wasm_bg.relaxed.wasm"} $report; do mv "$f.opt" "$f"; done
fi

step "package files"
cp "$js_src/client.js" "$js_src/pool.js" "$js_src/worker.js" "$js_src/variant.js" "$js_src/variant.d.ts" "$js_src/index.js" "$js_src/index.d.ts" "$js_src/client.d.ts" "$js_src/README.md" "$out/"
# A build without the relaxed variant (pkg/nosimd) must not offer it.
[[ -n $relaxed ]] || sed -i 's/^const HAS_RELAXED = true;$/const HAS_RELAXED = false;/' "$out/variant.js"
grep -q "^const HAS_RELAXED = $([[ -n $relaxed ]] && echo true || echo false);$" "$out/variant.js" || die "variant.js: no HAS_RELAXED line to set"
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
sed "s/\"version\": \"0.0.0\"/\"version\": \"$version\"/" "$js_src/package.json" > "$out/package.json"
rm -f "$out/.gitignore" "$out/bundler/.gitignore" "$out/bundler/package.json"

# Sizes as a page downloads them (servers compress .wasm with gzip or brotli).
sizes() {
    local f=$1 raw gz br=""
    raw=$(stat -c %s "$f")
    gz=$(gzip -9 -c "$f" | wc -c)
    if have brotli; then br=", $(brotli -c -q 11 "$f" | wc -c) B brotli"; fi
    echo "$raw B raw, $gz B gzip -9$br"
}
step "sizes"
info "$(basename "$out")/xlalign_wasm_bg.wasm (simd128 $([[ $simd == 1 ]] && echo on || echo off)): $(sizes "$out/xlalign_wasm_bg.wasm")"
[[ -z $relaxed ]] || info "$(basename "$out")/xlalign_wasm_bg.relaxed.wasm (simd128 + relaxed-simd): $(sizes "$out/xlalign_wasm_bg.relaxed.wasm")"
other="$XLALIGN_ROOT/pkg/nosimd/xlalign_wasm_bg.wasm"
[[ $simd == 1 ]] || other="$XLALIGN_ROOT/pkg/xlalign_wasm_bg.wasm"
if [[ -z ${XLALIGN_PKG_DIR:-} && -f $other ]]; then
    info "$(basename "$(dirname "$other")")/xlalign_wasm_bg.wasm (simd128 $([[ $simd == 1 ]] && echo off || echo on), from an earlier build): $(sizes "$other")"
fi
info "wasm-bindgen JS glue: $(stat -c %s "$out/xlalign_wasm.js") B; package in $out ($(du -sh $([[ $simd == 1 ]] && echo --exclude=nosimd) "$out" | cut -f1))"
if [[ -n $report ]]; then
    step "what the .wasm is made of (optimised like the package, function names kept)"
    python3 crates/xlalign-wasm/tools/wasm-size.py "$report"
    rm -rf "$(dirname "$report")"
fi
