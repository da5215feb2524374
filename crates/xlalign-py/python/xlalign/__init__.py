"""xlalign: cross-lingual word alignment and sentence similarity.

A multilingual encoder (multilingual-e5-small, 4-bit) run by a Rust core, the same one as
the ``xlalign`` command line and the JavaScript package::

    import xlalign

    aligner = xlalign.Aligner()                      # the default model, CPU or GPU
    a = aligner.align("The house is small.", "Das Haus ist klein.")
    for link in a.links:
        print(a.src_words[link.src].text, a.tgt_words[link.tgt].text, link.score)
    print(a.similarity.cosine, a.pharaoh())

Options are the CLI's (``method``, ``layer``, ``threshold``, ``temperature``, ``level``,
``direction``, ``distortion``, ``iterations``, ``alpha``, ``pretokenized``,
``sentence_cosine``); unset ones take the model's recommendation. A sentence given as a
list of words is pre-tokenised input (word ``i`` is list item ``i``).
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _xlalign
from .errors import (
    BackendError,
    Error,
    FileError,
    InputError,
    ModelError,
    PairError,
    _from_kind,
)
from .types import (
    Alignment,
    BackendInfo,
    LayerAlignment,
    Link,
    PairScore,
    Scores,
    States,
    Word,
    _alignment,
    _layer,
    _score,
    _states,
)

__all__ = [
    "Aligner",
    "Encoded",
    "Alignment",
    "Word",
    "Link",
    "Scores",
    "States",
    "PairScore",
    "LayerAlignment",
    "BackendInfo",
    "Error",
    "ModelError",
    "InputError",
    "BackendError",
    "FileError",
    "PairError",
]
__version__ = _xlalign.__version__

Text = Union[str, Sequence[str]]

_ENCODE_KEYS = {"layer", "pretokenized", "sentence_cosine", "words"}


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p.title() for p in rest)


def _check_finite(value, path: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"options: `{path}` must be a finite number, got {value}")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, f"{path}.{k}")


def _options(options: dict) -> str:
    """Keyword arguments → the core's request (JSON, camelCase keys; unknown keys are
    refused by the core with its message)."""
    out = {}
    for key, value in options.items():
        if value is None:
            continue
        _check_finite(value, key)
        if key == "words" and isinstance(value, dict):
            value = {_camel(k): v for k, v in value.items()}
        out[_camel(key)] = value
    return json.dumps(out)


def _text(text: Text, side: str) -> Tuple[str, bool]:
    """A sentence as the core takes it, and whether it came as a list of words."""
    if isinstance(text, str):
        return text, False
    if isinstance(text, (list, tuple)) and all(isinstance(w, str) for w in text):
        for w in text:
            if not w or any(c.isspace() for c in w):
                raise InputError(
                    f"invalid input: the {side} words must be non-empty and without spaces, got {w!r}"
                )
        return " ".join(text), True
    raise InputError(f"invalid input: the {side} sentence must be a str or a list of str")


def _pair(src: Text, tgt: Text, options: dict) -> Tuple[str, str, dict]:
    s, s_words = _text(src, "source")
    t, t_words = _text(tgt, "target")
    if s_words != t_words:
        raise InputError(
            "invalid input: give both sentences as text or both as lists of words"
        )
    if s_words and options.get("pretokenized") is None:
        options = dict(options, pretokenized=True)
    return s, t, options


class Encoded:
    """A pair after the encoder: :meth:`Aligner.extract` gets links from it with any
    extraction options without running the encoder again."""

    __slots__ = ("_native", "_aligner")

    def __init__(self, native, aligner: "Aligner"):
        self._native = native
        self._aligner = aligner

    @property
    def layer(self) -> int:
        return self._native.layer

    def extract(self, **options) -> Alignment:
        return self._aligner.extract(self, **options)

    def states(self, level: str = "subword") -> States:
        """The rows extraction works on at ``level`` (``subword``, the default method's, or
        ``word-average``) and the word of each: see :class:`States`. The selection is the
        core's own, so training code sees exactly what the aligner sees."""
        return _states(self._native.states(level), self.layer)


def _shifted(result, offset: int):
    """A result of a call that started at pair ``offset`` of a stream, indexed in the stream."""
    if isinstance(result, PairError) and offset:
        return PairError(result.index + offset, result.cause)
    return result


def _restore(model, backend, threads, isa) -> "Aligner":
    return Aligner(model, backend, threads, isa=isa)


