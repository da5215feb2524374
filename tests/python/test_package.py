"""The Python package (crates/xlalign-py), installed by setup: results equal the CLI's for the
same pairs and settings, errors are the package's exceptions with the core's messages, a bad
pair in a batch loses nothing else, the encoder runs without the GIL, and the SimAlign
drop-in gives the CLI's links for each method.

Needs the default model (``XLALIGN_MODEL``, set by scripts/test.sh) and the CLI
(``XLALIGN_BIN``)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

xlalign = pytest.importorskip("xlalign", reason="run scripts/setup.sh (it installs the package)")
from xlalign.simalign import SentenceAligner  # noqa: E402

from package_support import GOLD, cli, gold, model  # noqa: E402

RAW_PAIRS = [
    ("The house is small.", "Das Haus ist klein."),
    ("He paid 1,234.50 € for 3 books.", "Il a payé 1 234,50 € pour 3 livres."),
    ("The old lighthouse keeper walked along the shore.", "年老的灯塔看守人沿着海岸散步。"),
    ("I like green tea.", "緑茶が好きです。"),
]




@pytest.fixture(scope="module")
def aligner():
    return xlalign.Aligner(model(), backend="cpu")



def _cli_json(pairs, *flags):
    text = "".join(f"{s} ||| {t}\n" for s, t in pairs)
    out = subprocess.run(
        [cli(), "align", "--model", model(), "--backend", "cpu", "--format", "json", *flags],
        input=text.encode(),
        capture_output=True,
        check=True,
    )
    return [json.loads(l) for l in out.stdout.decode().splitlines()]


def test_raw_pairs_equal_the_cli(aligner):
    want = _cli_json(RAW_PAIRS, "--words", "raw", "--sentence-cosine")
    got = aligner.align_batch(RAW_PAIRS)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.pairs() == [(l["src"], l["tgt"]) for l in w["links"]]
        assert [x.text for x in g.src_words] == [x["text"] for x in w["srcWords"]]
        assert g.similarity.cosine == pytest.approx(w["similarity"]["cosine"], abs=1e-5)
        assert g.layer == w["layer"] and g.method == w["method"]
    # Offsets index the Python string.
    for (s, t), g in zip(RAW_PAIRS, got):
        for w in g.src_words:
            assert s[w.char_start : w.char_end] == w.text
        for w in g.tgt_words:
            assert t[w.char_start : w.char_end] == w.text


@pytest.mark.parametrize("method", ["argmax", "itermax", "match", "softmax"])
def test_pretokenised_gold_lines_equal_the_cli(aligner, method):
    pairs = gold("enfr", 20) + gold("zhen", 10)
    want = _cli_json(pairs, "--method", method)
    got = aligner.align_batch(
        [(s.split(" "), t.split(" ")) for s, t in pairs], method=method, sentence_cosine=False
    )
    assert [g.pharaoh() for g in got] == [" ".join(f"{l['src']}-{l['tgt']}" for l in w["links"]) for w in want]
    # The same as pre-tokenised strings.
    again = aligner.align_batch(pairs, method=method, pretokenized=True, sentence_cosine=False)
    assert [g.pharaoh() for g in again] == [g.pharaoh() for g in got]


def test_a_bad_pair_keeps_the_others_in_order(aligner):
    pairs = [RAW_PAIRS[0], ("", "leer"), RAW_PAIRS[1], "not a pair", ("x" * (1 << 20 + 1), "y"), RAW_PAIRS[0]]
    got = aligner.align_batch(pairs, batch_size=2)
    assert [type(g).__name__ for g in got] == [
        "Alignment", "PairError", "Alignment", "PairError", "PairError", "Alignment"
    ]
    assert [g.index for g in got if isinstance(g, xlalign.PairError)] == [1, 3, 4]
    assert isinstance(got[1].cause, xlalign.InputError)
    assert "no words" in str(got[1]) and "pair 1" in str(got[1])
    assert "byte limit" in str(got[4])
    assert got[0].pharaoh() == got[5].pharaoh() == aligner.align(*RAW_PAIRS[0]).pharaoh()
    with pytest.raises(xlalign.PairError, match="pair 1"):
        aligner.align_batch(pairs, errors="raise")
    seen = []
    assert len(list(aligner.align_stream(iter(pairs), batch_size=4, progress=seen.append))) == 6
    assert seen == [4, 6]


def test_errors_are_exceptions_with_the_core_messages(aligner, tmp_path):
    with pytest.raises(xlalign.InputError, match="unknown field `methd`"):
        aligner.align("a", "b", methd="argmax")
    with pytest.raises(xlalign.InputError, match="layer 40 does not exist"):
        aligner.align("a", "b", layer=40)
    with pytest.raises(xlalign.InputError, match="finite"):
        aligner.align("a", "b", threshold=float("nan"))
    with pytest.raises(ValueError, match="has no words"):  # InputError is a ValueError
        aligner.align("   ", "b")
    with pytest.raises(xlalign.FileError, match="not found"):
        xlalign.Aligner(str(tmp_path / "none.gguf"))
    # A truncated model: the CLI's message, from the same core.
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(Path(model()).read_bytes()[:5_000_000])
    with pytest.raises(xlalign.ModelError) as e:
        xlalign.Aligner(str(cut), backend="cpu")
    ran = subprocess.run(
        [cli(), "align", "--model", str(cut), "--backend", "cpu"], input="a ||| b\n", capture_output=True, text=True
    )
    assert ran.returncode != 0
    assert str(e.value) in ran.stderr, (str(e.value), ran.stderr)
    not_gguf = tmp_path / "page.gguf"
    not_gguf.write_text("<html>not a model</html>")
    with pytest.raises(xlalign.ModelError, match="invalid model file"):
        xlalign.Aligner(str(not_gguf), backend="cpu")
    with pytest.raises(xlalign.InputError, match="backend"):
        xlalign.Aligner(model(), backend="tpu")


def test_encode_once_extract_many(aligner):
    s, t = RAW_PAIRS[1]
    enc = aligner.encode(s, t, layer=6)
    assert enc.layer == 6
    for method in ["argmax", "itermax", "softmax"]:
        assert enc.extract(method=method).pharaoh() == aligner.align(s, t, layer=6, method=method).pharaoh()
    with pytest.raises(xlalign.InputError, match="changes the encoding"):
        enc.extract(layer=5)
    with pytest.raises(xlalign.InputError, match="extraction option"):
        aligner.encode(s, t, method="argmax")


def _softmax_links(st: "xlalign.States", temperature: float, threshold: float):
    """The default method computed in numpy from the states: softmax over dot products by
    rows and by columns, a row pair linked when both pass the threshold, lifted to words
    through each row's word(s)."""
    logits = st.src @ st.tgt.T / np.float32(temperature)
    fwd = np.exp(logits - logits.max(axis=1, keepdims=True))
    fwd /= fwd.sum(axis=1, keepdims=True)
    rev = np.exp(logits - logits.max(axis=0, keepdims=True))
    rev /= rev.sum(axis=0, keepdims=True)

    def words_of(words, shared):
        out = [[int(w)] for w in words]
        for row, w in shared:
            out[row].append(int(w))
        return out

    src, tgt = words_of(st.src_words, st.src_shared), words_of(st.tgt_words, st.tgt_shared)
    rows, cols = np.nonzero(np.minimum(fwd, rev) > np.float32(threshold))
    return sorted({(a, b) for i, j in zip(rows, cols) for a in src[i] for b in tgt[j]})


