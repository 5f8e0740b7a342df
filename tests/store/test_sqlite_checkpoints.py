"""The config's write-ahead log is copied into the database (a checkpoint, which waits for the
disk) in a worker thread, never by a write made on the event loop."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import trio

from logrouter.models import SessionRecord
from logrouter.node import CONFIG_DB
from logrouter.store.sqlite import SqliteStore
from tests.conftest import Router
from tests.helpers import eventually

N = 1500  # commits of two pages or more each: past SQLite's own checkpoint at 1,000 pages


def session(i: int) -> SessionRecord:
    return SessionRecord(f"s{i:05d}", "1", 100, True, None, None, 1.0, None)


def in_database_file(path: Path, table: str) -> int:
    """Rows of ``table`` in the database file itself, the write-ahead log ignored."""
    db = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    except sqlite3.OperationalError:  # the file holds no schema yet
        return 0
    finally:
        db.close()


async def test_writes_leave_the_log_to_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "config.db"
    store = SqliteStore(str(path))
    size = os.path.getsize(path)
    for i in range(N):
        await store.put_session(session(i))
    assert os.path.getsize(path) == size  # nothing copied (nor synced) by the writes
    assert in_database_file(path, "sessions") == 0

    await store.checkpoint()
    assert in_database_file(path, "sessions") == N
    assert len([r for r in (await store.load()).sessions]) == N
    await store.aclose()
    assert in_database_file(path, "sessions") == N


async def test_checkpoints_run_beside_writes(tmp_path: Path) -> None:
    path = tmp_path / "config.db"
    store = SqliteStore(str(path))
    written = 0

    async def write() -> None:
        nonlocal written
        for i in range(N):
            await store.put_session(session(i))
            written += 1
            if i % 10 == 0:
                await trio.sleep(0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(write)
        checkpoints = 0
        while written < N:
            await store.checkpoint()
            checkpoints += 1
    assert checkpoints > 1
    await store.checkpoint()
    assert in_database_file(path, "sessions") == N
    await store.aclose()


async def test_a_node_checkpoints_its_config_in_the_background(router: Router) -> None:
    path = Path(router.node.settings.data_dir) / CONFIG_DB
    cid, _ = await router.create_channel()

    async def checkpointed() -> bool:
        return in_database_file(path, "channels") >= 1

    await eventually(checkpointed, timeout=10.0)
    assert cid
