#!/usr/bin/env python3
"""What a .wasm file's bytes are: sizes per section, and code bytes per crate and per
function from the `name` section. wasm-opt drops that section unless run with -g, so
`XLALIGN_WASM_SIZE_REPORT=1 scripts/build-wasm.sh` optimises a copy with -g and runs this on
it; rustc's own output (target/wasm32-unknown-unknown/release/*.wasm) works too, before
wasm-bindgen removes its descriptor functions and wasm-opt shrinks the rest.

Usage: wasm-size.py FILE.wasm [--top N]
"""

import argparse
import re
import sys
from collections import Counter

SECTIONS = {0: "custom", 1: "type", 2: "import", 3: "function", 4: "table", 5: "memory", 6: "global",
            7: "export", 8: "start", 9: "element", 10: "code", 11: "data", 12: "datacount"}


def leb(b, i):
    r = s = 0
    while True:
        x = b[i]
        i += 1
        r |= (x & 0x7F) << s
        s += 7
        if x < 0x80:
            return r, i


def sections(b):
    if b[:4] != b"\0asm":
        sys.exit("not a wasm file")
    i = 8
    while i < len(b):
        sid = b[i]
        n, j = leb(b, i + 1)
        name, start = "", j
        if sid == 0:  # a custom section's payload starts with its name
            ln, start = leb(b, j)
            name = b[start:start + ln].decode(errors="replace")
            start += ln
        yield sid, name, b[start:j + n]
        i = j + n


def imported_functions(payload):
    count, i = leb(payload, 0)
    funcs = 0
    for _ in range(count):
        for _ in range(2):  # module, field
            ln, i = leb(payload, i)
            i += ln
        kind = payload[i]
        i += 1
        if kind == 0:
            _, i = leb(payload, i)
            funcs += 1
        elif kind == 1:  # table: reftype + limits
            i += 1
            flags = payload[i]
            _, i = leb(payload, i + 1)
            if flags & 1:
                _, i = leb(payload, i)
        elif kind == 2:  # memory: limits
            flags = payload[i]
            _, i = leb(payload, i + 1)
            if flags & 1:
                _, i = leb(payload, i)
        elif kind == 3:  # global: valtype + mut
            i += 2
        else:  # tag
            _, i = leb(payload, i + 1)
    return funcs


def body_sizes(payload):
    count, i = leb(payload, 0)
    out = []
    for _ in range(count):
        n, j = leb(payload, i)
        out.append(j - i + n)
        i = j + n
    return out


def function_names(payload):
    names = {}
    i = 0
    while i < len(payload):
        sub = payload[i]
        n, j = leb(payload, i + 1)
        if sub == 1:
            count, k = leb(payload, j)
            for _ in range(count):
                idx, k = leb(payload, k)
                ln, k = leb(payload, k)
                names[idx] = payload[k:k + ln].decode(errors="replace")
                k += ln
        i = j + n
    return names


def demangle(s):
    """Legacy Rust mangling (_ZN…E) to a path; other names unchanged."""
    m = re.match(r"^_ZN(.*)E$", s)
    if not m:
        return s
    rest, parts = m.group(1), []
    while rest and rest[0].isdigit():
        d = re.match(r"^(\d+)", rest).group(1)
        n = int(d)
        parts.append(rest[len(d):len(d) + n])
        rest = rest[len(d) + n:]
    if parts and re.fullmatch(r"h[0-9a-f]{16}", parts[-1]):
        parts.pop()
    path = "::".join(parts)
    for a, b in (("$LT$", "<"), ("$GT$", ">"), ("$u20$", " "), ("$RF$", "&"), ("$C$", ","), ("$BP$", "*"),
                 ("$u7b$", "{"), ("$u7d$", "}"), ("$u5b$", "["), ("$u5d$", "]"), ("..", "::"), ("$u27$", "'")):
        path = path.replace(a, b)
    return path


def crate_of(name):
    """The crate a function's code is attributed to: the first path segment, or for an
    impl `<A as B>` the crate of A (whose type the code is for; B's for a generic A).
    Generic code lands where its path starts: `core::ptr::drop_in_place<tokenizers::…>`
    counts as core's."""
    if name.startswith("__wbindgen_describe"):
        return "(wasm-bindgen type descriptors: removed by wasm-bindgen)"
    if name.startswith("_R"):  # v0 mangling (the standard library's): first crate named
        m = re.search(r"C[sn]?[0-9A-Za-z]*_(\d+)([A-Za-z_]\w*)", name)
        if m:
            return m.group(2)[: int(m.group(1))]
    g = re.match(r"^_?<(?:&(?:mut )?)?[A-Z]\w? as ([A-Za-z_]\w*)::", name)
    if g:
        return g.group(1)
    n = name.lstrip("_<&* ")
    if n.startswith("mut "):
        n = n[4:]
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)", n)
    if not m:
        return "(other)"
    c = m.group(1)
    if "::" not in name and not name.startswith("_ZN"):
        return "(runtime/wasm-bindgen glue)" if c.startswith("__") or c.startswith("wasm") else "(other)"
    return c


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wasm")
    ap.add_argument("--top", type=int, default=15)
    a = ap.parse_args()
    b = open(a.wasm, "rb").read()
    secs = list(sections(b))
    print(f"{a.wasm}: {len(b)} bytes")
    for sid, name, p in sorted(secs, key=lambda x: -len(x[2])):
        if len(p) >= 1024:
            print(f"  {SECTIONS.get(sid, sid):>9} {name:<24} {len(p):>9} B  {100 * len(p) / len(b):5.1f}%")
    imports = next((imported_functions(p) for sid, _, p in secs if sid == 2), 0)
    code = next((p for sid, _, p in secs if sid == 10), None)
    names = next((function_names(p) for sid, n, p in secs if sid == 0 and n == "name"), None)
    if code is None:
        return
    if not names:
        print("  (no name section: run on a copy optimised with wasm-opt -g, as XLALIGN_WASM_SIZE_REPORT=1 scripts/build-wasm.sh does, or on rustc's output)")
        return
    sizes = body_sizes(code)
    total = sum(sizes)
    by_crate, funcs = Counter(), []
    for k, n in enumerate(sizes):
        name = demangle(names.get(imports + k, f"func{imports + k}"))
        by_crate[crate_of(name)] += n
        funcs.append((n, name))
    print(f"\ncode bytes by crate ({len(sizes)} functions, {total} B):")
    for c, n in by_crate.most_common(a.top):
        print(f"  {n:>9} B  {100 * n / total:5.1f}%  {c}")
    print(f"\nlargest functions:")
    for n, name in sorted(funcs, reverse=True)[: a.top]:
        print(f"  {n:>9} B  {name[:110]}")


if __name__ == "__main__":
    main()
