"""Aligning a parallel corpus on Dask (a ``distributed`` cluster, local or many machines).

::

    from dask.distributed import Client
    import xlalign.dask

    client = Client("scheduler:8786")                # or LocalCluster(n_workers=...)
    parts = xlalign.dask.align_text_file("corpus.txt", blocksize=16 << 20, method="itermax")
    parts.to_parquet("aligned/")                     # id, alignment, cosine, error

Each task reads its own byte range of the file (every worker must see the path: a shared
file system, or copy the file to each machine), aligns it with its process's aligner (the
model is loaded once per worker process) and returns a ``pandas.DataFrame``. Start workers
with one thread each and as many processes as cores (``dask worker --nthreads 1 --nworkers
N``), or give ``threads`` to use several cores per process.
"""

from __future__ import annotations

from typing import Optional

import dask
import dask.dataframe as dd
import pandas as pd

from . import corpus

_META = pd.DataFrame(
    {
        "id": pd.Series(dtype="int64"),
        "alignment": pd.Series(dtype="object"),
        "cosine": pd.Series(dtype="float64"),
        "error": pd.Series(dtype="object"),
    }
)


def align_text_file(
    path: str,
    *,
    blocksize: int = 1 << 24,
    model: Optional[str] = None,
    backend: str = "cpu",
    threads: Optional[int] = 1,
    **options,
) -> dd.DataFrame:
    """A lazy Dask DataFrame of the alignments of a ``source ||| target`` file, one
    partition per byte range, in line order (``id`` = line number)."""

    def part(start: int, end: int, first: int) -> pd.DataFrame:
        frame = corpus.read_text_chunk(path, start, end, first)
        return corpus.align_frame(frame, model=model, backend=backend, threads=threads, **options)

    parts = [dask.delayed(part)(*c) for c in corpus.text_chunks(path, blocksize)]
    if not parts:
        return dd.from_pandas(_META, npartitions=1)
    return dd.from_delayed(parts, meta=_META, verify_meta=False)


def align_dataframe(
    frame: dd.DataFrame,
    *,
    model: Optional[str] = None,
    backend: str = "cpu",
    threads: Optional[int] = 1,
    **options,
) -> dd.DataFrame:
    """Aligns a Dask DataFrame with an ``id`` column and ``src``/``tgt`` (or ``line``)
    columns, partition by partition, order and ids kept."""
    return frame.map_partitions(
        corpus.align_frame,
        model=model,
        backend=backend,
        threads=threads,
        meta=_META,
        **options,
    )
