#!/usr/bin/env python3
"""The corpus tools on the gold sets (README, "Corpus tools"): how well `xlalign score` tells
translations from wrong pairs, MEXA per layer, and the throughput of `score` next to
`similarity`.

Usage: python3 scripts/eval-corpus.py GOLD_DIR [--sets deen,enfr,...] [--seed 1] [--bench]
       [--skip-filter] [--skip-mexa]

GOLD_DIR holds <set>/<set>.src and .tgt (pre-tokenised; read with `--words pretokenized`,
which joins the tokens back into natural text before encoding). Two noisy corpora per set,
built with a fixed seed:

- "mixed": every true pair plus as many wrong ones (each source again, with the target of
  another line: a derangement), shuffled together. A wrong pair's source also appears with
  its own translation in the same block, which helps the margin.
- "corrupted": half of the lines (chosen at random) get the target of another corrupted line
  (each source and each target once, as in a misaligned corpus); the other half are the true
  pairs.

Each is scored by `xlalign score` with its default block (1,000 pairs) and k (4); precision
and recall are those of keeping the true pairs at the recommended thresholds (RECOMMENDED),
with the best-F1 threshold per set for comparison. The binary is $XLALIGN_BIN, else
$CARGO_TARGET_DIR/release/xlalign, else ~/.cache/xlalign/target/release/xlalign (build it
with `cargo build --release -p xlalign-cli`).
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETS = ["deen", "enfr", "roen", "jaen", "zhen"]
# Thresholds recommended in the README (round values near the best F1 over all five sets).
RECOMMENDED = {"cosine": 0.83, "margin": 0.98}


def binary():
    if os.environ.get("XLALIGN_BIN"):
        return os.environ["XLALIGN_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(
        os.environ.get("XLALIGN_CACHE", os.path.expanduser("~/.cache/xlalign")), "target")
    return os.path.join(target, "release", "xlalign")


def read_set(gold, name):
    def lines(ext):
        with open(os.path.join(gold, name, f"{name}.{ext}"), encoding="utf-8") as f:
            return f.read().splitlines()
    return list(zip(lines("src"), lines("tgt")))


def derangement(items, rng):
    """A shuffle of `items` that leaves none in place (Sattolo's cycle)."""
    items = list(items)
    for i in range(len(items) - 1, 0, -1):
        j = rng.randrange(i)
        items[i], items[j] = items[j], items[i]
    return items


def mixed(pairs, rng):
    n = len(pairs)
    other = derangement(range(n), rng)
    rows = [(s, t, True) for s, t in pairs] + [(pairs[i][0], pairs[other[i]][1], False) for i in range(n)]
    rng.shuffle(rows)
    return rows


def corrupted(pairs, rng):
    n = len(pairs)
    bad = sorted(rng.sample(range(n), n // 2))
    moved = dict(zip(bad, derangement(bad, rng)))
    return [(s, pairs[moved[i]][1], False) if i in moved else (s, t, True)
            for i, (s, t) in enumerate(pairs)]


def score(rows, extra=()):
    """`xlalign score` over `src<TAB>tgt` lines: one JSON object per line."""
    text = "".join(f"{s}\t{t}\n" for s, t, _ in rows)
    out = subprocess.run([binary(), "score", "--words", "pretokenized", "--format", "json", *extra],
                         input=text.encode(), capture_output=True, check=True)
    got = [json.loads(l) for l in out.stdout.decode().splitlines()]
    assert len(got) == len(rows) and all("error" not in g for g in got), out.stderr.decode()
    return got


def prf(scored, keep):
    kept = [truth for g, truth in scored if keep(g)]
    true = sum(truth for _, truth in scored)
    tp = sum(kept)
    p = tp / len(kept) if kept else 0.0
    r = tp / true if true else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def best(scored, key):
    values = sorted({g[key] for g, _ in scored})
    return max((prf(scored, lambda g, t=t: g[key] >= t)[2], t) for t in values)


def filter_eval(gold, sets, seed):
    keeps = {
        f"cosine ≥ {RECOMMENDED['cosine']}": lambda g: g["cosine"] >= RECOMMENDED["cosine"],
        f"margin ≥ {RECOMMENDED['margin']}": lambda g: g["margin"] >= RECOMMENDED["margin"],
        "both": lambda g: g["cosine"] >= RECOMMENDED["cosine"] and g["margin"] >= RECOMMENDED["margin"],
    }
    pooled = {}
    for variant, make in [("mixed", mixed), ("corrupted", corrupted)]:
        print(f"\n### {variant}: P / R / F1 (%) of keeping the true pairs\n")
        print("| set | pairs | " + " | ".join(keeps) + " | best cosine (F1) | best margin (F1) |")
        print("|---|---:|" + "---|" * (len(keeps) + 2))
        for name in sets:
            rows = make(read_set(gold, name), random.Random(f"{seed}-{name}-{variant}"))
            scored = list(zip(score(rows), [t for _, _, t in rows]))
            pooled.setdefault(variant, []).extend(scored)
            cells = ["{:.1f} / {:.1f} / {:.1f}".format(*(100 * x for x in prf(scored, k))) for k in keeps.values()]
            bc, bm = best(scored, "cosine"), best(scored, "margin")
            cells += [f"{bc[1]:.3f} ({100 * bc[0]:.1f})", f"{bm[1]:.3f} ({100 * bm[0]:.1f})"]
            print(f"| {name} | {len(rows)} | " + " | ".join(cells) + " |")
        scored = pooled[variant]
        bc, bm = best(scored, "cosine"), best(scored, "margin")
        print(f"\nAll sets pooled: best cosine threshold {bc[1]:.3f} (F1 {100 * bc[0]:.1f}), "
              f"best margin threshold {bm[1]:.3f} (F1 {100 * bm[0]:.1f})")


def mexa_eval(gold, sets):
    print("\n### MEXA per layer (all pairs of each set, one block)\n")
    results = {}
    for name in sets:
        d = os.path.join(gold, name)
        out = subprocess.run([binary(), "mexa", "--words", "pretokenized", "--format", "json",
                              "--src", os.path.join(d, f"{name}.src"), "--tgt", os.path.join(d, f"{name}.tgt")],
                             capture_output=True, check=True)
        results[name] = json.loads(out.stdout)
    print("| layer | " + " | ".join(f"{n} ({results[n]['pairs']})" for n in sets) + " |")
    print("|---:|" + "---:|" * len(sets))
    for i, layer in enumerate(results[sets[0]]["layers"]):
        print(f"| {layer['layer']} | " + " | ".join(f"{results[n]['layers'][i]['mexa']:.3f}" for n in sets) + " |")


def bench(gold, sets, seed, n_pairs, rounds=2):
    rows = []
    for name in sets:
        rows += mixed(read_set(gold, name), random.Random(f"{seed}-{name}-mixed"))
    rows = random.Random(seed).sample(rows, min(n_pairs, len(rows)))
    text = "".join(f"{s}\t{t}\n" for s, t, _ in rows)
    model_name = next((l.split(":", 1)[1].strip() for l in subprocess.run(
        ["lscpu"], capture_output=True, text=True).stdout.splitlines() if l.startswith("Model name")), "?")
    flags = open("/proc/cpuinfo").read().split("flags", 1)[1].split("\n", 1)[0].split()
    print(f"\n### Throughput, {len(rows)} mixed pairs of {', '.join(sets)}, CPU backend, the two "
          f"commands alternating, best of {rounds}\n")
    print(f"{model_name}, {os.cpu_count()} CPUs, " +
          " ".join(f for f in ["avx2", "avx512f", "avx512_vnni", "avx_vnni"] if f in flags) +
          ", load average before: {:.1f}".format(os.getloadavg()[0]))
    for threads in sorted({1, os.cpu_count()}):
        times = {"similarity": [], "score": []}
        for _ in range(rounds):
            for cmd in times:
                t0 = time.perf_counter()
                subprocess.run([binary(), cmd, "--words", "pretokenized", "--backend", "cpu",
                                "--threads", str(threads)],
                               input=text.encode(), capture_output=True, check=True)
                times[cmd].append(time.perf_counter() - t0)
        for cmd, t in times.items():
            print(f"- `{cmd}`, {threads} thread(s): {len(rows) / min(t):.1f} pairs/s "
                  f"(runs {', '.join(f'{x:.1f}' for x in t)} s)")
    print("load average after: {:.1f}".format(os.getloadavg()[0]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("gold")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--seed", default="1")
    ap.add_argument("--bench", action="store_true", help="also time score against similarity")
    ap.add_argument("--bench-pairs", type=int, default=500, help="pairs to time (default 500)")
    ap.add_argument("--skip-filter", action="store_true")
    ap.add_argument("--skip-mexa", action="store_true")
    a = ap.parse_args()
    sets = [s for s in a.sets.split(",") if os.path.isdir(os.path.join(a.gold, s))]
    if not sets:
        sys.exit(f"no set of {a.sets} in {a.gold}")
    if not a.skip_filter:
        filter_eval(a.gold, sets, a.seed)
    if not a.skip_mexa:
        mexa_eval(a.gold, sets)
    if a.bench:
        bench(a.gold, sets, a.seed, a.bench_pairs)


if __name__ == "__main__":
    main()
