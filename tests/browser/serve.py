#!/usr/bin/env python3
"""Static file server for the browser tests, example and bench pages.

What `python3 -m http.server` lacks and the tests need:
  * HTTP Range requests (206 + Content-Range), used by progressive model loading;
    `--no-range` turns them off to test the full-download fallback;
  * CORS headers, so pages served by another origin (the wasm-bindgen test runner) can
    fetch the model and read Content-Length / Content-Range;
  * several folders under one origin (`--mount /models=DIR`);
  * `GET /__stats` → JSON byte and request counts since the last `/__stats?reset=1`,
    so a test can tell how much of the model a page really downloaded;
  * `ETag` and `Last-Modified` from each file's size and modification time, and
    `GET /__replace` to make every file look replaced (new `ETag`, later `Last-Modified`)
    without touching it, so a test can check that cached copies are noticed as stale.

Usage: serve.py --port 8790 --mount /=public --mount /models=public/models [--no-range]
"""

import argparse
import email.utils
import json
import os
import posixpath
import re
import sys
import threading
import urllib.parse
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

STATS_LOCK = threading.Lock()
STATS = {"requests": 0, "rangeRequests": 0, "headRequests": 0, "bytes": 0}
# Bumped by /__replace: part of every ETag and added to every Last-Modified.
GENERATION = [0]

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


class Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: progressive loading makes many small requests
    mounts = []  # [(url prefix, directory)], longest prefix first
    allow_range = True
    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".json": "application/json",
        ".gguf": "application/octet-stream",
    }

    def log_message(self, fmt, *args):
        if os.environ.get("SERVE_VERBOSE"):
            super().log_message(fmt, *args)

    def end_headers(self):
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Headers", "Range")
        self.send_header("Access-Control-Expose-Headers", "Content-Length, Content-Range, Accept-Ranges, ETag")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def do_OPTIONS(self):
        self.send_response(204)
        self.send_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        self.end_headers()

    def translate_path(self, path):
        path = urllib.parse.unquote(urllib.parse.urlsplit(path).path)
        path = posixpath.normpath(path)
        for prefix, root in self.mounts:
            p = prefix.rstrip("/")
            if path == p or path.startswith(p + "/") or p == "":
                rest = path[len(p):].lstrip("/")
                parts = [x for x in rest.split("/") if x not in ("", ".", "..")]
                return os.path.join(root, *parts)
        return "/nonexistent"

    def do_GET(self):
        if self.path.startswith("/__stats"):
            return self.send_stats()
        if self.path.startswith("/__replace"):
            with STATS_LOCK:
                GENERATION[0] += 1
            return self.send_json({"generation": GENERATION[0]})
        self.serve(head=False)

    def do_HEAD(self):
        self.serve(head=True)

    def send_stats(self):
        with STATS_LOCK:
            stats = dict(STATS)
            if "reset=1" in self.path:
                for k in STATS:
                    STATS[k] = 0
        self.send_json(stats)

    def send_json(self, value):
        body = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def serve(self, head):
        path = self.translate_path(self.path)
        if os.path.isdir(path):
            path = os.path.join(path, "index.html")
        if not os.path.isfile(path):
            self.send_error(404, "not found")
            return
        st = os.stat(path)
        size = st.st_size
        generation = GENERATION[0]
        etag = f'"{size:x}-{st.st_mtime_ns:x}-{generation}"'
        last_modified = email.utils.formatdate(int(st.st_mtime) + generation, usegmt=True)
        start, end, partial = 0, size - 1, False
        rng = self.headers.get("Range")
        if rng and self.allow_range:
            m = RANGE_RE.match(rng.strip())
            if not m or (m.group(1) == "" and m.group(2) == ""):
                self.send_error(416, "unsupported range")
                return
            if m.group(1) == "":  # suffix range: last N bytes
                n = int(m.group(2))
                start, end = max(0, size - n), size - 1
            else:
                start = int(m.group(1))
                end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            if start >= size or start > end:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            partial = True
        length = end - start + 1
        self.send_response(206 if partial else 200)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Length", str(length))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", last_modified)
        if self.allow_range:
            self.send_header("Accept-Ranges", "bytes")
        if partial:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        with STATS_LOCK:
            STATS["requests"] += 1
            STATS["rangeRequests"] += int(partial)
            STATS["headRequests"] += int(head)
        if head:
            return
        sent = 0
        try:
            with open(path, "rb") as f:
                f.seek(start)
                while sent < length:
                    chunk = f.read(min(1 << 16, length - sent))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client cancelled (progressive loading stops reading on purpose)
        finally:
            with STATS_LOCK:
                STATS["bytes"] += sent


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8790)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--mount", action="append", default=[], help="URL_PREFIX=DIR (repeatable)")
    ap.add_argument("--no-range", action="store_true", help="ignore Range headers (always 200 + whole file)")
    args = ap.parse_args()
    mounts = []
    for m in args.mount or ["/=."]:
        prefix, _, d = m.partition("=")
        if not d or not os.path.isdir(d):
            sys.exit(f"serve.py: --mount {m}: not a directory")
        mounts.append(("/" + prefix.strip("/"), os.path.abspath(d)))
    mounts.sort(key=lambda x: -len(x[0]))
    Handler.mounts = [(p if p != "/" else "", d) for p, d in mounts]
    Handler.allow_range = not args.no_range
    srv = ThreadingHTTPServer((args.bind, args.port), Handler)
    srv.daemon_threads = True
    print(f"serving on http://{args.bind}:{args.port}/ ({'no ranges' if args.no_range else 'ranges'})", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
