"""DrainSupervisor: one task per drain, started and stopped as the config changes.

The supervisor owns the nursery its drains run in. :meth:`channel_changed` is
called (synchronously) by :class:`~logrouter.control.Control` after every drain
write; it reconciles that channel's running drains with its config at once, so
API changes take effect without a restart: a new drain starts, a removed one is
detached from its channel and cancelled (its buffer is freed with it), a drain
whose URL changed restarts on the new URL and keeps its buffered lines.

A drain task that fails unexpectedly is logged and restarted after a pause.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import trio

from drains import KINDS, Drain, DrainOptions, SyslogDrain, SyslogWriter
from logrouter.core.buffer import DrainQueue
from logrouter.core.channels import Channel, ChannelTable
from logrouter.errors import ValidationError
from logrouter.logs import get_logger
from logrouter.metrics import DrainCounters, Metrics
from logrouter.models import DrainRecord, parse_drain_url
from logrouter.spool import Spooler, SpoolQueue, remove_dir

__all__ = ["DrainSupervisor"]

log = get_logger("logrouter.drains")

_RESTART_PAUSE = 1.0  # after a drain task fails unexpectedly; doubles up to the max
_RESTART_PAUSE_MAX = 60.0


@dataclass(slots=True)
class _Running:
    drain: Drain
    channel: Channel
    scope: trio.CancelScope


class DrainSupervisor:
    """Runs the node's drains."""

    def __init__(self, table: ChannelTable, options: DrainOptions, metrics: Metrics) -> None:
        self.table = table
        self.options = options
        self.running: dict[int, _Running] = {}
        #: Drains whose stored config cannot run (e.g. a URL stored before validation was
        #: tightened): drain id → the reason, shown in their status. The node starts anyway.
        self.unstartable: dict[int, str] = {}
        self._nursery: trio.Nursery | None = None
        self.syslog_writer = SyslogWriter(options.linger)
        #: Writes the drains' spools (drain_spool_bytes > 0), else None.
        self.spooler = Spooler() if options.spool_bytes > 0 else None
        metrics.export_drains(self.counters)
        self._observe_request = metrics.http_drain_request_seconds.observe
        self._observe_delay = metrics.drain_write_delay_seconds.observe

    def spool_dir(self, drain_id: int) -> str:
        return os.path.join(self.options.spool_root, f"drain-{drain_id}")

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start every configured drain; run until cancelled. With a spool, spool
        directories of drains that no longer exist are removed first."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self.syslog_writer.run)
            if self.spooler is not None:
                await trio.to_thread.run_sync(self._remove_orphan_spools)
                nursery.start_soon(self.spooler.run)
            for channel in list(self.table.channels.values()):
                self.channel_changed(channel)
            task_status.started()
            await trio.sleep_forever()

    def _remove_orphan_spools(self) -> None:
        root = self.options.spool_root
        try:
            names = os.listdir(root)
        except FileNotFoundError:
            return
        wanted = {f"drain-{d.id}" for d in self.table.drains.values() if d.url is not None}
        for name in names:
            if name.startswith("drain-") and name not in wanted:
                log.info("spool_removed", dir=name, reason='no_such_drain')
                remove_dir(os.path.join(root, name))

    async def flush_spools(self) -> None:
        """Write every spool now (shutdown, after the drains stopped); what the disk does
        not take is counted lost."""
        if self.spooler is not None:
            await self.spooler.close()

    def channel_changed(self, channel: Channel) -> None:
        """Make the running drains of ``channel`` match its config."""
        alive = self.table.get(channel.id) is channel
        wanted = {d.id: d for d in channel.drains.values() if d.url is not None} if alive else {}
        for consumer in channel.consumers:  # this channel's drains only, not every drain's
            if not isinstance(consumer, Drain):
                continue
            drain_id = consumer.record.id
            run = self.running.get(drain_id)
            if run is None or run.drain is not consumer:
                continue
            record = wanted.get(drain_id)
            if record is None:
                self._stop(drain_id)
            elif record.url != run.drain.record.url:
                self._stop(drain_id, keep_spool=True)
                self._start(record, channel, run.drain)
        for drain_id in [i for i in self.unstartable if i not in wanted
                         and self.table.drains.get(i) is None]:
            del self.unstartable[drain_id]
        for drain_id, record in wanted.items():
            if drain_id not in self.running:
                self._start(record, channel, None)

    def _start(self, record: DrainRecord, channel: Channel, previous: Drain | None) -> None:
        if self._nursery is None:
            return
        self.unstartable.pop(record.id, None)
        try:
            kind = KINDS[parse_drain_url(record.url or "").kind]
        except ValidationError as exc:
            self.unstartable[record.id] = str(exc)
            log.error("drain_unstartable", drain_id=record.id, channel_id=channel.id, error=str(exc))
            return

        def inject(lines: list[bytes]) -> None:
            if "heroku" in channel.tokens.values():
                channel.inject(lines)

        queue: DrainQueue | None = previous.buffer if previous is not None else None
        persist = None
        spooler = self.spooler
        if spooler is not None:
            if queue is None:
                queue = SpoolQueue(self.spool_dir(record.id), self.options.spool_bytes,
                                   self.options.buffer_lines,
                                   memory_cap=max(self.options.burst_lines,
                                                  self.options.buffer_lines)
                                   + self.options.post_lines,
                                   wants_flush=spooler.wake)
            assert isinstance(queue, SpoolQueue)
            spooler.register(queue)
            spooled = queue

            async def persist() -> None:
                await spooler.flush([spooled], sync=False, everything=True)

        drain = kind(record, self.options, inject=inject, buffer=queue, persist=persist,
                     observe_request=self._observe_request, observe_delay=self._observe_delay,
                     **({"writer": self.syslog_writer} if kind is SyslogDrain else {}))
        scope = trio.CancelScope()
        self.running[record.id] = _Running(drain, channel, scope)
        channel.add_consumer(drain, drain=True)
        self._nursery.start_soon(self._supervise, drain, scope)
        log.info("drain_start", drain_id=record.id, channel_id=channel.id,
                 kind=record.url and parse_drain_url(record.url).scheme, dest=drain.url.host)

    def _stop(self, drain_id: int, keep_spool: bool = False) -> None:
        self.unstartable.pop(drain_id, None)
        run = self.running.pop(drain_id)
        run.channel.remove_consumer(run.drain)
        run.scope.cancel()
        queue = run.drain.buffer
        if self.spooler is not None and isinstance(queue, SpoolQueue) and not keep_spool:
            self.spooler.unregister(queue)
            if self._nursery is not None:
                self._nursery.start_soon(trio.to_thread.run_sync, remove_dir, queue.directory)
        log.info("drain_stop", drain_id=drain_id, channel_id=run.channel.id)

    async def _supervise(self, drain: Drain, scope: trio.CancelScope) -> None:
        pause = _RESTART_PAUSE
        with scope:
            while True:
                try:
                    await drain.run()
                except Exception as exc:
                    log.exception("drain_crash", drain_id=drain.record.id, restart_in_s=pause)
                    drain.failed(f"crashed: {type(exc).__name__}: {exc}")
                    await trio.sleep(pause)
                    pause = min(pause * 2, _RESTART_PAUSE_MAX)

    async def flush(self, timeout: float) -> None:
        """Give drains up to ``timeout`` seconds to deliver what they hold (shutdown)."""
        with trio.move_on_after(timeout):
            for run in list(self.running.values()):
                await run.drain.wait_idle()

    def status(self, drain_id: int) -> dict[str, Any] | None:
        run = self.running.get(drain_id)
        if run is not None:
            return run.drain.statistics()
        problem = self.unstartable.get(drain_id)
        if problem is not None:
            return {"delivered": 0, "dropped": 0, "buffered": 0, "pending_loss": 0,
                    "connected": False, "degraded": False, "last_success": None,
                    "last_error": f"cannot start: {problem}", "last_error_at": None}
        return None

    def counters(self) -> list[tuple[int, DrainCounters]]:
        """``(drain id, drain)`` of every running drain (what ``/metrics`` and ``/v3/stats`` read)."""
        return [(drain_id, run.drain) for drain_id, run in self.running.items()]
