#!/usr/bin/env python3
"""Assembles the web app into a folder (scripts/build-web.sh's last step): the page from
web/index.html, its stylesheet and icon, the page's own wasm (wasm-bindgen output), the
package's browser files, the models, and the stamped service worker.

web/index.html is the page as it ships, except for ``<link data-build …>`` lines, which say
what to put there:

    <link data-build rel="css" href="style.css" />          stylesheet, content-hashed name
    <link data-build rel="icon" href="favicon.svg" />       icon, content-hashed name
    <link data-build rel="app" />                           the page's module script and preloads
    <link data-build rel="copy-file" href="F" data-target-path="DIR" />   F into DIR/
    <link data-build rel="copy-dir" href="D" />             folder D under its own name

Paths in ``href`` are relative to web/. The stylesheet, the icon and the page's wasm and JS
get a content hash in their names and a Subresource Integrity digest (sha384), so a cache
that outlives a build never mixes two builds; the package's files keep their names (the
worker asks for them by name) and, like the page, are revalidated (scripts/serve-web.sh).
Links are relative, so the app also works below a path prefix. The models are hard-linked
where the file system allows (they are 65 MB each and never change in place).

usage: web/assemble.py --out DIR --app-js F.js --app-wasm F_bg.wasm
"""

import argparse
import base64
import hashlib
import html
import os
import re
import shutil
import sys
from pathlib import Path

WEB = Path(__file__).resolve().parent
sys.path.insert(0, str(WEB))
import sw_stamp  # noqa: E402  (web/sw_stamp.py, next to this file)

LINK = re.compile(r"^(?P<indent>[ \t]*)<link data-build (?P<attrs>[^>]*?)\s*/?>[ \t]*\n", re.M)
ATTR = re.compile(r'([\w-]+)="([^"]*)"')


class BuildError(Exception):
    pass


def digest_name(name: str, data: bytes) -> str:
    """`stem-<16 hex of sha256>.ext`, wasm-bindgen's `_bg.wasm` suffix kept whole."""
    h = hashlib.sha256(data).hexdigest()[:16]
    suffix = "_bg.wasm" if name.endswith("_bg.wasm") else Path(name).suffix
    return f"{name[: len(name) - len(suffix)]}-{h}{suffix}"


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def copy_file(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def hashed(out: Path, src: Path) -> tuple[str, str]:
    """Copies `src` into `out` under its content-hashed name; returns (name, SRI digest)."""
    if not src.is_file():
        raise BuildError(f"{src} is missing")
    data = src.read_bytes()
    name = digest_name(src.name, data)
    (out / name).write_bytes(data)
    return name, sri(data)


def expand(link: dict[str, str], web: Path, out: Path, app_js: Path, app_wasm: Path) -> str:
    rel = link.get("rel", "")

    def source() -> Path:
        """The file or folder `href` names, relative to `web`."""
        if not link.get("href"):
            raise BuildError(f'<link data-build rel="{rel}"> has no href')
        return (web / link["href"]).resolve()

    if rel in ("css", "icon"):
        name, digest = hashed(out, source())
        kind = "stylesheet" if rel == "css" else "icon"
        return f'<link rel="{kind}" href="./{name}" integrity="{digest}" />'
    if rel == "app":
        js, js_sri = hashed(out, app_js)
        wasm, wasm_sri = hashed(out, app_wasm)
        return "\n".join(
            [
                f'<link rel="modulepreload" href="./{js}" crossorigin="anonymous" integrity="{js_sri}" />',
                f'<link rel="preload" href="./{wasm}" as="fetch" type="application/wasm" crossorigin="anonymous" integrity="{wasm_sri}" />',
                '<script type="module">',
                f'import init from "./{js}";',
                f'await init({{ module_or_path: "./{wasm}" }});',
                "</script>",
            ]
        )
    if rel == "copy-file":
        src = source()
        if not src.is_file():
            raise BuildError(f"{src} is missing")
        copy_file(src, out / link.get("data-target-path", "") / src.name)
        return ""
    if rel == "copy-dir":
        src = source()
        if not src.is_dir():
            raise BuildError(f"{src} is not a folder")
        for f in sorted(src.rglob("*")):
            if f.is_file():
                link_or_copy(f, out / src.name / f.relative_to(src))
        return ""
    raise BuildError(f'<link data-build rel="{rel}"> is not a known directive')


def assemble(out: Path, app_js: Path, app_wasm: Path, web: Path = WEB) -> int:
    """Fills `out` from `web`/index.html; 0 when done (sw_stamp's status), BuildError else."""
    page = (web / "index.html").read_text(encoding="utf-8")
    out.mkdir(parents=True, exist_ok=True)

    rels: list[str] = []

    def replace(m: re.Match) -> str:
        attrs = {k: html.unescape(v) for k, v in ATTR.findall(m.group("attrs"))}
        rels.append(attrs.get("rel", ""))
        text = expand(attrs, web, out, app_js, app_wasm)
        return "".join(m.group("indent") + line + "\n" for line in text.splitlines())

    page = LINK.sub(replace, page)
    if "<link data-build" in page:
        raise BuildError("web/index.html has a data-build link this assembler did not read")
    if rels.count("app") != 1:
        raise BuildError(f'web/index.html needs one <link data-build rel="app" />, has {rels.count("app")}')
    (out / "index.html").write_text(page, encoding="utf-8")
    return sw_stamp.stamp(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder to fill (created)")
    ap.add_argument("--app-js", type=Path, required=True, help="wasm-bindgen's JS for the page")
    ap.add_argument("--app-wasm", type=Path, required=True, help="wasm-bindgen's _bg.wasm")
    a = ap.parse_args()
    try:
        return assemble(a.out, a.app_js, a.app_wasm)
    except BuildError as e:
        print(f"assemble: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
