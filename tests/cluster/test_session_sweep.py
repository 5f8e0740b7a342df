"""The session sweep against a real redis-server that goes away and comes back."""

from __future__ import annotations

import trio

from logrouter.core.sessions import SessionTable
from logrouter.store.redis import RedisStore, connect
from tests.cluster.conftest import RedisServer


async def test_the_session_sweep_outlives_redis_going_away(redis_server: RedisServer) -> None:
    """The node's sweeper task forgets expired sessions every minute; with Redis down the
    store's StoreUnavailable came out of it and stopped the node. Now the sessions are
    forgotten at once and the store is asked again by the next sweep."""
    client = await connect(redis_server.url)
    try:
        sessions = SessionTable(RedisStore(client, history_lines=10), expiry=0.2, lifetime=0.2)
        await sessions.create("c1", 10, False, None, None)
        redis_server.stop()
        await trio.sleep(0.3)
        assert await sessions.sweep() == 1
        assert not sessions.sessions
        redis_server.start()
        with trio.fail_after(30):
            while sessions._undeleted:  # the client reconnects by itself
                await trio.sleep(0.2)
                await sessions.sweep()
    finally:
        await client.close()
