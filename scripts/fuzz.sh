#!/usr/bin/env bash
# Coverage-guided fuzzing of xlalign's parsers with AFL++ (cargo-afl: stable Rust, no
# libFuzzer). The targets and their entry points are in fuzz/src/targets.rs; seeds in
# fuzz/seeds/<target>/; inputs that once crashed a target in
# crates/xlalign-core/tests/fuzz-regressions/<target>/ (seeds here too, and replayed by
# `cargo test` in tests/fuzz_regressions.rs).
#
#   scripts/fuzz.sh [TARGET[,TARGET...]|all] [SECONDS]     (defaults: all, 60 s per target)
#
# Each target runs for SECONDS under `nice -n 19`, one after the other, then a summary is
# printed per target: executions, corpus (paths found), bitmap coverage, crashes and hangs.
# AFL's output stays outside the repository, in $XLALIGN_FUZZ_OUT (default
# ~/.cache/xlalign/fuzz/<target>), and a later run resumes from it; crashes are under
# <target>/default/crashes. `tokenize_text` uses the tokenizer of $XLALIGN_MODEL (default:
# the default model when it is present, else a small built-in tokenizer).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ALL=(gguf gguf_header tokenizer_json tokenizer_packed tokenize_text pharaoh pairs request)
target=${1:-all}
secs=${2:-60}
if [[ $target == all ]]; then
  targets=("${ALL[@]}")
else
  IFS=, read -ra targets <<<"$target"
  for t in "${targets[@]}"; do
    if [[ " ${ALL[*]} " != *" $t "* ]]; then
      echo "unknown target '$t' (one of: all ${ALL[*]})" >&2
      exit 2
    fi
  done
fi
out=${XLALIGN_FUZZ_OUT:-$HOME/.cache/xlalign/fuzz}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/fuzz}
default_model=$ROOT/public/models/multilingual-e5-small-q4_0.gguf
if [[ -z ${XLALIGN_MODEL:-} && -f $default_model ]]; then
  export XLALIGN_MODEL=$default_model
fi

# cargo-afl, and the AFL++ it builds for this Rust version.
if ! command -v cargo-afl >/dev/null; then
  cargo install --locked cargo-afl || cargo install cargo-afl
fi
rust_version=$(rustc -V | cut -d' ' -f2)
if ! compgen -G "${XDG_DATA_HOME:-$HOME/.local/share}/afl.rs/rustc-$rust_version-*/afl.rs-*/afl/bin/afl-fuzz" >/dev/null; then
  cargo afl config --build
fi

(cd fuzz && nice -n 19 cargo afl build --release)
bin=$CARGO_TARGET_DIR/release
json_dict=$HOME/.local/share/afl.rs/AFLplusplus/dictionaries/json.dict

export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_AUTORESUME=1

for t in "${targets[@]}"; do
  # Seeds and past crashes together as the starting corpus.
  in=$(mktemp -d)
  cp "fuzz/seeds/$t"/* "$in"/
  if [[ -d crates/xlalign-core/tests/fuzz-regressions/$t ]]; then
    cp crates/xlalign-core/tests/fuzz-regressions/"$t"/* "$in"/ 2>/dev/null || true
  fi
  extra=()
  if [[ ($t == tokenizer_json || $t == request) && -f $json_dict ]]; then
    extra=(-x "$json_dict")
  fi
  mkdir -p "$out/$t"
  echo "== $t: ${secs} s" >&2
  # -m: a huge allocation fails (and aborts: a crash) instead of eating the machine's memory.
  nice -n 19 cargo afl fuzz -V "$secs" -m 4096 "${extra[@]}" -i "$in" -o "$out/$t" -- "$bin/$t" \
    >"$out/$t.log" 2>&1 || echo "afl-fuzz stopped with an error for $t (see $out/$t.log)" >&2
  rm -rf "$in"
done

stat() { grep -m1 "^$2 " "$1" 2>/dev/null | sed 's/.*: *//'; }
printf '\n%-17s %12s %9s %8s %8s %6s %6s\n' target executions exec/s corpus coverage crashes hangs
for t in "${targets[@]}"; do
  s=$out/$t/default/fuzzer_stats
  if [[ ! -f $s ]]; then
    printf '%-17s (no stats: see %s)\n' "$t" "$out/$t.log"
    continue
  fi
  printf '%-17s %12s %9s %8s %8s %6s %6s\n' "$t" "$(stat "$s" execs_done)" \
    "$(stat "$s" execs_per_sec)" "$(stat "$s" corpus_count)" "$(stat "$s" bitmap_cvg)" \
    "$(stat "$s" saved_crashes)" "$(stat "$s" saved_hangs)"
done
echo "AFL output: $out/<target>/default (crashes/, hangs/, queue/)"
