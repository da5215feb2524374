#!/usr/bin/env bash
# Alignment quality on word-alignment gold sets: every set in GOLD_DIR with every method at
# the model's default layer, then a layer sweep on one set. Prints Markdown tables (the ones
# in README's "Alignment quality" section).
#
#   bash scripts/eval-gold.sh GOLD_DIR [SWEEP_SET] [extra xlalign options…]
#
# GOLD_DIR holds <set>/<set>.src, .tgt, .gold (pre-tokenised, Pharaoh); tests/data/gold has
# 60-line slices of the redistributable sets. SWEEP_SET defaults to deen when present.
set -euo pipefail
cd "$(dirname "$0")/.."
gold=${1:?usage: scripts/eval-gold.sh GOLD_DIR [SWEEP_SET] [xlalign options]}
sweep=${2:-deen}
shift $(( $# >= 2 ? 2 : 1 ))
cargo build --release -q -p xlalign-cli
bin=${CARGO_TARGET_DIR:-target}/release/xlalign
echo "## Every set, every method (default layer)"
"$bin" eval --gold-dir "$gold" --all-methods "$@"
if [ -d "$gold/$sweep" ]; then
  echo
  echo "## Layer sweep on $sweep"
  "$bin" eval --gold-dir "$gold" --sets "$sweep" --layers 0,2,4,5,6,7,8,9,10,12 --method argmax "$@"
  "$bin" eval --gold-dir "$gold" --sets "$sweep" --layers 5,6,7,8,9 "$@"
fi
