#!/usr/bin/env python3
"""Stamps the service worker (sw.js) of a built app folder with a build id and the list of
files that make up the app shell (web/assemble.py calls it last; `web/sw_stamp.py DIR` alone).

The build id is a hash of every built file (names and bytes), so it changes exactly when the
build changes; the service worker names its cache after it. The model (models/) is left out of
both: the model worker keeps it in its own cache.
"""

import hashlib
import json
import os
import sys
from pathlib import Path

SW = "sw.js"
SKIP_DIRS = {"models"}


def shell_files(stage: Path) -> list[str]:
    files = []
    for root, dirs, names in os.walk(stage):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(names):
            rel = (Path(root) / name).relative_to(stage).as_posix()
            if rel != SW and not name.startswith("."):
                files.append(rel)
    return sorted(files)


def stamp(stage: Path) -> int:
    """Stamps `stage`/sw.js in place; 0 when done, 1 (with a message) when it cannot."""
    sw = stage / SW
    if not stage.is_dir() or not sw.is_file():
        print(f"sw-stamp: no {SW} in {stage!s}", file=sys.stderr)
        return 1
    files = shell_files(stage)
    digest = hashlib.sha256()
    for rel in files:
        digest.update(rel.encode() + b"\0")
        digest.update((stage / rel).read_bytes())
    build = digest.hexdigest()[:16]
    # index.html is the page itself, cached under the app's address ("./").
    shell = [f for f in files if f != "index.html"]
    text = sw.read_text(encoding="utf-8")
    for placeholder in ("__XLALIGN_BUILD__", "/*__XLALIGN_SHELL__*/"):
        if placeholder not in text:
            print(f"sw-stamp: {SW} has no {placeholder} placeholder", file=sys.stderr)
            return 1
    text = text.replace('"__XLALIGN_BUILD__"', json.dumps(build), 1)
    text = text.replace("/*__XLALIGN_SHELL__*/", ", ".join(json.dumps(f) for f in shell), 1)
    sw.write_text(text, encoding="utf-8")
    print(f"sw-stamp: build {build}, {len(shell) + 1} shell files")
    return 0


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: web/sw_stamp.py DIR", file=sys.stderr)
        return 2
    return stamp(Path(sys.argv[1]))


if __name__ == "__main__":
    sys.exit(main())
