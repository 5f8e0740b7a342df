"""Redis config store and shared history for cluster mode (valkey-glide, works under trio).

Key layout (every per-channel key is hash-tagged ``{ch:<id>}``, so one channel's keys share a
Redis Cluster slot and pipelines never cross slots for a channel):

=================================  =======  ==============================================
key                                type     content
=================================  =======  ==============================================
``lr:channels``                    set      channel ids
``lr:channel_index``, ``lr:drain_index``   counters (Logplex ``INCR channel_index``)
``lr:{ch:<id>}:data``              hash     ``name``, ``created_at``
``lr:{ch:<id>}:tokens``            hash     token → token name
``lr:{ch:<id>}:drains``            hash     drain id → JSON drain record
``lr:{ch:<id>}:history_index``     list     ``<lines> <chunk key>`` per history chunk, newest first
``lr:{ch:<id>}:history_lines``     counter  lines in the indexed chunks
``lr:{ch:<id>}:hc:<writer>:<n>``   string   a chunk: msgpack array of cooked lines (with a TTL)
``lr:session:<id>``                string   JSON session, with a TTL (its expiry)
``lr:config``                      pub/sub  a channel id whose config changed
``lr:tail:<id>``                   pub/sub  msgpack ``[node, lines]`` for remote tails
``lr:tails``                       hash     ``<channel>|<node>`` → expiry (who tails what)
``lr:tails:started``               pub/sub  ``<node> <channel>``: a tail just started there
=================================  =======  ==============================================

Every config write is followed by a publish on ``lr:config``; nodes reload that channel.
Errors from Redis are mapped to :class:`StoreUnavailable`.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

import msgpack
import trio
from glide import (
    Batch,
    ClusterBatch,
    ExpirySet,
    ExpiryType,
    GlideClient,
    GlideClientConfiguration,
    GlideClusterClient,
    GlideClusterClientConfiguration,
    GlideError,
    NodeAddress,
)

from logrouter.errors import ConfigError, StoreUnavailable
from logrouter.models import ChannelRecord, DrainRecord, SessionRecord, TokenRecord
from logrouter.store.base import ConfigSnapshot

__all__ = ["CONFIG_CHANNEL", "TAIL_STARTED_CHANNEL", "RedisStore", "RedisSubscriber",
           "StoreUnavailable", "connect", "tail_channel"]

CONFIG_CHANNEL = "lr:config"
# History is kept in chunks, one per flush per channel: a string key holding a msgpack array of
# lines (written with a plain SET: a large argument passed into Lua cost Redis ~0.2 ms per call),
# an index list of "<lines> <chunk key>" entries, newest first, and the total of lines indexed.
# The script indexes a new chunk and drops (index entry and key) the oldest chunks the bound no
# longer needs. All keys share the channel's hash tag, so they live in one Redis Cluster slot.
# KEYS: index, total. ARGV: chunk key, its line count, the bound, the TTL in seconds.
_APPEND_HISTORY = """redis.call('LPUSH', KEYS[1], ARGV[2] .. ' ' .. ARGV[1])
local total = redis.call('INCRBY', KEYS[2], ARGV[2])
local bound = tonumber(ARGV[3])
while true do
  local oldest = redis.call('LINDEX', KEYS[1], -1)
  if not oldest then
    break
  end
  local sp = string.find(oldest, ' ', 1, true)
  local n = tonumber(string.sub(oldest, 1, sp - 1))
  if total - n < bound then
    break
  end
  redis.call('RPOP', KEYS[1])
  redis.call('DEL', string.sub(oldest, sp + 1))
  total = redis.call('DECRBY', KEYS[2], n)
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return total"""
#: How long a channel's history outlives its last write (Logplex's redis_buffer_expiry).
HISTORY_TTL = 7 * 24 * 3600
TAILS_KEY = "lr:tails"
TAIL_STARTED_CHANNEL = "lr:tails:started"
REQUEST_TIMEOUT_MS = 2000


def _ch(channel_id: str, what: str) -> str:
    return f"lr:{{ch:{channel_id}}}:{what}"


def tail_channel(channel_id: str) -> str:
    return f"lr:tail:{channel_id}"


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


Client = GlideClient | GlideClusterClient


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme in ("redis+cluster", "valkey+cluster")


def parse_url(url: str) -> tuple[str, int, int]:
    """``redis://host:port[/db]``, or ``redis+cluster://host:port`` (any node of a Redis Cluster)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "valkey", "redis+cluster", "valkey+cluster") or not parts.hostname:
        raise ConfigError("redis_url must look like redis://host:port[/db] or "
                          f"redis+cluster://host:port, got {url!r}")
    path = parts.path.strip("/")
    if path and not (path.isascii() and path.isdigit()):
        raise ConfigError(f"redis_url database must be a number, got {parts.path!r}")
    db = int(path or 0)
    return parts.hostname, parts.port or 6379, db


