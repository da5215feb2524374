"""Dictionary anchors: word pairs of a training pair that a bilingual dictionary (the FreeDict
and JMdict lexicons ``scripts/training-data.py`` extracts) says translate each other, as
links between their subword rows. Self-training only reinforces links the model already
makes; anchors add ones it misses, from a source that is not the model.

A word pair is an anchor only when it is unambiguous in the pair: the two words occur once
on their sides, and no other dictionary pairing of either word is in the pair. Words are
``\\w+`` runs (lower-cased); on a side without spaces (Chinese, Japanese) any substring of 2
to 6 characters that the dictionary has is a candidate word.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

WORD = re.compile(r"\w+", re.UNICODE)


class Lexicon:
    def __init__(self, path: Path, swap: bool):
        """``path``: ``a<TAB>b`` lines; ``swap``: the file's first column is the pair's
        target language."""
        self.pairs: set[tuple[str, str]] = set()
        self.sources: set[str] = set()
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) != 2:
                    continue
                a, b = (parts[1], parts[0]) if swap else (parts[0], parts[1])
                a, b = a.strip().lower(), b.strip().lower()
                if a and b and " " not in a and " " not in b:
                    self.pairs.add((a, b))
                    self.sources.add(a)
        self.longest = max((len(a) for a in self.sources), default=0)

    def __len__(self) -> int:
        return len(self.pairs)


def spaced(text: str) -> bool:
    return text.count(" ") * 12 >= len(text)


def words(text: str, vocabulary: set[str] | None, longest: int) -> list[tuple[str, int, int]]:
    """(word, start, end) candidates of one side."""
    if vocabulary is None or spaced(text):
        return [(m.group(0).lower(), m.start(), m.end()) for m in WORD.finditer(text)]
    out = []
    for m in WORD.finditer(text):
        run, base = m.group(0), m.start()
        for i in range(len(run)):
            for n in range(2, min(6, longest, len(run) - i) + 1):
                piece = run[i : i + n].lower()
                if piece in vocabulary:
                    out.append((piece, base + i, base + i + n))
    return out


def anchors(lex: Lexicon, src: str, tgt: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Character spans ``((s0, s1), (t0, t1))`` of the unambiguous dictionary pairs."""
    sw = words(src, lex.sources, lex.longest)
    tw = words(tgt, None, 0)
    s_count = Counter(w for w, _, _ in sw)
    t_count = Counter(w for w, _, _ in tw)
    found = [(s, t) for s in sw for t in tw if (s[0], t[0]) in lex.pairs]
    per_s = Counter(s[0] for s, _ in found)
    per_t = Counter(t[0] for _, t in found)
    out = []
    for s, t in found:
        if s_count[s[0]] == 1 and t_count[t[0]] == 1 and per_s[s[0]] == 1 and per_t[t[0]] == 1:
            out.append(((s[1], s[2]), (t[1], t[2])))
    return out
