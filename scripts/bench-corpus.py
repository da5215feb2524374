#!/usr/bin/env python3
"""Corpus throughput, one engine after another on the same pairs: the CLI, the Python
package in one process, Dask distributed with 1 and 2 worker processes, and PySpark local
with 1 and 2 cores. Every run's links are checked against the CLI's.

    python3 scripts/bench-corpus.py [--pairs 2000] [--gold-dir DIR]   (default: ../shared/data/gold if present, else tests/data/gold)

The pairs are the gold sets' lines (pre-tokenised, `src ||| tgt`), repeated up to --pairs.
Needs setup (the package, dask, pyspark) and the model (XLALIGN_MODEL or the default)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def corpus(gold: Path, n: int, out: Path) -> int:
    lines = []
    for name in sorted(p.name for p in gold.iterdir() if (p / f"{p.name}.src").is_file()):
        src = (gold / name / f"{name}.src").read_text(encoding="utf-8").splitlines()
        tgt = (gold / name / f"{name}.tgt").read_text(encoding="utf-8").splitlines()
        lines += [f"{s} ||| {t}" for s, t in zip(src, tgt) if s.strip() and t.strip()]
    lines = (lines * (n // len(lines) + 1))[:n]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def timed(label, n, fn, results):
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    results.append((label, n / dt, dt))
    print(f"{label:<44} {n / dt:8.1f} pairs/s  ({dt:.1f} s)", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=2000)
    ap.add_argument(
        "--gold-dir",
        help="gold sets to take pairs from (default: ../shared/data/gold next to the checkout "
        "when it exists, else the slices in tests/data/gold)",
    )
    ap.add_argument("--skip-spark", action="store_true")
    args = ap.parse_args()
    if args.gold_dir:
        gold = Path(args.gold_dir)
        if not gold.is_dir():
            sys.exit(f"--gold-dir {gold}: not a folder")
    else:
        shared = REPO.parent / "shared/data/gold"
        gold = shared if shared.is_dir() else REPO / "tests/data/gold"
    model = os.environ.get("XLALIGN_MODEL", str(REPO / "public/models/multilingual-e5-small-q4_0.gguf"))
    cli = os.environ.get("XLALIGN_BIN", str(Path.home() / ".cache/xlalign/target/release/xlalign"))
    import pandas as pd

    import xlalign
    from xlalign import corpus as xc

    tmp = Path(tempfile.mkdtemp())
    path = tmp / "pairs.txt"
    n = corpus(gold, args.pairs, path)
    print(f"{n} pairs from {gold}; CPU: {cpu()}; load average {os.getloadavg()[0]:.1f}")
    results = []

    def run_cli(threads):
        out = subprocess.run(
            [cli, "align", "--model", model, "--backend", "cpu", "--threads", str(threads), "--input", str(path)],
            capture_output=True, check=True, text=True,
        )
        return out.stdout.splitlines()

    want = timed("CLI, 1 thread", n, lambda: run_cli(1), results)
    timed("CLI, 2 threads", n, lambda: run_cli(2), results)
    pairs = [xlalign._xlalign.split_pair(l) for l in path.read_text(encoding="utf-8").splitlines()]
    for threads in (1, 2):
        al = xlalign.Aligner(model, backend="cpu", threads=threads)
        got = timed(
            f"Python align_batch, {threads} thread{'s' * (threads > 1)}",
            n,
            lambda: al.align_batch(pairs, pretokenized=True, sentence_cosine=False),
            results,
        )
        assert [a.pharaoh() for a in got] == want, "Python's links differ from the CLI's"

    import distributed

    import xlalign.dask

    for workers in (1, 2):
        with distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster, distributed.Client(cluster):
            # Load the model in every worker first: the figure is the aligning.
            warm = xlalign.dask.align_text_file(str(path), blocksize=1 << 30, model=model)
            warm.head(1, npartitions=1)
            distributed.get_client().run(lambda: xc.aligner(model, "cpu", 1) and None)
            frame = timed(
                f"Dask, {workers} worker process{'es' * (workers > 1)} x 1 thread",
                n,
                lambda: xlalign.dask.align_text_file(
                    str(path), blocksize=max(1, path.stat().st_size // (8 * workers)), model=model
                ).compute(),
                results,
            )
            assert frame["alignment"].tolist() == want, "Dask's links differ from the CLI's"

    if not args.skip_spark:
        from pyspark.sql import SparkSession

        import xlalign.spark

        rows = pd.DataFrame({"id": range(1, n + 1), "line": path.read_text(encoding="utf-8").splitlines()})
        for cores in (1, 2):
            spark = (
                SparkSession.builder.master(f"local[{cores}]")
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .config("spark.sql.execution.arrow.maxRecordsPerBatch", "256")
                .getOrCreate()
            )
            spark.sparkContext.setLogLevel("ERROR")
            sdf = spark.createDataFrame(rows, schema="id long, line string").repartition(4 * cores).cache()
            sdf.count()
            # Warm the Python workers (they are reused between jobs) and their model.
            xlalign.spark.align_dataframe(sdf.limit(8 * cores).repartition(cores), model=model).count()
            out = timed(
                f"Spark local[{cores}], mapInPandas",
                n,
                lambda: xlalign.spark.align_dataframe(sdf, model=model).toPandas(),
                results,
            )
            assert out.sort_values("id")["alignment"].tolist() == want, "Spark's links differ"
            spark.stop()
    print(f"load average after: {os.getloadavg()[0]:.1f}")


def cpu() -> str:
    name, flags = "?", set()
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name") and name == "?":
            name = line.split(":", 1)[1].strip()
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
    keep = [f for f in ("avx2", "avx_vnni", "avx512_vnni") if f in flags]
    return f"{name} ({os.cpu_count()} cores; {', '.join(keep)})"


if __name__ == "__main__":
    sys.exit(main())
