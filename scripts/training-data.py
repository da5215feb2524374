#!/usr/bin/env python3
"""Builds parallel training text from the gettext catalogs and translated manuals of pinned
Debian packages.

    python3 scripts/training-data.py build [--gold DIR] [--out DIR]
    python3 scripts/training-data.py pin [--update] [PACKAGE…]
    python3 scripts/training-data.py tables [--out DIR]

`build` downloads each package of scripts/training/packages.json (`apt-get download
name=version`, no installation) into $XLALIGN_CACHE/training/debs, refuses a .deb whose
sha256 differs from the manifest, reads every catalog of a known language
(`…/<lang>/LC_MESSAGES/*.mo`), cleans the entries, dedupes, removes every pair that shares
a sentence with a gold set, and writes `<src>-<tgt>.txt` (`source ||| target` lines, the
gold sets' direction), the manuals' sentence pairs (`docs.py`) likewise into docs/, and
stats.json. `pin` records version and sha256 of entries that lack
them (or, with --update, of the current apt candidates). `tables` prints README's tables
from a build's stats.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from training import docs, lexicon, manifest, report  # noqa: E402
from training.build import finish_all, new_languages, write_stats  # noqa: E402
from training.catalogs import CatalogError, language_of, parse_mo  # noqa: E402
from training.gold import GoldFilter, read_gold_sentences  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("XLALIGN_CACHE", Path.home() / ".cache" / "xlalign")) / "training"
MANIFEST = ROOT / "scripts" / "training" / "packages.json"


def default_gold() -> Path:
    full = ROOT.parent / "shared" / "data" / "gold"
    return full if full.is_dir() else ROOT / "tests" / "data" / "gold"


def cmd_pin(args) -> int:
    m = manifest.load(args.manifest)
    for e in m["catalogs"] + m.get("documents", []) + m.get("dictionaries", []):
        if args.packages and e["package"] not in args.packages:
            continue
        if manifest.pin(args.cache, e, args.update):
            print(f"pinned {e['package']}={e['version']} sha256 {e['sha256']}")
    manifest.save(args.manifest, m)
    return 0


def cmd_build(args) -> int:
    t0 = time.time()
    m = manifest.load(args.manifest)
    gold_sentences = read_gold_sentences(args.gold)
    if not gold_sentences:
        print(f"no gold sentences under {args.gold}", file=sys.stderr)
        return 2
    gold = GoldFilter(gold_sentences)
    langs = new_languages()
    per_package = {}
    for e in m["catalogs"]:
        deb = manifest.fetch(args.cache, e)
        n = 0
        for path, data in manifest.members(deb, lambda p: language_of(p) is not None):
            try:
                entries = parse_mo(data)
            except CatalogError as err:
                print(f"  skipped {e['package']}:{path}: {err}", file=sys.stderr)
                continue
            langs[language_of(path)].add_catalog(entries)
            n += 1
        per_package[f"{e['package']}={e['version']}"] = n
        print(f"{e['package']}={e['version']}: {n} catalogs", file=sys.stderr)
    stats = {"manifest": str(args.manifest.relative_to(ROOT)) if args.manifest.is_relative_to(ROOT)
             else str(args.manifest),
             "gold_dir": str(args.gold), "gold_sentences": len(gold_sentences),
             "catalogs_per_package": per_package}
    stats["languages"], stats["files"] = finish_all(langs, gold, args.out)
    if m.get("documents"):
        stats["documents"] = build_documents(args, m["documents"], gold)
    if m.get("dictionaries") or m.get("wheel_dictionaries"):
        stats["lexicon"] = lexicon.build(args.cache, m.get("dictionaries", []), args.out / "lexicon",
                                         gold, m.get("wheel_dictionaries", []))
    stats["seconds"] = round(time.time() - t0, 1)
    write_stats(args.out / "stats.json", stats)
    for lang, s in stats["languages"].items():
        print(f"{lang}: {s['catalogs']} catalogs, {s['entries']} entries, {s['pairs']} pairs "
              f"({s['gold_overlap']} removed as gold overlap)")
    for lang, s in stats.get("documents", {}).get("languages", {}).items():
        print(f"{lang} (manuals): {s['pages']} pages, {s['entries']} sentences, {s['pairs']} pairs "
              f"({s['gold_overlap']} removed as gold overlap)")
    print(f"wrote {args.out} in {stats['seconds']} s")
    return 0


def build_documents(args, entries: list[dict], gold: GoldFilter) -> dict:
    """The manuals' sentence pairs, cleaned and filtered like the catalogs' but kept apart in
    OUT/docs/ (prose, unlike UI strings: training chooses the share of each)."""
    by_lang, per_package = docs.read_manuals(args.cache, entries,
                                             lambda line: print(line, file=sys.stderr))
    langs = new_languages()
    for lang, pages in by_lang.items():
        for pairs in pages:
            langs[lang].add_page(pairs)
    stats, files = finish_all(langs, gold, args.out / "docs")
    return {"pages_per_package": per_package, "languages": stats,
            "files": {lang: f"docs/{name}" for lang, name in files.items()}}


def cmd_tables(args) -> int:
    print(report.tables(json.loads((args.out / "stats.json").read_text(encoding="utf-8"))))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", type=Path, default=MANIFEST)
    ap.add_argument("--cache", type=Path, default=CACHE, help="downloads (default: %(default)s)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="download, clean, write the pair files and stats.json")
    b.add_argument("--gold", type=Path, default=default_gold(),
                   help="gold sets to keep out (default: %(default)s)")
    b.add_argument("--out", type=Path, default=CACHE / "data", help="(default: %(default)s)")
    p = sub.add_parser("pin", help="record versions and sha256 in the manifest")
    p.add_argument("--update", action="store_true", help="move every entry to apt's candidate")
    p.add_argument("packages", nargs="*")
    t = sub.add_parser("tables", help="print README's tables from OUT/stats.json")
    t.add_argument("--out", type=Path, default=CACHE / "data", help="(default: %(default)s)")
    args = ap.parse_args()
    try:
        return {"pin": cmd_pin, "build": cmd_build, "tables": cmd_tables}[args.cmd](args)
    except manifest.ManifestError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
