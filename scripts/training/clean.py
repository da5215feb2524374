"""Cleaning one catalog entry into a sentence pair, or naming why it is dropped.

Why these rules: catalog entries are user-interface strings. Format specifiers, markup,
URLs, paths and option lists are placeholders or code, not words a translator renders, so
their alignments would teach nothing; mnemonic markers (`_File`, `&File`, `(_F)`) are
noise inside a word and are stripped rather than dropped. Short labels (fewer than four
English words) carry little context for an encoder. The length ratio catches partial or
wrong translations; CJK characters carry more per character, hence a per-language factor.
Each check returns a reason so the build can count what each filter removed.
"""

from __future__ import annotations

import re
import unicodedata

# The filters in the order they are applied; the build reports the count after each one.
REASONS = ("empty", "plural", "format", "markup", "url_path", "options", "not_english",
           "short", "long", "untranslated", "ratio")

MIN_EN_WORDS = 4
MAX_EN_WORDS = 80
RATIO_MIN, RATIO_MAX = 0.3, 3.0
# Characters of text in one language per character of English, roughly; the ratio test
# divides by it so that a Chinese sentence a third as long as its English one passes.
CHAR_FACTOR = {"zh": 0.3, "ja": 0.4, "ko": 0.45}

_FORMAT = re.compile(
    r"%(?:\(\w+\)|\{\w+\}|\d+\$)?[-+#0']*(?:\*|\d+)?(?:\.(?:\*|\d+))?"
    r"(?:hh|h|ll|l|L|q|j|z|t|I64|I32)?[diouxXeEfFgGcrsaApnSC%]"  # printf / Python %
    r"|%\d+|%[A-Z_]+%"  # Qt %1, %NAME% placeholders
    r"|%[A-Za-z<>]"  # any other letter directive (GCC's %qs, %q+D, %<, %>)
    r"|\{[\w.:!\-\[\]]*\}"  # {0}, {name}, {}, {x:>3}
    r"|\$\{?\w+\}?"  # $x, ${x}
    r"|@\w+@"  # @PLACEHOLDER@
    r"|~[a-zA-Z](?!\w)"  # Lisp/Scheme ~a, ~s
)
_MARKUP = re.compile(r"<[^<>\s][^<>]*>|&[a-zA-Z]+;|&#\d+;|\[/?[a-z]+[^\]]*\]")
_URL_PATH = re.compile(
    r"https?://|www\.|\b[\w.+-]+@[\w-]+\.[\w.]+|(?:^|\s)~?/[\w.-]+/|~/|\\[\w]|\w+\.(?:txt|conf|cfg|xml|html|py|sh|so|dll|exe)\b")
_OPTIONS = re.compile(r"(?:^|\s)--?[a-zA-Z0-9][\w-]*|\|\||&&|\b\w+_\w+\b|\w+\(\)")
# Help-text tables: a line that starts indented or with a dash (option lists, columns).
_TABLE_LINE = re.compile(r"\n[ \t-]|^[ \t]")
# Mnemonics: `(_F)` / `(&F)` / `(~F)` after CJK labels; `_File`, `&File` (GTK, Qt) and
# LibreOffice's `~File`, `d~river`; `&&` is a literal ampersand. A tilde before a lone letter
# (`~a`) is a Scheme format directive instead, caught by _FORMAT before this runs.
_MNEMONIC_PAREN = re.compile(r"\s*\([_&~]\w\)")
_MNEMONIC = re.compile(r"(?<![\w&])[_&](?=\w)|~(?=\w)")
_SPACE = re.compile(r"\s+")


def strip_mnemonics(s: str) -> str:
    s = _MNEMONIC_PAREN.sub("", s)  # already done by clean_pair; kept for direct callers
    s = _MNEMONIC.sub("", s)
    return s.replace("&&", "&")


def normalise_space(s: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFC", s)).strip()


def is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (0x3040 <= o <= 0x30FF or 0x3400 <= o <= 0x4DBF or 0x4E00 <= o <= 0x9FFF
            or 0xAC00 <= o <= 0xD7AF or 0xF900 <= o <= 0xFAFF or 0xFF66 <= o <= 0xFF9F)


def words(s: str, lang: str) -> int:
    """Words of `s`: whitespace tokens, except in Chinese and Japanese, where each CJK
    character counts (those languages write no spaces)."""
    if lang in ("zh", "ja"):
        cjk = sum(1 for c in s if is_cjk(c))
        rest = "".join(" " if is_cjk(c) else c for c in s)
        return cjk + len(rest.split())
    return len(s.split())


def _looks_english(s: str) -> bool:
    letters = [c for c in s if c.isalpha()]
    if not letters:
        return False
    latin = sum(1 for c in letters if c < "\u0250")
    return latin / len(letters) > 0.95


def _letters(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKC", s).casefold() if c.isalnum())


def clean_pair(en: str, tgt: str, lang: str, plural: bool = False) -> tuple[str, str] | str:
    """(en, tgt) cleaned, or the reason (one of REASONS) it is dropped."""
    if not en.strip() or not tgt.strip():
        return "empty"
    if plural:
        return "plural"
    en, tgt = _MNEMONIC_PAREN.sub("", en), _MNEMONIC_PAREN.sub("", tgt)
    if _FORMAT.search(en) or _FORMAT.search(tgt):
        return "format"
    if _MARKUP.search(en) or _MARKUP.search(tgt) or "|||" in en + tgt:
        return "markup"
    if _TABLE_LINE.search(en):
        return "options"
    en, tgt = normalise_space(strip_mnemonics(en)), normalise_space(strip_mnemonics(tgt))
    if _URL_PATH.search(en) or _URL_PATH.search(tgt):
        return "url_path"
    if _OPTIONS.search(en):
        return "options"
    if not _looks_english(en):
        return "not_english"
    n = len(en.split())
    if n < MIN_EN_WORDS:
        return "short"
    if n > MAX_EN_WORDS:
        return "long"
    if _letters(en) == _letters(tgt):
        return "untranslated"
    ratio = len(tgt) / CHAR_FACTOR.get(lang, 1.0) / len(en)
    if not RATIO_MIN <= ratio <= RATIO_MAX:
        return "ratio"
    return en, tgt
