"""``GET /sessions/<id>``: a session's backlog and, for tails, its live lines.

Two renderings of one stream (see :mod:`logrouter.protocol.tailfmt`): Logplex's
chunked text lines by default, Server-Sent Events when the client accepts
``text/event-stream`` (the Heroku CLI). SSE starts with ``retry:``, carries the
line's sequence number as ``id:`` and sends ``: keep-alive`` comments while
idle; a reconnect with ``Last-Event-ID`` resumes after that line instead of
repeating the backlog.

The backlog is read and the tail subscribed in one synchronous step, so no
line falls between them or appears twice.
"""

from __future__ import annotations

import math
import time
from typing import Protocol

import trio

from logrouter.core.channels import Channel
from logrouter.core.history_view import HistoryView, LocalHistory
from logrouter.core.tail import TailCursor, TailHubs
from logrouter.logs import get_logger
from logrouter.metrics import Metrics
from logrouter.models import SessionRecord
from logrouter.protocol.syslog import l11_line
from logrouter.protocol.tailfmt import (
    SSE_KEEPALIVE,
    TailFilter,
    sse_event,
    sse_preamble,
)
from logrouter.transport.serving import Response, SendChunk

__all__ = ["SessionStreamer", "TailRelay"]

log = get_logger("logrouter.sessions")


class TailRelay(Protocol):
    """Carries tails across nodes (the cluster): told when this node starts and stops tailing
    a channel."""

    async def local_tail_started(self, channel_id: str) -> None: ...
    async def local_tail_ended(self, channel_id: str) -> None: ...


class SessionStreamer:
    """Builds streaming responses for sessions.

    Args:
        hubs: the node's tail hubs (each tail's buffer: how far it may fall behind, L11).
        keepalive: seconds between SSE keep-alive comments.
        retry_ms: the SSE ``retry:`` value.
        lifetime: seconds a session may stream after it was first opened.
        shutdown_retry_ms: the ``retry:`` sent to SSE tails when the node stops.
        history: how sessions read a channel's history (default: the node's own rings; in
            cluster mode the shared history, with SSE ids derived from each line's bytes).
        relay: cluster mode: told when this node starts and stops tailing a channel.
    """

    def __init__(self, metrics: Metrics, hubs: TailHubs, keepalive: float,
                 retry_ms: int, lifetime: float, shutdown_retry_ms: int = 5000,
                 history: HistoryView | None = None, relay: TailRelay | None = None) -> None:
        self.metrics = metrics
        self.hubs = hubs
        self.keepalive = keepalive
        self.retry_ms = retry_ms
        self.lifetime = lifetime
        self.shutdown_retry_ms = shutdown_retry_ms
        self.shutting_down = False
        self.active_tails = 0
        self.history: HistoryView = history if history is not None else LocalHistory()
        #: Cluster mode: told when this node starts / stops tailing a channel.
        self.relay = relay

    def close_all(self) -> None:
        """End every tail stream cleanly (shutdown): each finishes its chunked body, and SSE
        clients are first told to wait ``shutdown_retry_ms`` before reconnecting."""
        self.shutting_down = True
        self.hubs.close_all()

    async def _detach(self, channel: Channel, cursor: TailCursor) -> None:
        if self.hubs.detach(channel, cursor) and self.relay is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                await self.relay.local_tail_ended(channel.id)

    async def respond(self, session: SessionRecord, channel: Channel, accept: str,
                      last_event_id: str) -> Response:
        sse = "text/event-stream" in accept
        filt = TailFilter(session.ps.encode() if session.ps else None,
                          session.source.encode() if session.source else None)
        head = await self.history.session_head(channel, session.num, filt, sse, last_event_id)
        if sse:
            head = sse_preamble(self.retry_ms) + head
        # Embedded mode reads the backlog and places the cursor in one synchronous step (no gap,
        # no repeat); in cluster mode a line can fall between the Redis read and this point.
        cursor = None
        if session.tail:
            cursor, new_hub = self.hubs.attach(channel, filt, sse)
            if new_hub and self.relay is not None:
                await self.relay.local_tail_started(channel.id)
        self.metrics.sessions_opened.labels("tail" if session.tail else "backlog").inc()
        opened_at = session.opened_at if session.opened_at is not None else time.time()
        deadline = trio.current_time() + max(0.0, opened_at + self.lifetime - time.time())

        async def produce(send: SendChunk) -> None:
            try:
                await send(head)
                if cursor is not None:
                    with trio.move_on_at(deadline):
                        await self._tail(send, cursor, sse)
            finally:
                if cursor is not None:
                    await self._detach(channel, cursor)

        content_type = "text/event-stream; charset=utf-8" if sse else "text/plain; charset=utf-8"
        return Response(200, content_type=content_type, stream=produce,
                        headers=[("X-Accel-Buffering", "no")])

    async def _tail(self, send: SendChunk, cursor: TailCursor, sse: bool) -> None:
        self.active_tails += 1
        try:
            wait = self.keepalive if sse else math.inf
            while True:
                chunk = None
                with trio.move_on_after(wait):
                    chunk = await cursor.next_chunk()
                    if chunk is None:  # channel deleted, or shutting down
                        if sse and self.shutting_down:
                            await send(sse_preamble(self.shutdown_retry_ms))
                        return
                if chunk is None:
                    await send(SSE_KEEPALIVE)
                    continue
                lost, since, data = chunk
                if lost:
                    self.metrics.tail_lost.inc(lost)
                    l11 = l11_line(lost, since)
                    data = (sse_event(l11) if sse else l11) + data
                if data:
                    await send(data)
        finally:
            self.active_tails -= 1
