"""Syslog over TCP (Logplex §2.1): octet-counted or newline-framed RFC 5424 frames.

One task per connection reads what is there (64 KiB to 1 MiB as the sender keeps up, 4 MiB
for a few of the node's busiest connections); each read is split, routed and posted as one
batch. Nothing is ever written back. Malformed,
oversize and unknown-token frames are dropped and counted; the connection and
its good frames carry on.
"""

from __future__ import annotations

from collections.abc import Sequence

import trio

from logrouter.ingest.pipeline import Ingest
from logrouter.metrics import Metrics
from logrouter.protocol.framing import FrameSplitter
from logrouter.transport.serving import Slot, StreamServer

__all__ = ["SyslogServer", "peer_name"]

# One read is one batch: bigger reads mean fewer, fuller batches per channel and drain (1 MiB
# reads cost 8 % less CPU per line than 256 KiB ones in S1). A connection's read size adapts:
# it grows while reads fill it and shrinks while they are far from it, so a trickling sender
# does not have a megabyte allocated for every line it sends. Past 1 MiB, up to 4 MiB, only
# for BIG_READERS connections of the node at a time (memory stays bounded): with lines spread
# over thousands of apps a 1 MiB read brings one or two lines per app, and each app's batch
# costs a post and a drain write of its own (5,000 apps with a drain each: 218 k -> 375 k
# lines/s, 4.7 -> 2.8 us of CPU a line).
SYSLOG_RECEIVE_MIN = 64 * 1024
SYSLOG_RECEIVE_SIZE = 1024 * 1024
SYSLOG_RECEIVE_BIG = 4 * 1024 * 1024
BIG_READERS = 16
# A read this big (or one that filled its buffer) finds the sender ahead of the router: more
# is waiting in the kernel, and the read does not wait for its round's post (Ingest.read),
# so rounds grow while the node is behind (S1 with 5,000 apps: rounds of ~100 k lines
# instead of ~50 k). A sender the router keeps up with has a few tens of KiB a read.
SYSLOG_BEHIND = 256 * 1024


def peer_name(stream: trio.abc.Stream) -> str:
    """``host:port`` of the client (through TLS too), for logs."""
    inner = getattr(stream, "transport_stream", stream)
    try:
        host, port = inner.socket.getpeername()[:2]  # type: ignore[union-attr]
    except (AttributeError, OSError):
        return "?"
    return f"{host}:{port}"


class SyslogServer(StreamServer):
    """A syslog listener: plain TCP (``syslog``) or TLS (``syslog_tls``, RFC 5425: the same
    octet-counted frames inside TLS; the listeners are then :class:`trio.SSLListener`)."""

    def __init__(self, listeners: Sequence[trio.abc.Listener[trio.abc.Stream]], metrics: Metrics,
                 ingest: Ingest, max_connections: int, max_frame_bytes: int,
                 name: str = "syslog") -> None:
        super().__init__(name, listeners, metrics, max_connections)
        self.ingest = ingest
        self.max_frame_bytes = max_frame_bytes
        self.big_readers = 0  # connections reading up to SYSLOG_RECEIVE_BIG (at most BIG_READERS)

    async def handle(self, stream: trio.abc.Stream, slot: Slot) -> None:
        splitter = FrameSplitter(self.max_frame_bytes)
        ingest = self.ingest
        received = self.metrics.received_tls if self.name == "syslog_tls" else \
            self.metrics.received_tcp
        peer = peer_name(stream)
        receive = stream.receive_some
        feeder = ingest.feeder()
        size = SYSLOG_RECEIVE_MIN
        big = False  # holds one of the node's BIG_READERS places
        try:
            while True:
                data = bytes(await receive(size))
                if not data:
                    break
                full = len(data) == size
                if full:
                    if size < SYSLOG_RECEIVE_SIZE:
                        size = min(size * 4, SYSLOG_RECEIVE_SIZE)
                    elif not big and self.big_readers < BIG_READERS:
                        self.big_readers += 1
                        big = True
                        size = SYSLOG_RECEIVE_BIG
                elif len(data) < size // 16:
                    size = max(size // 4, SYSLOG_RECEIVE_MIN)
                    if big and size < SYSLOG_RECEIVE_BIG:
                        self.big_readers -= 1
                        big = False
                slot.touch()
                more = full or len(data) >= SYSLOG_BEHIND
                await ingest.read(feeder, splitter, data, received, peer, more)
                drops = splitter.drops
                if drops["oversize"] or drops["garbage"]:
                    for reason, n in splitter.take_drops().items():
                        ingest.dropped(reason, n, peer)
        finally:
            if big:
                self.big_readers -= 1
        if splitter.pending:
            ingest.dropped("garbage", 1, peer)  # a frame cut off by the peer's close
