"""Control on an in-memory SQLite store: the rules every API version shares, without sockets."""

from __future__ import annotations

import pytest

from logrouter.control import Control, Limits
from logrouter.core.channels import Channel, ChannelTable
from logrouter.core.sessions import SessionTable
from logrouter.destinations import DestinationPolicy
from logrouter.errors import ConflictError, LimitError, NotFoundError, ValidationError
from logrouter.store.sqlite import SqliteStore


class Runner:
    def __init__(self) -> None:
        self.changed: list[str] = []

    def channel_changed(self, channel: Channel) -> None:
        self.changed.append(channel.id)

    def status(self, drain_id: int) -> dict[str, object] | None:
        return {"delivered": drain_id}


def control(**limits: int) -> tuple[Control, SqliteStore, Runner]:
    store = SqliteStore(":memory:")
    table = ChannelTable(history_lines=10)
    runner = Runner()
    ctl = Control(store, table, SessionTable(store, 360, 3600), Limits(**limits),
                  clock=lambda: 1000.0, destinations=DestinationPolicy(own_ports=frozenset({6001})),
                  drains=runner)
    return ctl, store, runner


async def test_channels_tokens_and_drains_reach_the_table_the_store_and_the_runner() -> None:
    ctl, store, runner = control()
    channel = await ctl.create_channel("shop", ["app", "heroku"])
    assert set(channel.tokens.values()) == {"app", "heroku"}
    drain = await ctl.add_drain(channel.id, "syslog+tls://logs.example.com:6514")
    assert runner.changed == [channel.id]
    assert ctl.with_status(drain.id, {})["status"] == {"delivered": drain.id}
    snapshot = await store.load()
    assert [c.name for c in snapshot.channels] == ["shop"] and len(snapshot.tokens) == 2
    assert [d.url for d in snapshot.drains] == ["syslog+tls://logs.example.com:6514"]
    await ctl.delete_channel(channel.id)
    assert ctl.table.get(channel.id) is None and not (await store.load()).channels


async def test_bad_input_and_limits_are_refused_with_the_reason() -> None:
    ctl, _, _ = control(drains_per_channel=1, channels=2)
    channel = await ctl.create_channel("a", ["app"])
    with pytest.raises(ValidationError):
        await ctl.add_drain(channel.id, "ftp://example.com")
    with pytest.raises(ValidationError, match=r"no path or query.*#insecure"):
        await ctl.add_drain(channel.id, "syslog+tls://logs.example.com:6514?insecure=1")
    with pytest.raises(ValidationError, match="router"):  # the router's own listener: a loop
        await ctl.add_drain(channel.id, "syslog://127.0.0.1:6001")
    await ctl.add_drain(channel.id, "syslog://logs.example.com:514")
    with pytest.raises((LimitError, ConflictError)):
        await ctl.add_drain(channel.id, "syslog://logs.example.com:514")
    with pytest.raises(LimitError):
        await ctl.add_drain(channel.id, "syslog://other.example.com:514")
    await ctl.create_channel("b")
    with pytest.raises(LimitError):
        await ctl.create_channel("c")
    with pytest.raises(NotFoundError):
        await ctl.add_drain("nope", "syslog://logs.example.com:514")
    with pytest.raises(ValidationError):
        await ctl.create_channel("x" * 300)
