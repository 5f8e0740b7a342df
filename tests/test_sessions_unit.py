"""Session expiry (unopened and opened) with an injected clock, on the SQLite store."""

from __future__ import annotations

from pathlib import Path

from logrouter.core.sessions import SessionTable
from logrouter.store.sqlite import SqliteStore


async def test_unopened_sessions_expire_and_opened_ones_live_longer(tmp_path: Path) -> None:
    now = [1000.0]
    store = SqliteStore(str(tmp_path / "c.db"))
    table = SessionTable(store, expiry=360, lifetime=3600, clock=lambda: now[0])
    idle = await table.create("1", 100, False, None, None)
    used = await table.create("1", 100, True, "web", None)
    assert idle.id != used.id and len(idle.id) == 36
    await table.open(used)
    now[0] += 361
    assert table.get(idle.id) is None  # never opened: gone after 6 minutes
    assert table.get(used.id) is not None  # opened: still valid for reconnects
    assert await table.sweep() == 1
    assert await store.get_session(idle.id) is None
    now[0] += 3600
    assert table.get(used.id) is None
    reloaded = SessionTable(store, expiry=360, lifetime=3600, clock=lambda: 1000.0 + 10)
    reloaded.load((await store.load()).sessions)
    assert reloaded.get(used.id) is not None  # sessions survive a restart
