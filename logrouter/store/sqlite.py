"""SQLite config store: the embedded default, one file in the data dir.

Writes are small and rare (control-plane calls), so they run inline on the
event loop; WAL mode keeps each commit to about a millisecond: a commit only
appends to the write-ahead log (``synchronous=NORMAL``: no wait for the disk).
Copying the log into the database — a checkpoint, which waits for the disk to
sync, ~150 ms at a time while apps were created in bulk — is never done by a
write (``wal_autocheckpoint=0``): :meth:`SqliteStore.checkpoint_every` does it
in a worker thread, on a connection of its own, each second there were writes
(a ``PASSIVE`` checkpoint: it never waits for, nor holds up, the writes).
Closing the store checkpoints what is left, in a worker thread too.

A full disk does not keep a node from starting or serving: a config closed
cleanly is then read as it is (read-only), and each write raises
:class:`~logrouter.errors.StoreUnavailable` saying the disk is full until there is
room again; the next write after that reopens the database for writing.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from urllib.parse import quote

import trio

from logrouter.errors import ConfigError, StoreUnavailable
from logrouter.logs import get_logger
from logrouter.models import ChannelRecord, DrainRecord, SessionRecord, TokenRecord
from logrouter.store.base import ConfigSnapshot

log = get_logger(__name__)

#: Less free space than this on the database's filesystem, and an error from SQLite that is
#: not plainly "disk full" (it says "disk I/O error" when it cannot size its shared-memory
#: file), is taken as the disk being full.
_LOW_ROOM = 1 << 20

__all__ = ["CHECKPOINT_INTERVAL", "SqliteStore"]

#: Seconds between checkpoints of the write-ahead log (each second there were writes).
CHECKPOINT_INTERVAL = 1.0

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
    version = _checked_version(db)
    if version == SCHEMA_VERSION:  # up to date: nothing to write (a full disk could not)
        return version
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


def _checked_version(db: sqlite3.Connection) -> int:
    version: int = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise ConfigError(f"config database schema version {version} is newer than this "
                          f"logrouter knows ({SCHEMA_VERSION}); upgrade logrouter")
    return version


class _NoRoom(Exception):
    """The database cannot be opened for writing because its disk is full."""


class SqliteStore:
    """:class:`~logrouter.store.base.ConfigStore` on one SQLite file."""

    def __init__(self, path: str) -> None:
        """Open (or create) the database at ``path`` and bring its schema up to date.

        On a full disk a database closed cleanly opens read-only instead (``read_only`` then
        says why; see the module's docstring).

        Raises:
            ConfigError: the file is not a SQLite database or is damaged (it is left as it
                is: the config is the node's only copy of its drains and tokens, so the node
                refuses to start rather than start empty), a newer logrouter wrote it, or the
                disk is full and the database cannot be read without writing (changes still in
                its write-ahead log, a schema to upgrade, a database not yet created).
        """
        self.path = path
        #: Why the database is open read-only (the disk is full), or None when it is writable.
        self.read_only: str | None = None
        self._writes = 0  # commits since the last checkpoint began
        self._checkpointer: sqlite3.Connection | None = None  # used in worker threads only
        self._checkpointing = trio.Lock()
        if path != ":memory:":  # only this user may read tokens and drain credentials
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        try:
            self._db = self._open_writable()
        except _NoRoom as exc:
            self._db = self._open_read_only(str(exc))
            self.read_only = str(exc)

    def _open_writable(self) -> sqlite3.Connection:
        path = self.path
        # used on the event loop only, but closed in a worker thread (aclose)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA wal_autocheckpoint=0")  # see checkpoint_every
            self.schema_version = migrate(db)
        except sqlite3.OperationalError as exc:  # locked, read-only, disk I/O: not damage
            db.close()
            if (full := self._disk_full(exc)) is not None:
                raise _NoRoom(full) from None
            raise ConfigError(f"{path}: cannot use the config database: {exc}") from None
        except sqlite3.DatabaseError as exc:
            db.close()
            raise ConfigError(
                f"{path}: the config database is damaged or not a SQLite file ({exc}); restore it "
                f"from a backup, or recover what it holds with `sqlite3 {path} .recover`") from None
        return db

    def _open_read_only(self, reason: str) -> sqlite3.Connection:
        """Open the file as it is on disk, writing nothing (SQLite's ``immutable``): right
        only when no committed change waits in the write-ahead log."""
        path = self.path
        with contextlib.suppress(FileNotFoundError):
            if os.path.getsize(path + "-wal") > 0:
                raise ConfigError(f"{path}: {reason}; the config's latest changes are still in "
                                  f"{path}-wal and cannot be read without writing")
        db = sqlite3.connect(f"file:{quote(path)}?immutable=1", uri=True, isolation_level=None,
                             check_same_thread=False)
        try:
            version = _checked_version(db)
            has_tables = db.execute(
                "SELECT count(*) FROM sqlite_master WHERE name = 'channels'").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            db.close()
            raise ConfigError(f"{path}: {reason}; and reading it failed: {exc}") from None
        if not has_tables or any(MIGRATIONS[v] for v in range(max(version, 1) + 1,
                                                                SCHEMA_VERSION + 1)):
            db.close()
            raise ConfigError(f"{path}: {reason}; the config database must be "
                              f"{'upgraded' if has_tables else 'created'} first")
        self.schema_version = SCHEMA_VERSION
        return db

    def _disk_full(self, exc: sqlite3.Error) -> str | None:
        """What to say when ``exc`` is the disk being full, else None."""
        full = getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_FULL
        if not full:
            try:
                st = os.statvfs(os.path.dirname(os.path.abspath(self.path)))
            except OSError:
                return None
            full = st.f_bavail * st.f_frsize < _LOW_ROOM
        return f"cannot write {self.path}: the disk is full; free some room ({exc})" if full else None

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """The connection to write with, in a transaction: committed when the block ends,
        rolled back if it raises. A write the database cannot take (a full disk, a lock held
        elsewhere) raises StoreUnavailable, the API's 503."""
        if self.read_only is not None:
            try:
                writable = self._open_writable()
            except (_NoRoom, ConfigError) as exc:  # still full, or something else wrong now
                raise StoreUnavailable(str(exc)) from None
            self._db.close()
            self._db, self.read_only = writable, None
            log.info("config_writable", path=self.path)
        db = self._db
        try:
            with db:
                db.execute("BEGIN")
                yield db
            self._writes += 1
        except sqlite3.OperationalError as exc:
            if (full := self._disk_full(exc)) is not None:
                raise StoreUnavailable(full) from None
            raise StoreUnavailable(f"cannot write {self.path}: {exc}") from None

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

    @staticmethod
    def _incr(db: sqlite3.Connection, name: str) -> int:
        row = db.execute(
            "INSERT INTO counters (name, value) VALUES (?, 1) "
            "ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value", (name,)).fetchone()
        return int(row[0])

    async def next_channel_id(self) -> str:
        while True:
            with self._writing() as db:
                candidate = str(self._incr(db, "channel_index"))
                if db.execute("SELECT 1 FROM channels WHERE id = ?", (candidate,)).fetchone() is None:
                    return candidate

    async def put_channel(self, channel: ChannelRecord, tokens: list[TokenRecord]) -> None:
        with self._writing() as db:
            db.execute(
                "INSERT INTO channels (id, name, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET name = excluded.name",
                (channel.id, channel.name, channel.created_at))
            db.executemany("INSERT INTO tokens (token, channel_id, name) VALUES (?, ?, ?)",
                           [(t.token, t.channel_id, t.name) for t in tokens])

    async def delete_channel(self, channel_id: str) -> None:
        with self._writing() as db:
            for table in ("tokens", "drains", "sessions"):
                db.execute(f"DELETE FROM {table} WHERE channel_id = ?", (channel_id,))
            db.execute("DELETE FROM channels WHERE id = ?", (channel_id,))

    async def put_token(self, token: TokenRecord) -> None:
        with self._writing() as db:
            db.execute("INSERT INTO tokens (token, channel_id, name) VALUES (?, ?, ?)",
                       (token.token, token.channel_id, token.name))

    async def delete_token(self, token: str) -> None:
        with self._writing() as db:
            db.execute("DELETE FROM tokens WHERE token = ?", (token,))

    async def create_drain(self, channel_id: str, token: str, url: str | None,
                           now: float) -> DrainRecord:
        with self._writing() as db:
            drain_id = self._incr(db, "drain_index")
            db.execute(
                "INSERT INTO drains (id, channel_id, token, url, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)", (drain_id, channel_id, token, url, now, now))
        return DrainRecord(drain_id, channel_id, token, url, now, now)

    async def update_drain(self, drain: DrainRecord) -> None:
        with self._writing() as db:
            db.execute("UPDATE drains SET url = ?, updated_at = ? WHERE id = ?",
                       (drain.url, drain.updated_at, drain.id))

    async def delete_drain(self, drain_id: int) -> None:
        with self._writing() as db:
            db.execute("DELETE FROM drains WHERE id = ?", (drain_id,))

    async def get_session(self, session_id: str) -> SessionRecord | None:
        r = self._db.execute(
            "SELECT id, channel_id, num, tail, ps, source, created_at, opened_at FROM sessions "
            "WHERE id = ?", (session_id,)).fetchone()
        return SessionRecord(r[0], r[1], r[2], bool(r[3]), *r[4:]) if r else None

    async def put_session(self, session: SessionRecord, ttl: float = 0.0) -> None:
        """Save ``session`` if the disk can take it. A session is served from this node's
        memory; its row only carries it across a restart, so ``logs`` keeps working on a full
        disk (the write that failed is logged)."""
        s = session
        try:
            with self._writing() as db:
                db.execute(
                    "INSERT OR REPLACE INTO sessions (id, channel_id, num, tail, ps, source, "
                    "created_at, opened_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (s.id, s.channel_id, s.num, int(s.tail), s.ps, s.source, s.created_at,
                     s.opened_at))
        except StoreUnavailable as exc:
            log.warning("session_not_saved", session=s.id, error=str(exc))

    async def delete_sessions(self, session_ids: list[str]) -> None:
        with self._writing() as db:
            db.executemany("DELETE FROM sessions WHERE id = ?", [(i,) for i in session_ids])

    async def checkpoint_every(self, interval: float = CHECKPOINT_INTERVAL) -> None:
        """Checkpoint the write-ahead log each ``interval`` seconds there were writes (run it
        as a background task; see the module docstring). A checkpoint that fails (a full disk)
        is logged and tried again with the next writes; the log keeps every commit meanwhile."""
        while True:
            await trio.sleep(interval)
            if self._writes:
                try:
                    await self.checkpoint()
                except sqlite3.Error as exc:
                    log.warning("config_checkpoint_failed", path=self.path, error=str(exc))

    async def checkpoint(self) -> None:
        """Copy the write-ahead log's commits into the database (a ``PASSIVE`` checkpoint) in a
        worker thread; the event loop's writes go on meanwhile."""
        if self.read_only is not None:
            return
        async with self._checkpointing:
            self._writes = 0
            await trio.to_thread.run_sync(self._checkpoint_blocking)

    def _checkpoint_blocking(self) -> None:
        if self._checkpointer is None:
            self._checkpointer = sqlite3.connect(self.path, isolation_level=None,
                                                 check_same_thread=False)
        self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    async def aclose(self) -> None:
        """Close the store; the last connection's close checkpoints the log and removes it,
        which waits for the disk: done in a worker thread."""
        async with self._checkpointing:
            checkpointer, self._checkpointer = self._checkpointer, None
            db = self._db

            def close() -> None:
                if checkpointer is not None:
                    checkpointer.close()
                db.close()

            await trio.to_thread.run_sync(close)
