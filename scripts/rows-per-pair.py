#!/usr/bin/env python3
"""Bytes and requests before the first alignment of a pair, by prefetch size and page size.

How progressive loading's defaults were chosen (crates/xlalign-wasm/src/progressive.rs):
for every sentence pair of tests/data/gold and of tests/data/bench-sentences.txt (taken two
lines at a time), the rows of the word-embedding table the pair reads ("passage: " prefix
included), and from them the bytes needed before its first alignment — the header, the
position table and norms, the blocks up to the alignment layer, the prefetched rows and the
pages holding the pair's other rows — and the page requests (runs of consecutive pages).

Usage: python3 scripts/rows-per-pair.py [model.gguf] [tokenizer.json]
Needs the `gguf` package (setup installs it) and `tokenizers` (pip install tokenizers);
the tokenizer.json is the model's source, which setup keeps in ~/.cache/xlalign/model-src.
"""
import os
import statistics
import sys

import gguf
import tokenizers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
model = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "public/models/multilingual-e5-small-q4_0.gguf")
cache = os.environ.get("XLALIGN_CACHE", os.path.expanduser("~/.cache/xlalign"))
tok_path = sys.argv[2] if len(sys.argv) > 2 else os.path.join(cache, "model-src/tokenizer.json")

r = gguf.GGUFReader(model)
tensors = {t.name: t for t in r.tensors}
table = tensors["token_embd.weight"]
rows = int(table.shape[-1])
row_bytes = table.n_bytes // rows
layer = int(r.fields["xlalign.align.layer"].parts[-1][0])
header = table.data_offset
table_end = table.data_offset + table.n_bytes
# Everything after the table that the first alignment needs: up to the end of block layer-1.
ready_end = max(t.data_offset + t.n_bytes for n, t in tensors.items()
                if n != "token_embd.weight" and not any(n.startswith(f"blk.{b}.") for b in range(layer, 64)))
base = header + ready_end - table_end
print(f"{os.path.basename(model)}: header {header / 1e6:.2f} MB, after the table up to block {layer - 1} "
      f"{(ready_end - table_end) / 1e6:.2f} MB, rows of {row_bytes} bytes")

tok = tokenizers.Tokenizer.from_file(tok_path)
pairs = []
for d in ["enfr", "jaen", "roen", "zhen"]:
    src = open(os.path.join(ROOT, f"tests/data/gold/{d}/{d}.src"), encoding="utf-8").read().splitlines()
    tgt = open(os.path.join(ROOT, f"tests/data/gold/{d}/{d}.tgt"), encoding="utf-8").read().splitlines()
    pairs += list(zip(src, tgt))
bench = [l for l in open(os.path.join(ROOT, "tests/data/bench-sentences.txt"), encoding="utf-8").read().splitlines() if l.strip()]
pairs += [(bench[i], bench[i + 1]) for i in range(0, len(bench) - 1, 2)]
ids = [set(tok.encode("passage: " + a).ids) | set(tok.encode("passage: " + b).ids) for a, b in pairs]
print(f"{len(pairs)} pairs, median {statistics.median(len(x) for x in ids)} distinct rows each")


def runs(pages):
    n, last = 0, None
    for p in sorted(pages):
        n += last is None or p != last + 1
        last = p
    return n


print("| page rows | prefetch rows | MB before the first alignment: median | 90th pct | max | ≤ 12 MB | page requests: median | max |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
for page in [16, 32, 64, 256]:
    for prefetch in [0, 512, 1024, 2048, 4096, 16384]:
        if prefetch % page:
            continue
        pages = [{i // page for i in x if i >= prefetch} for x in ids]
        total = sorted(base + prefetch * row_bytes + len(p) * page * row_bytes for p in pages)
        reqs = sorted(runs(p) for p in pages)
        print(f"| {page} | {prefetch} | {statistics.median(total) / 1e6:.2f} | {total[int(0.9 * len(total))] / 1e6:.2f} "
              f"| {total[-1] / 1e6:.2f} | {sum(t <= 12e6 for t in total) / len(total):.0%} | {statistics.median(reqs)} | {reqs[-1]} |")
