"""The alignment fine-tuning (`scripts/train-align.py`) end to end on a tiny model: a few
steps lower the held-out loss, the delta holds only re-quantised tensors of the blocks below
the alignment layer, and the model `xlalign delta apply` builds from it loads and aligns.

Needs jax and optax (setup installs them); the binary is found as in test_hf_convert.py.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
pytest.importorskip("jax")
pytest.importorskip("optax")

sys.path.insert(0, str(Path(__file__).parent))
import make_tiny_model as tiny  # noqa: E402
from test_hf_convert import run, xlalign  # noqa: E402,F401  (fixture)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))


def _pairs(rng: random.Random, n: int) -> list[str]:
    """Parallel lines over the tiny vocabulary: the target is the source reversed, so words
    link across positions."""
    lines = []
    for _ in range(n):
        words = rng.sample(tiny.WORDS, rng.randint(3, 8))
        lines.append(f"{' '.join(words)} ||| {' '.join(reversed(words))}")
    return lines


def _tiny_model_and_pairs(xlalign, tmp_path: Path, seed: int) -> tuple[Path, Path]:  # noqa: F811
    """A tiny Q4_0 model and a data folder of 400 pairs over its vocabulary (`xx-en.txt`)."""
    tiny.make_xlmr(tmp_path / "hf")
    base = tmp_path / "tiny-q4_0.gguf"
    run(xlalign, "convert", "hf", str(tmp_path / "hf"), "--type", "q4_0", "-o", str(base))
    data = tmp_path / "data"
    data.mkdir()
    (data / "xx-en.txt").write_text("\n".join(_pairs(random.Random(seed), 400)) + "\n", encoding="utf-8")
    return base, data


def test_a_few_steps_lower_the_loss_and_write_a_loadable_delta(xlalign, tmp_path):  # noqa: F811
    base, data = _tiny_model_and_pairs(xlalign, tmp_path, seed=3)
    delta, full, summary = tmp_path / "d.gguf", tmp_path / "tuned.gguf", tmp_path / "s.json"
    p = subprocess.run(
        [sys.executable, str(ROOT / "scripts/train-align.py"), "--model", str(base),
         "--tokenizer", str(tmp_path / "hf/tokenizer.json"), "--data", str(data), "--langs", "xx-en",
         "--per-lang", "400", "--steps", "40", "--tokens", "256", "--lr", "1e-4", "--norm", "0",
         "--out", str(delta), "--full", str(full), "--summary", str(summary),
         "--bin", str(xlalign)],
        capture_output=True, text=True, timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    s = json.loads(summary.read_text())
    assert s["held_out_after"] < s["held_out_before"] * 0.9, s

    layer = s["layer"]
    base_r, delta_r = gguf.GGUFReader(str(base)), gguf.GGUFReader(str(delta))
    types = {t.name: t.tensor_type for t in base_r.tensors}
    names = [t.name for t in delta_r.tensors]
    assert names, "training changed no tensor"
    for t in delta_r.tensors:
        assert t.name.startswith("blk."), t.name
        assert int(t.name.split(".")[1]) < layer, t.name
        assert t.tensor_type == types[t.name], t.name

    # The full model `xlalign delta apply` built differs from the base exactly in the
    # delta's tensors, is named, and runs.
    tuned_r = gguf.GGUFReader(str(full))
    assert tuned_r.fields["general.name"].contents() == "multilingual-e5-small-align"
    for a, b in zip(base_r.tensors, tuned_r.tensors):
        same = np.asarray(a.data).tobytes() == np.asarray(b.data).tobytes()
        assert same == (a.name not in names), a.name
    run(xlalign, "info", str(full))
    out = run(xlalign, "align", "--model", str(full), stdin="the small cat ||| cat small the\n")
    links = out.stdout.split()
    assert links and all(len(link.split("-")) == 2 for link in links), out.stdout


def _lexicon(tmp_path, lines):
    from training.anchors import Lexicon

    path = tmp_path / "lex.tsv"
    path.write_text("".join(f"{a}\t{b}\n" for a, b in lines), encoding="utf-8")
    return Lexicon(path, swap=False)


def test_anchors_are_the_unambiguous_dictionary_pairs(tmp_path):
    from training.anchors import anchors

    lex = _lexicon(tmp_path, [("haus", "house"), ("klein", "small"), ("das", "the"), ("die", "the"), ("猫", "cat"), ("小猫", "kitten")])

    def pairs(src, tgt):
        return sorted((src[a:b], tgt[c:d]) for (a, b), (c, d) in anchors(lex, src, tgt))

    assert pairs("Das Haus ist klein.", "The house is small.") == [("Das", "The"), ("Haus", "house"), ("klein", "small")]
    # "the" has two dictionary partners in the source, "Haus" occurs twice: neither anchors.
    assert pairs("Das Haus, die Haus klein", "the house small") == [("klein", "small")]
    # A side without spaces: dictionary substrings of two or more characters are words.
    assert pairs("我的小猫很可爱", "my kitten is cute") == [("小猫", "kitten")]


def test_anchor_links_reach_the_subword_rows(tmp_path):
    from tokenizers import Tokenizer

    from training import tune

    tiny.make_xlmr(tmp_path / "hf")
    tok = Tokenizer.from_file(str(tmp_path / "hf/tokenizer.json"))
    lex = _lexicon(tmp_path, [("cat", "cat"), ("rivers", "rivers")])
    p = tune.pair(tok, "", "the cat sees rivers", "rivers see the cat", lex)
    src = tok.encode("the cat sees rivers")
    tgt = tok.encode("rivers see the cat")
    got = sorted((src.tokens[i], tgt.tokens[j]) for i, j in p.anchors)
    # "rivers" splits into sub-words: every pair of their rows is linked, once.
    assert src.tokens[-3:-1] == ["▁river", "s"] and tgt.tokens[1:3] == ["▁river", "s"]
    river = [(a, b) for a in ("▁river", "s") for b in ("▁river", "s")]
    assert got == sorted([("▁cat", "▁cat")] + river)


def test_the_parallel_sentence_term_trains_the_pooled_embeddings(xlalign, tmp_path):  # noqa: F811
    """`--psi` alone (no self-training, no norm term): its contrastive loss on the held-out
    batches falls, so the gradient reaches the tuned blocks through the frozen ones above."""
    base, data = _tiny_model_and_pairs(xlalign, tmp_path, seed=5)
    summary = tmp_path / "s.json"
    p = subprocess.run(
        [sys.executable, str(ROOT / "scripts/train-align.py"), "--model", str(base),
         "--tokenizer", str(tmp_path / "hf/tokenizer.json"), "--data", str(data), "--langs", "xx-en",
         "--per-lang", "400", "--steps", "30", "--tokens", "256", "--lr", "3e-4", "--so", "0",
         "--norm", "0", "--psi", "1", "--out", str(tmp_path / "d.gguf"), "--summary", str(summary),
         "--bin", str(xlalign)],
        capture_output=True, text=True, timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    s = json.loads(summary.read_text())
    before, after = s["parts_before"]["psi"], s["parts_after"]["psi"]
    assert before > 0 and after < before * 0.9, (before, after)
