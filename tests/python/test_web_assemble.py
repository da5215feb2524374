"""The web app's assembly step (web/assemble.py, run by scripts/build-web.sh) on a page made
here: content-hashed names with integrity digests that match the bytes, the page's module
script, copies of files and folders, the stamped service worker, and clear errors for a
missing file or an unknown directive. The real build is checked by the end-to-end suite."""

import base64
import hashlib
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "web"))

import assemble  # noqa: E402

PAGE = """<!DOCTYPE html>
<html>
<head>
    <title>t</title>
    <link data-build rel="css" href="style.css" />
    <link data-build rel="icon" href="icon.svg" />
    <!-- comment that names data-build -->
    <link data-build rel="app" />
    <link data-build rel="copy-file" href="../pkg/worker.js" data-target-path="pkg" />
    <link data-build rel="copy-dir" href="../models" />
    <link data-build rel="copy-file" href="sw.js" />
</head>
<body></body>
</html>
"""
SW = 'const BUILD = "__XLALIGN_BUILD__";\nconst SHELL = [/*__XLALIGN_SHELL__*/];\n'


@pytest.fixture
def site(tmp_path: Path) -> dict[str, Path]:
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text(PAGE)
    (web / "style.css").write_text("body { color: red }")
    (web / "icon.svg").write_text("<svg/>")
    (web / "sw.js").write_text(SW)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "worker.js").write_text("worker")
    (tmp_path / "models" / "sub").mkdir(parents=True)
    (tmp_path / "models" / "m.gguf").write_bytes(b"GGUF" + bytes(100))
    (tmp_path / "models" / "sub" / "n.gguf").write_bytes(b"GGUF")
    js = tmp_path / "app.js"
    js.write_text("export default async function init() {}")
    wasm = tmp_path / "app_bg.wasm"
    wasm.write_bytes(b"\0asm\1\0\0\0")
    return {"web": web, "js": js, "wasm": wasm, "out": tmp_path / "dist"}


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def test_assembles_the_page_and_its_files(site):
    out = site["out"]
    assert assemble.assemble(out, site["js"], site["wasm"], web=site["web"]) == 0
    page = (out / "index.html").read_text()
    assert "<link data-build" not in page
    # Every hashed file is referenced with the digest of its own bytes.
    refs = re.findall(r'href="\./([^"]+)"[^>]*integrity="([^"]+)"', page)
    names = {name for name, _ in refs}
    assert len(refs) == 4, page
    for name, digest in refs:
        assert digest == sri((out / name).read_bytes()), name
    css = next(n for n in names if n.endswith(".css"))
    assert re.fullmatch(r"style-[0-9a-f]{16}\.css", css)
    assert (out / css).read_text() == "body { color: red }"
    wasm = next(n for n in names if n.endswith("_bg.wasm"))
    assert re.fullmatch(r"app-[0-9a-f]{16}_bg\.wasm", wasm)
    js = next(n for n in names if n.endswith(".js"))
    assert f'import init from "./{js}";' in page
    assert f'await init({{ module_or_path: "./{wasm}" }});' in page
    assert '<link rel="stylesheet"' in page and '<link rel="icon"' in page
    # Copies keep their names; folders keep their layout.
    assert (out / "pkg" / "worker.js").read_text() == "worker"
    assert (out / "models" / "m.gguf").read_bytes() == b"GGUF" + bytes(100)
    assert (out / "models" / "sub" / "n.gguf").read_bytes() == b"GGUF"
    # The service worker is stamped with every shell file but the page and the models.
    sw = (out / "sw.js").read_text()
    assert re.search(r'const BUILD = "[0-9a-f]{16}";', sw)
    shell = re.search(r"const SHELL = \[(.*)\];", sw).group(1)
    assert sorted(re.findall(r'"([^"]+)"', shell)) == sorted([*names, "pkg/worker.js"])


def test_a_changed_stylesheet_gets_a_new_name(site):
    assemble.assemble(site["out"], site["js"], site["wasm"], web=site["web"])
    first = sorted(p.name for p in site["out"].glob("style-*.css"))
    (site["web"] / "style.css").write_text("body { color: blue }")
    again = site["out"].parent / "dist2"
    assemble.assemble(again, site["js"], site["wasm"], web=site["web"])
    assert sorted(p.name for p in again.glob("style-*.css")) != first


def test_a_missing_file_is_an_error(site):
    (site["web"] / "style.css").unlink()
    with pytest.raises(assemble.BuildError, match="style.css is missing"):
        assemble.assemble(site["out"], site["js"], site["wasm"], web=site["web"])


def test_an_unknown_directive_is_an_error(site):
    page = PAGE.replace('rel="icon" href="icon.svg"', 'rel="inline" href="icon.svg"')
    (site["web"] / "index.html").write_text(page)
    with pytest.raises(assemble.BuildError, match='rel="inline"'):
        assemble.assemble(site["out"], site["js"], site["wasm"], web=site["web"])


def test_a_page_without_the_app_is_an_error(site):
    page = PAGE.replace('    <link data-build rel="app" />\n', "")
    (site["web"] / "index.html").write_text(page)
    with pytest.raises(assemble.BuildError, match='rel="app" />, has 0'):
        assemble.assemble(site["out"], site["js"], site["wasm"], web=site["web"])
    twice = PAGE.replace('    <link data-build rel="app" />\n', '    <link data-build rel="app" />\n' * 2)
    (site["web"] / "index.html").write_text(twice)
    with pytest.raises(assemble.BuildError, match="has 2"):
        assemble.assemble(site["out"].with_name("dist2"), site["js"], site["wasm"], web=site["web"])
