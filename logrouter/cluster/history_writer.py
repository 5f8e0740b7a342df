"""History write-behind: the lines a node ingests go to the shared history in Redis.

``collect`` (on the ingest path) appends a channel's batch to what is pending;
``flush`` writes everything pending as one pipelined batch (one history chunk per
channel, see ``RedisStore.append_history``). Pending lines are bounded; past the
bound, and while Redis is down, lines are dropped, counted and logged (at most
once a second).
"""

from __future__ import annotations

from logrouter.errors import StoreUnavailable
from logrouter.logs import Throttle, get_logger
from logrouter.store.redis import RedisStore

__all__ = ["MAX_PENDING_LINES", "HistoryWriter", "RateLimitedLog"]

log = get_logger("logrouter.cluster")

MAX_PENDING_LINES = 200_000  # history lines waiting for Redis, node-wide


class RateLimitedLog:
    """Counts dropped lines by kind and logs them at most once a second."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {"history": 0, "tail": 0}
        self._throttle = Throttle()

    def dropped(self, what: str, n: int, error: str = "") -> None:
        self.counts[what] += n
        if self._throttle.passes("drop"):
            log.warning("cluster_drop", what=what, lines=n, error=error,
                        total_history=self.counts["history"], total_tail=self.counts["tail"])


class HistoryWriter:
    """What a node has ingested and not yet written to the shared history."""

    def __init__(self, store: RedisStore, drops: RateLimitedLog) -> None:
        self.store = store
        self.drops = drops
        self._pending: dict[str, list[bytes]] = {}
        self.pending_lines = 0

    def collect(self, channel_id: str, lines: list[bytes]) -> None:
        """Queue a channel's batch (synchronous; drops past ``MAX_PENDING_LINES``)."""
        if self.pending_lines + len(lines) > MAX_PENDING_LINES:
            self.drops.dropped("history", len(lines))
            return
        self._pending.setdefault(channel_id, []).extend(lines)
        self.pending_lines += len(lines)

    async def flush(self) -> bool:
        """Write what is pending; False when Redis refused it (the lines are counted lost)."""
        if not self._pending:
            return True
        batch, self._pending = self._pending, {}
        count, self.pending_lines = self.pending_lines, 0
        try:
            await self.store.append_history(batch)
        except StoreUnavailable as exc:
            self.drops.dropped("history", count, str(exc))
            return False
        return True
