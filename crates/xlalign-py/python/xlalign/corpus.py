"""Corpus-scale alignment on partitions: the functions a distributed engine maps over the
parts of a parallel corpus (see :mod:`xlalign.dask` and :mod:`xlalign.spark`).

Each worker process loads the model once (:func:`aligner`), and every partition is a
``pandas.DataFrame`` with an ``id`` column and either ``src``/``tgt`` columns or a ``line``
column of ``source ||| target`` (or tab-separated) lines, read as the CLI reads them. Output:
one row per input row, in the same order, with its ``id``, the Pharaoh links (``alignment``,
exactly what ``xlalign align`` writes for the pair), the sentence ``cosine`` when asked for
(``sentence_cosine=True``), and ``error``: ``None``, or why the row could not be aligned (not
a pair, an empty side, invalid UTF-8, a text over the size limit). A bad row never stops,
loses or reorders the others.

Text files are split into byte ranges that end at line ends (:func:`text_chunks`), so each
part can be read where it lies; ids are 1-based line numbers, as the CLI reports them.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Iterator, List, Optional, Tuple

from . import Aligner, PairError, _xlalign
from .errors import InputError

#: Columns of an aligned partition, in order.
COLUMNS = ["id", "alignment", "cosine", "error"]


@functools.lru_cache(maxsize=4)
def aligner(model: Optional[str] = None, backend: str = "cpu", threads: Optional[int] = 1) -> Aligner:
    """The process's aligner for these settings, loaded on first use. Workers of a
    distributed engine call this in each task, so the model is loaded once per process."""
    return Aligner(model, backend=backend, threads=threads)


def align_frame(
    frame,
    *,
    model: Optional[str] = None,
    backend: str = "cpu",
    threads: Optional[int] = 1,
    batch_size: int = 32,
    **options,
):
    """Aligns the rows of a ``pandas.DataFrame`` (see the module's doc for the columns).
    ``options`` are :meth:`xlalign.Aligner.align`'s; ``pretokenized`` defaults to ``True``,
    as for ``xlalign align``, and ``sentence_cosine`` to ``False``."""
    import pandas as pd

    options.setdefault("pretokenized", True)
    options.setdefault("sentence_cosine", False)
    if "id" not in frame.columns:
        raise InputError("invalid input: the partition has no `id` column")
    pairs, errors = _pairs(frame)
    al = aligner(model, backend, threads)
    results = _align(al, pairs, batch_size, options)
    alignment, cosine, error = [], [], []
    for err, r in zip(errors, results):
        if err is None and isinstance(r, PairError):
            err = str(r.cause)
        if err is not None:
            alignment.append(None)
            cosine.append(math.nan)
            error.append(err)
            continue
        alignment.append(r.pharaoh())
        c = r.similarity.cosine
        cosine.append(math.nan if c is None else float(c))
        error.append(None)
    return pd.DataFrame(
        {"id": frame["id"].to_numpy(), "alignment": alignment, "cosine": cosine, "error": error},
        columns=COLUMNS,
    )


def _pairs(frame) -> Tuple[List[Optional[Tuple[str, str]]], List[Optional[str]]]:
    """The rows as pairs (``None`` where a row is not one) and their errors."""
    pairs: List[Optional[Tuple[str, str]]] = []
    errors: List[Optional[str]] = []
    if "line" in frame.columns:
        lines = frame["line"].tolist()
        read = frame["error"].tolist() if "error" in frame.columns else [None] * len(lines)
        for line, err in zip(lines, read):
            # A missing value reads as None or NaN, depending on the column's dtype.
            err = err if isinstance(err, str) else None
            if err is None and not isinstance(line, str):
                err = "invalid input: no line"
            if err is None:
                try:
                    pairs.append(_xlalign.split_pair(line))
                    errors.append(None)
                    continue
                except InputError as e:
                    err = str(e)
            pairs.append(None)
            errors.append(err)
    elif "src" in frame.columns and "tgt" in frame.columns:
        for s, t in zip(frame["src"].tolist(), frame["tgt"].tolist()):
            if isinstance(s, str) and isinstance(t, str):
                pairs.append((s, t))
                errors.append(None)
            else:
                pairs.append(None)
                errors.append("invalid input: a side is missing")
    else:
        raise InputError("invalid input: the partition needs `src` and `tgt` columns, or `line`")
    return pairs, errors


def _align(al: Aligner, pairs, batch_size: int, options: dict):
    """One result per pair (``None`` for a row that is not a pair), in order."""
    good = [p for p in pairs if p is not None]
    done = iter(al.align_stream(good, batch_size=batch_size, **options))
    for p in pairs:
        yield None if p is None else next(done)


def text_chunks(path: str, blocksize: int = 1 << 24) -> List[Tuple[int, int, int]]:
    """Splits a text file into ``(start, end, first_line)`` byte ranges of about
    ``blocksize`` bytes that end at line ends; ``first_line`` is the 1-based number of the
    range's first line (one pass over the file counts the lines before each range)."""
    if blocksize < 1:
        raise InputError("invalid input: blocksize must be positive")
    size = os.path.getsize(path)
    chunks, start, line = [], 0, 1
    with open(path, "rb") as f:
        while start < size:
            f.seek(min(start + blocksize, size))
            f.readline()  # to the end of the line the cut falls in
            end = min(f.tell(), size) if start + blocksize < size else size
            f.seek(start)
            body = f.read(end - start)
            chunks.append((start, end, line))
            line += body.count(b"\n") + (0 if body.endswith(b"\n") else 1)
            start = end
    return chunks


def read_text_chunk(path: str, start: int, end: int, first_line: int):
    """The lines of one byte range as a partition (``id``, ``line``, ``error``): a line that
    is not UTF-8 gets an error naming the byte, as the CLI's."""
    import pandas as pd

    with open(path, "rb") as f:
        f.seek(start)
        body = f.read(end - start)
    ids, lines, errors = [], [], []
    raw = body.split(b"\n")
    if raw and raw[-1] == b"":
        raw.pop()
    for k, b in enumerate(raw):
        n = first_line + k
        ids.append(n)
        try:
            lines.append(b.rstrip(b"\r").decode("utf-8"))
            errors.append(None)
        except UnicodeDecodeError as e:
            lines.append(None)
            errors.append(f"invalid input: invalid UTF-8 at byte {e.start}")
    return pd.DataFrame({"id": ids, "line": lines, "error": errors})


def iter_text_file(path: str, blocksize: int = 1 << 24) -> Iterator:
    """The partitions of a text file, one after the other (no engine needed)."""
    for start, end, first in text_chunks(path, blocksize):
        yield read_text_chunk(path, start, end, first)