class Aligner:
    """A model on a backend.

    ``model``: a GGUF file (default: ``$XLALIGN_MODEL``, else the model setup installs in the
    checkout's ``public/models/``). ``backend``: ``"auto"`` (a hardware GPU through WebGPU
    when there is one, else the CPU), ``"gpu"`` or ``"cpu"``. ``threads``: CPU threads
    (default: all cores). ``isa``: the CPU kernels' instruction set (default: the best this
    CPU has).

    One aligner can be shared by threads (the encoder runs without the GIL). Across
    processes, make one per process (after a fork, not before); pickling an aligner sends
    its settings, and the receiving process loads the model again.
    """

    def __init__(
        self,
        model: Optional[str] = None,
        backend: str = "auto",
        threads: Optional[int] = None,
        *,
        isa: Optional[str] = None,
    ):
        if model is not None:
            model = str(model)
        self._args = (model, backend, threads, isa)
        self._native = _xlalign.Aligner(model, backend, threads, isa)
        info = json.loads(self._native.backend_json())
        self.backend = BackendInfo(info["kind"], info["device"], info["reason"])
        self.model = json.loads(self._native.model_json())

    def __reduce__(self):
        # Pickled as its settings: unpickling (in another process) loads the model again.
        model, backend, threads, isa = self._args
        return (_restore, (model, backend, threads, isa))

    @property
    def recommendation(self) -> dict:
        """The model's recommended layer and extraction options."""
        return self.model["recommendation"]

    def __repr__(self) -> str:
        return f"xlalign.Aligner({self.model['name']!r}, backend={self.backend.kind!r})"

    def align(self, src: Text, tgt: Text, **options) -> Alignment:
        """Word alignment and sentence scores of one pair."""
        s, t, options = _pair(src, tgt, options)
        (kind, text), = self._native.align_batch([(s, t)], _options(options))
        if kind != "ok":
            raise _from_kind(kind, text)
        return _alignment(json.loads(text))

    def align_batch(
        self,
        pairs: Iterable[Tuple[Text, Text]],
        *,
        batch_size: int = 32,
        errors: str = "return",
        progress: Optional[Callable[[int], None]] = None,
        **options,
    ) -> List[Union[Alignment, PairError]]:
        """Aligns many pairs, ``batch_size`` per encoder pass, results in input order.

        A pair that cannot be aligned (an empty side, a text over the size limit) does not
        stop the others: with ``errors="return"`` (default) its place in the list holds a
        :class:`PairError` with its index; with ``errors="raise"`` the first one is raised
        after the rest has run. ``progress(done)`` is called after each batch.
        """
        out = list(
            self.align_stream(pairs, batch_size=batch_size, progress=progress, **options)
        )
        if errors == "raise":
            for r in out:
                if isinstance(r, PairError):
                    raise r
        elif errors != "return":
            raise InputError(f"invalid input: errors must be 'return' or 'raise', got {errors!r}")
        return out

    @staticmethod
    def _checked_pair(pair, options: dict) -> Tuple[str, str, dict]:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise InputError(
                f"invalid input: a pair is (source, target), got {type(pair).__name__}"
                + (f" of {len(pair)} items" if isinstance(pair, (tuple, list)) else "")
            )
        return _pair(pair[0], pair[1], options)

    def align_stream(
        self,
        pairs: Iterable[Tuple[Text, Text]],
        *,
        batch_size: int = 32,
        progress: Optional[Callable[[int], None]] = None,
        **options,
    ) -> Iterator[Union[Alignment, PairError]]:
        """As :meth:`align_batch`, yielding results as batches finish: memory stays bounded
        by the batch whatever the number of pairs. The next batch runs in the encoder while
        this one's results are turned into Python objects."""
        if not isinstance(batch_size, int) or not 1 <= batch_size <= 4096:
            raise InputError(
                f"invalid input: batch_size must be a whole number from 1 to 4096, got {batch_size!r}"
            )
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="xlalign") as encoder:
            running = None  # the batch in the encoder: (future, slots, first index)
            done = 0
            for slots, first in self._batches(pairs, batch_size, options):
                good = [x for x in slots if not isinstance(x, PairError)]
                request = good[0][2] if good else None
                task = encoder.submit(self._native.align_batch, [(s, t) for s, t, _ in good], request) if good else None
                if running is not None:
                    yield from self._results(*running)
                    done = running[2] + len(running[1])
                    if progress is not None:
                        progress(done)
                running = (task, slots, first)
            if running is not None:
                yield from self._results(*running)
                if progress is not None:
                    progress(running[2] + len(running[1]))

    def _batches(self, pairs, batch_size: int, options: dict):
        """Batches of checked pairs ``(src, tgt, request)`` or :class:`PairError`s, with the
        index of each batch's first pair."""
        batch: list = []
        first = 0
        request = None
        for index, pair in enumerate(pairs):
            try:
                s, t, opts = self._checked_pair(pair, options)
                key = _options(opts)
                if request not in (None, key):
                    raise InputError("invalid input: mix of raw and pre-tokenised pairs in one batch")
                request = key
                batch.append((s, t, key))
            except InputError as e:
                batch.append(PairError(index, e))
            if len(batch) == batch_size:
                yield batch, first
                first += len(batch)
                batch = []
        if batch:
            yield batch, first

    @staticmethod
    def _results(task, slots, first) -> Iterator[Union[Alignment, PairError]]:
        results = iter(task.result() if task is not None else [])
        for k, slot in enumerate(slots):
            if isinstance(slot, PairError):
                yield slot
                continue
            kind, text = next(results)
            yield _alignment(json.loads(text)) if kind == "ok" else PairError(first + k, _from_kind(kind, text))

    def score(
        self,
        pairs: Iterable[Tuple[Text, Text]],
        *,
        block: int = _xlalign.DEFAULT_BLOCK,
        k: int = 4,
        min_cosine: Optional[float] = None,
        min_margin: Optional[float] = None,
        min_coverage: Optional[float] = None,
        max_length_ratio: Optional[float] = None,
        batch_size: int = 32,
        **options,
    ) -> List[Union[PairScore, PairError]]:
        """Quality scores per pair for filtering a corpus, as ``xlalign score`` computes them:
        the sentence cosine, the ratio margin against the pair's block of ``block``
        consecutive pairs (``k`` neighbours per side), word-alignment coverage and the
        length ratio; ``keep`` says whether the pair passes the ``min_*``/``max_*``
        thresholds given. A pair that cannot be scored holds a :class:`PairError`."""
        thresholds = {
            "minCosine": min_cosine,
            "minMargin": min_margin,
            "minCoverage": min_coverage,
            "maxLengthRatio": max_length_ratio,
        }
        for key, value in thresholds.items():
            _check_finite(value, key)
        score = json.dumps(
            {"k": k, "batch": batch_size, "thresholds": {k_: v for k_, v in thresholds.items() if v is not None}}
        )
        # One batch of every pair: checked, with a PairError in place of each bad one.
        items = list(pairs)
        slots = next(iter(self._batches(items, max(len(items), 1), options)), ([], 0))[0]
        good = [x for x in slots if not isinstance(x, PairError)]
        request = good[0][2] if good else _options(options)
        done = iter(self._native.score([(s, t) for s, t, _ in good], request, score, block) if good else [])
        out = []
        for index, slot in enumerate(slots):
            if isinstance(slot, PairError):
                out.append(slot)
                continue
            kind, text = next(done)
            out.append(_score(json.loads(text)) if kind == "ok" else PairError(index, _from_kind(kind, text)))
        return out

    def score_stream(
        self,
        pairs: Iterable[Tuple[Text, Text]],
        *,
        block: int = _xlalign.DEFAULT_BLOCK,
        progress: Optional[Callable[[int], None]] = None,
        **options,
    ) -> Iterator[Union[PairScore, PairError]]:
        """As :meth:`score`, for an iterable of any length: the pairs are read a block at a
        time (at most two blocks held) and the scores yielded in order, block by block as
        the CLI cuts them. ``progress(done)`` is called after each block."""
        if not isinstance(block, int) or not 1 <= block <= _xlalign.MAX_BLOCK:
            raise InputError(
                f"invalid input: block must be between 1 and {_xlalign.MAX_BLOCK}, got {block!r}"
            )
        pending: list = []
        done = 0
        for pair in pairs:
            pending.append(pair)
            if len(pending) == 2 * block:
                # A full block; the core shares the tail between the last two at the end.
                head, pending = pending[:block], pending[block:]
                for r in self.score(head, block=block, **options):
                    yield _shifted(r, done)
                done += len(head)
                if progress is not None:
                    progress(done)
        if pending:
            for r in self.score(pending, block=block, **options):
                yield _shifted(r, done)
            if progress is not None:
                progress(done + len(pending))

    def mexa(
        self,
        src: Sequence[str],
        tgt: Sequence[str],
        *,
        layers: Optional[Sequence[int]] = None,
        pretokenized: bool = False,
        block: int = _xlalign.DEFAULT_BLOCK,
        batch_size: int = 32,
    ) -> List[LayerAlignment]:
        """MEXA per layer (as ``xlalign mexa``): the share of parallel sentences whose
        mean-pooled vectors at that layer are closer to each other than to any other pairing,
        both ways, over blocks of ``block`` pairs (their pair-weighted mean)."""
        options = {"pretokenized": pretokenized, "batch": batch_size}
        if layers is not None:
            options["layers"] = list(layers)
        text = self._native.mexa(list(src), list(tgt), json.dumps(options), block)
        return [_layer(d) for d in json.loads(text)]

    def encode(self, src: Text, tgt: Text, **options) -> Encoded:
        """Runs the encoder on one pair; only the encoding options (``layer``,
        ``pretokenized``, ``sentence_cosine``, ``words``) are taken here."""
        s, t, options = _pair(src, tgt, options)
        return Encoded(self._native.encode(s, t, _options(options)), self)

    def encode_batch(
        self, pairs: Iterable[Tuple[Text, Text]], *, batch_size: int = 32, **options
    ) -> List[Union[Encoded, PairError]]:
        """As :meth:`encode` for many pairs, ``batch_size`` per encoder pass, in input
        order; a pair that cannot be encoded gets a :class:`PairError` in its place."""
        if not isinstance(batch_size, int) or not 1 <= batch_size <= 4096:
            raise InputError(
                f"invalid input: batch_size must be a whole number from 1 to 4096, got {batch_size!r}"
            )
        out: List[Union[Encoded, PairError]] = []
        for slots, first in self._batches(pairs, batch_size, options):
            good = [(k, x) for k, x in enumerate(slots) if not isinstance(x, PairError)]
            done = (
                self._native.encode_batch([(s, t) for _, (s, t, _) in good], good[0][1][2])
                if good
                else []
            )
            results: list = list(slots)
            for (k, _), (kind, native, message) in zip(good, done):
                results[k] = (
                    Encoded(native, self)
                    if kind == "ok"
                    else PairError(first + k, _from_kind(kind, message))
                )
            out.extend(results)
        return out

    def extract(self, encoded: Encoded, **options) -> Alignment:
        """Links of an encoded pair with these extraction options (no encoder work)."""
        return _alignment(json.loads(self._native.extract(encoded._native, _options(options))))

    def embed(
        self, texts: Union[str, Sequence[str]], *, prefix: str = "passage", batch_size: int = 32
    ) -> np.ndarray:
        """Pooled, L2-normalised sentence embeddings: a ``float32`` array of shape
        ``(len(texts), hidden)`` (or ``(hidden,)`` for one string). ``prefix``: the model's
        ``passage`` (default) or ``query`` prefix, or ``none``."""
        one = isinstance(texts, str)
        items = [texts] if one else list(texts)
        if not all(isinstance(t, str) for t in items):
            raise InputError("invalid input: texts must be strings")
        hidden = self.model["hidden"]
        parts = []
        for k in range(0, len(items), batch_size):
            data, rows, cols = self._native.embed(items[k : k + batch_size], prefix)
            parts.append(np.frombuffer(data, dtype="<f4").reshape(rows, cols))
        out = np.concatenate(parts) if parts else np.zeros((0, hidden), dtype=np.float32)
        return out[0] if one else out

    def similarity(
        self, a: Union[str, Sequence[str]], b: Union[str, Sequence[str]], *, prefix: str = "passage"
    ) -> Union[float, np.ndarray]:
        """Cosine of the sentence embeddings of ``a`` and ``b``; for two lists of equal
        length, one cosine per position."""
        if isinstance(a, str) != isinstance(b, str):
            raise InputError("invalid input: give two strings or two lists of strings")
        if isinstance(a, str):
            x, y = self.embed([a, b], prefix=prefix)
            return float(np.dot(x, y))
        a, b = list(a), list(b)
        if len(a) != len(b):
            raise InputError(
                f"invalid input: {len(a)} sentences on one side and {len(b)} on the other"
            )
        x = self.embed(a, prefix=prefix)
        y = self.embed(b, prefix=prefix)
        return np.einsum("ij,ij->i", x, y)