def route_client_logs(data_dir: str) -> None:
    """Send valkey-glide's own log lines to ``<data_dir>/glide.log`` (warnings and up), so
    they never mix with the machine-readable lines logrouter prints on stdout."""
    from glide import Logger, LogLevel

    Logger.set_logger_config(LogLevel.WARN, os.path.join(os.path.abspath(data_dir), "glide.log"))


async def connect(url: str, pubsub: bool = False) -> Client:
    """A glide client for ``url`` (it reconnects by itself after failures); a cluster client
    for ``redis+cluster://``."""
    host, port, db = parse_url(url)
    name = "logrouter-pubsub" if pubsub else "logrouter"
    try:
        if is_cluster_url(url):
            return await GlideClusterClient.create(GlideClusterClientConfiguration(
                [NodeAddress(host, port)], request_timeout=REQUEST_TIMEOUT_MS, client_name=name))
        return await GlideClient.create(GlideClientConfiguration(
            [NodeAddress(host, port)], database_id=db or None, request_timeout=REQUEST_TIMEOUT_MS,
            client_name=name))
    except GlideError as exc:
        raise StoreUnavailable(f"cannot connect to {url}: {exc}") from None


class RedisStore:
    """:class:`~logrouter.store.base.ConfigStore` in Redis, plus shared history and tail fan-out."""

    def __init__(self, client: Client, history_lines: int) -> None:
        self.client = client
        self.history_lines = history_lines
        self.cluster = isinstance(client, GlideClusterClient)
        self._writer = secrets.token_hex(4)  # names this store's history chunks
        self._chunks = 0

    def _batch(self) -> Batch | ClusterBatch:
        """A non-atomic pipeline: on Redis Cluster it is split by slot, never CROSSSLOT."""
        return ClusterBatch(is_atomic=False) if self.cluster else Batch(is_atomic=False)

    async def _call(self, coro: Any) -> Any:
        try:
            return await coro
        except GlideError as exc:
            raise StoreUnavailable(str(exc)) from None

    async def _exec(self, batch: Batch | ClusterBatch) -> list[Any]:
        result = await self._call(self.client.exec(batch, raise_on_error=True))  # type: ignore[arg-type]
        return list(result or [])

    async def ping(self) -> str | None:
        """None when Redis answers within a second, else why not."""
        try:
            with trio.move_on_after(1.0) as scope:
                await self._call(self.client.ping())
        except StoreUnavailable as exc:
            return f"redis: {exc}"
        return "redis: no answer within 1 s" if scope.cancelled_caught else None

    async def publish(self, channel_id: str) -> None:
        await self._call(self.client.publish(channel_id, CONFIG_CHANNEL))

    # loading ------------------------------------------------------------------------------

    async def load_channel(self, channel_id: str,
                           ) -> tuple[ChannelRecord | None, list[TokenRecord], list[DrainRecord]]:
        b = self._batch()
        b.hgetall(_ch(channel_id, "data"))
        b.hgetall(_ch(channel_id, "tokens"))
        b.hgetall(_ch(channel_id, "drains"))
        data, tokens, drains = await self._exec(b)
        if not data:
            return None, [], []
        d = {_s(k): _s(v) for k, v in data.items()}
        record = ChannelRecord(channel_id, d.get("name", ""), float(d.get("created_at", 0)))
        token_records = [TokenRecord(_s(t), channel_id, _s(n)) for t, n in (tokens or {}).items()]
        drain_records = [DrainRecord(**json.loads(v)) for v in (drains or {}).values()]
        return record, token_records, sorted(drain_records, key=lambda r: r.id)

    async def load(self) -> ConfigSnapshot:
        ids = sorted(_s(x) for x in await self._call(self.client.smembers("lr:channels")))
        snapshot = ConfigSnapshot()
        for channel_id in ids:
            record, tokens, drains = await self.load_channel(channel_id)
            if record is not None:
                snapshot.channels.append(record)
                snapshot.tokens += tokens
                snapshot.drains += drains
        return snapshot

    # config writes ------------------------------------------------------------------------

    async def next_channel_id(self) -> str:
        while True:
            candidate = str(await self._call(self.client.incr("lr:channel_index")))
            if not await self._call(self.client.sismember("lr:channels", candidate)):
                return candidate

    async def put_channel(self, channel: ChannelRecord, tokens: list[TokenRecord]) -> None:
        b = self._batch()
        b.hset(_ch(channel.id, "data"), {"name": channel.name, "created_at": repr(channel.created_at)})
        if tokens:
            b.hset(_ch(channel.id, "tokens"), {t.token: t.name for t in tokens})
        b.sadd("lr:channels", [channel.id])
        await self._exec(b)
        await self.publish(channel.id)

    async def delete_channel(self, channel_id: str) -> None:
        chunks = await self._history_keys(channel_id)
        b = self._batch()
        b.delete([_ch(channel_id, "data"), _ch(channel_id, "tokens"), _ch(channel_id, "drains"),
                  _ch(channel_id, "history_index"), _ch(channel_id, "history_lines"), *chunks])
        b.srem("lr:channels", [channel_id])
        await self._exec(b)
        await self.publish(channel_id)

    async def put_token(self, token: TokenRecord) -> None:
        await self._call(self.client.hset(_ch(token.channel_id, "tokens"), {token.token: token.name}))
        await self.publish(token.channel_id)

    async def delete_token(self, token: str) -> None:
        for channel_id in await self._channel_ids():
            if await self._call(self.client.hdel(_ch(channel_id, "tokens"), [token])):
                await self.publish(channel_id)
                return

    async def _channel_ids(self) -> list[str]:
        return [_s(x) for x in await self._call(self.client.smembers("lr:channels"))]

    async def create_drain(self, channel_id: str, token: str, url: str | None,
                           now: float) -> DrainRecord:
        drain_id = int(await self._call(self.client.incr("lr:drain_index")))
        drain = DrainRecord(drain_id, channel_id, token, url, now, now)
        await self._put_drain(drain)
        return drain

    async def _put_drain(self, drain: DrainRecord) -> None:
        value = json.dumps({"id": drain.id, "channel_id": drain.channel_id, "token": drain.token,
                            "url": drain.url, "created_at": drain.created_at,
                            "updated_at": drain.updated_at})
        await self._call(self.client.hset(_ch(drain.channel_id, "drains"), {str(drain.id): value}))
        await self.publish(drain.channel_id)

    async def update_drain(self, drain: DrainRecord) -> None:
        await self._put_drain(drain)

    async def delete_drain(self, drain_id: int) -> None:
        for channel_id in await self._channel_ids():
            if await self._call(self.client.hdel(_ch(channel_id, "drains"), [str(drain_id)])):
                await self.publish(channel_id)
                return

    async def shared_auth_key(self, candidate: str) -> str:
        """The cluster's API key: ``candidate`` if none was stored yet (SET NX), else the stored one."""
        from glide import ConditionalChange

        await self._call(self.client.set("lr:auth_key", candidate,
                                         conditional_set=ConditionalChange.ONLY_IF_DOES_NOT_EXIST))
        return _s(await self._call(self.client.get("lr:auth_key")))

    # sessions -------------------------------------------------------------------------------

    async def put_session(self, session: SessionRecord, ttl: float = 3600.0) -> None:
        from glide import ExpirySet, ExpiryType

        value = json.dumps({"id": session.id, "channel_id": session.channel_id, "num": session.num,
                            "tail": session.tail, "ps": session.ps, "source": session.source,
                            "created_at": session.created_at, "opened_at": session.opened_at})
        await self._call(self.client.set(f"lr:session:{session.id}", value,
                                         expiry=ExpirySet(ExpiryType.SEC, max(1, int(ttl)))))

    async def get_session(self, session_id: str) -> SessionRecord | None:
        raw = await self._call(self.client.get(f"lr:session:{session_id}"))
        return SessionRecord(**json.loads(raw)) if raw else None

    async def delete_sessions(self, session_ids: list[str]) -> None:
        if session_ids:
            await self._call(self.client.delete([f"lr:session:{i}" for i in session_ids]))

    # history ----------------------------------------------------------------------------------

    async def append_history(self, batches: dict[str, list[bytes]]) -> None:
        """One pipelined round trip for a whole flush: per channel, the lines as one msgpack
        chunk (a plain SET) and one small script call that indexes it and drops the chunks the
        bound no longer needs. (Passing each line as its own argument cost the client 1.07 µs
        of CPU per line and Redis as much again; this costs Redis one SET per chunk.)"""
        b = self._batch()
        bound = str(self.history_lines)
        ttl = str(HISTORY_TTL)
        for channel_id, lines in batches.items():
            if not lines:
                continue
            self._chunks += 1
            key = _ch(channel_id, f"hc:{self._writer}:{self._chunks}")
            b.set(key, msgpack.packb(lines), expiry=ExpirySet(ExpiryType.SEC, HISTORY_TTL))
            b.custom_command(["EVAL", _APPEND_HISTORY, "2", _ch(channel_id, "history_index"),
                              _ch(channel_id, "history_lines"), key, str(len(lines)), bound, ttl])
        await self._exec(b)

    async def _history_keys(self, channel_id: str) -> list[str]:
        """The channel's chunk keys, oldest first."""
        entries = await self._call(self.client.lrange(_ch(channel_id, "history_index"), 0, -1))
        return [_s(e).split(" ", 1)[1] for e in reversed(entries)]

    async def read_history(self, channel_id: str) -> list[bytes]:
        """The channel's shared history (its newest ``history_lines`` lines), oldest first."""
        keys = await self._history_keys(channel_id)
        if not keys:
            return []
        lines: list[bytes] = []
        for chunk in await self._call(self.client.mget(keys)):
            if chunk is not None:  # dropped between the two reads: it was among the oldest
                lines.extend(msgpack.unpackb(chunk))
        return lines[-self.history_lines:]

    # tails ----------------------------------------------------------------------------------------

    async def publish_tail_started(self, node: str, channel_id: str) -> None:
        await self._call(self.client.publish(f"{node} {channel_id}", TAIL_STARTED_CHANNEL))

    async def publish_tail(self, channel_id: str, payload: bytes) -> None:
        await self._call(self.client.publish(payload, tail_channel(channel_id)))

    async def announce_tails(self, node: str, channels: list[str], ttl: float) -> None:
        if channels:
            expiry = repr(time.time() + ttl)
            await self._call(self.client.hset(TAILS_KEY, {f"{c}|{node}": expiry for c in channels}))

    async def retract_tail(self, node: str, channel_id: str) -> None:
        await self._call(self.client.hdel(TAILS_KEY, [f"{channel_id}|{node}"]))

    async def tailed_channels(self) -> dict[str, set[str]]:
        """Channel id → nodes with a live tail on it (expired announcements are ignored)."""
        now = time.time()
        out: dict[str, set[str]] = {}
        for field, expiry in (await self._call(self.client.hgetall(TAILS_KEY)) or {}).items():
            if float(_s(expiry)) < now:
                continue
            channel_id, _, node = _s(field).rpartition("|")
            out.setdefault(channel_id, set()).add(node)
        return out

    async def aclose(self) -> None:
        try:
            await self.client.close()
        except GlideError:
            pass


