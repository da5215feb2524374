#!/usr/bin/env python3
"""Fine-tunes the encoder's blocks below the alignment layer for word alignment and writes
the tuned tensors, re-quantised to the base file's types, as a delta GGUF (README, "Alignment
tuning"). The objectives are in ``scripts/training/tune.py``.

    python3 scripts/train-align.py --out /tmp/tuned.delta.gguf           # the shipped delta
    python3 scripts/train-align.py --steps 3 --per-lang 40 --out /tmp/t  # a smoke run

With ``--full FILE`` it also builds the full tuned model (``xlalign delta apply``), for
evaluation. The delta carries ``general.name`` and, with ``--temperature``, the softmax
temperature the tuned model recommends.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

DEFAULT_LANGS = "de-en,en-fr,ro-en,ja-en,zh-en,en-hi,cs-en,sv-en,es-en,it-en,ru-en,uk-en,pl-en,pt-en,nl-en,ko-en,ar-en"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "public/models/multilingual-e5-small-q4_0.gguf"))
    ap.add_argument("--tokenizer", default=str(Path.home() / ".cache/xlalign/model-src/tokenizer.json"))
    ap.add_argument("--data", default=str(Path.home() / ".cache/xlalign/training/data"))
    ap.add_argument("--langs", default=DEFAULT_LANGS, help="training files <a>-<b>, comma-separated")
    ap.add_argument("--per-lang", type=int, default=2000, help="pairs per language file")
    ap.add_argument("--docs-share", type=share, default=0.0,
                    help="share of each language's pairs drawn from the manuals (DATA/docs/), where it has them")
    ap.add_argument("--steps", type=int, default=0, help="0: one pass over the pairs")
    ap.add_argument("--tokens", type=int, default=1024, help="padded tokens per side per step")
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--so", type=float, default=1.0)
    ap.add_argument("--co", type=float, default=0.0)
    ap.add_argument("--target-threshold", type=float, help="threshold of the self-training targets (default: the model's)")
    ap.add_argument("--norm", type=float, default=1.0)
    ap.add_argument("--distill", type=float, default=0.0)
    ap.add_argument("--psi", type=float, default=0.0, help="weight of the parallel-sentence (contrastive) term")
    ap.add_argument("--anchors", action="store_true", help="dictionary anchors join the targets (data/lexicon/<pair>.tsv)")
    ap.add_argument("--anchor-langs", help="with --anchors: only these training files get anchors (default: every one with a lexicon)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True, help="the delta GGUF to write")
    ap.add_argument("--full", help="also build the full tuned model here")
    ap.add_argument("--name", default="multilingual-e5-small-align", help="general.name of the tuned model")
    ap.add_argument("--temperature", type=float, help="recommended temperature (default: the base's)")
    ap.add_argument("--bin", default=os.environ.get("XLALIGN_BIN", str(Path.home() / ".cache/xlalign/target/release/xlalign")))
    ap.add_argument("--log", help="write the loss curve here (JSON lines)")
    ap.add_argument("--summary", help="write the held-out losses and settings here (JSON)")
    args = ap.parse_args()

    import jax
    import jax.numpy as jnp
    import optax
    from tokenizers import Tokenizer

    from training import encoder as E
    from training import tune as T
    from training import anchors as A
    from training import delta as D

    rng = random.Random(args.seed)
    t0 = time.time()
    weights = E.Weights(Path(args.model))
    cfg = weights.config
    layer = min(int(weights.defaults.get("xlalign.align.layer", cfg.layers)), cfg.layers)
    temperature = float(weights.defaults.get("xlalign.align.temperature", 1.0))
    threshold = float(weights.defaults.get("xlalign.align.threshold", 1e-3))
    prefix = str(weights.defaults.get("xlalign.prefix.passage", ""))
    tok = Tokenizer.from_file(args.tokenizer)
    print(f"model read in {time.time() - t0:.1f} s: layer {layer}, temperature {temperature}, threshold {threshold}", flush=True)

    pairs = []
    for name in args.langs.split(","):
        path = Path(args.data) / f"{name}.txt"
        if not path.is_file():
            print(f"error: no training file {path} (scripts/training-data.py build makes them)", file=sys.stderr)
            return 2
        docs_path = Path(args.data) / "docs" / f"{name}.txt"
        from_docs = T.read_pairs(docs_path, round(args.docs_share * args.per_lang), rng) \
            if args.docs_share > 0 and docs_path.is_file() else []
        got = from_docs + T.read_pairs(path, args.per_lang - len(from_docs), rng)
        if from_docs:
            print(f"{name}: {len(from_docs)} of {len(got)} pairs from the manuals", flush=True)
        lexicon = None
        lex_path = Path(args.data) / "lexicon" / f"{name}.tsv"
        wanted = args.anchor_langs is None or name in args.anchor_langs.split(",")
        if args.anchors and wanted and lex_path.is_file():
            lexicon = A.Lexicon(lex_path, swap=False)
        made = [T.pair(tok, prefix, s, t, lexicon) for s, t in got]
        if lexicon is not None:
            print(f"{name}: {sum(len(p.anchors) for p in made) / max(1, len(made)):.1f} anchor links per pair", flush=True)
        pairs += made
    rng.shuffle(pairs)
    held = pairs[: max(1, len(pairs) // 20)]
    train = pairs[len(held) :]
    train_batches = T.batches(train, args.tokens, rng)
    held_batches = T.batches(held, args.tokens, rng)
    print(f"{len(train)} training pairs in {len(train_batches)} batches, {len(held)} held out", flush=True)

    emb = E.embedding_tables(weights)
    base = [{k: jnp.asarray(v) for k, v in weights.block(i).items()} for i in range(cfg.layers)]
    params = base[:layer]
    frozen_top = base[layer:]
    base_norm = T.mean_sq_norm(cfg, emb, params, held_batches[:8], weights.position_offset)
    settings = T.Settings(
        temperature=temperature, threshold=threshold, target_threshold=args.target_threshold or threshold,
        so=args.so, co=args.co, norm=args.norm, distill=args.distill, psi=args.psi, anchors=args.anchors,
    )
    steps = args.steps or len(train_batches)
    schedule = optax.warmup_cosine_decay_schedule(0.0, args.lr, max(1, steps // 20), steps, args.lr * 0.1)
    optimizer = optax.adamw(schedule, weight_decay=0.0)
    opt_state = optimizer.init(params)
    step, evaluate, links_of, teach = T.make_step(cfg, settings, base_norm, optimizer)

    # Held-out pairs are scored against the base model's links, fixed, so that the losses
    # before and after training measure the same thing.
    held = []
    for length, group in held_batches:
        ids, att, rows, _ = T.arrays(length, group)
        x0 = E.embed(emb, ids, cfg, weights.position_offset)
        teacher = teach(base, x0, att) if args.distill > 0 else jnp.zeros(())
        held.append((x0, att, rows, teacher, links_of(params, x0, att, rows)))

    def held_loss(p):
        tot, parts_tot, n = 0.0, {}, 0
        for x0, att, rows, teacher, links in held:
            loss, parts = evaluate(p, frozen_top, x0, att, rows, teacher, links)
            tot += float(loss)
            for k, v in parts.items():
                parts_tot[k] = parts_tot.get(k, 0.0) + float(v)
            n += 1
        return tot / n, {k: v / n for k, v in parts_tot.items()}

    log = open(args.log, "w") if args.log else None
    first, first_parts = held_loss(params)
    print(f"held-out loss before: {first:.4f} {fmt(first_parts)}", flush=True)
    start = time.time()
    done_pairs = 0
    for k in range(steps):
        length, group = train_batches[k % len(train_batches)]
        ids, att, rows, anchors = T.arrays(length, group)
        x0 = E.embed(emb, ids, cfg, weights.position_offset)
        teacher = teach(base, x0, att) if args.distill > 0 else jnp.zeros(())
        params, opt_state, loss, parts = step(params, opt_state, frozen_top, x0, att, rows, anchors, teacher)
        done_pairs += len(group)
        if log:
            log.write(json.dumps({"step": k, "loss": float(loss), **{a: float(b) for a, b in parts.items()}}) + "\n")
        if k % 20 == 0 or k == steps - 1:
            el = time.time() - start
            rate = done_pairs / el if el > 0 else 0.0
            eta = (steps - k - 1) * el / (k + 1)
            print(f"step {k + 1}/{steps}  loss {float(loss):.4f} {fmt(parts)}  {rate:.1f} pairs/s  eta {eta / 60:.1f} min", flush=True)
    last, last_parts = held_loss(params)
    print(f"held-out loss after: {last:.4f} {fmt(last_parts)} (before {first:.4f}); {time.time() - start:.0f} s", flush=True)

    if args.summary:
        summary = {"held_out_before": first, "held_out_after": last, "parts_before": first_parts,
                   "parts_after": last_parts, "steps": steps, "pairs": len(train), "seconds": time.time() - start,
                   "layer": layer, "base_mean_sq_norm": base_norm, "args": vars(args)}
        Path(args.summary).write_text(json.dumps(summary, indent=1))
    tuned = {}
    for i, p in enumerate(params):
        for name, value in p.items():
            tuned[f"blk.{i}.{name}"] = np.asarray(value)
    keys = {"general.name": args.name}
    if args.temperature:
        keys["xlalign.align.temperature"] = args.temperature
    base_sha = D.base_weights_sha256(args.bin, Path(args.model))
    count = D.write_delta(weights, tuned, Path(args.out), keys, base_sha)
    print(f"wrote {args.out}: {count} tensors, {Path(args.out).stat().st_size:,} bytes", flush=True)
    if args.full:
        subprocess.run([args.bin, "delta", "apply", "--base", args.model, "--delta", args.out, "-o", args.full], check=True)
        print(f"wrote {args.full}")
    return 0


def share(text: str) -> float:
    """A fraction in 0..1 (argparse type): more than 1 would ask the catalogs for a negative count."""
    v = float(text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a share between 0 and 1")
    return v


def fmt(parts) -> str:
    return " ".join(f"{k} {float(v):.4f}" for k, v in parts.items())


if __name__ == "__main__":
    sys.exit(main())
