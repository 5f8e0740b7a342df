"""In-process cost of the relay path's per-line loops: split, route/cook, syslog and HTTP render.

    python bench/hotpath.py [--lines 2000] [--rounds 200]
    LOGROUTER_PURE_PYTHON=1 python bench/hotpath.py     # the pure-Python versions

Builds one read's worth of octet-counted frames (~150 B, 100 tokens round-robin), then times
each stage over ``rounds`` passes and prints one JSON line of µs per line per stage.
"""

from __future__ import annotations

import argparse
import json
import time

from logrouter.core.token_routing import route_by_token
from logrouter.protocol.drainfmt import render_http, render_syslog
from logrouter.protocol.framing import FrameSplitter
from logrouter.protocol.speedups import native


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lines", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=200)
    args = p.parse_args()
    tokens = {b"t.%032d" % i: (i, b"app") for i in range(100)}
    names = list(tokens)
    frames = []
    for i in range(args.lines):
        f = b"<190>1 2026-11-26T10:00:00.123456+00:00 host %s web.%d - - seq=%09d %s" % (
            names[i % len(names)], i % 8 + 1, i, b"." * 60)
        frames.append(b"%d %s" % (len(f), f))
    buf = b"".join(frames)
    n = args.lines * args.rounds

    t0 = time.perf_counter()
    for _ in range(args.rounds):
        split = FrameSplitter().feed(buf)
    t1 = time.perf_counter()
    for _ in range(args.rounds):
        routed = route_by_token(split, tokens)
    t2 = time.perf_counter()
    groups = list(routed.groups.values())
    for _ in range(args.rounds):
        for g in groups:
            render_syslog(g, b"d.00000000-0000-0000-0000-000000000000")
    t3 = time.perf_counter()
    for _ in range(args.rounds):
        for g in groups:
            render_http(g)
    t4 = time.perf_counter()
    print(json.dumps({
        "native": native is not None, "lines": args.lines, "rounds": args.rounds,
        "split_us": round((t1 - t0) / n * 1e6, 3), "route_us": round((t2 - t1) / n * 1e6, 3),
        "render_syslog_us": round((t3 - t2) / n * 1e6, 3),
        "render_http_us": round((t4 - t3) / n * 1e6, 3)}))


if __name__ == "__main__":
    main()
