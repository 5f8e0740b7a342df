"""Control: the operations behind every control API route.

Each operation validates, writes the config store, then updates the node's
in-memory :class:`~logrouter.core.channels.ChannelTable`, and finally tells the
drain runner given at construction (the drain supervisor) that a
channel's drains changed. The API layers (Logplex v1/v2/v3, Platform API) only
translate HTTP to these calls and their errors to statuses.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from logrouter.core.channels import Channel, ChannelTable
from logrouter.core.sessions import SessionTable
from logrouter.destinations import DestinationPolicy
from logrouter.errors import ConflictError, LimitError, NotFoundError, ValidationError
from logrouter.metrics import DrainCounters
from logrouter.models import (
    ChannelRecord,
    DrainRecord,
    SessionRecord,
    TokenRecord,
    new_drain_token,
    new_token,
    parse_drain_url,
)
from logrouter.store.base import ConfigStore

__all__ = ["Control", "DrainRunner", "Limits"]

_MAX_NAME = 256


def _check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not name or len(name) > _MAX_NAME or any(
            c.isspace() or not c.isprintable() for c in name):
        raise ValidationError(f"{what} must be a string of 1 to {_MAX_NAME} characters "
                              "without spaces")
    return name


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps on what the control API may create (settings ``max_*``)."""

    drains_per_channel: int = 6
    channels: int = 100_000
    tokens_per_channel: int = 100
    reserved_drains_per_channel: int = 20


class DrainRunner(Protocol):
    """What runs the node's drains (:class:`logrouter.drain_supervisor.DrainSupervisor`)."""

    def channel_changed(self, channel: Channel) -> None:
        """Make the running drains of ``channel`` match its config."""

    def status(self, drain_id: int) -> dict[str, Any] | None:
        """A running drain's delivery status."""

    def counters(self) -> list[tuple[int, DrainCounters]]:
        """``(drain id, its counters)`` of every drain running here."""


