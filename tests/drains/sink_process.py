"""Healthy drain receivers in a process of their own, as on another machine.

A receiver on the node's own event loop, or on a thread of its process, is only as quick as
the node lets it be: a burst that keeps the node busy (and its GIL held) for a second made its
receiver look slow, and the node rightly dropped lines for it. Here a syslog and an HTTP
receiver (:mod:`tests.drains.sinks`) run in a child process that writes what they got to files
every 20 ms; :class:`SinkProcess` reads the new bytes back when asked.

Child: ``python -m tests.drains.sink_process DIR`` prints ``<syslog port> <http port>``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import trio

from logrouter.protocol.framing import FrameSplitter
from tests.drains.sinks import HttpSink, Received, SyslogSink


class SinkProcess:
    """The child process and what its receivers got: ``frames`` and ``by_connection`` as a
    :class:`SyslogSink` has them (``frames`` connection after connection), ``requests`` as an
    :class:`HttpSink` has them (bodies only)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.drains.sink_process",
                                      str(directory)], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        ports = self.proc.stdout.readline().split()
        assert len(ports) == 2, "the receivers' process did not start"
        self.syslog_port, self.http_port = int(ports[0]), int(ports[1])
        self._syslog: dict[int, tuple[FrameSplitter, int, list[bytes]]] = {}
        self._http_offset = 0
        self._http_pending = b""
        self._requests: list[Received] = []

    @property
    def by_connection(self) -> list[list[bytes]]:
        for name in sorted(os.listdir(self.directory)):
            if not name.startswith("syslog-"):
                continue
            i = int(name[7:-4])
            splitter, offset, frames = self._syslog.setdefault(
                i, (FrameSplitter(max_frame_bytes=1 << 20, allow_newline=False), 0, []))
            with open(self.directory / name, "rb") as fh:
                fh.seek(offset)
                data = fh.read()
            frames += splitter.feed(data)
            self._syslog[i] = (splitter, offset + len(data), frames)
        return [self._syslog[i][2] for i in sorted(self._syslog)]

    @property
    def frames(self) -> list[bytes]:
        return [f for frames in self.by_connection for f in frames]

    @property
    def requests(self) -> list[Received]:
        path = self.directory / "http.bin"
        if path.exists():
            with open(path, "rb") as fh:
                fh.seek(self._http_offset)
                data = fh.read()
            self._http_offset += len(data)
            pending = self._http_pending + data
            while b"\n" in pending:
                head, rest = pending.split(b"\n", 1)
                size = int(head)
                if len(rest) < size:
                    break
                self._requests.append(Received("POST", "/", {}, rest[:size]))
                pending = rest[size:]
            self._http_pending = pending
        return self._requests

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


async def _serve(directory: Path) -> None:
    syslog, http = SyslogSink(), HttpSink()
    async with trio.open_nursery() as nursery:
        syslog_port = await nursery.start(syslog.run)
        http_port = await nursery.start(http.run)
        print(syslog_port, http_port, flush=True)
        written_requests = 0
        written_frames: list[int] = []
        with open(directory / "http.bin", "ab") as http_out:
            while True:
                await trio.sleep(0.02)
                for i, frames in enumerate(list(syslog.by_connection)):
                    if i == len(written_frames):
                        written_frames.append(0)
                    new = frames[written_frames[i]:]
                    if new:
                        with open(directory / f"syslog-{i:04d}.bin", "ab") as out:
                            out.write(b"".join(b"%d %s" % (len(f), f) for f in new))
                        written_frames[i] += len(new)
                new_requests = http.requests[written_requests:]
                if new_requests:
                    http_out.write(b"".join(b"%d\n%s" % (len(r.body), r.body)
                                            for r in new_requests))
                    http_out.flush()
                    written_requests += len(new_requests)


if __name__ == "__main__":
    trio.run(_serve, Path(sys.argv[1]))
