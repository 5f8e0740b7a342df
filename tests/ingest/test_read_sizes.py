"""A connection's read grows with a fast sender, past 1 MiB only for BIG_READERS connections of
the node at a time, and gives its place back."""

from __future__ import annotations

import trio
import trio.testing

from logrouter.core.channels import ChannelTable
from logrouter.ingest import tcp_server
from logrouter.ingest.pipeline import Ingest
from logrouter.ingest.tcp_server import SyslogServer
from logrouter.metrics import Metrics
from logrouter.transport.serving import Slot


class Feeder(trio.abc.ReceiveStream):
    """A sender that always has more than any read can take, for ``rounds`` reads."""

    def __init__(self, rounds: int, sizes: list[int]) -> None:
        self.rounds = rounds
        self.sizes = sizes
        frame = b"<190>1 2026-11-27T10:00:00+00:00 host t.nope web.1 - - x"
        framed = b"%d %s" % (len(frame), frame)
        self.data = framed * ((5 << 20) // len(framed))

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        if self.rounds == 0:
            return b""
        self.rounds -= 1
        assert max_bytes is not None
        self.sizes.append(max_bytes)
        return self.data[:max_bytes]  # a full read (a frame cut at its end is dropped)

    async def aclose(self) -> None:
        pass


def test_big_reads_are_bounded_node_wide_and_given_back() -> None:
    async def main() -> None:
        metrics = Metrics()
        server = SyslogServer([], metrics, Ingest(ChannelTable(10), metrics, 1.0), 64, 10240)
        sizes: list[list[int]] = [[] for _ in range(tcp_server.BIG_READERS + 4)]
        most = 0

        async def watch() -> None:
            nonlocal most
            while True:
                most = max(most, server.big_readers)
                await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as watcher:
            watcher.start_soon(watch)
            async with trio.open_nursery() as nursery:
                for s in sizes:
                    nursery.start_soon(server.handle, Feeder(12, s), Slot())
            watcher.cancel_scope.cancel()
        assert most == tcp_server.BIG_READERS and server.big_readers == 0
        grown = [s for s in sizes if tcp_server.SYSLOG_RECEIVE_BIG in s]
        # a connection that ends gives its place to one still growing
        assert len(grown) >= tcp_server.BIG_READERS
        assert all(max(s) == tcp_server.SYSLOG_RECEIVE_SIZE for s in sizes if s not in grown)

    trio.run(main)
