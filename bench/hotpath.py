"""In-process cost of the relay path's per-line loops: split, route/cook, syslog and HTTP render,
and the per-channel post.

    python bench/hotpath.py [--lines 2000] [--rounds 200] [--apps 100] [--cold-mib 0]
    LOGROUTER_PURE_PYTHON=1 python bench/hotpath.py     # the pure-Python versions

Builds one read's worth of octet-counted frames (~150 B, ``--apps`` tokens round-robin), then
times each stage over ``rounds`` passes and prints one JSON line of µs per line per stage
(``split_route_us``: split and route in one pass, as a syslog read is routed).
``post_batch_us`` is what one channel batch costs from ``Channel.post`` on: history, and a
connected syslog drain's push (buffer, the shared writer's mark), each read followed by the
writer's round over a socket pair (``post_lines_per_batch``: lines per batch), untimed but for
``take_batch_us``: what taking a write from a drain's buffer costs, per batch.
"""

from __future__ import annotations

import argparse
import json
import socket
import time

import trio

from drains.base import DrainOptions
from drains.syslog_drain import SyslogDrain
from drains.syslog_writer import SyslogWriter
from logrouter.core.channels import Channel, ChannelTable
from logrouter.core.token_routing import Routing, route_by_token
from logrouter.models import ChannelRecord, DrainRecord, TokenRecord
from logrouter.protocol.drainfmt import render_http, render_syslog
from logrouter.protocol.framing import FrameSplitter
from logrouter.protocol.speedups import native
from logrouter.transport.send_many import render_send_syslog


def post_cost(buf: bytes, apps: int, rounds: int, cold_mib: int = 0,
              ) -> tuple[float, float, float]:
    """µs per channel batch of ``Channel.post`` into history and a connected syslog drain
    (each read followed by the writer's round over a socket pair, untimed but for taking each
    drain's write from its buffer); µs per batch of that taking; and the mean lines per
    batch. ``cold_mib``: touch that much memory (untimed) before each post, so that
    it starts with cold caches, as on a node where each round streams ~100 MB of lines."""
    async def main() -> tuple[float, float, float]:
        table = ChannelTable(1500)
        writer = SyslogWriter(0.002)
        out, peer = socket.socketpair()
        out.setblocking(False)
        peer.setblocking(False)
        drains = []
        for i in range(apps):
            table.put_channel(ChannelRecord(str(i), f"app{i}", 0.0))
            table.put_token(TokenRecord(f"t.{i:032d}", str(i), "app"))
            record = DrainRecord(i, str(i), f"d.{i:032d}", "syslog://127.0.0.1:1", 0.0, 0.0)
            drain = SyslogDrain(record, DrainOptions(), writer=writer)
            drain._direct = out  # connected: pushes take the shared writer's path
            table.channels[str(i)].add_consumer(drain, drain=True)
            drains.append(drain)
        groups = list(route_by_token(FrameSplitter().feed(buf), table.route).groups.items())
        spent = taking = 0.0
        scratch = bytearray(cold_mib << 20)
        for _ in range(rounds):
            for at in range(0, len(scratch), 4096):
                scratch[at] ^= 1
            pressured: list[object] = []
            t0 = time.perf_counter()
            for channel, lines in groups:
                Channel.post(channel, lines, pressured)  # type: ignore[arg-type]
            spent += time.perf_counter() - t0
            dirty, writer._dirty = writer._dirty, {}
            for drain in dirty:
                while True:  # a writer round of one
                    t1 = time.perf_counter()
                    taken = drain.take_write()
                    taking += time.perf_counter() - t1
                    if taken is None:
                        break
                    fd, out = taken
                    result = render_send_syslog([fd], [drain.token], [out.data], [out.lines])[0]
                    assert result is not None  # the benchmark's lines are all of the fast shape
                    if not drain.write_sent(out, *result):
                        break
                try:
                    while peer.recv(1 << 20):
                        pass
                except BlockingIOError:
                    pass
        batches = rounds * len(groups)
        return (spent / batches * 1e6, taking / batches * 1e6,
                sum(len(g) for _, g in groups) / len(groups))
    return trio.run(main)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lines", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument("--apps", type=int, default=100)
    p.add_argument("--cold-mib", type=int, default=0,
                   help="memory touched before each timed post (cold caches); 0: none")
    args = p.parse_args()
    tokens = {b"t.%032d" % i: (i, b"app") for i in range(args.apps)}
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
    for _ in range(args.rounds):
        Routing(tokens).octets(buf, 0, 10240)
    t2b = time.perf_counter()
    groups = list(routed.groups.values())
    for _ in range(args.rounds):
        for g in groups:
            render_syslog(g, b"d.00000000-0000-0000-0000-000000000000")
    t3 = time.perf_counter()
    for _ in range(args.rounds):
        for g in groups:
            render_http(g)
    t4 = time.perf_counter()
    post_us, take_us, per_batch = post_cost(buf, args.apps, args.rounds, args.cold_mib)
    print(json.dumps({
        "native": native is not None, "lines": args.lines, "rounds": args.rounds,
        "split_us": round((t1 - t0) / n * 1e6, 3), "route_us": round((t2 - t1) / n * 1e6, 3),
        "split_route_us": round((t2b - t2) / n * 1e6, 3),
        "render_syslog_us": round((t3 - t2b) / n * 1e6, 3),
        "render_http_us": round((t4 - t3) / n * 1e6, 3),
        "apps": args.apps, "post_batch_us": round(post_us, 3), "take_batch_us": round(take_us, 3),
        "post_lines_per_batch": round(per_batch, 2)}))


if __name__ == "__main__":
    main()
