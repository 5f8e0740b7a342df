"""ChannelTable and Channel without sockets: what ingest routes by, what consumers see."""

from __future__ import annotations

from logrouter.core.channels import ChannelTable
from logrouter.models import ChannelRecord, DrainRecord, TokenRecord


class Recorder:
    def __init__(self, pushback: bool = False) -> None:
        self.batches: list[list[bytes]] = []
        self.pushback = pushback
        self.closed = False

    def push(self, lines: list[bytes]) -> bool:
        self.batches.append(list(lines))
        return self.pushback

    async def wait_room(self, deadline: float) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def table_with_app() -> ChannelTable:
    table = ChannelTable(history_lines=3)
    table.load([ChannelRecord("1", "shop", 0.0)], [TokenRecord("t.a", "1", "app"),
                                                    TokenRecord("t.x", "9", "orphan")],
               [DrainRecord(5, "1", "d.5", "syslog://h:1", 0.0, 0.0)])
    return table


def test_load_indexes_tokens_names_and_drains_and_skips_orphans() -> None:
    table = table_with_app()
    channel = table.get("1")
    assert channel is not None
    assert table.route[b"t.a"] == (channel, b"app") and b"t.x" not in table.route
    assert table.named("shop") == [channel] and channel.token_for("app") == "t.a"
    assert 5 in table.drains and channel.drains[5].url == "syslog://h:1"


def test_post_feeds_history_and_consumers_and_reports_who_pushes_back() -> None:
    table = table_with_app()
    channel = table.get("1")
    assert channel is not None
    quiet, pushy = Recorder(), Recorder(pushback=True)
    channel.add_consumer(quiet)
    channel.add_consumer(pushy, drain=True)
    pressured: list[object] = []
    channel.post([b"a", b"b", b"c", b"d"], pressured)  # type: ignore[arg-type]
    assert pressured == [pushy] and channel.received == 4
    assert channel.history.snapshot() == [b"b", b"c", b"d"]  # history_lines = 3
    channel.inject([b"L14"])  # lines about the drains go to history and tails, never drains
    assert quiet.batches[-1] == [b"L14"] and pushy.batches[-1] == [b"a", b"b", b"c", b"d"]


def test_renaming_and_removing_keep_every_index_true() -> None:
    table = table_with_app()
    channel = table.get("1")
    assert channel is not None
    consumer = Recorder()
    channel.add_consumer(consumer)
    table.put_channel(ChannelRecord("1", "store", 0.0))
    assert table.named("shop") == [] and table.named("store") == [channel]
    table.remove_channel("1")
    assert table.get("1") is None and not table.route and not table.drains and not table.tokens
    assert table.named("store") == [] and consumer.closed


def test_on_new_channel_hears_of_new_channels_only() -> None:
    seen: list[str] = []
    table = ChannelTable(history_lines=10, on_new_channel=lambda c: seen.append(c.id))
    table.put_channel(ChannelRecord("7", "a", 0.0))
    table.put_channel(ChannelRecord("7", "b", 0.0))
    table.load([ChannelRecord("8", "c", 0.0)], [], [])
    table.remove_channel("7")
    table.put_channel(ChannelRecord("7", "a", 0.0))  # a new channel object: heard of again
    assert seen == ["7", "8", "7"]


def test_routing_with_the_table_s_cache_follows_token_changes() -> None:
    """Ingest routes with the table's token cache: a token added, removed or moved to another
    channel is routed accordingly from the next read on."""
    from logrouter.core.token_routing import Routing

    table = table_with_app()
    line = b"<1>1 - h t.new p - - m"
    read = b"%d %s" % (len(line), line)

    def route() -> Routing[object]:
        routing: Routing[object] = Routing(table.route, {}, table.route_cache)
        routing.octets(read, 0, 1000)
        return routing

    assert route().unknown_token == 1
    table.put_token(TokenRecord("t.new", "1", "web"))
    channel = table.get("1")
    assert route().groups == {channel: [b"<1>1 - h web p - - m"]}
    table.put_channel(ChannelRecord("2", "other", 0.0))
    table.put_token(TokenRecord("t.new", "2", "api"))
    assert route().groups == {table.get("2"): [b"<1>1 - h api p - - m"]}
    table.remove_token("t.new")
    assert route().unknown_token == 1
    table.put_token(TokenRecord("t.new", "2", "api"))
    table.remove_channel("2")
    assert route().unknown_token == 1
