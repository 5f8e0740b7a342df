"""Log sessions: an unguessable id naming a channel, a backlog size, filters, tail or not.

A session is created by the control API and streamed from ``GET
/sessions/<id>``. It expires ``expiry`` seconds after creation unless opened;
once opened it stays valid ``lifetime`` seconds, so a tail client may reconnect
to the same URL (the Heroku CLI does after every clean EOF). Sessions are kept
in the config store so a restarted node still honours them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from logrouter.errors import StoreUnavailable
from logrouter.logs import get_logger
from logrouter.models import SessionRecord, new_session_id
from logrouter.store.base import ConfigStore

log = get_logger(__name__)

__all__ = ["SessionTable"]

#: Sessions held at most; the oldest are expired first past it.
MAX_SESSIONS = 100_000


class SessionTable:
    """The node's sessions, mirrored in the store."""

    def __init__(self, store: ConfigStore, expiry: float, lifetime: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.expiry = expiry
        self.lifetime = lifetime
        self.clock = clock
        self.sessions: dict[str, SessionRecord] = {}
        self._undeleted: set[str] = set()  # forgotten here, still in a store that failed

    def __len__(self) -> int:
        return len(self.sessions)

    def load(self, sessions: list[SessionRecord]) -> None:
        now = self.clock()
        for s in sessions:
            if not self._expired(s, now):
                self.sessions[s.id] = s

    def _expired(self, s: SessionRecord, now: float) -> bool:
        if s.opened_at is None:
            return now - s.created_at > self.expiry
        return now - s.opened_at > self.lifetime

    async def create(self, channel_id: str, num: int, tail: bool, ps: str | None,
                     source: str | None) -> SessionRecord:
        if len(self.sessions) >= MAX_SESSIONS:
            await self.sweep()
            if len(self.sessions) >= MAX_SESSIONS:
                oldest = min(self.sessions.values(), key=lambda s: s.created_at)
                await self._drop([oldest.id])
        session = SessionRecord(new_session_id(), channel_id, num, tail, ps, source, self.clock())
        self.sessions[session.id] = session
        await self.store.put_session(session, self.expiry)
        return session

    def get(self, session_id: str) -> SessionRecord | None:
        s = self.sessions.get(session_id)
        if s is None or self._expired(s, self.clock()):
            return None
        return s

    async def lookup(self, session_id: str) -> SessionRecord | None:
        """Like :meth:`get`, but asks the store for sessions another node created."""
        s = self.get(session_id)
        if s is None and session_id not in self.sessions:
            s = await self.store.get_session(session_id)
            if s is not None and not self._expired(s, self.clock()):
                self.sessions[s.id] = s
            else:
                s = None
        return s

    async def open(self, session: SessionRecord) -> SessionRecord:
        """Mark a session streamed (first time only); returns the stored record."""
        if session.opened_at is not None:
            return session
        session = dataclasses.replace(session, opened_at=self.clock())
        self.sessions[session.id] = session
        await self.store.put_session(session, self.lifetime)
        return session

    def drop_channel(self, channel_id: str) -> None:
        for sid in [s.id for s in self.sessions.values() if s.channel_id == channel_id]:
            del self.sessions[sid]

    async def sweep(self) -> int:
        """Forget expired sessions; return how many."""
        now = self.clock()
        expired = [s.id for s in self.sessions.values() if self._expired(s, now)]
        await self._drop(expired)
        return len(expired)

    async def _drop(self, ids: list[str]) -> None:
        """Forget ``ids`` here, and in the store. A store that cannot delete them now (down,
        or a full disk) is asked again by the next drop: an expired session is never served."""
        for sid in ids:
            self.sessions.pop(sid, None)
        self._undeleted.update(ids)
        if self._undeleted:
            try:
                await self.store.delete_sessions(sorted(self._undeleted))
            except StoreUnavailable as exc:
                log.warning("sessions_not_deleted", count=len(self._undeleted), error=str(exc))
                while len(self._undeleted) > MAX_SESSIONS:  # bounded: a restart skips the rest
                    self._undeleted.pop()
                return
            self._undeleted.clear()
