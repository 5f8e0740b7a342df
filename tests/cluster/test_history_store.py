"""Shared history in Redis, read and written through RedisStore against a real redis-server."""

from __future__ import annotations

from logrouter.models import ChannelRecord
from logrouter.store.redis import HISTORY_TTL, Client, RedisStore, connect
from tests.cluster.conftest import RedisServer


async def keys(client: Client, pattern: str) -> list[bytes]:
    found: list[bytes] = await client.custom_command(["KEYS", pattern])  # type: ignore[assignment]
    return found


async def test_history_keeps_exactly_the_newest_lines_in_bounded_chunks(
        redis_server: RedisServer) -> None:
    client = await connect(redis_server.url)
    try:
        store = RedisStore(client, history_lines=10)
        other = RedisStore(client, history_lines=10)  # a second node writing the same channel
        await store.put_channel(ChannelRecord("c1", "demo", 0.0), [])
        sent: list[bytes] = []
        for i, size in enumerate([3, 1, 7, 0, 5, 12, 2, 9, 1, 1, 1, 30, 4]):
            batch = [b"line %d.%d \x00\xff" % (i, j) for j in range(size)]
            sent += batch
            await (store if i % 2 else other).append_history({"c1": batch, "c2": [b"other"]})
            assert await store.read_history("c1") == sent[-10:]
            held = int(await client.get("lr:{ch:c1}:history_lines") or 0)
            index = [e.split(b" ") for e in await client.lrange("lr:{ch:c1}:history_index", 0, -1)]
            counts = [int(n) for n, _ in index]
            assert held == sum(counts) and held >= min(10, len(sent))
            assert held - counts[-1] < 10  # the oldest chunk is kept only while it is needed
            chunk_keys = [k.decode() for _, k in index]
            assert await client.exists(chunk_keys) == len(chunk_keys)
            assert len(await keys(client, "lr:{ch:c1}:hc:*")) == len(chunk_keys)  # dropped: deleted
            assert 0 < await client.ttl(chunk_keys[0]) <= HISTORY_TTL
        assert await store.read_history("c2") == [b"other"] * 10
        assert await store.read_history("nothing") == []
        await store.delete_channel("c1")
        assert await keys(client, "lr:{ch:c1}:*") == []
        assert await store.read_history("c1") == []
    finally:
        await client.close()
