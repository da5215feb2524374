#!/usr/bin/env python3
"""Compares models on the gold sets: AER with each model's own defaults (``xlalign eval``),
and sentence similarity as retrieval — each source sentence's translation found among all
target sentences of its set by the cosine of pooled embeddings, and the other way round;
top-1 accuracy, the mean of both directions.

    python3 scripts/eval-models.py --gold-dir ../shared/data/gold \\
        public/models/multilingual-e5-small-q4_0.gguf public/models/multilingual-e5-small-align-q4_0.gguf

Prints a Markdown table per measure (README, "Alignment tuning"). The gold sets are only
scored here; nothing is fitted on them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def aer(binary: str, model: str, gold_dir: str, sets: list[str], threads: int | None) -> dict[str, float]:
    cmd = [binary, "eval", "--gold-dir", gold_dir, "--sets", ",".join(sets), "--model", model, "--json"]
    if threads:
        cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = json.loads(out)
    rows = rows if isinstance(rows, list) else rows.get("results", rows)
    return {r["set"]: 100.0 * r["metrics"]["aer"] for r in rows}


def retrieval(aligner, gold_dir: Path, name: str) -> float:
    src = (gold_dir / name / f"{name}.src").read_text(encoding="utf-8").splitlines()
    tgt = (gold_dir / name / f"{name}.tgt").read_text(encoding="utf-8").splitlines()
    a = aligner.embed(src)
    b = aligner.embed(tgt)
    sim = a @ b.T
    idx = np.arange(len(src))
    fwd = (sim.argmax(1) == idx).mean()
    rev = (sim.argmax(0) == idx).mean()
    return 100.0 * (fwd + rev) / 2.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--gold-dir", default=str(ROOT / "tests/data/gold"))
    ap.add_argument("--sets", default="deen,enfr,roen,jaen,zhen,enhi_sure")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--bin", default=os.environ.get("XLALIGN_BIN", str(Path.home() / ".cache/xlalign/target/release/xlalign")))
    ap.add_argument("--no-retrieval", action="store_true")
    args = ap.parse_args()
    gold = Path(args.gold_dir)
    if not gold.is_dir():
        print(f"error: no gold directory {gold}", file=sys.stderr)
        return 2
    sets = [s for s in args.sets.split(",") if (gold / s).is_dir()]
    head = "| model | " + " | ".join(sets) + " | mean |"
    rule = "|---|" + "---:|" * (len(sets) + 1)
    print("AER % (default settings of each model)\n")
    print(head)
    print(rule)
    for m in args.models:
        r = aer(args.bin, m, str(gold), sets, args.threads)
        vals = [r[s] for s in sets]
        print(f"| {Path(m).name} | " + " | ".join(f"{v:.2f}" for v in vals) + f" | {np.mean(vals):.2f} |", flush=True)
    if args.no_retrieval:
        return 0
    print("\nRetrieval top-1 % (mean of both directions)\n")
    print(head)
    print(rule)
    import xlalign

    for m in args.models:
        aligner = xlalign.Aligner(m, threads=args.threads)
        vals = [retrieval(aligner, gold, s) for s in sets]
        print(f"| {Path(m).name} | " + " | ".join(f"{v:.1f}" for v in vals) + f" | {np.mean(vals):.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
