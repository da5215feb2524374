#!/usr/bin/env python3
"""A probe, not a shipped model: would a linear map on the frozen alignment layer, trained
awesome-align style on the model's own alignments, lower AER on the gold sets?

Why a probe: an adapter in the core would mean a new tensor in the GGUF, applied to the
alignment layer's states before similarity. Before building that, this measures what it can
give, with numpy only:

1. States: ``xlalign.Encoded.states()`` gives, per pair, exactly the rows the core extracts
   between (specials and bare ``▁`` dropped) and the word of each row. Collected for N
   training pairs per language (``source ||| target`` lines from the training data; raw
   text) and for every gold set (pre-tokenised, as ``xlalign eval`` runs them), cached in
   ``--cache``.
2. Extraction in numpy, the default method's: softmax over ``(S W)(T W)^T / temperature``
   by rows and by columns, a subword pair linked when both probabilities pass the
   threshold, a word pair linked when any of its subword pairs is. With ``W = I`` this must
   give ``xlalign eval``'s AER (``--check`` compares it with ``Aligner.align`` pair by pair).
3. Self-training (awesome-align's objective, Dou & Neubig 2021): the frozen base model's
   links on each training pair are the targets; the loss is
   ``-Σ_links [log p_fwd + log p_rev]`` (mean per link) plus ``λ‖W − I‖²``; Adam on W,
   initialised to the identity. A tenth of the training pairs is held out; the epoch with the
   lowest held-out loss is kept.
   The same is done for a scalar ``W = s·I`` (a temperature change: the simplest adapter),
   and a temperature sweep on the gold sets shows the best any rescaling could do.
4. AER on every gold set with W vs the identity (same code path), and with W rescaled so
   mapped training states keep the base states' mean norm ("norm-matched"): what W changes
   besides the temperature.

The gold sets are used for evaluation only; nothing is fitted on them.

    PYTHONPATH=<unzipped wheel> python3 scripts/training/adapter_probe.py \
        --langs de,fr,ro,ja,zh,hi --per-lang 3000 --refresh --per-language

Figures and findings: README, "A probe: a linear adapter on the alignment layer".
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

GOLD_SETS = ["deen", "enfr", "roen", "jaen", "zhen", "enhi_sure"]
# Training files (source ||| target) per language; the gold sets' pairs are these languages.
TRAIN_FILES = {
    "de": "de-en.txt",
    "fr": "en-fr.txt",
    "ro": "ro-en.txt",
    "ja": "ja-en.txt",
    "zh": "zh-en.txt",
    "hi": "en-hi.txt",
}
TRAIN_DIR = Path.home() / ".cache/xlalign/training/data"


# ---------------------------------------------------------------------------------------------
# States


class Pair:
    """One pair's rows: vectors, and per side the (row, word) memberships."""

    __slots__ = ("src", "tgt", "src_rw", "tgt_rw", "n_src", "n_tgt")

    def __init__(self, src, tgt, src_rw, tgt_rw, n_src, n_tgt):
        self.src, self.tgt = src, tgt
        self.src_rw, self.tgt_rw = src_rw, tgt_rw
        self.n_src, self.n_tgt = n_src, n_tgt


def memberships(words: np.ndarray, shared: np.ndarray) -> np.ndarray:
    """``[k, 2]`` (row, word): each row's first word, then the shared ones."""
    rows = np.arange(len(words), dtype=np.int64)
    first = np.stack([rows, words.astype(np.int64)], axis=1)
    return np.concatenate([first, shared.reshape(-1, 2)]) if len(shared) else first


def collect(aligner, pairs, pretokenized: bool, batch_size: int = 32):
    """States of every pair (``None`` where the encoder refused a pair)."""
    out = []
    for k in range(0, len(pairs), 256):
        got = aligner.encode_batch(
            pairs[k : k + 256],
            batch_size=batch_size,
            pretokenized=pretokenized,
            sentence_cosine=False,
        )
        for e in got:
            if isinstance(e, Exception):
                out.append(None)
                continue
            s = e.states()
            out.append(
                Pair(
                    s.src.copy(),
                    s.tgt.copy(),
                    memberships(s.src_words, s.src_shared),
                    memberships(s.tgt_words, s.tgt_shared),
                    s.n_src_words,
                    s.n_tgt_words,
                )
            )
    return out


