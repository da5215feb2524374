"""Aligning a parallel corpus on Apache Spark (PySpark, ``mapInPandas``).

::

    from pyspark.sql import SparkSession
    import xlalign.spark

    spark = SparkSession.builder.getOrCreate()
    pairs = spark.read.parquet("corpus.parquet")     # id, src, tgt
    aligned = xlalign.spark.align_dataframe(pairs, method="itermax")
    aligned.write.parquet("aligned.parquet")         # id, alignment, cosine, error

Each Python worker loads the model once (:func:`xlalign.corpus.aligner`) and aligns the
Arrow batches Spark gives it. The model file must be at the same path on every executor
(``model=``, or ``XLALIGN_MODEL`` in ``spark.executorEnv``), and the ``xlalign`` wheel
installed in the executors' Python. One CPU thread per task by default
(``spark.task.cpus`` = 1): Spark runs a task per core.
"""

from __future__ import annotations

from typing import Iterator, Optional

from . import corpus

#: The Spark schema of the result.
SCHEMA = "id long, alignment string, cosine double, error string"


def align_dataframe(
    frame,
    *,
    model: Optional[str] = None,
    backend: str = "cpu",
    threads: Optional[int] = 1,
    batch_size: int = 32,
    **options,
):
    """Aligns a Spark DataFrame with an ``id`` column (integer) and ``src``/``tgt`` (or
    ``line``) columns; returns a DataFrame of :data:`SCHEMA`, one row per input row."""

    def run(batches: Iterator) -> Iterator:
        for b in batches:
            yield corpus.align_frame(
                b, model=model, backend=backend, threads=threads, batch_size=batch_size, **options
            )

    return frame.mapInPandas(run, schema=SCHEMA)
