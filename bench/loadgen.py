"""Benchmark load generator: octet-counted syslog over TCP, or HTTP ``POST /logs`` batches.

Frames are built before the clock starts. Each ends with ``ts=`` and a 19-digit
placeholder that is replaced with the send time (ns) one 64 KiB block at a time,
so the sink can measure send→delivery latency without per-frame work here.
Optional pacing (``--rate``) sends at a fixed lines/s for latency runs.

``--payload pad`` (the default) fills each message with dots up to ``-s`` bytes;
``--payload mixed`` gives messages like a real app's: Heroku router lines with
random request ids, addresses and timings, and JSON app lines (they compress 4-5x,
the dots far more). ``--cycle`` bounds the frames built per connection: they are
sent over again until ``-n`` lines went out (for tens of millions of lines).

    python bench/loadgen.py --tokens-file T --port P -n 1000000 -k 4 -s 150 [--http] [--rate R]
        [--payload mixed] [--cycle 200000]
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import threading
import time
from collections.abc import Iterator

PLACEHOLDER = b"X" * 19
BLOCK = 65536


_PATHS = ["/api/v1/users/{}", "/assets/app-{:x}.js", "/health", "/api/v1/orders/{}/items",
          "/login", "/api/v2/search?q={}"]
_EVENTS = ["request done", "cache miss", "job enqueued", "payment ok", "session refreshed"]


def mixed_message(rng: random.Random, i: int) -> tuple[str, str]:
    """(app name and process id, message) of a line like a real app's."""
    if rng.random() < 0.6:
        path = rng.choice(_PATHS).format(rng.randrange(10**6))
        ip = ".".join(str(rng.randrange(256)) for _ in range(4))
        return "heroku router", (
            f'at=info method={rng.choice(["GET", "GET", "POST", "PUT"])} path="{path}" '
            f"host=myapp.herokuapp.com request_id={rng.getrandbits(128):032x} fwd=\"{ip}\" "
            f"dyno=web.{rng.randrange(1, 5)} connect={rng.randrange(3)}ms "
            f"service={rng.randrange(300)}ms status={rng.choice([200, 200, 200, 304, 404, 500])} "
            f"bytes={rng.randrange(20000)} protocol=https")
    return f"app web.{i % 8 + 1}", json.dumps(
        {"level": "info", "ts": 1790000000 + i + rng.randrange(1000) / 1000,
         "msg": rng.choice(_EVENTS), "user_id": rng.randrange(10**6),
         "latency_ms": round(rng.random() * 100, 2)}, separators=(",", ":"))


def build_frames(tokens: list[str], n: int, size: int, offset: int,
                 payload: str = "pad") -> list[bytes]:
    """``n`` RFC 5424 messages of about ``size`` bytes, tokens round-robin."""
    out = []
    rng = random.Random(offset)
    for i in range(n):
        token = tokens[(offset + i) % len(tokens)]
        if payload == "mixed":
            app, msg = mixed_message(rng, offset + i)
            head = f"<190>1 2026-11-26T10:00:00.000000+00:00 host {token} {app.split()[1]} - - "
            body = (head + msg)[:max(len(head), size - 23)].encode()
            out.append(body + b" ts=" + PLACEHOLDER)
            continue
        head = (f"<190>1 2026-11-26T10:00:00.000000+00:00 host {token} web.{i % 8 + 1} - - "
                f"seq={offset + i:09d} ")
        pad = max(0, size - len(head) - 23)
        out.append(head.encode() + b"." * pad + b" ts=" + PLACEHOLDER)
    return out


def blocks_of(frames: list[bytes], http_lines: int) -> list[tuple[bytes, int]]:
    """Group frames into send units: ~64 KiB of octet-counted frames, or ``http_lines`` per POST."""
    units = []
    if http_lines:
        for i in range(0, len(frames), http_lines):
            group = frames[i:i + http_lines]
            units.append((b"".join(b"%d %s" % (len(f), f) for f in group), len(group)))
        return units
    cur: list[bytes] = []
    size = 0
    for f in frames:
        framed = b"%d %s" % (len(f), f)
        cur.append(framed)
        size += len(framed)
        if size >= BLOCK:
            units.append((b"".join(cur), len(cur)))
            cur, size = [], 0
    if cur:
        units.append((b"".join(cur), len(cur)))
    return units


