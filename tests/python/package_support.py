"""What the Python package's tests share: the checkout, the default model and the CLI they
compare with (scripts/test.sh exports XLALIGN_MODEL and XLALIGN_BIN), and the gold slices."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GOLD = REPO / "tests/data/gold"


def model() -> str:
    m = os.environ.get("XLALIGN_MODEL", str(REPO / "public/models/multilingual-e5-small-q4_0.gguf"))
    if not Path(m).is_file():
        pytest.fail(f"model {m} missing: run scripts/setup.sh")
    return m


def cli() -> str:
    b = os.environ.get("XLALIGN_BIN")
    if not b or not Path(b).is_file():
        pytest.fail("set XLALIGN_BIN to the CLI (scripts/test.sh does)")
    return b


def gold(name: str, n: int):
    """The first ``n`` pairs of a gold slice, pre-tokenised."""
    src = (GOLD / name / f"{name}.src").read_text(encoding="utf-8").splitlines()[:n]
    tgt = (GOLD / name / f"{name}.tgt").read_text(encoding="utf-8").splitlines()[:n]
    return list(zip(src, tgt))
