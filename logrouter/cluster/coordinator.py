"""The cluster side of a node: its three parts and the tasks that drive them.

* :class:`~logrouter.cluster.config_sync.ConfigSync` keeps the channel table equal
  to Redis (config messages, periodic resync).
* :class:`~logrouter.cluster.history_writer.HistoryWriter` writes what the node
  ingests to the shared history.
* :class:`~logrouter.cluster.tail_relay.TailRelay` carries lines to and from tails
  on other nodes.

Every channel gets a tap (a channel consumer) that hands each batch to the history
writer and the relay: the node builds its channel table with
``on_new_channel=cluster.attach``, so the cluster exists before the table and the config
sync (which needs the table) starts with :meth:`Cluster.run`. Every ``FLUSH_INTERVAL``
the history is written *before* the tail batches are published, so a line a remote tail
has shown is already in the shared history. Drains stay local: every node delivers what
it ingested (Logplex's model). Redis failures never stop ingest, drains or local tails;
they degrade history writes and remote tails (counted, logged), and everything resumes
when the client reconnects.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import trio

from logrouter.cluster.config_sync import ConfigSync
from logrouter.cluster.history_writer import HistoryWriter, RateLimitedLog
from logrouter.cluster.tail_relay import TailRelay
from logrouter.control import Control
from logrouter.core.channels import Channel, ChannelTable
from logrouter.core.tail import TailHub
from logrouter.errors import StoreUnavailable
from logrouter.logs import get_logger
from logrouter.metrics import Metrics
from logrouter.store.redis import CONFIG_CHANNEL, TAIL_STARTED_CHANNEL, RedisStore, RedisSubscriber

__all__ = ["FLUSH_INTERVAL", "Cluster"]

log = get_logger("logrouter.cluster")

FLUSH_INTERVAL = 0.02  # seconds between history / tail flushes
_TAIL_PREFIX = "lr:tail:"


class _Tap:
    """Channel consumer that hands every batch to the cluster (history, remote tails)."""

    __slots__ = ("channel_id", "history", "relay")

    def __init__(self, channel_id: str, history: HistoryWriter, relay: TailRelay) -> None:
        self.channel_id = channel_id
        self.history = history
        self.relay = relay

    def push(self, lines: list[bytes]) -> bool:
        self.history.collect(self.channel_id, lines)
        self.relay.collect(self.channel_id, lines)
        return False

    async def wait_room(self, deadline: float) -> float:
        """The cluster's queue drops (counted) rather than pushing back."""
        return 0.0

    def close(self) -> None:
        pass


class Cluster:
    """Runs a node's cluster tasks.

    Args:
        url: the Redis URL (for the subscriber connection).
        store: the node's Redis store.
        hub_for: returns the local tail hub of a channel, if any.
        resync_interval: seconds between full config resyncs.
    """

    def __init__(self, url: str, store: RedisStore, metrics: Metrics,
                 hub_for: Callable[[str], TailHub | None], resync_interval: float = 10.0) -> None:
        self.url = url
        self.store = store
        self.resync_interval = resync_interval
        self.node_id = uuid.uuid4().hex[:12]
        self.drops = RateLimitedLog()
        self.history = HistoryWriter(store, self.drops)
        self.relay = TailRelay(store, self.node_id, hub_for, self.drops, self._resync)
        self._config: ConfigSync | None = None
        self._sub: RedisSubscriber | None = None
        metrics.gauge_callback("logrouter_cluster_history_pending", "History lines waiting for Redis",
                               lambda: self.history.pending_lines)
        metrics.counter_callback("logrouter_cluster_history_dropped",
                                 "History lines not written to Redis",
                                 lambda: self.drops.counts["history"])
        metrics.counter_callback("logrouter_cluster_tail_dropped",
                                 "Lines not relayed to remote tails", lambda: self.drops.counts["tail"])

    @property
    def history_dropped(self) -> int:
        return self.drops.counts["history"]

    @property
    def tail_dropped(self) -> int:
        return self.drops.counts["tail"]

    def attach(self, channel: Channel) -> None:
        """Tap a channel the table has just created (the table's ``on_new_channel``)."""
        channel.add_consumer(_Tap(channel.id, self.history, self.relay))

    async def reload_channel(self, channel_id: str) -> None:
        """Make this node's view of ``channel_id`` match Redis now (an API read on a channel
        the node has not heard of yet); nothing before :meth:`run` has started."""
        if self._config is not None:
            await self._config.reload(channel_id)

    async def _resync(self) -> None:
        if self._config is not None:
            await self._config.resync()

    async def run(self, table: ChannelTable, control: Control, *,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep ``table`` equal to Redis and drive the history writer and the tail relay."""
        config = self._config = ConfigSync(self.store, table, control, self.resync_interval)
        self._sub = self.relay.subscriber = await RedisSubscriber.connect(self.url)
        await self._sub.subscribe({CONFIG_CHANNEL, TAIL_STARTED_CHANNEL})
        # A change published between the node's initial load and this subscription would be
        # missed until the next periodic resync: reload once now that messages are flowing.
        await config.resync()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._listen, config)
            nursery.start_soon(config.resync_forever)
            nursery.start_soon(self._flush_forever)
            nursery.start_soon(self.relay.registry_forever)
            task_status.started()

    async def _listen(self, config: ConfigSync) -> None:
        assert self._sub is not None
        while True:
            try:
                channel, payload = await self._sub.next_message()
            except StoreUnavailable as exc:
                log.warning("pubsub_error", error=str(exc))
                await trio.sleep(1)
                continue
            if channel == CONFIG_CHANNEL:
                await config.reload(payload.decode(errors="replace"))
            elif channel.startswith(_TAIL_PREFIX):
                self.relay.remote_lines(channel[len(_TAIL_PREFIX):], payload)
            elif channel == TAIL_STARTED_CHANNEL:
                self.relay.tail_started_elsewhere(payload)

    async def _flush_forever(self) -> None:
        while True:
            await trio.sleep(FLUSH_INTERVAL)
            await self.flush()

    async def flush(self) -> None:
        """Write pending history, then publish pending tail batches: a line a remote tail
        has shown is already in the shared history (a node killed between the two steps
        loses the relay, never leaves a tail ahead of the history). A failed history write
        is counted and does not hold the tails back; the next flush waits a second."""
        written = await self.history.flush()
        await self.relay.publish()
        if not written:
            await trio.sleep(1.0)

    async def aclose(self) -> None:
        await self.relay.retract_all()
        if self._sub is not None:
            await self._sub.aclose()