def save(path: Path, pairs, dtype) -> None:
    keep = [p for p in pairs if p is not None]
    ok = np.array([p is not None for p in pairs])
    cat = lambda f: np.concatenate([f(p) for p in keep]) if keep else np.zeros((0,))
    np.savez(
        path,
        ok=ok,
        src=cat(lambda p: p.src).astype(dtype),
        tgt=cat(lambda p: p.tgt).astype(dtype),
        src_rows=np.array([len(p.src) for p in keep]),
        tgt_rows=np.array([len(p.tgt) for p in keep]),
        src_rw=cat(lambda p: p.src_rw),
        tgt_rw=cat(lambda p: p.tgt_rw),
        src_k=np.array([len(p.src_rw) for p in keep]),
        tgt_k=np.array([len(p.tgt_rw) for p in keep]),
        n=np.array([[p.n_src, p.n_tgt] for p in keep]).reshape(-1, 2),
    )


def load(path: Path):
    z = np.load(path)
    splits = lambda a, lens: np.split(a, np.cumsum(lens)[:-1]) if len(lens) else []
    src = splits(z["src"].astype(np.float32), z["src_rows"])
    tgt = splits(z["tgt"].astype(np.float32), z["tgt_rows"])
    src_rw = splits(z["src_rw"], z["src_k"])
    tgt_rw = splits(z["tgt_rw"], z["tgt_k"])
    it = iter(zip(src, tgt, src_rw, tgt_rw, z["n"]))
    out = []
    for ok in z["ok"]:
        if ok:
            s, t, srw, trw, (ns, nt) = next(it)
            out.append(Pair(s, t, srw, trw, int(ns), int(nt)))
        else:
            out.append(None)
    return out


def cached(cache: Path, name: str, make, dtype=np.float32):
    """States from the cache, else made and cached. Gold states stay float32 (extraction on
    them must match the core's); training states may be float16 (half the memory)."""
    path = cache / f"{name}.npz"
    if path.exists():
        return load(path)
    t0 = time.time()
    pairs = make()
    save(path, pairs, dtype)
    print(f"  {name}: {len(pairs)} pairs encoded in {time.time() - t0:.0f} s", flush=True)
    return load(path)  # the stored copy, so a first run and a cached run see the same states


# ---------------------------------------------------------------------------------------------
# Extraction (numpy, the default method) and AER


def softmaxes(logits: np.ndarray):
    f = np.exp(logits - logits.max(axis=1, keepdims=True))
    f /= f.sum(axis=1, keepdims=True)
    r = np.exp(logits - logits.max(axis=0, keepdims=True))
    r /= r.sum(axis=0, keepdims=True)
    return f, r


def unit_links(p: Pair, W, temperature: float, threshold: float) -> np.ndarray:
    """Boolean ``[n_src_rows, n_tgt_rows]``: the subword links."""
    x = p.src if W is None else p.src @ W
    y = p.tgt if W is None else p.tgt @ W
    f, r = softmaxes((x @ y.T) / temperature)
    return np.minimum(f, r) > threshold


def word_links(p: Pair, units: np.ndarray) -> set:
    """Subword links → word links through both sides' memberships."""
    links = set()
    rows, cols = np.nonzero(units)
    if not len(rows):
        return links
    s_by_row: dict = {}
    for r, w in p.src_rw:
        s_by_row.setdefault(int(r), []).append(int(w))
    t_by_row: dict = {}
    for r, w in p.tgt_rw:
        t_by_row.setdefault(int(r), []).append(int(w))
    for i, j in zip(rows, cols):
        for a in s_by_row[int(i)]:
            for b in t_by_row[int(j)]:
                links.add((a, b))
    return links


def parse_gold(line: str):
    sure, possible = set(), set()
    for tok in line.split():
        if "?" in tok:
            a, b = tok.split("?")
            possible.add((int(a), int(b)))
        else:
            a, b = tok.split("-")
            if b.endswith("p"):
                possible.add((int(a), int(b[:-1])))
            else:
                sure.add((int(a), int(b)))
    return sure, possible | sure


def aer(pairs, gold, W, temperature, threshold) -> dict:
    a_s = a_p = n_a = n_s = 0
    for p, (sure, possible) in zip(pairs, gold):
        links = set() if p is None else word_links(p, unit_links(p, W, temperature, threshold))
        a_s += len(links & sure)
        a_p += len(links & possible)
        n_a += len(links)
        n_s += len(sure)
    return {
        "aer": 100 * (1 - (a_s + a_p) / max(n_a + n_s, 1)),
        "p": 100 * a_p / max(n_a, 1),
        "r": 100 * a_s / max(n_s, 1),
    }


