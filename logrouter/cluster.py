"""Cluster mode: what connects identical nodes through one Redis.

Theory of operation
-------------------
* **Config.** Every control write goes to Redis and is announced on ``lr:config``
  with the channel id; each node reloads that channel into its in-memory table
  (and its drains follow). A full resync runs every ``resync_interval`` seconds
  and whenever the subscription comes back, so a missed message costs at most
  that long.
* **History.** A tap on every channel collects posted lines; a writer flushes
  them every ``FLUSH_INTERVAL`` as one pipelined batch (one history chunk per
  channel, see ``RedisStore.append_history``). Pending lines are bounded; past
  the bound, and while Redis is down, batches are dropped, counted and logged.
* **Tails.** A node with a live tail on a channel subscribes to ``lr:tail:<id>``,
  announces it in ``lr:tails`` and says so on ``lr:tails:started`` (so other
  nodes relay at once, not at their next refresh of ``lr:tails``); nodes publish
  a channel's batches (one msgpack message per channel per flush) only while
  some *other* node tails it.
  Received batches go straight into the local tail hub.
* Drains stay local: every node delivers what it ingested (Logplex's model).

Redis failures never stop ingest, drains or local tails; they degrade history
writes and remote tails (counted, logged), and everything resumes when glide
reconnects.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import msgpack
import trio
from glide import GlideError

from logrouter.control import Control
from logrouter.core.channels import Channel, ChannelTable
from logrouter.core.tail import TailHub
from logrouter.errors import StoreUnavailable
from logrouter.logs import get_logger
from logrouter.metrics import Metrics
from logrouter.store.redis import (
    CONFIG_CHANNEL,
    TAIL_STARTED_CHANNEL,
    Client,
    RedisStore,
    connect,
    tail_channel,
)

__all__ = ["Cluster"]

log = get_logger("logrouter.cluster")

FLUSH_INTERVAL = 0.02  # seconds between history / tail flushes
MAX_PENDING_LINES = 200_000  # history lines waiting for Redis, node-wide
TAIL_ANNOUNCE_TTL = 30.0
TAIL_REFRESH = 0.5  # seconds between reads of who tails what


class _Tap:
    """Channel consumer that hands every batch to the cluster (history, remote tails)."""

    __slots__ = ("channel_id", "cluster")

    def __init__(self, cluster: Cluster, channel_id: str) -> None:
        self.cluster = cluster
        self.channel_id = channel_id

    def push(self, lines: list[bytes]) -> bool:
        self.cluster.collect(self.channel_id, lines)
        return False

    async def wait_room(self, deadline: float) -> None:
        """The cluster's queue drops (counted) rather than pushing back."""

    def close(self) -> None:
        pass


