"""Config sync: each node's channel table follows Redis.

Every control write goes to Redis and is announced on ``lr:config`` with the
channel id; the node reloads that channel (and its drains follow). A full resync
runs every ``resync_interval`` seconds and whenever Redis answers again after
failing, so a missed message costs at most that long.
"""

from __future__ import annotations

import trio

from logrouter.control import Control
from logrouter.core.channels import ChannelTable
from logrouter.errors import StoreUnavailable
from logrouter.logs import get_logger
from logrouter.store.redis import RedisStore

__all__ = ["ConfigSync"]

log = get_logger("logrouter.cluster")


class ConfigSync:
    """Keeps ``table`` equal to what ``store`` holds.

    The table taps the channels it creates itself (``ChannelTable(on_new_channel=…)``).
    """

    def __init__(self, store: RedisStore, table: ChannelTable, control: Control,
                 resync_interval: float = 10.0) -> None:
        self.store = store
        self.table = table
        self.control = control
        self.resync_interval = resync_interval

    async def reload(self, channel_id: str) -> None:
        """Make the table's view of ``channel_id`` match Redis (a failure is logged: the next
        resync repairs it)."""
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
                self.control.notify(channel)
            return
        channel = table.put_channel(record)
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
        """Reload every channel Redis knows and forget the ones it does not (Redis holds the
        cluster's config). When that is every channel the node has, it says so at error level:
        most likely Redis came back without its data.

        Raises:
            StoreUnavailable: Redis did not answer the listing.
        """
        snapshot_ids = {c.id for c in (await self.store.load()).channels}
        if not snapshot_ids and self.table.channels:
            log.error("redis_data_lost", channels=len(self.table.channels),
                      hint="Redis holds no channel that this node has: it lost its data "
                           "(restarted without persistence?) or every channel was deleted at "
                           "once; the node follows Redis and forgets them")
        for channel_id in sorted(snapshot_ids | set(self.table.channels)):
            await self.reload(channel_id)

    async def resync_forever(self) -> None:
        while True:
            await trio.sleep(self.resync_interval)
            try:
                await self.resync()
            except StoreUnavailable as exc:
                log.warning("resync_failed", error=str(exc))
