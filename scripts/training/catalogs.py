"""Reading gettext message catalogs (.mo) into (English, translation) pairs.

Why a parser of our own: the stdlib `gettext.GNUTranslations` hides contexts and plural forms
behind lookups and reads from files; the build streams catalogs out of .deb archives and wants
every entry, so it parses the documented .mo layout directly (magic, a table of original
strings and one of translations, both sorted by original). Plural entries pair the singular
msgid with the first plural form; a `msgctxt` (joined to the msgid by EOT, 0x04) is dropped.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

MO_MAGIC_LE = 0x950412DE
MO_MAGIC_BE = 0xDE120495

# Locale folder names (`share/locale/<name>/LC_MESSAGES`) taken, and the language code each
# counts as. Regional variants that are the same written language are merged; Traditional
# Chinese (zh_TW, zh_HK) is left out because the Chinese gold set is Simplified.
LOCALES: dict[str, str] = {
    "de": "de", "de_DE": "de",
    "fr": "fr", "fr_FR": "fr",
    "ro": "ro", "ro_RO": "ro",
    "ja": "ja", "ja_JP": "ja",
    "zh_CN": "zh", "zh-CN": "zh", "zh_Hans": "zh", "zh-Hans": "zh",
    "hi": "hi", "hi_IN": "hi",
    "cs": "cs", "cs_CZ": "cs",
    "sv": "sv", "sv_SE": "sv",
    "es": "es", "es_ES": "es",
    "it": "it", "it_IT": "it",
    "ru": "ru", "ru_RU": "ru",
    "ar": "ar",
    "ko": "ko", "ko_KR": "ko",
    "nl": "nl",
    "pl": "pl", "pl_PL": "pl",
    "pt": "pt", "pt_PT": "pt",
    "uk": "uk", "uk_UA": "uk",
}

_LOCALE_DIR = re.compile(r"(?:^|/)([^/]+)/LC_MESSAGES/[^/]+\.mo$")


def language_of(path: str) -> str | None:
    """The language code of a catalog at `path` (…/<locale>/LC_MESSAGES/x.mo), or None."""
    m = _LOCALE_DIR.search(path)
    return LOCALES.get(m.group(1)) if m else None


@dataclass(frozen=True)
class Entry:
    msgid: str
    msgstr: str
    plural: bool


class CatalogError(ValueError):
    pass


def _charset(header: str) -> str:
    m = re.search(r"charset=([\w.-]+)", header)
    cs = m.group(1) if m else "utf-8"
    return "utf-8" if cs.upper() in ("CHARSET", "") else cs


def parse_mo(data: bytes) -> list[Entry]:
    """Every non-header entry of a .mo file, decoded with the catalog's declared charset."""
    if len(data) < 28:
        raise CatalogError("too short for a .mo file")
    (magic,) = struct.unpack_from("<I", data, 0)
    if magic == MO_MAGIC_LE:
        order = "<"
    elif magic == MO_MAGIC_BE:
        order = ">"
    else:
        raise CatalogError("not a .mo file (bad magic)")
    _rev, n, orig_off, trans_off = struct.unpack_from(order + "4I", data, 4)
    if orig_off + 8 * n > len(data) or trans_off + 8 * n > len(data):
        raise CatalogError("string tables run past the end of the file")

    def raw(table: int, i: int) -> bytes:
        length, off = struct.unpack_from(order + "2I", data, table + 8 * i)
        if off + length > len(data):
            raise CatalogError(f"string {i} runs past the end of the file")
        return data[off:off + length]

    pairs = [(raw(orig_off, i), raw(trans_off, i)) for i in range(n)]
    charset = "utf-8"
    for o, t in pairs:
        if o == b"":
            charset = _charset(t.decode("ascii", "replace"))
    out: list[Entry] = []
    for o, t in pairs:
        if o == b"":
            continue
        if b"\x04" in o:  # msgctxt EOT msgid
            o = o.split(b"\x04", 1)[1]
        plural = b"\x00" in o
        msgid = o.split(b"\x00", 1)[0].decode(charset, "replace")
        msgstr = t.split(b"\x00", 1)[0].decode(charset, "replace")
        out.append(Entry(msgid, msgstr, plural))
    return out


def write_mo(entries: list[tuple[str, str]], charset: str = "UTF-8") -> bytes:
    """A minimal .mo file (little-endian, no hash table) holding `entries` plus a header.

    Used by the tests to make a catalog without gettext's msgfmt. msgid may hold a context
    (`ctx\\x04id`) or a plural (`one\\x00many`), msgstr plural forms joined by NUL.
    """
    header = f"Content-Type: text/plain; charset={charset}\n"
    items = sorted([("", header)] + list(entries), key=lambda e: e[0].encode(charset))
    ids = [k.encode(charset) for k, _ in items]
    strs = [v.encode(charset) for _, v in items]
    n = len(items)
    orig_off = 28
    trans_off = orig_off + 8 * n
    data_off = trans_off + 8 * n
    blob = bytearray()
    o_tab, t_tab = [], []
    for s in ids:
        o_tab.append((len(s), data_off + len(blob)))
        blob += s + b"\x00"
    for s in strs:
        t_tab.append((len(s), data_off + len(blob)))
        blob += s + b"\x00"
    head = struct.pack("<7I", MO_MAGIC_LE, 0, n, orig_off, trans_off, 0, data_off)
    tabs = b"".join(struct.pack("<2I", *x) for x in o_tab + t_tab)
    return head + tabs + bytes(blob)
