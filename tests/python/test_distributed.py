"""The corpus recipes on real engines: Dask distributed (a LocalCluster of two worker
processes) and PySpark (local, ``mapInPandas``) align a partitioned parallel corpus with ids
kept and output identical to the single-process CLI; bad rows (not a pair, an empty side,
invalid UTF-8) get an error with their id and lose or reorder nothing.

Needs the default model (``XLALIGN_MODEL``) and the CLI (``XLALIGN_BIN``); setup installs
dask, distributed, pandas, pyspark and a Java runtime."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

xlalign = pytest.importorskip("xlalign", reason="run scripts/setup.sh (it installs the package)")
pd = pytest.importorskip("pandas")
from xlalign import corpus  # noqa: E402

from package_support import GOLD, cli, gold, model  # noqa: E402




@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    """Gold lines of four language pairs as `src ||| tgt`, with bad lines among them."""
    lines = []
    for name in ["enfr", "roen", "zhen", "jaen"]:
        src = (GOLD / name / f"{name}.src").read_text(encoding="utf-8").splitlines()[:30]
        tgt = (GOLD / name / f"{name}.tgt").read_text(encoding="utf-8").splitlines()[:30]
        lines += [f"{s} ||| {t}".encode() for s, t in zip(src, tgt)]
    lines.insert(7, b"no separator here")
    lines.insert(40, b"   ||| empty source")
    lines.insert(77, b"caf\xe9 ||| caf\xc3\xa9")  # Latin-1, not UTF-8
    lines.insert(100, b"a ||| b ||| c")
    path = tmp_path_factory.mktemp("corpus") / "pairs.txt"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.fixture(scope="module")
def cli_output(corpus_file):
    out = subprocess.run(
        [cli(), "align", "--model", model(), "--backend", "cpu", "--input", str(corpus_file)],
        capture_output=True,
    )
    return out.returncode, out.stdout.decode().split("\n")[:-1], out.stderr.decode()


BAD = {8: "no ` ||| ` or tab", 41: "empty", 78: "UTF-8", 101: "`|||`"}


def _check(frame, cli_output, n_lines):
    rc, want, _ = cli_output
    frame = frame.reset_index(drop=True)
    assert frame["id"].tolist() == list(range(1, n_lines + 1))  # every row, in order
    for _, row in frame.iterrows():
        # pandas and Spark give a missing value as None or NaN.
        if row["id"] in BAD:
            assert pd.isna(row["alignment"]) and BAD[row["id"]] in row["error"], row.to_dict()
        else:
            assert pd.isna(row["error"]), row.to_dict()
            assert row["alignment"] == want[row["id"] - 1], row["id"]


def test_chunks_cover_the_file_at_line_ends(corpus_file):
    data = corpus_file.read_bytes()
    chunks = corpus.text_chunks(str(corpus_file), blocksize=1000)
    assert len(chunks) > 3 and chunks[0][0] == 0 and chunks[-1][1] == len(data)
    for (s, e, first), (s2, _, first2) in zip(chunks, chunks[1:]):
        assert e == s2 and data[e - 1 : e] == b"\n"
        assert first2 == first + data[s:e].count(b"\n")
    frames = list(corpus.iter_text_file(str(corpus_file), blocksize=1000))
    assert pd.concat(frames)["id"].tolist() == list(range(1, data.count(b"\n") + 1))


def test_single_process_partitions_equal_the_cli(corpus_file, cli_output):
    rc, want, stderr = cli_output
    n = corpus_file.read_bytes().count(b"\n")
    assert rc == 2 and len(want) == n  # the CLI also reports the bad lines, and goes on
    frames = [
        corpus.align_frame(f, model=model())
        for f in corpus.iter_text_file(str(corpus_file), blocksize=2000)
    ]
    _check(pd.concat(frames), cli_output, n)


def test_dask_local_cluster_of_two_processes(corpus_file, cli_output):
    distributed = pytest.importorskip("distributed")
    import xlalign.dask

    n = corpus_file.read_bytes().count(b"\n")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        parts = xlalign.dask.align_text_file(str(corpus_file), blocksize=1500, model=model())
        assert parts.npartitions >= 4
        frame = parts.compute()
        _check(frame, cli_output, n)
        # Both workers took part, and each loaded the model once.
        loads = client.run(lambda: xlalign.corpus.aligner.cache_info().misses)
        assert len(loads) == 2 and all(v == 1 for v in loads.values()), loads
        # A Dask DataFrame of id/src/tgt.
        rows = pd.DataFrame({"id": [5, 6, 7], "src": ["Das Haus", "", "oh , oh !"], "tgt": ["the house", "x", "oh , oh !"]})
        import dask.dataframe as dd

        out = xlalign.dask.align_dataframe(dd.from_pandas(rows, npartitions=2), model=model()).compute()
        assert out["id"].tolist() == [5, 6, 7]
        assert pd.isna(out["error"].tolist()[0]) and "no words" in out["error"].tolist()[1]
        assert out["alignment"].tolist()[2] == "0-0 1-1 2-2 3-3"


def test_a_missing_model_is_one_clear_error_per_worker(tmp_path):
    distributed = pytest.importorskip("distributed")
    import xlalign.dask

    f = tmp_path / "p.txt"
    f.write_text("a ||| b\n" * 10)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster):
        parts = xlalign.dask.align_text_file(str(f), model=str(tmp_path / "missing.gguf"))
        with pytest.raises(xlalign.FileError, match="not found"):
            parts.compute()


@pytest.mark.skipif(shutil.which("java") is None, reason="no Java runtime (setup installs one)")
def test_spark_map_in_pandas(corpus_file, cli_output):
    pyspark = pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    import xlalign.spark

    n = corpus_file.read_bytes().count(b"\n")
    frames = list(corpus.iter_text_file(str(corpus_file), blocksize=1 << 20))
    rows = pd.concat(frames)[["id", "line", "error"]]
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("xlalign-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "16")
        .config("spark.executorEnv.XLALIGN_MODEL", model())
        .getOrCreate()
    )
    try:
        sdf = spark.createDataFrame(rows, schema="id long, line string, error string").repartition(3)
        out = xlalign.spark.align_dataframe(sdf, model=model()).toPandas().sort_values("id")
        _check(out, cli_output, n)
    finally:
        spark.stop()
