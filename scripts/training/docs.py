"""Translated documentation (HTML manuals in Debian binary packages) into sentence pairs.

Why: the catalogs give user-interface strings, short and imperative; the manuals Debian
ships in several languages (the Debian Reference, the FAQ, the installation guide…) give
running prose, of the kind the gold sets hold. Their sources are not on the mirror, only
the built HTML, so the pairs come from the HTML itself:

1. each page is read into its text blocks (paragraphs, headings, list items, terms, table
   cells; `<pre>`, scripts and styles are skipped), each with its tag;
2. an English page and its translation (same page name) are aligned block by block on the
   sequence of tags (difflib): translators keep the document's structure, so the blocks of an
   unchanged stretch correspond one to one, while a stretch where the structures differ
   (a paragraph the translation lacks, an outdated section) is left out;
3. a pair of blocks is split into sentences; when both sides have the same number, the
   sentences pair in order, otherwise the blocks stay whole (the cleaning drops them when
   they are too long).

The cleaning, deduplication and gold filter are those of the catalogs (`clean`, `build`).
"""

from __future__ import annotations

import difflib
import gzip
import re
from html.parser import HTMLParser
from pathlib import PurePosixPath

from . import manifest
from .catalogs import LOCALES

BLOCK_TAGS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "dt", "li", "td", "th", "title"}
SKIP_TAGS = {"pre", "script", "style"}
# Names of a page's language inside file names (`ch02.zh-cn.html`) and folders (`zh_CN/`).
_LANG_TAGS = {**LOCALES, "en": "en", "zh-cn": "zh", "zh_cn": "zh", "pt-br": None, "zh-tw": None,
              "zh_TW": None}


class _Blocks(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[tuple[str, str]] = []
        self.stack: list[tuple[str, list[str]]] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in SKIP_TAGS:
            self.skip += 1
        elif tag in BLOCK_TAGS:
            self.stack.append((tag, []))
        elif tag == "br" and self.stack:
            self.stack[-1][1].append(" ")

    def handle_endtag(self, tag):
        if tag in SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        elif tag in BLOCK_TAGS:
            # Close up to the matching tag (HTML allows unclosed <p>, <li>, <td>).
            while self.stack:
                t, parts = self.stack.pop()
                text = " ".join("".join(parts).split())
                if text:
                    self.out.append((t, text))
                if t == tag:
                    break

    def handle_data(self, data):
        if not self.skip and self.stack:
            self.stack[-1][1].append(data)


def blocks(html: bytes) -> list[tuple[str, str]]:
    """(tag, text) of a page's text blocks in document order (inner blocks first)."""
    if html[:2] == b"\x1f\x8b":
        html = gzip.decompress(html)
    p = _Blocks()
    p.feed(html.decode("utf-8", errors="replace"))
    p.close()
    return p.out


def page(path: str, lang: str | None) -> tuple[str, str] | None:
    """(language, page key) of an HTML file in a documentation package, or None when it is
    not a page or its language is not one we use. `lang` is the package's language; None
    reads it from a folder of the path (`…/installation-guide-amd64/de/ch01.html`)."""
    p = PurePosixPath(path)
    name = p.name
    for ext in (".html.gz", ".html"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    else:
        return None
    stem, _, tag = name.rpartition(".")
    if stem and tag in _LANG_TAGS:
        name = stem
    if lang is None:
        found = [_LANG_TAGS[d] for d in p.parent.parts if d in _LANG_TAGS]
        if not found or found[-1] is None:
            return None
        lang = found[-1]
    return lang, name


_EN_END = re.compile(r"(?<=[.!?])[\"'\u201d\u2019)]*\s+(?=[\"'\u201c\u2018(]*[A-Z\u00c0-\u00de])")
_CJK_END = re.compile(r"(?<=[\u3002\uff01\uff1f])[\u300d\u300f\uff09\u201d]*")
# Abbreviations after which a full stop does not end a sentence. A section number (`6.3.6.
# Installing…`) does end one: it becomes a "sentence" of its own, which the cleaning drops.
_ABBREV = re.compile(r"(?:\b(?:e\.g|i\.e|etc|vs|cf|Mr|Dr|No|z\.B|d\.h|bzw|usw|ca|env|p\.ex)\.)$")


def sentences(text: str, lang: str) -> list[str]:
    """A block split into sentences: after 。！？ (and closing marks) in Chinese and Japanese,
    after . ! ? and a space before a capital elsewhere, not after a common abbreviation."""
    out: list[str] = []
    pos = 0
    for m in (_CJK_END if lang in ("zh", "ja") else _EN_END).finditer(text):
        if m.end() <= pos:
            continue
        words_before = text[pos:m.start()].split()
        if words_before and _ABBREV.search(words_before[-1]):
            continue
        out.append(text[pos:m.end()].strip())
        pos = m.end()
    out.append(text[pos:].strip())
    return [s for s in out if s]


def pair_pages(en: list[tuple[str, str]], tgt: list[tuple[str, str]], lang: str) -> list[tuple[str, str]]:
    """Sentence (or block) pairs of an English page and its translation (see the module doc)."""
    sm = difflib.SequenceMatcher(None, [t for t, _ in en], [t for t, _ in tgt], autojunk=False)
    out = []
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op != "equal":
            continue
        for (_, a), (_, b) in zip(en[i1:i2], tgt[j1:j2]):
            sa, sb = sentences(a, "en"), sentences(b, lang)
            if len(sa) == len(sb):
                out.extend(zip(sa, sb))
            else:
                out.append((a, b))
    return out


def read_manuals(cache, entries: list[dict], log=print) -> tuple[dict[str, list], dict[str, int]]:
    """Language → the pair lists of its pages (one per page that has an English original),
    from the manifest's `documents` entries; and the pages read per package. Each entry
    names its `manual` (pages pair only within one), and its `lang`, or null when the
    package holds every language in folders (the installation guide)."""
    pages: dict[tuple[str, str], dict[str, list[tuple[str, str]]]] = {}
    per_package: dict[str, int] = {}
    for e in entries:
        deb = manifest.fetch(cache, e)
        n = 0
        for path, data in manifest.members(deb, lambda p: p.endswith((".html", ".html.gz"))):
            found = page(path, e.get("lang"))
            if found is None:
                continue
            lang, key = found
            pages.setdefault((e["manual"], key), {})[lang] = blocks(data)
            n += 1
        per_package[f"{e['package']}={e['version']}"] = n
        log(f"{e['package']}={e['version']}: {n} pages")
    out: dict[str, list] = {}
    for key in sorted(pages):
        by_lang = pages[key]
        en = by_lang.get("en")
        if en is None:
            continue
        for lang, tgt in sorted(by_lang.items()):
            if lang != "en":
                out.setdefault(lang, []).append(pair_pages(en, tgt, lang))
    return out, per_package
