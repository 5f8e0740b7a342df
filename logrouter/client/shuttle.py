"""``logrouter shuttle``: the dyno side. Lines from stdin or a wrapped command → ``POST /logs``.

Theory of operation
-------------------
A reader task splits the input into lines (the trailing LF is kept, as
log-shuttle does), cuts lines longer than ``max_line_bytes`` (10,000) into
pieces, and frames each as log-shuttle does (§2.4):
``<190>1 2026-11-26T10:00:00.123456+00:00 shuttle <token> <procid> - - <line>``.
Frames go into a :class:`~logrouter.core.buffer.BoundedBuffer` (``buffer_lines``,
drop-oldest), so a router that is down or slow costs bounded memory.

One poster task (one, so lines arrive in order) sends a batch when
``batch_size`` lines are waiting or ``wait`` seconds after the first, with
``Logplex-Msg-Count``; failures are retried with back-off (``max_attempts``
tries). Losses are reported in the stream itself, at the head of the next batch:
L12 for lines the full buffer dropped, L13 for batches given up on.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import trio

from logrouter import __version__
from logrouter.core.buffer import BoundedBuffer, Loss
from logrouter.transport.httpclient import HttpClientError, HttpConnection
from logrouter.transport.tlsclient import open_stream

__all__ = ["ShuttleOptions", "frame_line", "run_shuttle", "split_long"]


@dataclass(frozen=True, slots=True)
class ShuttleOptions:
    logs_url: str
    token: str
    procid: str = "shuttle"
    hostname: str = "shuttle"
    appname: str = ""  # empty: the token, as log-shuttle's -logplex-token does
    prival: int = 190
    batch_size: int = 500
    wait: float = 0.25
    buffer_lines: int = 25000  # log-shuttle: 50 batches of 500
    max_line_bytes: int = 10000
    max_attempts: int = 10
    timeout: float = 5.0


def _now() -> bytes:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)).encode() + b".%06d+00:00" % (
        int(t * 1_000_000) % 1_000_000)


def split_long(line: bytes, limit: int) -> list[bytes]:
    """Cut a line into pieces of at most ``limit`` bytes; no newline is added."""
    if len(line) <= limit:
        return [line]
    return [line[i:i + limit] for i in range(0, len(line), limit)]


def frame_line(line: bytes, opts: ShuttleOptions) -> bytes:
    app = opts.appname or opts.token
    return b"<%d>1 %s %s %s %s - - %s" % (opts.prival, _now(), opts.hostname.encode(), app.encode(),
                                          opts.procid.encode(), line)


def _loss_line(opts: ShuttleOptions, code: bytes, what: bytes, loss: Loss) -> bytes:
    since = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(loss.since)).encode()
    return b"<172>1 %s heroku %s log-shuttle - - Error %s: %d messages %s since %s\n" % (
        _now(), (opts.appname or opts.token).encode(), code, loss.count, what, since)


class Shuttle:
    """Reads lines, buffers frames, posts batches."""

    def __init__(self, opts: ShuttleOptions) -> None:
        self.opts = opts
        self.buffer = BoundedBuffer(opts.buffer_lines)
        self.lost = BoundedBuffer(1)  # carries only the L13 loss count
        self.eof = False
        self.posted = 0
        self._wakeup = trio.Event()
        parts = urlsplit(opts.logs_url)
        self.host = parts.hostname or "127.0.0.1"
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.path = (parts.path or "/logs") + (f"?{parts.query}" if parts.query else "")
        self._conn: HttpConnection | None = None

    async def read(self, stream: trio.abc.ReceiveStream) -> None:
        partial = b""
        limit = self.opts.max_line_bytes
        while True:
            data = await stream.receive_some(65536)
            if not data:
                break
            data = partial + data
            lines = data.split(b"\n")
            partial = lines.pop()
            if len(partial) > limit:  # an unfinished line already too long: ship its pieces
                pieces = split_long(partial, limit)
                partial = pieces.pop()
                lines_out = [p for line in lines for p in split_long(line + b"\n", limit)] + pieces
            else:
                lines_out = [p for line in lines for p in split_long(line + b"\n", limit)]
            if lines_out:
                self.buffer.push_many([frame_line(x, self.opts) for x in lines_out])
                self._wakeup.set()
        if partial:
            self.buffer.push_many([frame_line(x, self.opts) for x in split_long(partial, limit)])
        self.eof = True
        self._wakeup.set()

    async def post_forever(self) -> None:
        opts = self.opts
        while True:
            while not len(self.buffer) and not self.eof:
                self._wakeup = trio.Event()
                await self._wakeup.wait()
            if not len(self.buffer) and self.eof:
                return
            if len(self.buffer) < opts.batch_size and not self.eof:
                with trio.move_on_after(opts.wait):
                    while len(self.buffer) < opts.batch_size and not self.eof:
                        self._wakeup = trio.Event()
                        await self._wakeup.wait()
            dropped, lines = self.buffer.pop_batch(opts.batch_size)
            lost, _ = self.lost.pop_batch()
            frames = []
            if dropped is not None:
                frames.append(_loss_line(opts, b"L12", b"dropped", dropped))
            if lost is not None:
                frames.append(_loss_line(opts, b"L13", b"lost", lost))
            frames += lines
            if not await self._post(frames):
                self.lost.lose(len(lines))
                if lost is not None:
                    self.lost.unpop(lost, [])
                if dropped is not None:
                    self.buffer.unpop(dropped, [])

    async def _post(self, frames: list[bytes]) -> bool:
        body = b"".join(b"%d %s" % (len(f), f) for f in frames)
        head = (f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Type: application/logplex-1\r\nAuthorization: Bearer {self.opts.token}\r\n"
                f"Logplex-Msg-Count: {len(frames)}\r\nX-Request-Id: {uuid.uuid4()}\r\n"
                f"User-Agent: logrouter-shuttle/{__version__}\r\nContent-Length: {len(body)}\r\n\r\n")
        data = head.encode() + body
        for attempt in range(1, self.opts.max_attempts + 1):
            try:
                if self._conn is None or not self._conn.usable:
                    with trio.fail_after(self.opts.timeout):
                        self._conn = HttpConnection(await open_stream(
                            self.host, self.port, self.tls, False, ""))
                with trio.fail_after(self.opts.timeout):
                    result = await self._conn.request(data)
            except (OSError, trio.BrokenResourceError, trio.TooSlowError, HttpClientError) as exc:
                error = f"{type(exc).__name__}: {exc}"
                if self._conn is not None:
                    await self._conn.aclose()
                    self._conn = None
            else:
                if 200 <= result.status < 300:
                    self.posted += len(frames)
                    return True
                error = f"HTTP {result.status}"
                if 400 <= result.status < 500 and result.status != 429:
                    print(f"logrouter shuttle: the router refused a batch: {error}", file=sys.stderr)
                    return False
            print(f"logrouter shuttle: post failed (try {attempt}): {error}", file=sys.stderr)
            await trio.sleep(min(5.0, 0.25 * 2 ** (attempt - 1)))
        return False


async def run_shuttle(opts: ShuttleOptions, command: list[str]) -> int:
    """Ship stdin (or ``command``'s stdout and stderr) until it ends; return the exit code:
    the command's when one was given and failed, else 1 when lines were lost (dropped past
    the buffer, refused by the router, or given up on), else 0."""
    shuttle = Shuttle(opts)
    code = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(shuttle.post_forever)
        if command:
            proc = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE,
                                                    stderr=subprocess.STDOUT)
            assert proc.stdout is not None
            await shuttle.read(proc.stdout)
            code = await proc.wait()
        else:
            stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
            await shuttle.read(stdin)
    if math.isfinite(code) and code < 0:
        code = 128 - code
    lost = shuttle.lost.statistics().lost + shuttle.buffer.statistics().lost
    if lost:
        print(f"logrouter shuttle: {lost} lines were not delivered (dropped or refused)",
              file=sys.stderr)
        return code or 1
    return code