# ---------------------------------------------------------------------------------------------
# Training


def targets(pairs, temperature, threshold, W=None):
    """The subword links of each pair, the self-training targets: the frozen base model's
    (``W = None``), or with the current W (``--refresh``, as awesome-align re-extracts)."""
    return [unit_links(p, W, temperature, threshold).astype(np.float32) for p in pairs]


def loss_and_grad(batch, tgts, W, temperature, want_grad=True):
    """Mean over links of ``-(log p_fwd + log p_rev)``, and its gradient in W."""
    S = np.concatenate([p.src for p in batch])
    T = np.concatenate([p.tgt for p in batch])
    X, Y = S @ W, T @ W
    dX, dY = np.zeros_like(X), np.zeros_like(Y)
    total, n_links = 0.0, 0.0
    si = ti = 0
    for p, A in zip(batch, tgts):
        n, m = A.shape
        x, y = X[si : si + n], Y[ti : ti + m]
        if A.any():
            L = (x @ y.T) / temperature
            f, r = softmaxes(L)
            total -= float((A * (np.log(f + 1e-30) + np.log(r + 1e-30))).sum())
            n_links += float(A.sum())
            if want_grad:
                G = f * A.sum(axis=1, keepdims=True) + r * A.sum(axis=0, keepdims=True) - 2 * A
                dX[si : si + n] = (G @ y) / temperature
                dY[ti : ti + m] = (G.T @ x) / temperature
        si += n
        ti += m
    n_links = max(n_links, 1.0)
    if not want_grad:
        return total / n_links, None
    grad = (S.T @ dX + T.T @ dY) / n_links
    return total / n_links, grad


def train(train_pairs, held_pairs, temperature, threshold, *, scalar=False, epochs=3, lr=1e-3,
          batch=64, l2=0.0, rank=0, refresh=False, seed=0, log=print):
    """Adam on W (full, ``I + U V^T`` of ``rank`` when > 0, or ``s·I`` when ``scalar``).
    Returns the W of the epoch with the lowest held-out loss, and that loss per epoch."""
    rng = np.random.default_rng(seed)
    d = train_pairs[0].src.shape[1]
    eye = np.eye(d, dtype=np.float32)
    tr_t = targets(train_pairs, temperature, threshold)
    he_t = targets(held_pairs, temperature, threshold)
    if scalar:
        params = [np.ones((1,), dtype=np.float32)]
    elif rank:
        params = [
            (rng.standard_normal((d, rank)) * 0.01).astype(np.float32),
            np.zeros((rank, d), dtype=np.float32),
        ]
    else:
        params = [eye.copy()]

    def W_of(ps):
        if scalar:
            return ps[0][0] * eye
        if rank:
            return eye + ps[0] @ ps[1]
        return ps[0]

    def held_loss(W):
        total = 0.0
        for k in range(0, len(held_pairs), 256):
            l, _ = loss_and_grad(held_pairs[k : k + 256], he_t[k : k + 256], W, temperature, False)
            total += l * len(held_pairs[k : k + 256])
        return total / len(held_pairs)

    m = [np.zeros_like(q) for q in params]
    v = [np.zeros_like(q) for q in params]
    b1, b2, eps, step = 0.9, 0.999, 1e-8, 0
    history = [held_loss(W_of(params))]
    best = (history[0], W_of(params).copy(), 0)
    log(f"    epoch 0: held-out loss {history[0]:.4f}")
    order = np.arange(len(train_pairs))
    for epoch in range(1, epochs + 1):
        if refresh and epoch > 1:
            tr_t = targets(train_pairs, temperature, threshold, W_of(params))
        rng.shuffle(order)
        t0 = time.time()
        run = 0.0
        for k in range(0, len(order), batch):
            idx = order[k : k + batch]
            W = W_of(params)
            l, gW = loss_and_grad([train_pairs[i] for i in idx], [tr_t[i] for i in idx], W, temperature)
            if l2:
                l += l2 * float(((W - eye) ** 2).sum())
                gW = gW + 2 * l2 * (W - eye)
            run += l * len(idx)
            if scalar:
                grads = [np.array([(gW * eye).sum()], dtype=np.float32)]
            elif rank:
                grads = [gW @ params[1].T, params[0].T @ gW]
            else:
                grads = [gW]
            step += 1
            for q, g, mm, vv in zip(params, grads, m, v):
                mm *= b1
                mm += (1 - b1) * g
                vv *= b2
                vv += (1 - b2) * g * g
                q -= lr * (mm / (1 - b1**step)) / (np.sqrt(vv / (1 - b2**step)) + eps)
        history.append(held_loss(W_of(params)))
        if history[-1] < best[0]:
            best = (history[-1], W_of(params).copy(), epoch)
        log(
            f"    epoch {epoch}: train loss {run / len(order):.4f}, held-out {history[-1]:.4f}"
            f" ({time.time() - t0:.0f} s)"
        )
    log(f"    kept epoch {best[2]} (lowest held-out loss)")
    return best[1], history