class RedisSubscriber:
    """A pub/sub connection: subscribe, unsubscribe, wait for the next message. Every Redis
    error comes out as :class:`StoreUnavailable` (glide reconnects by itself meanwhile)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    @classmethod
    async def connect(cls, url: str) -> RedisSubscriber:
        return cls(await connect(url, pubsub=True))

    async def subscribe(self, channels: set[str]) -> None:
        try:
            await self.client.subscribe(channels, timeout_ms=REQUEST_TIMEOUT_MS)
        except GlideError as exc:
            raise StoreUnavailable(f"cannot subscribe: {exc}") from None

    async def unsubscribe(self, channels: set[str]) -> None:
        try:
            await self.client.unsubscribe(channels, timeout_ms=REQUEST_TIMEOUT_MS)
        except GlideError as exc:
            raise StoreUnavailable(f"cannot unsubscribe: {exc}") from None

    async def next_message(self) -> tuple[str, bytes]:
        """The next message: ``(pub/sub channel, payload)``."""
        try:
            msg = await self.client.get_pubsub_message()
        except GlideError as exc:
            raise StoreUnavailable(str(exc)) from None
        channel = msg.channel.decode() if isinstance(msg.channel, bytes) else str(msg.channel)
        payload = msg.message if isinstance(msg.message, bytes) else str(msg.message).encode()
        return channel, payload

    async def aclose(self) -> None:
        try:
            await self.client.close()
        except GlideError:
            pass
