"""From catalog entries to the training files: clean, dedupe, cap, remove gold, write.

Why this order: cleaning first makes duplicates visible (a mnemonic or a double space is not
a different sentence); deduplication before the cap, so the cap counts distinct
translations; gold removal last, so its count is what the evaluation sets would have shared
with the data. Each language keeps its own counters, written to stats.json and README.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Iterable

from .catalogs import Entry
from .clean import REASONS, clean_pair, words
from .gold import GoldFilter, normalise

# Order of the two sides in each output file: the gold sets' order where there is one
# (deen, enfr, roen, jaen, zhen, enhi), otherwise the other language first, English second.
ENGLISH_FIRST = {"fr", "hi"}
# At most this many distinct translations of one English sentence, and English sentences
# of one translation (UI strings repeat with small variants across packages).
CAP = 2


def direction(lang: str) -> tuple[str, str]:
    return ("en", lang) if lang in ENGLISH_FIRST else (lang, "en")


class Language:
    """The pairs and counters of one language while the build runs."""

    def __init__(self, lang: str):
        self.lang = lang
        self.catalogs = 0
        self.pages = 0
        self.entries = 0
        self.dropped: Counter[str] = Counter()
        self.pairs: list[tuple[str, str]] = []

    def add_catalog(self, entries: Iterable[Entry]) -> None:
        self.catalogs += 1
        for e in entries:
            self._add(e.msgid, e.msgstr, e.plural)

    def add_page(self, pairs: Iterable[tuple[str, str]]) -> None:
        """The (English, translation) sentence pairs of one manual page (`docs.pair_pages`)."""
        self.pages += 1
        for en, tgt in pairs:
            self._add(en, tgt, False)

    def _add(self, en: str, tgt: str, plural: bool) -> None:
        self.entries += 1
        r = clean_pair(en, tgt, self.lang, plural)
        if isinstance(r, str):
            self.dropped[r] += 1
        else:
            self.pairs.append(r)

    def finish(self, gold: GoldFilter) -> dict:
        """Dedupe, cap, remove gold overlap; returns the stats and keeps the final pairs."""
        seen: set[tuple[str, str]] = set()
        per_en: Counter[str] = Counter()
        per_tgt: Counter[str] = Counter()
        deduped = capped = 0
        kept: list[tuple[str, str]] = []
        gold_removed = 0
        for en, tgt in self.pairs:
            ke, kt = normalise(en), normalise(tgt)
            if (ke, kt) in seen:
                deduped += 1
                continue
            seen.add((ke, kt))
            if per_en[ke] >= CAP or per_tgt[kt] >= CAP:
                capped += 1
                continue
            per_en[ke] += 1
            per_tgt[kt] += 1
            if gold.hits(en) or gold.hits(tgt):
                gold_removed += 1
                continue
            kept.append((en, tgt))
        self.pairs = kept
        after = {}
        left = self.entries
        for r in REASONS:
            left -= self.dropped[r]
            after[r] = left
        return {
            "catalogs": self.catalogs,
            **({"pages": self.pages} if self.pages else {}),
            "entries": self.entries,
            "dropped": {r: self.dropped[r] for r in REASONS},
            "after_filter": after,
            "duplicates": deduped,
            "capped": capped,
            "gold_overlap": gold_removed,
            "pairs": len(kept),
            "words_en": sum(len(en.split()) for en, _ in kept),
            f"words_{self.lang}": sum(words(t, self.lang) for _, t in kept),
        }

    def write(self, out_dir: Path) -> Path:
        src, tgt = direction(self.lang)
        path = out_dir / f"{src}-{tgt}.txt"
        with path.open("w", encoding="utf-8") as f:
            for en, t in self.pairs:
                f.write(f"{en} ||| {t}\n" if src == "en" else f"{t} ||| {en}\n")
        return path


def finish_all(langs: dict[str, Language], gold: GoldFilter, out_dir: Path) -> tuple[dict, dict]:
    """Finishes and writes every language into `out_dir`: (stats by language, file names)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stats, files = {}, {}
    for lang in sorted(langs):
        stats[lang] = langs[lang].finish(gold)
        files[lang] = langs[lang].write(out_dir).name
    return stats, files


def write_stats(path: Path, stats: dict) -> None:
    path.write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


class Languages(dict):
    """Language code → Language, made on first use."""

    def __missing__(self, lang: str) -> Language:
        self[lang] = Language(lang)
        return self[lang]


def new_languages() -> Languages:
    return Languages()