def test_states_are_what_extraction_sees(aligner):
    rec = aligner.model["recommendation"]["options"]
    assert (rec["method"], rec["level"], rec["direction"]) == ("softmax", "subword", "both")
    pairs = gold("enfr", 15) + gold("roen", 15) + gold("jaen", 15) + gold("zhen", 15)
    pairs = [(s.split(" "), t.split(" ")) for s, t in pairs]
    encoded = aligner.encode_batch(pairs, batch_size=8, sentence_cosine=False)
    shared_rows = 0
    for (s, t), enc in zip(pairs, encoded):
        st = enc.states()
        hidden = aligner.model["hidden"]
        assert st.src.dtype == np.float32 and st.src.shape[1] == st.tgt.shape[1] == hidden
        assert st.src_words.shape == (len(st.src),) and st.tgt_words.shape == (len(st.tgt),)
        assert (st.n_src_words, st.n_tgt_words, st.layer) == (len(s), len(t), enc.layer)
        for words, shared, n in [
            (st.src_words, st.src_shared, st.n_src_words),
            (st.tgt_words, st.tgt_shared, st.n_tgt_words),
        ]:
            assert ((0 <= words) & (words < n)).all()
            # Rows come in text order, so their words never go back.
            assert (np.diff(words) >= 0).all()
            assert shared.shape[1] == 2 and (shared >= 0).all()
            assert (shared[:, 0] < len(words)).all() and (shared[:, 1] < n).all()
            shared_rows += len(shared)
        # The default extraction, in numpy from these rows alone, gives the aligner's links.
        want = sorted(aligner.extract(enc).pairs())
        assert _softmax_links(st, rec["temperature"], rec["threshold"]) == want
        assert want == sorted(aligner.align(s, t, sentence_cosine=False).pairs())
    # The Japanese gold words split the tokenizer's pieces: some rows serve several words.
    assert shared_rows > 0


