"""What xlalign returns: words with their offsets, links with scores, sentence scores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

import numpy as np


@dataclass(frozen=True)
class Word:
    """A word of a sentence, with its place in the text three ways."""

    text: str
    #: Byte range in the UTF-8 text.
    start: int
    end: int
    #: Range in code points: ``sentence[char_start:char_end] == text`` for raw input.
    char_start: int
    char_end: int
    #: Range in UTF-16 code units (what JavaScript strings index).
    utf16_start: int
    utf16_end: int


@dataclass(frozen=True)
class Link:
    """Source word ``src`` is aligned to target word ``tgt``."""

    src: int
    tgt: int
    #: Cosine similarity behind the link.
    score: float
    #: For ``softmax``/``entmax``: the probability that decided the link.
    prob: Optional[float] = None


@dataclass(frozen=True)
class Scores:
    """Sentence-level scores of a pair."""

    #: Cosine of the pooled sentence embeddings (``None`` with ``sentence_cosine=False``).
    cosine: Optional[float]
    #: BERTScore-style greedy matching over word similarities: precision-like (source),
    #: recall-like (target) and F1.
    bertscore_src: float
    bertscore_tgt: float
    bertscore_f1: float
    #: Share of source words, target words and all words with at least one link.
    coverage_src: float
    coverage_tgt: float
    coverage_both: float


@dataclass(frozen=True)
class Alignment:
    """The result for one pair."""

    src_words: List[Word]
    tgt_words: List[Word]
    links: List[Link]
    similarity: Scores
    #: ``word_similarity[i][j]``: cosine between source word i and target word j.
    word_similarity: List[List[float]]
    layer: int
    method: str

    def pairs(self) -> List[tuple]:
        """The links as ``(src, tgt)`` word indices."""
        return [(l.src, l.tgt) for l in self.links]

    def pharaoh(self) -> str:
        """The links in Pharaoh format (``0-0 1-2``), as ``xlalign align`` writes them."""
        return " ".join(f"{l.src}-{l.tgt}" for l in self.links)


@dataclass(frozen=True, eq=False)
class States:
    """What extraction sees of an encoded pair (``Encoded.states``), for training code: the
    alignment layer's vectors of the rows the core extracts between (specials, the prefix and
    bare ``▁`` dropped; at ``word-average`` level one row per word with subwords, its mean)
    and the word of each row. A softmax over ``src @ tgt.T / temperature`` in both
    directions, thresholded and lifted to words through ``src_words``/``tgt_words`` (and the
    shared rows), gives the default method's links."""

    #: ``float32 [n_src_rows, hidden]``.
    src: np.ndarray
    tgt: np.ndarray
    #: ``int64 [n_rows]``: the (first) word of each row, an index into the pair's words.
    src_words: np.ndarray
    tgt_words: np.ndarray
    #: ``int64 [k, 2]``: further ``(row, word)`` memberships of rows that span several
    #: adjacent CJK words (a link of such a row links each of its words); usually empty.
    src_shared: np.ndarray
    tgt_shared: np.ndarray
    #: Word counts (words without any row can never be linked).
    n_src_words: int
    n_tgt_words: int
    layer: int


@dataclass(frozen=True)
class PairScore:
    """Quality scores of a pair for filtering a corpus (``Aligner.score``)."""

    #: Cosine of the pooled sentence embeddings.
    cosine: float
    #: Ratio margin against the pair's block: above 1, the two sides are closer to each
    #: other than to their nearest neighbours in the block.
    margin: float
    #: Share of source / target words with a link.
    coverage_src: float
    coverage_tgt: float
    #: Subword tokens of the longer side / of the shorter side.
    length_ratio: float
    src_tokens: int
    tgt_tokens: int
    #: Whether the pair passes the thresholds given (all pass when none is).
    keep: bool


@dataclass(frozen=True)
class LayerAlignment:
    """MEXA of one layer (``Aligner.mexa``)."""

    layer: int
    #: Share of pairs whose cosine beats every wrong pairing in both directions.
    mexa: float
    #: Share of sources whose nearest target is their translation, and the other way.
    src_to_tgt: float
    tgt_to_src: float
    pairs: int


@dataclass(frozen=True)
class BackendInfo:
    """Where the encoder runs: ``kind`` is ``cpu`` or ``webgpu``; ``reason`` says why."""

    kind: str
    device: str
    reason: str


def _word(d: dict) -> Word:
    return Word(
        d["text"], d["start"], d["end"], d["charStart"], d["charEnd"], d["utf16Start"], d["utf16End"]
    )


def _alignment(d: Any) -> Alignment:
    s = d["similarity"]
    scores = Scores(
        s.get("cosine"),
        s["bertscore"]["src"],
        s["bertscore"]["tgt"],
        s["bertscore"]["f1"],
        s["coverage"]["src"],
        s["coverage"]["tgt"],
        s["coverage"]["both"],
    )
    return Alignment(
        [_word(w) for w in d["srcWords"]],
        [_word(w) for w in d["tgtWords"]],
        [Link(l["src"], l["tgt"], l["score"], l.get("prob")) for l in d["links"]],
        scores,
        d["wordSimilarity"],
        d["layer"],
        d["method"],
    )


def _states_side(side):
    data, rows, cols, words, shared, n_words = side
    vectors = np.frombuffer(data, dtype="<f4").reshape(rows, cols)
    shared = np.asarray(shared, dtype=np.int64).reshape(-1, 2)
    return vectors, np.asarray(words, dtype=np.int64), shared, n_words


def _states(native, layer: int) -> States:
    src, src_words, src_shared, n_src = _states_side(native[0])
    tgt, tgt_words, tgt_shared, n_tgt = _states_side(native[1])
    return States(src, tgt, src_words, tgt_words, src_shared, tgt_shared, n_src, n_tgt, layer)


def _score(d: Any) -> PairScore:
    return PairScore(
        d["cosine"],
        d["margin"],
        d["coverage"]["src"],
        d["coverage"]["tgt"],
        d["lengthRatio"],
        d["srcTokens"],
        d["tgtTokens"],
        d["keep"],
    )


def _layer(d: Any) -> LayerAlignment:
    return LayerAlignment(d["layer"], d["mexa"], d["srcToTgt"], d["tgtToSrc"], d["pairs"])
