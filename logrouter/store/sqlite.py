"""SQLite config store: the embedded default, one file in the data dir.

Writes are small and rare (control-plane calls), so they run inline on the
event loop; WAL mode keeps each commit to about a millisecond.
"""

from __future__ import annotations

import os
import sqlite3

from logrouter.errors import ConfigError
from logrouter.models import ChannelRecord, DrainRecord, SessionRecord, TokenRecord
from logrouter.store.base import ConfigSnapshot

__all__ = ["SqliteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS channels (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY, channel_id TEXT NOT NULL, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS drains (
    id INTEGER PRIMARY KEY, channel_id TEXT NOT NULL, token TEXT NOT NULL UNIQUE, url TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, channel_id TEXT NOT NULL, num INTEGER NOT NULL, tail INTEGER NOT NULL,
    ps TEXT, source TEXT, created_at REAL NOT NULL, opened_at REAL);
CREATE INDEX IF NOT EXISTS tokens_by_channel ON tokens (channel_id);
CREATE INDEX IF NOT EXISTS drains_by_channel ON drains (channel_id);
"""


#: Schema version (``PRAGMA user_version``) → the statements that bring the previous version to
#: it. Version 1 is the schema above; a database made before versioning (user_version 0 with
#: the tables present) is version 1. Add a migration here for every schema change.
MIGRATIONS: dict[int, tuple[str, ...]] = {}
SCHEMA_VERSION = 1 + len(MIGRATIONS)


def migrate(db: sqlite3.Connection) -> int:
    """Create or upgrade the schema in one transaction; return the version now in place.

    Raises:
        ConfigError: the file was written by a newer logrouter (a version this one does not know).
    """
    version: int = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise ConfigError(f"config database schema version {version} is newer than this "
                          f"logrouter knows ({SCHEMA_VERSION}); upgrade logrouter")
    db.execute("BEGIN IMMEDIATE")
    try:
        if version == 0:  # new, or made before versioning: the DDL is IF NOT EXISTS throughout
            for statement in filter(None, (x.strip() for x in _SCHEMA.split(";"))):
                db.execute(statement)
            version = 1
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[target]:
                db.execute(statement)
            version = target
        db.execute(f"PRAGMA user_version = {version}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:  # BEGIN itself may have failed (a full disk): say why, not this
            db.execute("ROLLBACK")
        raise
    return version


class SqliteStore:
    """:class:`~logrouter.store.base.ConfigStore` on one SQLite file."""

    def __init__(self, path: str) -> None:
        """Open (or create) the database at ``path`` and bring its schema up to date.

        Raises:
            ConfigError: the file is not a SQLite database or is damaged (it is left as it
                is: the config is the node's only copy of its drains and tokens, so the node
                refuses to start rather than start empty), or a newer logrouter wrote it.
        """
        if path != ":memory:":  # only this user may read tokens and drain credentials
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(path, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self.schema_version = migrate(self._db)
        except sqlite3.OperationalError as exc:  # locked, read-only, disk I/O: not damage
            self._db.close()
            raise ConfigError(f"{path}: cannot use the config database: {exc}") from None
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise ConfigError(
                f"{path}: the config database is damaged or not a SQLite file ({exc}); restore it "
                f"from a backup, or recover what it holds with `sqlite3 {path} .recover`") from None

    async def load(self) -> ConfigSnapshot:
        db = self._db
        return ConfigSnapshot(
            channels=[ChannelRecord(*r) for r in db.execute(
                "SELECT id, name, created_at FROM channels")],
            tokens=[TokenRecord(*r) for r in db.execute(
                "SELECT token, channel_id, name FROM tokens")],
            drains=[DrainRecord(*r) for r in db.execute(
                "SELECT id, channel_id, token, url, created_at, updated_at FROM drains ORDER BY id")],
            sessions=[SessionRecord(r[0], r[1], r[2], bool(r[3]), *r[4:]) for r in db.execute(
                "SELECT id, channel_id, num, tail, ps, source, created_at, opened_at FROM sessions")],
        )

    def _incr(self, name: str) -> int:
        row = self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, 1) "
            "ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value", (name,)).fetchone()
        return int(row[0])

    async def next_channel_id(self) -> str:
        while True:
            candidate = str(self._incr("channel_index"))
            if self._db.execute("SELECT 1 FROM channels WHERE id = ?", (candidate,)).fetchone() is None:
                return candidate

    async def put_channel(self, channel: ChannelRecord, tokens: list[TokenRecord]) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO channels (id, name, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET name = excluded.name",
                (channel.id, channel.name, channel.created_at))
            self._db.executemany("INSERT INTO tokens (token, channel_id, name) VALUES (?, ?, ?)",
                                 [(t.token, t.channel_id, t.name) for t in tokens])

    async def delete_channel(self, channel_id: str) -> None:
        with self._db:
            self._db.execute("BEGIN")
            for table in ("tokens", "drains", "sessions"):
                self._db.execute(f"DELETE FROM {table} WHERE channel_id = ?", (channel_id,))
            self._db.execute("DELETE FROM channels WHERE id = ?", (channel_id,))

    async def put_token(self, token: TokenRecord) -> None:
        self._db.execute("INSERT INTO tokens (token, channel_id, name) VALUES (?, ?, ?)",
                         (token.token, token.channel_id, token.name))

    async def delete_token(self, token: str) -> None:
        self._db.execute("DELETE FROM tokens WHERE token = ?", (token,))

    async def create_drain(self, channel_id: str, token: str, url: str | None,
                           now: float) -> DrainRecord:
        drain_id = self._incr("drain_index")
        self._db.execute(
            "INSERT INTO drains (id, channel_id, token, url, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)", (drain_id, channel_id, token, url, now, now))
        return DrainRecord(drain_id, channel_id, token, url, now, now)

    async def update_drain(self, drain: DrainRecord) -> None:
        self._db.execute("UPDATE drains SET url = ?, updated_at = ? WHERE id = ?",
                         (drain.url, drain.updated_at, drain.id))

    async def delete_drain(self, drain_id: int) -> None:
        self._db.execute("DELETE FROM drains WHERE id = ?", (drain_id,))

    async def get_session(self, session_id: str) -> SessionRecord | None:
        r = self._db.execute(
            "SELECT id, channel_id, num, tail, ps, source, created_at, opened_at FROM sessions "
            "WHERE id = ?", (session_id,)).fetchone()
        return SessionRecord(r[0], r[1], r[2], bool(r[3]), *r[4:]) if r else None

    async def put_session(self, session: SessionRecord, ttl: float = 0.0) -> None:
        s = session
        self._db.execute(
            "INSERT OR REPLACE INTO sessions (id, channel_id, num, tail, ps, source, created_at, "
            "opened_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (s.id, s.channel_id, s.num, int(s.tail), s.ps, s.source, s.created_at, s.opened_at))

    async def delete_sessions(self, session_ids: list[str]) -> None:
        self._db.executemany("DELETE FROM sessions WHERE id = ?", [(i,) for i in session_ids])

    async def aclose(self) -> None:
        self._db.close()