class Cluster:
    """Runs a node's cluster tasks.

    Args:
        url: the Redis URL (for the subscriber connection).
        store: the node's Redis store.
        table, control: the node's channels and control operations.
        hub_for: returns the local tail hub of a channel, if any (``SessionStreamer.hub``).
    """

    def __init__(self, url: str, store: RedisStore, table: ChannelTable, control: Control,
                 metrics: Metrics, hub_for: Callable[[str], TailHub | None],
                 resync_interval: float = 10.0) -> None:
        self.url = url
        self.store = store
        self.table = table
        self.control = control
        self.metrics = metrics
        self.hub_for = hub_for
        self.resync_interval = resync_interval
        self.node_id = uuid.uuid4().hex[:12]
        self._history: dict[str, list[bytes]] = {}
        self._pending = 0
        self._tails_out: dict[str, list[bytes]] = {}
        self._remote_tailed: set[str] = set()
        self._local_tails: set[str] = set()
        self._sub: Client | None = None
        self._taps: dict[str, _Tap] = {}
        self._last_drop_log = 0.0
        self.history_dropped = 0
        self.tail_dropped = 0
        metrics.gauge_callback("logrouter_cluster_history_pending", "History lines waiting for Redis",
                               lambda: self._pending)
        metrics.counter_callback("logrouter_cluster_history_dropped",
                                 "History lines not written to Redis", lambda: self.history_dropped)
        metrics.counter_callback("logrouter_cluster_tail_dropped",
                                 "Lines not relayed to remote tails", lambda: self.tail_dropped)

    # ingest side (synchronous) -------------------------------------------------------------

    def attach(self, channel: Channel) -> None:
        """Tap ``channel`` (every channel of the table is tapped, new ones as they appear)."""
        if channel.id not in self._taps:
            tap = self._taps[channel.id] = _Tap(self, channel.id)
            channel.add_consumer(tap)

    def collect(self, channel_id: str, lines: list[bytes]) -> None:
        if self._pending + len(lines) > MAX_PENDING_LINES:
            self._dropped("history", len(lines))
        else:
            self._history.setdefault(channel_id, []).extend(lines)
            self._pending += len(lines)
        if channel_id in self._remote_tailed:
            self._tails_out.setdefault(channel_id, []).extend(lines)

    def _dropped(self, what: str, n: int, error: str = "") -> None:
        if what == "history":
            self.history_dropped += n
        else:
            self.tail_dropped += n
        now = time.monotonic()
        if now - self._last_drop_log > 1.0:
            self._last_drop_log = now
            log.warning("cluster_drop", what=what, lines=n, error=error, total_history=self.history_dropped,
                        total_tail=self.tail_dropped)

    # tasks ------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        for channel in list(self.table.channels.values()):
            self.attach(channel)
        self._sub = await connect(self.url, pubsub=True)
        try:
            await self._sub.subscribe({CONFIG_CHANNEL, TAIL_STARTED_CHANNEL}, timeout_ms=2000)
        except GlideError as exc:
            raise StoreUnavailable(f"cannot subscribe: {exc}") from None
        # A change published between the node's initial load and this subscription would be
        # missed until the next periodic resync: reload once now that messages are flowing.
        await self.resync()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._listen)
            nursery.start_soon(self._resync_forever)
            nursery.start_soon(self._flush_forever)
            nursery.start_soon(self._tail_registry)
            task_status.started()

    async def _listen(self) -> None:
        assert self._sub is not None
        while True:
            try:
                msg = await self._sub.get_pubsub_message()
            except GlideError as exc:
                log.warning("pubsub_error", error=str(exc))
                await trio.sleep(1)
                continue
            channel = msg.channel.decode() if isinstance(msg.channel, bytes) else str(msg.channel)
            if channel == CONFIG_CHANNEL:
                message = msg.message
                await self.reload(message.decode() if isinstance(message, bytes) else str(message))
            elif channel.startswith("lr:tail:"):
                self._remote_lines(channel[len("lr:tail:"):], msg.message)
            elif channel == TAIL_STARTED_CHANNEL:
                self._tail_started_elsewhere(msg.message)

    def _tail_started_elsewhere(self, payload: object) -> None:
        """Another node started tailing a channel: relay its lines from the next flush on,
        rather than from the next registry refresh (up to ``TAIL_REFRESH`` later)."""
        text = payload.decode() if isinstance(payload, bytes) else str(payload)
        node, _, channel_id = text.partition(" ")
        if node != self.node_id and channel_id:
            self._remote_tailed.add(channel_id)

    def _remote_lines(self, channel_id: str, payload: object) -> None:
        try:
            node, lines = msgpack.unpackb(payload, raw=False)
        except (ValueError, TypeError, msgpack.UnpackException):
            return
        if node == self.node_id:
            return
        hub = self.hub_for(channel_id)
        if hub is not None and lines:
            hub.push([bytes(x) for x in lines])

    async def reload(self, channel_id: str) -> None:
        """Make the table's view of ``channel_id`` match Redis."""
        try:
            record, tokens, drains = await self.store.load_channel(channel_id)
        except StoreUnavailable as exc:
            log.warning("reload_failed", channel_id=channel_id, error=str(exc))
            return
        table = self.table
        if record is None:
            channel = table.get(channel_id)
            if channel is not None:
                table.remove_channel(channel_id)
                self.control.sessions.drop_channel(channel_id)
                self._taps.pop(channel_id, None)
                self.control.notify(channel)
            return
        channel = table.put_channel(record)
        self.attach(channel)
        want = {t.token for t in tokens}
        for token in [t for t in channel.tokens if t not in want]:
            table.remove_token(token)
        for t in tokens:
            if t.token not in channel.tokens:
                table.put_token(t)
        wanted = {d.id: d for d in drains}
        for drain_id in [d for d in channel.drains if d not in wanted]:
            table.remove_drain(drain_id)
        for d in drains:
            if channel.drains.get(d.id) != d:
                table.put_drain(d)
        self.control.notify(channel)

    async def resync(self) -> None:
        """Reload every channel Redis knows and forget the ones it does not."""
        snapshot_ids = {c.id for c in (await self.store.load()).channels}
        for channel_id in sorted(snapshot_ids | set(self.table.channels)):
            await self.reload(channel_id)

    async def _resync_forever(self) -> None:
        while True:
            await trio.sleep(self.resync_interval)
            try:
                await self.resync()
            except StoreUnavailable as exc:
                log.warning("resync_failed", error=str(exc))

    async def _flush_forever(self) -> None:
        while True:
            await trio.sleep(FLUSH_INTERVAL)
            await self.flush()

    async def flush(self) -> None:
        """Write pending history, then publish pending tail batches: a line a remote tail
        has shown is already in the shared history (a node killed between the two steps
        loses the relay, never leaves a tail ahead of the history). A failed history write
        is counted and does not hold the tails back."""
        out, self._tails_out = self._tails_out, {}
        failed = False
        if self._history:
            batch, self._history = self._history, {}
            count, self._pending = self._pending, 0
            try:
                await self.store.append_history(batch)
            except StoreUnavailable as exc:
                self._dropped("history", count, str(exc))
                failed = True
        for channel_id, lines in out.items():
            try:
                await self.store.publish_tail(
                    channel_id, msgpack.packb([self.node_id, lines], use_bin_type=True))
            except StoreUnavailable as exc:
                self._dropped("tail", len(lines), str(exc))
        if failed:
            await trio.sleep(1.0)

    # tail registry ----------------------------------------------------------------------------

    async def local_tail_started(self, channel_id: str) -> None:
        self._local_tails.add(channel_id)
        try:
            assert self._sub is not None
            await self._sub.subscribe({tail_channel(channel_id)}, timeout_ms=2000)
            await self.store.announce_tails(self.node_id, [channel_id], TAIL_ANNOUNCE_TTL)
            await self.store.publish_tail_started(self.node_id, channel_id)
        except (GlideError, StoreUnavailable) as exc:
            log.warning("tail_subscribe_failed", channel_id=channel_id, error=str(exc))

    async def local_tail_ended(self, channel_id: str) -> None:
        self._local_tails.discard(channel_id)
        try:
            assert self._sub is not None
            await self._sub.unsubscribe({tail_channel(channel_id)}, timeout_ms=2000)
            await self.store.retract_tail(self.node_id, channel_id)
        except (GlideError, StoreUnavailable) as exc:
            log.warning("tail_unsubscribe_failed", channel_id=channel_id, error=str(exc))

    async def _tail_registry(self) -> None:
        """Every ``TAIL_REFRESH`` s: learn who tails what, renew our announcements. This is also
        the Redis health probe: when Redis answers again after failing, resync everything (and
        re-announce our tails), since config messages may have been missed meanwhile."""
        announced = 0.0
        healthy = True
        while True:
            try:
                now = time.monotonic()
                if not healthy or (self._local_tails and now - announced > TAIL_ANNOUNCE_TTL / 3):
                    await self.store.announce_tails(self.node_id, sorted(self._local_tails),
                                                    TAIL_ANNOUNCE_TTL)
                    announced = now
                tailed = await self.store.tailed_channels()
                self._remote_tailed = {c for c, nodes in tailed.items() if nodes - {self.node_id}}
                if not healthy:
                    log.info("redis_recovered", node=self.node_id)
                    healthy = True
                    await self.resync()
            except StoreUnavailable as exc:
                if healthy:
                    log.error("redis_unavailable", node=self.node_id, error=str(exc))
                healthy = False
            await trio.sleep(TAIL_REFRESH)

    async def aclose(self) -> None:
        for channel_id in list(self._local_tails):
            try:
                await self.store.retract_tail(self.node_id, channel_id)
            except StoreUnavailable:
                pass
        if self._sub is not None:
            try:
                await self._sub.close()
            except GlideError:
                pass