# ---------------------------------------------------------------------------------------------


def norm_matched(W, pairs):
    """W rescaled so that mapped training states have the base states' mean norm: the
    change of direction W makes, without the change of temperature (fitted on training
    states only)."""
    S = np.concatenate([p.src for p in pairs] + [p.tgt for p in pairs])
    base = np.linalg.norm(S, axis=1).mean()
    mapped = np.linalg.norm(S @ W, axis=1).mean()
    return W * (base / mapped)


def read_training(lang: str, n: int, seed: int):
    """``n`` random pairs of 3–40 words a side from the language's training file."""
    path = TRAIN_DIR / TRAIN_FILES[lang]
    lines = path.read_text(encoding="utf-8").splitlines()
    pairs = []
    for line in lines:
        if " ||| " not in line:
            continue
        s, t = line.split(" ||| ", 1)
        ns, nt = len(s.split()), len(t.split())
        # CJK sides have few spaces: bound by characters instead.
        if not (1 <= ns <= 40 and 3 <= nt <= 40 and len(s) <= 300 and len(t) <= 300):
            continue
        pairs.append((s, t))
    random.Random(seed).shuffle(pairs)
    return pairs[:n]


def read_gold(gold_dir: Path, name: str):
    d = gold_dir / name
    read = lambda ext: (d / f"{name}.{ext}").read_text(encoding="utf-8").splitlines()
    src, tgt, gold = read("src"), read("tgt"), read("gold")
    return list(zip(src, tgt)), [parse_gold(g) for g in gold]