def test_states_at_word_average_level(aligner):
    s, t = gold("enfr", 1)[0]
    enc = aligner.encode(s.split(" "), t.split(" "), layer=6)
    sub, avg = enc.states(), enc.states("word-average")
    assert avg.layer == 6
    # One row per word with subwords: the mean of that word's subword rows.
    assert list(avg.src_words) == sorted(set(sub.src_words))
    for row, w in enumerate(avg.src_words):
        assert np.allclose(avg.src[row], sub.src[sub.src_words == w].mean(axis=0), atol=1e-5)
    assert avg.src_shared.shape == (0, 2)
    with pytest.raises(xlalign.InputError, match="level"):
        enc.states("sentence")


def test_encode_batch_keeps_a_bad_pair_in_its_place(aligner):
    got = aligner.encode_batch([("Hello world", "Hallo Welt"), ("", "leer"), ("Yes", "Ja")], batch_size=2)
    assert isinstance(got[0], xlalign.Encoded) and isinstance(got[2], xlalign.Encoded)
    assert isinstance(got[1], xlalign.PairError) and got[1].index == 1
    assert isinstance(got[1].cause, xlalign.InputError)
    assert got[2].extract().pharaoh() == aligner.align("Yes", "Ja").pharaoh()


def test_embed_and_similarity(aligner):
    e = aligner.embed(["Hello world", "Hallo Welt", "Completely unrelated text about volcanoes."])
    assert e.shape == (3, aligner.model["hidden"]) and e.dtype == np.float32
    assert np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    one = aligner.embed("Hello world")
    assert one.shape == (aligner.model["hidden"],) and np.allclose(one, e[0], atol=1e-6)
    sim = aligner.similarity("Hello world", "Hallo Welt")
    assert sim == pytest.approx(float(e[0] @ e[1]), abs=1e-6)
    assert sim > float(e[0] @ e[2])
    many = aligner.similarity(["Hello world", "Hello world"], ["Hallo Welt", "Completely unrelated text about volcanoes."])
    assert many.shape == (2,) and many[0] == pytest.approx(sim, abs=1e-6)
    # The CLI's cosine for the same pair.
    want_cli = _cli_json([("Hello world", "Hallo Welt")], "--words", "raw", "--sentence-cosine")
    assert sim == pytest.approx(want_cli[0]["similarity"]["cosine"], abs=1e-5)
    with pytest.raises(xlalign.InputError, match="prefix"):
        aligner.embed(["x"], prefix="title")


def test_the_encoder_runs_without_the_gil():
    """While one thread is inside a long native call, another keeps running Python."""
    al = xlalign.Aligner(model(), backend="cpu", threads=1)
    pairs = gold("enfr", 60)
    ticks, running = [], threading.Event()
    result = {}

    def work():
        running.set()
        t0 = time.perf_counter()
        result["out"] = al._native.align_batch(pairs, json.dumps({"pretokenized": True}))
        result["span"] = (t0, time.perf_counter())

    th = threading.Thread(target=work)
    th.start()
    running.wait()
    while th.is_alive():
        ticks.append(time.perf_counter())
        time.sleep(0.001)
    th.join()
    t0, t1 = result["span"]
    inside = [t for t in ticks if t0 <= t <= t1]
    gaps = np.diff([t0, *inside, t1])
    # Holding the GIL, the call would leave one gap as long as itself.
    assert len(result["out"]) == 60 and max(gaps) < 0.5 * (t1 - t0), (max(gaps), t1 - t0)


