"""Channels: one app's log stream, and the node's table of channels and tokens.

A :class:`Channel` owns everything that app's lines flow into: its history and
its consumers (drain buffers and tail sessions). :meth:`Channel.post` is the
end of the ingest hot path: synchronous, one call per batch, and it never
blocks — each consumer's ``push`` appends to its own bounded buffer and wakes
its task. Apps therefore never share a queue, and a slow consumer of one app
costs nothing to another.

:class:`ChannelTable` is the node's in-memory copy of the config store, the
only thing ingest reads (token → channel is one dict lookup).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from logrouter.core.history import History, Saved
from logrouter.core.token_routing import route_cache
from logrouter.models import ChannelRecord, DrainRecord, TokenRecord

__all__ = ["Channel", "ChannelTable", "Consumer"]


class Consumer(Protocol):
    """Something fed a channel's cooked lines: a drain or a tail session."""

    def push(self, lines: list[bytes]) -> bool:
        """Take ``lines`` without blocking (buffer them, drop the oldest if full). True asks
        the feeder to wait in :meth:`wait_room` before feeding more (a drain absorbing a
        burst); tails always answer False."""

    async def wait_room(self, deadline: float) -> float:
        """Return once the consumer has room again, or at ``deadline`` (trio time), with the
        seconds of the wait that were its receiver's doing (charged to the feeder's budget)."""

    def close(self) -> None:
        """The channel was deleted: stop consuming."""


class Channel:
    """One channel's live state. ``tokens`` maps token → token name."""

    __slots__ = ("_consumers", "_local", "drains", "history", "id", "name", "received", "record",
                 "tokens")

    def __init__(self, record: ChannelRecord, history_lines: int,
                 history: History | None = None) -> None:
        self.record = record
        self.id = record.id
        self.name = record.name
        self.history = history if history is not None else History(history_lines)
        self.tokens: dict[str, str] = {}
        self.drains: dict[int, DrainRecord] = {}
        self._consumers: tuple[Consumer, ...] = ()
        self._local: tuple[Consumer, ...] = ()  # consumers that also see injected lines
        self.received = 0  # lines posted by ingest (a sum per batch, for `logrouter top`)

    def __repr__(self) -> str:
        return f"<Channel {self.id} {self.name!r}>"

    def post(self, lines: list[bytes], pressured: list[Consumer]) -> None:
        """Append a batch of cooked lines to history and hand it to every consumer; the
        consumers that ask the feeder to wait are appended to ``pressured``."""
        self.received += len(lines)
        self.history.extend(lines)
        for consumer in self._consumers:
            if consumer.push(lines):
                pressured.append(consumer)

    def inject(self, lines: list[bytes]) -> None:
        """Post lines logrouter itself emits about this channel (L14) to history and
        tails only: a drain never receives lines about drains."""
        self.history.extend(lines)
        for consumer in self._local:
            consumer.push(lines)

    def add_consumer(self, consumer: Consumer, drain: bool = False) -> None:
        """Attach a consumer; a ``drain`` does not receive injected lines."""
        self._consumers = (*self._consumers, consumer)
        if not drain:
            self._local = (*self._local, consumer)

    def remove_consumer(self, consumer: Consumer) -> None:
        self._consumers = tuple(c for c in self._consumers if c is not consumer)
        self._local = tuple(c for c in self._local if c is not consumer)

    @property
    def consumers(self) -> tuple[Consumer, ...]:
        return self._consumers

    def token_for(self, name: str) -> str | None:
        """The channel's (first) token called ``name``."""
        for token, token_name in self.tokens.items():
            if token_name == name:
                return token
        return None


