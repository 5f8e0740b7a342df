"""Benchmark receivers on uvloop: a syslog TCP sink and an HTTP(S) logplex-1 drain receiver.

Counts octet-counted frames (and L10 loss reports), samples send→delivery
latency from the ``ts=<ns>`` stamp the load generator puts at the end of each
message, and prints one JSON line when ``--count`` frames arrived or after
``--idle`` seconds without data.

    python bench/sink.py --port 0 --count 1000000 [--http] [--tls-cert C --tls-key K] [--max-rate R]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import re
import ssl
import sys
import time

import uvloop

from logrouter.protocol.speedups import native

_TS = re.compile(rb"ts=(\d{19})")
SAMPLE_EVERY = 97


class Counter:
    def __init__(self, target: int) -> None:
        self.target = target
        self.frames = 0
        self.bytes = 0
        self.l10_lost = 0
        self.l10_lines = 0
        self.vclock = 0.0  # for --max-rate
        self.first = 0.0
        self.last = 0.0
        self.latencies: list[int] = []
        self.done = asyncio.Event()

    def frames_in(self, buf: bytes, start: int) -> int:
        """Count whole octet-counted frames from ``start``; return where the partial tail begins."""
        if native is not None:  # logrouter's C splitter: the sink must not be the bottleneck
            frames: list[bytes] = []
            pos = native.split_octets(buf, start, 1 << 23, frames)
            if pos < 0:
                pos = -pos - 1
            for frame in frames[SAMPLE_EVERY - self.frames % SAMPLE_EVERY - 1::SAMPLE_EVERY]:
                self._sample(frame, 0, len(frame))
            self.account(len(frames), pos - start)
            return pos
        pos = start
        n = len(buf)
        count = 0
        sample = self.frames % SAMPLE_EVERY
        while True:
            sp = buf.find(b" ", pos, pos + 12)
            if sp < 0:
                break
            end = sp + 1 + int(buf[pos:sp])
            if end > n:
                break
            count += 1
            sample += 1
            if sample >= SAMPLE_EVERY:
                sample = 0
                self._sample(buf, sp + 1, end)
            pos = end
        self.account(count, pos - start)
        return pos

    def _sample(self, buf: bytes, start: int, end: int) -> None:
        frame = buf[start:end]
        if b"Error L10" in frame:
            return  # counted by scan_l10
        m = _TS.search(frame, max(0, len(frame) - 40))
        if m:
            self.latencies.append(time.time_ns() - int(m.group(1)))

    def account(self, count: int, nbytes: int) -> None:
        if not count:
            return
        now = time.time()
        if not self.frames:
            self.first = now
        self.frames += count
        self.bytes += nbytes
        self.last = now
        if self.frames - self.l10_lines >= self.target:
            self.done.set()

    def scan_l10(self, buf: bytes) -> None:
        """Add up the losses L10 lines in ``buf`` report; the L10 lines themselves are not
        delivered log lines, so they are taken off the frame count."""
        for m in re.finditer(rb"Error L10 \(output buffer overflow\): (\d+) messages", buf):
            self.l10_lost += int(m.group(1))
            self.l10_lines += 1

    def result(self) -> dict[str, object]:
        lat = sorted(self.latencies)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] / 1e6, 3) if lat else None

        return {"frames": self.frames - self.l10_lines, "bytes": self.bytes, "first": self.first,
                "last": self.last,
                "l10_lost": self.l10_lost, "p50_ms": pct(0.50), "p99_ms": pct(0.99),
                "samples": len(lat)}


class SyslogProtocol(asyncio.Protocol):
    def __init__(self, counter: Counter, max_rate: float = 0.0) -> None:
        self.counter = counter
        self.max_rate = max_rate
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        if b"L10" in data:
            self.counter.scan_l10(data)
        before = self.counter.frames
        pos = self.counter.frames_in(buf, 0)
        self.buf = buf[pos:]
        if self.max_rate:
            self._throttle(self.counter.frames - before)

    def _throttle(self, frames: int) -> None:
        """A slow receiver: a virtual clock shared by all connections advances 1/max_rate per
        frame (never lagging the real one by more than 50 ms); reading pauses while it is ahead."""
        c = self.counter
        now = time.monotonic()
        c.vclock = max(c.vclock, now - 0.05) + frames / self.max_rate
        if c.vclock - now > 0.001 and self.transport is not None:
            self.transport.pause_reading()
            asyncio.get_running_loop().call_later(c.vclock - now, self._resume)

    def _resume(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()


class HttpProtocol(asyncio.Protocol):
    """Minimal HTTP/1.1 receiver: Content-Length bodies, keep-alive, 200 to each POST."""

    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buf[:head_end].lower()
            i = head.find(b"content-length:")
            eol = head.find(b"\r\n", i)
            length = int(head[i + 15:eol if eol > 0 else None]) if i >= 0 else 0
            end = head_end + 4 + length
            if len(self.buf) < end:
                return
            body = self.buf[head_end + 4:end]
            self.buf = self.buf[end:]
            if b"L10" in body:
                self.counter.scan_l10(body)
            self.counter.frames_in(body, 0)
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


async def main(args: argparse.Namespace) -> None:
    counter = Counter(args.count)
    loop = asyncio.get_running_loop()
    ctx = None
    if args.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
    def protocol() -> asyncio.Protocol:
        return HttpProtocol(counter) if args.http else SyslogProtocol(counter, args.max_rate)

    server = await loop.create_server(protocol, "127.0.0.1", args.port, ssl=ctx, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    # A collection here would stamp its pause on the lines that wait for it (a full one took
    # 4-14 ms), counted as the router's latency; a run's cyclic garbage is small.
    gc.disable()
    print(json.dumps({"port": port}), flush=True)
    seen = -1
    started = time.time()
    while not counter.done.is_set():
        try:
            await asyncio.wait_for(counter.done.wait(), timeout=args.idle)
        except TimeoutError:
            if counter.frames == seen and (counter.frames > args.warm
                                           or time.time() - started > args.max_wait):
                break
            seen = counter.frames
    server.close()
    print(json.dumps(counter.result()), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--idle", type=float, default=3.0)
    parser.add_argument("--warm", type=int, default=0,
                        help="warm-up lines: the idle timeout starts only after more arrived")
    parser.add_argument("--max-wait", type=float, default=120.0)
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--max-rate", type=float, default=0.0,
                        help="syslog: read at most this many lines/s (a slow receiver)")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    uvloop.run(main(parser.parse_args()))
    sys.exit(0)