class Control:
    """Control-plane operations on one node.

    Args:
        store: durable config.
        table: the node's in-memory channels.
        sessions: the node's sessions.
        limits: caps on channels, tokens and drains.
        destinations: where drains may deliver (checked on input).
        drains: runs the drains; told of every drain change, asked for drain status.
    """

    def __init__(self, store: ConfigStore, table: ChannelTable, sessions: SessionTable,
                 limits: Limits, clock: Callable[[], float] = time.time,
                 destinations: DestinationPolicy | None = None,
                 drains: DrainRunner | None = None) -> None:
        self.store = store
        self.limits = limits
        self.destinations = destinations or DestinationPolicy()
        self.table = table
        self.sessions = sessions
        self.max_drains = limits.drains_per_channel
        self.clock = clock
        self.drains = drains

    def drain_status(self, drain_id: int) -> dict[str, Any] | None:
        """A drain's delivery status, or None when it does not run on this node."""
        return self.drains.status(drain_id) if self.drains is not None else None

    def drain_counters(self) -> list[tuple[int, DrainCounters]]:
        """``(drain id, its counters)`` of every drain running on this node."""
        return self.drains.counters() if self.drains is not None else []

    def with_status(self, drain_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` plus ``"status"`` (delivery counters) when the drain is running here."""
        status = self.drain_status(drain_id)
        if status is not None:
            body["status"] = status
        return body

    def notify(self, channel: Channel) -> None:
        """A channel's drains changed: the drain runner applies it now."""
        if self.drains is not None:
            self.drains.channel_changed(channel)

    def channel(self, channel_id: str) -> Channel:
        channel = self.table.get(channel_id)
        if channel is None:
            raise NotFoundError(f"channel {channel_id} not found")
        return channel

    # channels -------------------------------------------------------------------

    async def create_channel(self, name: str | None, token_names: Iterable[str] = (),
                             channel_id: str | None = None) -> Channel:
        """Create a channel (numeric id unless given) with one token per name."""
        names = self._token_names(token_names, 0)
        if name and len(name) > _MAX_NAME:
            raise ValidationError(f"channel name must be at most {_MAX_NAME} characters")
        if len(self.table.channels) >= self.limits.channels:
            raise LimitError(f"the router holds its maximum of {self.limits.channels} channels "
                             "(max_channels)")
        if channel_id is None:
            channel_id = await self.store.next_channel_id()
        elif channel_id in self.table.channels:
            raise ConflictError(f"channel {channel_id} already exists")
        record = ChannelRecord(_check_name(channel_id, "channel id"), name or "", self.clock())
        tokens = [TokenRecord(new_token(), channel_id, n) for n in names]
        await self.store.put_channel(record, tokens)
        channel = self.table.put_channel(record)
        for token in tokens:
            self.table.put_token(token)
        return channel

    async def put_channel_tokens(self, channel_id: str, token_names: Iterable[str],
                                 ) -> tuple[Channel, bool]:
        """Logplex v3 ``PUT``: create the channel if needed, make its token names exactly these.

        Returns:
            ``(channel, created)``.
        """
        wanted = set(self._token_names(token_names, 0))
        channel = self.table.get(channel_id)
        created = channel is None
        if channel is None:
            channel = await self.create_channel(channel_id, sorted(wanted), channel_id)
            return channel, created
        for token, name in list(channel.tokens.items()):
            if name not in wanted:
                await self.store.delete_token(token)
                self.table.remove_token(token)
                await trio.lowlevel.checkpoint()
        have = set(channel.tokens.values())
        for name in sorted(wanted - have):
            await self.create_token(channel_id, name)
            await trio.lowlevel.checkpoint()
        return channel, created

    def _token_names(self, names: Iterable[str], have: int) -> list[str]:
        """Validate token names; at most ``tokens_per_channel`` with the ``have`` existing.

        Raises:
            ValidationError, LimitError.
        """
        out: list[str] = []
        cap = self.limits.tokens_per_channel
        for n in names:
            if len(out) + have >= cap:
                raise LimitError(f"a channel has at most {cap} tokens (max_tokens_per_channel)")
            out.append(_check_name(n, "token name"))
        return out

    async def delete_channel(self, channel_id: str) -> None:
        channel = self.channel(channel_id)
        await self.store.delete_channel(channel_id)
        self.table.remove_channel(channel_id)
        self.sessions.drop_channel(channel_id)
        self.notify(channel)

    # tokens ---------------------------------------------------------------------

    async def create_token(self, channel_id: str, name: str) -> TokenRecord:
        channel = self.channel(channel_id)
        self._token_names([name], len(channel.tokens))
        token = TokenRecord(new_token(), channel_id, _check_name(name, "token name"))
        await self.store.put_token(token)
        self.table.put_token(token)
        return token

    # drains ---------------------------------------------------------------------

    def drain(self, channel_id: str, drain_id: int) -> DrainRecord:
        drain = self.channel(channel_id).drains.get(drain_id)
        if drain is None:
            raise NotFoundError(f"drain {drain_id} not found")
        return drain

    def _check_drain_url(self, channel: Channel, url: str, replacing: int | None = None) -> str:
        parsed = parse_drain_url(url)
        refused = self.destinations.check_host(parsed.host, parsed.port)
        if refused is not None:
            raise ValidationError(f"Invalid drain destination: {refused}")
        active = [d for d in channel.drains.values() if d.url is not None and d.id != replacing]
        if any(d.url == parsed.url for d in active):
            raise ConflictError("Already exists")
        if len(active) >= self.max_drains:
            raise LimitError("You have already added the maximum number of drains allowed")
        return parsed.url

    async def reserve_drain(self, channel_id: str) -> DrainRecord:
        """A drain id and token with no URL yet (Logplex's reserved drain)."""
        channel = self.channel(channel_id)
        cap = self.limits.reserved_drains_per_channel
        if sum(1 for d in channel.drains.values() if d.url is None) >= cap:
            raise LimitError(f"a channel has at most {cap} reserved drains "
                             "(max_reserved_drains_per_channel)")
        drain = await self.store.create_drain(channel_id, new_drain_token(), None, self.clock())
        self.table.put_drain(drain)
        return drain

    async def add_drain(self, channel_id: str, url: str) -> DrainRecord:
        """Validate ``url`` and create a drain delivering to it.

        Raises:
            NotFoundError, ValidationError, ConflictError (same URL on the
            channel), LimitError (too many drains).
        """
        channel = self.channel(channel_id)
        url = self._check_drain_url(channel, url)
        drain = await self.store.create_drain(channel_id, new_drain_token(), url, self.clock())
        self.table.put_drain(drain)
        self.notify(channel)
        return drain

    async def set_drain_url(self, channel_id: str, drain_id: int, url: str) -> DrainRecord:
        channel = self.channel(channel_id)
        drain = self.drain(channel_id, drain_id)
        url = self._check_drain_url(channel, url, replacing=drain_id)
        drain = dataclasses.replace(drain, url=url, updated_at=self.clock())
        await self.store.update_drain(drain)
        self.table.put_drain(drain)
        self.notify(channel)
        return drain

    async def delete_drain(self, channel_id: str, drain_id: int) -> DrainRecord:
        channel = self.channel(channel_id)
        drain = self.drain(channel_id, drain_id)
        await self.store.delete_drain(drain_id)
        self.table.remove_drain(drain_id)
        self.notify(channel)
        return drain

    # sessions -------------------------------------------------------------------

    async def create_session(self, channel_id: str, num: int, tail: bool, ps: str | None,
                             source: str | None) -> SessionRecord:
        self.channel(channel_id)
        return await self.sessions.create(channel_id, max(0, num), tail, ps or None, source or None)