class ChannelTable:
    """The node's channels, tokens and drains.

    Args:
        history_lines: each channel's history ring size (0 keeps none: cluster mode).
        on_new_channel: called with each channel the table creates, loaded ones included
            (cluster mode adds its tap there).

    Attributes:
        route: token bytes → (channel, token name bytes); what ingest reads.
        route_cache: the routing's token cache for ``route`` (see
            :func:`~logrouter.core.token_routing.route_cache`), cleared whenever ``route``
            changes; None without the C module.
    """

    def __init__(self, history_lines: int,
                 on_new_channel: Callable[[Channel], None] | None = None) -> None:
        self.history_lines = history_lines
        self.channels: dict[str, Channel] = {}
        self.tokens: dict[str, TokenRecord] = {}
        self.route: dict[bytes, tuple[Channel, bytes]] = {}
        self.route_cache = route_cache()
        self.drains: dict[int, DrainRecord] = {}
        self._by_name: dict[str, dict[str, Channel]] = {}  # name → id → channel
        self._on_new_channel = on_new_channel

    def __len__(self) -> int:
        return len(self.channels)

    def get(self, channel_id: str) -> Channel | None:
        return self.channels.get(channel_id)

    def named(self, name: str) -> list[Channel]:
        """The channels called ``name`` (names need not be unique)."""
        return list(self._by_name.get(name, {}).values())

    def find(self, ref: str) -> Channel | None:
        """The channel with id ``ref``, else the one channel called ``ref`` (None when there
        is none, or several)."""
        channel = self.channels.get(ref)
        if channel is not None:
            return channel
        named = self._by_name.get(ref, {})
        return next(iter(named.values())) if len(named) == 1 else None

    def _index(self, channel: Channel, add: bool) -> None:
        if add:
            self._by_name.setdefault(channel.name, {})[channel.id] = channel
            return
        same = self._by_name.get(channel.name)
        if same is not None:
            same.pop(channel.id, None)
            if not same:
                del self._by_name[channel.name]

    def history_size(self) -> int:
        return sum(len(c.history) for c in self.channels.values())

    def put_channel(self, record: ChannelRecord, history: History | None = None) -> Channel:
        """Add the channel or update its record; a new channel starts with ``history`` when
        given (restored from disk), else an empty one."""
        channel = self.channels.get(record.id)
        if channel is None:
            channel = self.channels[record.id] = Channel(record, self.history_lines, history)
            self._index(channel, True)
            if self._on_new_channel is not None:
                self._on_new_channel(channel)
        else:
            self._index(channel, False)
            channel.record = record
            channel.name = record.name
            self._index(channel, True)
        return channel

    def remove_channel(self, channel_id: str) -> Channel | None:
        channel = self.channels.pop(channel_id, None)
        if channel is None:
            return None
        self._index(channel, False)
        for token in list(channel.tokens):
            self.remove_token(token)
        for drain_id in list(channel.drains):
            self.remove_drain(drain_id)
        for consumer in channel.consumers:
            consumer.close()
        return channel

    def put_token(self, record: TokenRecord) -> None:
        channel = self.channels[record.channel_id]
        self.tokens[record.token] = record
        channel.tokens[record.token] = record.name
        self.route[record.token.encode()] = (channel, record.name.encode())
        self._route_changed()

    def remove_token(self, token: str) -> None:
        record = self.tokens.pop(token, None)
        self.route.pop(token.encode(), None)
        self._route_changed()
        if record is not None:
            channel = self.channels.get(record.channel_id)
            if channel is not None:
                channel.tokens.pop(token, None)

    def _route_changed(self) -> None:
        if self.route_cache is not None:
            self.route_cache.clear()

    def put_drain(self, record: DrainRecord) -> None:
        self.drains[record.id] = record
        self.channels[record.channel_id].drains[record.id] = record

    def remove_drain(self, drain_id: int) -> DrainRecord | None:
        record = self.drains.pop(drain_id, None)
        if record is not None:
            channel = self.channels.get(record.channel_id)
            if channel is not None:
                channel.drains.pop(drain_id, None)
        return record

    def load(self, channels: Iterable[ChannelRecord], tokens: Iterable[TokenRecord],
             drains: Iterable[DrainRecord], histories: Mapping[str, Saved] | None = None) -> None:
        """Fill the table from a store snapshot (records of unknown channels are skipped);
        ``histories`` (channel id → what :func:`~logrouter.core.history_file.load_histories`
        read) gives the channels their saved history."""
        saved = histories or {}
        for record in channels:
            state = saved.get(record.id)
            self.put_channel(record, None if state is None
                             else History.restore(self.history_lines, *state))
        for token in tokens:
            if token.channel_id in self.channels:
                self.put_token(token)
        for drain in drains:
            if drain.channel_id in self.channels:
                self.put_drain(drain)