def check_against_aligner(aligner, gold_dir: Path, sets, n: int, temperature, threshold, cache):
    """The numpy extraction on cached states vs ``Aligner.align`` on the first n pairs."""
    bad = 0
    for name in sets:
        pairs, _ = read_gold(gold_dir, name)
        states = load(cache / f"gold-{name}.npz")
        for k in range(n):
            a = aligner.align(pairs[k][0].split(), pairs[k][1].split(), sentence_cosine=False)
            core = {(l.src, l.tgt) for l in a.links}
            mine = word_links(states[k], unit_links(states[k], None, temperature, threshold))
            if core != mine:
                bad += 1
                print(f"  {name} pair {k}: core-only {sorted(core - mine)}, numpy-only {sorted(mine - core)}")
    print(f"  check: {bad} of {n * len(sets)} pairs differ from Aligner.align")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gold-dir", type=Path, default=Path("/work/shared/data/gold"))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/adapter-probe"))
    ap.add_argument("--langs", default="de,fr,ro,ja,zh")
    ap.add_argument("--per-lang", type=int, default=3000)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--l2", type=float, default=1e-3, help="weight of ‖W − I‖²")
    ap.add_argument("--rank", type=int, default=0, help="W = I + U V^T of this rank (0: full W)")
    ap.add_argument("--no-scalar", action="store_true", help="skip the scalar (temperature) run")
    ap.add_argument("--no-sweep", action="store_true", help="skip the temperature sweep on the gold sets")
    ap.add_argument("--refresh", action="store_true", help="re-extract the targets with W each epoch")
    ap.add_argument("--per-language", action="store_true", help="also train one W per language")
    ap.add_argument("--check", type=int, default=0, help="compare with Aligner.align on N gold pairs per set")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = ap.parse_args()

    import xlalign

    aligner = xlalign.Aligner(backend="cpu", threads=args.threads)
    rec = aligner.model["recommendation"]
    opts = rec["options"]
    temperature, threshold, layer = opts["temperature"], opts["threshold"], rec["layer"]
    if opts["method"] != "softmax" or opts["level"] != "subword" or opts["direction"] != "both":
        print(f"the probe's extraction is softmax/subword/both, the model recommends {opts}")
        return 1
    print(f"model: layer {layer}, softmax, threshold {threshold:.3g}, temperature {temperature}")
    cache = args.cache / f"layer{layer}"
    cache.mkdir(parents=True, exist_ok=True)

    print("states:", flush=True)
    gold = {}
    for name in GOLD_SETS:
        pairs, g = read_gold(args.gold_dir, name)
        states = cached(cache, f"gold-{name}", lambda: collect(aligner, pairs, True))
        gold[name] = (states, g)
    langs = args.langs.split(",")
    train_by_lang = {}
    for lang in langs:
        pairs = read_training(lang, args.per_lang, args.seed)
        states = cached(
            cache,
            f"train-{lang}-{args.per_lang}-{args.seed}",
            lambda: collect(aligner, pairs, False),
            np.float16,
        )
        train_by_lang[lang] = [p for p in states if p is not None and len(p.src) and len(p.tgt)]
    if args.check:
        check_against_aligner(aligner, args.gold_dir, GOLD_SETS, args.check, temperature, threshold, cache)

    def evaluate(W, temp=temperature):
        return {n: aer(s, g, W, temp, threshold) for n, (s, g) in gold.items()}

    def show(label, res):
        cells = " ".join(f"{n} {r['aer']:6.2f}" for n, r in res.items())
        mean = np.mean([r["aer"] for r in res.values()])
        print(f"  {label:<28} {cells}  mean {mean:5.2f}", flush=True)

    figures = {"n_per_lang": args.per_lang, "langs": langs, "results": {}}
    print("AER (numpy extraction):")
    base = evaluate(None)
    show("base (W = I)", base)
    figures["results"]["base"] = base
    for temp in () if args.no_sweep else (2.0, 2.5, 3.5, 4.0, 5.0):
        res = evaluate(None, temp)
        show(f"temperature {temp} (gold sweep)", res)
        figures["results"][f"temperature {temp}"] = res

    def split(pairs):
        rng = random.Random(args.seed)
        idx = list(range(len(pairs)))
        rng.shuffle(idx)
        cut = len(idx) // 10
        return [pairs[i] for i in idx[cut:]], [pairs[i] for i in idx[:cut]]

    all_train, all_held = [], []
    for lang in langs:
        tr, he = split(train_by_lang[lang])
        all_train += tr
        all_held += he
    print(f"training pairs: {len(all_train)} (+{len(all_held)} held out)", flush=True)

    runs = [] if args.no_scalar else [("scalar s·I", dict(scalar=True, lr=1e-2))]
    runs.append(
        (f"W rank {args.rank}" if args.rank else "W full", dict(rank=args.rank, l2=args.l2, refresh=args.refresh))
    )
    for label, kw in runs:
        print(f"train {label}:", flush=True)
        t0 = time.time()
        kw = {"lr": args.lr, **kw}
        W, hist = train(all_train, all_held, temperature, threshold, epochs=args.epochs, seed=args.seed, **kw)
        took = time.time() - t0
        res = evaluate(W)
        show(f"{label} (all languages)", res)
        if label.startswith("scalar"):
            print(f"    s = {W[0, 0]:.4f} (= temperature {temperature / W[0, 0] ** 2:.3f})")
        else:
            print(f"    ‖W − I‖_F = {np.linalg.norm(W - np.eye(len(W))):.3f}")
            Wn = norm_matched(W, all_train[:2000])
            res_n = evaluate(Wn)
            show(f"{label}, norm-matched", res_n)
            figures["results"][f"{label}, norm-matched"] = res_n
        figures["results"][label] = {"aer": res, "held_loss": hist, "train_s": took}
        if label.startswith("W") and args.out:
            np.save(args.out.with_suffix(".W.npy"), W)

    if args.per_language:
        per = {}
        for lang in langs:
            tr, he = split(train_by_lang[lang])
            print(f"train W on {lang} only:", flush=True)
            W, _ = train(tr, he, temperature, threshold, epochs=args.epochs, seed=args.seed,
                         lr=args.lr, rank=args.rank, l2=args.l2, refresh=args.refresh)
            per[lang] = evaluate(W)
            show(f"W {lang} only", per[lang])
            per[lang + " norm-matched"] = evaluate(norm_matched(W, tr[:2000]))
            show(f"W {lang} only, norm-matched", per[lang + " norm-matched"])
        figures["results"]["per language"] = per

    if args.out:
        args.out.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
