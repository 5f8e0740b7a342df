"""The config store contract: channels, tokens, drains and sessions.

The store is the durable truth; every node serves from an in-memory copy
(:class:`~logrouter.core.channels.ChannelTable`) loaded with :meth:`ConfigStore.load`.
Methods are async because a networked store blocks; the SQLite store answers
at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from logrouter.models import ChannelRecord, DrainRecord, SessionRecord, TokenRecord

__all__ = ["ConfigSnapshot", "ConfigStore"]


@dataclass(slots=True)
class ConfigSnapshot:
    """Everything a node needs to serve, as loaded from the store."""

    channels: list[ChannelRecord] = field(default_factory=list)
    tokens: list[TokenRecord] = field(default_factory=list)
    drains: list[DrainRecord] = field(default_factory=list)
    sessions: list[SessionRecord] = field(default_factory=list)


class ConfigStore(Protocol):
    """Durable config. Ids are unique; writes are atomic per call."""

    async def load(self) -> ConfigSnapshot: ...

    async def next_channel_id(self) -> str:
        """A fresh numeric channel id (Logplex ``INCR channel_index``)."""

    async def put_channel(self, channel: ChannelRecord, tokens: list[TokenRecord]) -> None:
        """Create or rename ``channel`` and add ``tokens`` to it."""

    async def delete_channel(self, channel_id: str) -> None:
        """Delete the channel with its tokens, drains and sessions."""

    async def put_token(self, token: TokenRecord) -> None: ...

    async def delete_token(self, token: str) -> None: ...

    async def create_drain(self, channel_id: str, token: str, url: str | None,
                           now: float) -> DrainRecord:
        """Allocate the next drain id (Logplex ``INCR drain_index``) and store the drain."""

    async def update_drain(self, drain: DrainRecord) -> None: ...

    async def delete_drain(self, drain_id: int) -> None: ...

    async def put_session(self, session: SessionRecord, ttl: float) -> None:
        """Store ``session``; it may be forgotten ``ttl`` seconds from now."""

    async def get_session(self, session_id: str) -> SessionRecord | None: ...

    async def delete_sessions(self, session_ids: list[str]) -> None: ...

    async def aclose(self) -> None: ...