Plan = list[tuple[bytes, int]]


def each_unit(plan: tuple[Plan, int, Plan]) -> Iterator[tuple[bytes, int]]:
    """The units of a plan: ``(cycle, repeats, rest)``."""
    cycle, repeats, rest = plan
    for _ in range(repeats):
        yield from cycle
    yield from rest


def send_tcp(port: int, plan: tuple[Plan, int, Plan], rate: float, stats: dict[str, float]) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    start = time.perf_counter()
    sent = 0
    for data, count in each_unit(plan):
        if rate:
            due = start + sent / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        sock.sendall(data.replace(PLACEHOLDER, b"%019d" % time.time_ns()))
        sent += count
    sock.close()
    stats["sent"] += sent


def send_http(port: int, token: str, plan: tuple[Plan, int, Plan], rate: float,
              stats: dict[str, float]) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = sock.makefile("rb")
    head = (f"POST /logs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/logplex-1\r\n"
            f"Authorization: Bearer {token}\r\n").encode()
    start = time.perf_counter()
    sent = 0
    for body, count in each_unit(plan):
        if rate:
            delay = start + sent / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        body = body.replace(PLACEHOLDER, b"%019d" % time.time_ns())
        sock.sendall(head + b"Logplex-Msg-Count: %d\r\nContent-Length: %d\r\n\r\n" % (count, len(body))
                     + body)
        status = reader.readline()
        while reader.readline() not in (b"\r\n", b""):
            pass
        if b" 204 " not in status:
            stats["errors"] += count
        else:
            sent += count
    sock.close()
    stats["sent"] += sent


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tokens-file", required=True)
    p.add_argument("-n", type=int, default=1_000_000)
    p.add_argument("-k", type=int, default=4, help="connections")
    p.add_argument("-s", type=int, default=150, help="message bytes")
    p.add_argument("--http", type=int, default=0, help="lines per POST (HTTP mode)")
    p.add_argument("--rate", type=float, default=0.0, help="total lines/s (0 = as fast as possible)")
    p.add_argument("--payload", choices=["pad", "mixed"], default="pad")
    p.add_argument("--cycle", type=int, default=0,
                   help="frames built per connection at most (rounded up to whole rounds of the "
                        "tokens), sent repeatedly; 0 = all")
    args = p.parse_args()
    tokens = [t.strip() for t in open(args.tokens_file) if t.strip()]
    per = args.n // args.k
    plans = []
    for c in range(args.k):
        count = per if c < args.k - 1 else args.n - per * (args.k - 1)
        conn_tokens = [tokens[c % len(tokens)]] if args.http else tokens
        cycle = count
        if args.cycle and args.cycle < count:
            cycle = -(-args.cycle // len(conn_tokens)) * len(conn_tokens)
        repeats, rest = divmod(count, cycle)
        frames = build_frames(conn_tokens, cycle, args.s, c * per, args.payload)
        plans.append((blocks_of(frames, args.http), repeats, blocks_of(frames[:rest], args.http)))
    stats = {"sent": 0.0, "errors": 0.0}
    rate = args.rate / args.k if args.rate else 0.0
    threads = []
    for c, plan in enumerate(plans):
        if args.http:
            # one token per connection: HTTP token auth posts the body to that token's channel
            target = (send_http, (args.port, tokens[c % len(tokens)], plan, rate, stats))
        else:
            target = (send_tcp, (args.port, plan, rate, stats))
        threads.append(threading.Thread(target=target[0], args=target[1]))  # type: ignore[arg-type]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t1 = time.time()
    in_bytes = sum(sum(len(d) for d, _ in cycle) * repeats + sum(len(d) for d, _ in rest)
                   for cycle, repeats, rest in plans)
    print(json.dumps({"start": t0, "end": t1, "sent": int(stats["sent"]), "errors": int(stats["errors"]),
                      "bytes": in_bytes}), flush=True)


if __name__ == "__main__":
    main()
