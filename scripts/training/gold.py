"""Keeping evaluation text out of the training data.

Why: the gold word-alignment sets measure the aligner; a sentence of theirs seen in
training would make that measurement optimistic. Gold sentences are pre-tokenised and
sometimes lower-cased, so both sides are compared after a normalisation that ignores
case, Unicode compatibility forms, punctuation and all whitespace (tokenised Japanese and
Chinese have spaces between words that the running text does not). A pair is dropped when
either side equals a gold sentence, or when either side contains a gold sentence of at
least SUBSTRING_MIN normalised characters.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

SUBSTRING_MIN = 20
_KEY = 12  # characters of the index key for the substring search


def normalise(s: str) -> str:
    s = unicodedata.normalize("NFKC", s).casefold()
    return "".join(c for c in s if not (c.isspace() or unicodedata.category(c)[0] in "PS"))


def read_gold_sentences(gold_dir: Path) -> list[str]:
    """Every line of every `<set>/<set>.src` and `.tgt` under `gold_dir`."""
    out: list[str] = []
    for f in sorted(gold_dir.glob("*/*.src")) + sorted(gold_dir.glob("*/*.tgt")):
        out.extend(line.rstrip("\n") for line in f.open(encoding="utf-8"))
    return out


class GoldFilter:
    """Exact (normalised) matches and long-enough substrings of the gold sentences."""

    def __init__(self, sentences: list[str]):
        keys = {normalise(s) for s in sentences}
        keys.discard("")
        self.exact = keys
        # Gold sentences long enough for the substring test, indexed by their first _KEY
        # characters: a text is scanned once, looking up each position's _KEY-gram.
        self.by_prefix: dict[str, list[str]] = {}
        for k in keys:
            if len(k) >= SUBSTRING_MIN:
                self.by_prefix.setdefault(k[:_KEY], []).append(k)

    def hits(self, text: str) -> bool:
        n = normalise(text)
        if n in self.exact:
            return True
        for i in range(len(n) - SUBSTRING_MIN + 1):
            for k in self.by_prefix.get(n[i:i + _KEY], ()):
                if n.startswith(k, i):
                    return True
        return False
