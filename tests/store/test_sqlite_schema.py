"""The SQLite config store's schema is versioned (PRAGMA user_version) and migrated on open."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from logrouter.errors import ConfigError
from logrouter.store.sqlite import _SCHEMA, SCHEMA_VERSION, SqliteStore


def test_a_new_database_gets_the_current_version(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "c.sqlite3"))
    assert store.schema_version == SCHEMA_VERSION
    db = sqlite3.connect(tmp_path / "c.sqlite3")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_a_database_from_before_versioning_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA)  # what earlier releases created, user_version 0
    db.execute("INSERT INTO channels VALUES ('1', 'old', 0)")
    db.execute("INSERT INTO tokens VALUES ('t.x', '1', 'app')")
    db.commit()
    db.close()
    store = SqliteStore(str(path))
    assert store.schema_version == SCHEMA_VERSION
    snapshot = await store.load()
    assert [c.name for c in snapshot.channels] == ["old"] and snapshot.tokens[0].token == "t.x"


def test_a_database_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(ConfigError, match="newer than this logrouter"):
        SqliteStore(str(path))


def test_migrations_run_in_order_from_the_current_schema(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from logrouter.store import sqlite as module

    path = tmp_path / "c.sqlite3"
    SqliteStore(str(path))  # today's schema, version SCHEMA_VERSION
    future = {SCHEMA_VERSION + 1: ("ALTER TABLE channels ADD COLUMN note TEXT",),
              SCHEMA_VERSION + 2: ("UPDATE channels SET note = 'migrated'",)}
    monkeypatch.setattr(module, "MIGRATIONS", {**module.MIGRATIONS, **future})
    monkeypatch.setattr(module, "SCHEMA_VERSION", SCHEMA_VERSION + 2)
    store = SqliteStore(str(path))
    assert store.schema_version == SCHEMA_VERSION + 2
    db = sqlite3.connect(path)
    assert "note" in [row[1] for row in db.execute("PRAGMA table_info(channels)")]


@pytest.mark.parametrize("content", [b"\x8f" * 20_000, b"SQLite format 3\x00" + b"\x01" * 5_000],
                         ids=["garbage", "damaged header"])
def test_a_damaged_database_is_refused_with_a_clear_error(tmp_path: Path, content: bytes) -> None:
    """Not a traceback: the node reports a ConfigError naming the file (the CLI prints it and
    exits 2), and the file is left as it was for the operator to recover."""
    path = tmp_path / "config.sqlite3"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=r"config\.sqlite3.*damaged"):
        SqliteStore(str(path))
    assert path.read_bytes() == content