def test_threads_share_one_aligner(aligner):
    pairs = gold("roen", 12)
    want = [a.pharaoh() for a in aligner.align_batch(pairs, pretokenized=True)]
    out = [None] * 3

    def run(k):
        out[k] = [a.pharaoh() for a in aligner.align_batch(pairs, pretokenized=True, batch_size=5)]

    threads = [threading.Thread(target=run, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == [want] * 3


def test_simalign_drop_in_gives_the_cli_links():
    sa = SentenceAligner(model=model(), token_type="bpe", matching_methods="maifr", device="cpu")
    pairs = gold("roen", 8)
    by_method = {m: _cli_json(pairs, "--method", m, "--threshold", "0") if m == "argmax" else _cli_json(pairs, "--method", m)
           for m in ["argmax", "itermax", "match"]}
    fwd = _cli_json(pairs, "--method", "argmax", "--direction", "forward")
    for k, (s, t) in enumerate(pairs):
        got = sa.get_word_aligns(s.split(" "), t)  # a list and a string, as SimAlign takes them
        assert list(got) == ["mwmf", "inter", "itermax", "fwd", "rev"]
        as_pairs = lambda w: sorted((l["src"], l["tgt"]) for l in w["links"])  # noqa: E731
        assert got["inter"] == as_pairs(by_method["argmax"][k])
        assert got["itermax"] == as_pairs(by_method["itermax"][k])
        assert got["mwmf"] == as_pairs(by_method["match"][k])
        assert got["fwd"] == as_pairs(fwd[k])
        assert all(isinstance(p, tuple) and len(p) == 2 for p in got["rev"])
    word = SentenceAligner(model=model(), token_type="word", matching_methods="a", device="cpu")
    s, t = pairs[3]
    word_cli = _cli_json([(s, t)], "--method", "argmax", "--level", "word-average")
    assert word.get_word_aligns(s, t)["inter"] == sorted((l["src"], l["tgt"]) for l in word_cli[0]["links"])
    assert sa.get_word_aligns([], ["x"]) == {"mwmf": [], "inter": [], "itermax": [], "fwd": [], "rev": []}
    with pytest.raises(xlalign.InputError, match="matching_methods"):
        SentenceAligner(model=model(), matching_methods="z")


def test_an_aligner_pickles_as_its_settings(aligner):
    import pickle

    again = pickle.loads(pickle.dumps(aligner))
    assert again is not aligner and again.backend.kind == "cpu"
    assert again.align(*RAW_PAIRS[0]).pharaoh() == aligner.align(*RAW_PAIRS[0]).pharaoh()


def test_score_and_mexa_equal_the_cli(aligner, tmp_path):
    pairs = [p for p in gold("enfr", 60) + gold("roen", 30) if len(p[0].split()) > 6][:45]
    # A wrong pairing among them: it scores below the true pairs.
    pairs.append((pairs[0][0], pairs[5][1]))
    f = tmp_path / "pairs.txt"
    f.write_text("".join(f"{s} ||| {t}\n" for s, t in pairs) + "\n", encoding="utf-8")
    ran = subprocess.run(
        [cli(), "score", "--model", model(), "--backend", "cpu", "--input", str(f), "--format", "json",
         "--block", "20", "--min-margin", "1.02"],
        capture_output=True, text=True,
    )
    assert ran.returncode == 2, ran.stderr  # the empty last line
    want = [json.loads(l) for l in ran.stdout.splitlines()]
    got = aligner.score(pairs + [("", "")], block=20, min_margin=1.02)
    assert len(got) == len(want) == len(pairs) + 1
    for g, w in zip(got[:-1], want):
        assert g.margin == pytest.approx(w["margin"], abs=1e-5) and g.keep == w["keep"], (g, w)
        assert g.cosine == pytest.approx(w["cosine"], abs=1e-5)
        assert (g.src_tokens, g.tgt_tokens) == (w["srcTokens"], w["tgtTokens"])
    assert isinstance(got[-1], xlalign.PairError) and got[-1].index == len(pairs)
    # Streamed, a block at a time: the same scores, the same blocks, errors at their place.
    seen = []
    streamed = list(aligner.score_stream(iter(pairs + [("", "")]), block=20, min_margin=1.02, progress=seen.append))
    assert [getattr(s, "margin", None) for s in streamed] == [getattr(g, "margin", None) for g in got]
    assert streamed[-1].index == len(pairs) and seen == [20, len(pairs) + 1]
    assert got[-2].margin < sorted(g.margin for g in got[:-2])[len(got) // 10]
    with pytest.raises(xlalign.InputError, match="block"):
        aligner.score(pairs, block=0)
    # Items that are not pairs, and a pre-tokenised pair among raw ones, are errors in place;
    # the pairs around them score as before.
    odd = aligner.score(pairs[:3] + [("only one",), (["pre", "tokenised"], ["déjà", "fait"])] + pairs[3:4])
    assert [type(r).__name__ for r in odd] == ["PairScore"] * 3 + ["PairError"] * 2 + ["PairScore"]
    assert [r.index for r in odd[3:5]] == [3, 4] and "pre-tokenised" in str(odd[4])

    src, tgt = [s for s, _ in pairs[:-1]], [t for _, t in pairs[:-1]]
    ran = subprocess.run(
        [cli(), "mexa", "--model", model(), "--backend", "cpu", "--src", "/dev/stdin", "--tgt", str(tmp_path / "t"),
         "--words", "pretokenized", "--layers", "0,7,12", "--block", "25", "--format", "json"],
        input="\n".join(src) + "\n", capture_output=True, text=True,
    ) if (tmp_path / "t").write_text("\n".join(tgt) + "\n", encoding="utf-8") else None
    assert ran.returncode == 0, ran.stderr
    want = json.loads(ran.stdout)["layers"]
    got = aligner.mexa(src, tgt, layers=[0, 7, 12], pretokenized=True, block=25)
    assert [g.layer for g in got] == [w["layer"] for w in want] == [0, 7, 12]
    for g, w in zip(got, want):
        assert g.mexa == pytest.approx(w["mexa"], abs=1e-6) and g.pairs == w["pairs"] == len(src)
    assert got[1].mexa > got[0].mexa
    with pytest.raises(xlalign.InputError, match="parallel"):
        aligner.mexa(src, tgt[:-1])
