"""Cross-node tails: the lines one node ingests reach tails held by other nodes.

A node with a live tail on a channel subscribes to ``lr:tail:<id>``, announces it
in ``lr:tails`` and says so on ``lr:tails:started`` (so other nodes relay at once,
not at their next read of ``lr:tails``). Nodes publish a channel's batches (one
msgpack message per channel per flush) only while some *other* node tails it;
received batches go straight into the local tail hub.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import msgpack
import trio

from logrouter.cluster.history_writer import RateLimitedLog
from logrouter.core.tail import TailHub
from logrouter.errors import StoreUnavailable
from logrouter.logs import get_logger
from logrouter.store.redis import RedisStore, RedisSubscriber, tail_channel

__all__ = ["TAIL_ANNOUNCE_TTL", "TAIL_REFRESH", "TailRelay"]

log = get_logger("logrouter.cluster")

TAIL_ANNOUNCE_TTL = 30.0
TAIL_REFRESH = 0.5  # seconds between reads of who tails what


class TailRelay:
    """Relays a node's lines to remote tails and remote lines to its own tails.

    Args:
        hub_for: the local tail hub of a channel, if any.
        on_recovered: called when Redis answers again after failing (config may have been
            missed meanwhile: the cluster resyncs).
    """

    def __init__(self, store: RedisStore, node_id: str, hub_for: Callable[[str], TailHub | None],
                 drops: RateLimitedLog, on_recovered: Callable[[], Awaitable[None]]) -> None:
        self.store = store
        self.node_id = node_id
        self.hub_for = hub_for
        self.drops = drops
        self.on_recovered = on_recovered
        self.subscriber: RedisSubscriber | None = None
        self.remote_tailed: set[str] = set()  # channels some other node tails
        self.local_tails: set[str] = set()
        self._unsubscribed: set[str] = set()  # local tails whose subscription failed: retried
        self._out: dict[str, list[bytes]] = {}

    # ingest side (synchronous) ------------------------------------------------------------------

    def collect(self, channel_id: str, lines: list[bytes]) -> None:
        if channel_id in self.remote_tailed:
            self._out.setdefault(channel_id, []).extend(lines)

    # messages from other nodes ------------------------------------------------------------------

    def tail_started_elsewhere(self, payload: bytes) -> None:
        """Another node started tailing a channel: relay its lines from the next flush on."""
        node, _, channel_id = payload.decode(errors="replace").partition(" ")
        if node != self.node_id and channel_id:
            self.remote_tailed.add(channel_id)

    def remote_lines(self, channel_id: str, payload: bytes) -> None:
        try:
            node, lines = msgpack.unpackb(payload, raw=False)
        except (ValueError, TypeError, msgpack.UnpackException):
            return
        if node == self.node_id:
            return
        hub = self.hub_for(channel_id)
        if hub is not None and lines:
            hub.push([bytes(x) for x in lines])

    # flushing -------------------------------------------------------------------------------------

    async def publish(self) -> None:
        """Publish the batches collected for remote tails (failures counted, not retried)."""
        out, self._out = self._out, {}
        for channel_id, lines in out.items():
            try:
                await self.store.publish_tail(
                    channel_id, msgpack.packb([self.node_id, lines], use_bin_type=True))
            except StoreUnavailable as exc:
                self.drops.dropped("tail", len(lines), str(exc))

    # this node's tails ----------------------------------------------------------------------------

    async def local_tail_started(self, channel_id: str) -> None:
        self.local_tails.add(channel_id)
        self._unsubscribed.add(channel_id)
        await self._subscribe(channel_id)

    async def _subscribe(self, channel_id: str) -> None:
        """Subscribe to a local tail's channel and tell the other nodes; on failure the
        registry tries again at its next round (Redis may be restarting)."""
        try:
            if self.subscriber is not None:
                await self.subscriber.subscribe({tail_channel(channel_id)})
            await self.store.announce_tails(self.node_id, [channel_id], TAIL_ANNOUNCE_TTL)
            await self.store.publish_tail_started(self.node_id, channel_id)
        except StoreUnavailable as exc:
            log.warning("tail_subscribe_failed", channel_id=channel_id, error=str(exc))
        else:
            self._unsubscribed.discard(channel_id)

    async def local_tail_ended(self, channel_id: str) -> None:
        self.local_tails.discard(channel_id)
        self._unsubscribed.discard(channel_id)
        try:
            if self.subscriber is not None:
                await self.subscriber.unsubscribe({tail_channel(channel_id)})
            await self.store.retract_tail(self.node_id, channel_id)
        except StoreUnavailable as exc:
            log.warning("tail_unsubscribe_failed", channel_id=channel_id, error=str(exc))

    async def registry_forever(self) -> None:
        """Every ``TAIL_REFRESH`` s: learn who tails what, renew our announcements. This is also
        the Redis health probe: when Redis answers again after failing, ``on_recovered``."""
        announced = 0.0
        healthy = True
        while True:
            try:
                now = time.monotonic()
                if not healthy or (self.local_tails and now - announced > TAIL_ANNOUNCE_TTL / 3):
                    await self.store.announce_tails(self.node_id, sorted(self.local_tails),
                                                    TAIL_ANNOUNCE_TTL)
                    announced = now
                for channel_id in sorted(self._unsubscribed & self.local_tails):
                    await self._subscribe(channel_id)
                tailed = await self.store.tailed_channels()
                self.remote_tailed = {c for c, nodes in tailed.items() if nodes - {self.node_id}}
                if not healthy:
                    log.info("redis_recovered", node=self.node_id)
                    healthy = True
                    await self.on_recovered()
            except StoreUnavailable as exc:
                if healthy:
                    log.error("redis_unavailable", node=self.node_id, error=str(exc))
                healthy = False
            await trio.sleep(TAIL_REFRESH)

    async def retract_all(self) -> None:
        for channel_id in list(self.local_tails):
            try:
                await self.store.retract_tail(self.node_id, channel_id)
            except StoreUnavailable:
                pass
