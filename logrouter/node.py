"""The composition root: one logrouter node, built from :class:`~logrouter.settings.Settings`.

Start-up order (listeners last, as in Logplex): data dir and auth key → config
store → in-memory tables, saved history and sessions → servers bound → one
``listening …`` line per listener → serve. Shutdown (SIGINT/SIGTERM or
:meth:`Node.request_stop`): stop accepting, end tail streams cleanly, give
in-flight requests ``shutdown_timeout`` seconds, save history, close the store.

This is the only module that imports ``ingest``, ``api`` and (later) the drain
and cluster packages.
"""

from __future__ import annotations

import gc
import os
import resource
import secrets
import signal
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

from drains import DrainOptions
from logrouter.api import ApiHandler, SessionStreamer
from logrouter.control import Control, Limits
from logrouter.core.channels import Channel, ChannelTable
from logrouter.core.history import HistoryCompactor, Saved
from logrouter.core.history_file import load_histories, save_histories, write_histories
from logrouter.core.history_view import HistoryView, LocalHistory, SharedHistory
from logrouter.core.sessions import SessionTable
from logrouter.core.tail import TailHubs
from logrouter.core.turns import in_turns
from logrouter.data_dir import lock_data_dir, secure_data_dir
from logrouter.destinations import DestinationPolicy, parse_networks
from logrouter.drain_supervisor import DrainSupervisor
from logrouter.errors import ConfigError, StoreUnavailable
from logrouter.ingest import Ingest, LogsHandler, SyslogServer
from logrouter.logs import get_logger
from logrouter.metrics import Metrics
from logrouter.settings import Settings
from logrouter.store.base import ConfigStore
from logrouter.store.sqlite import SqliteStore
from logrouter.transport.serving import HttpServer, StreamServer, open_listeners
from logrouter.transport.tlsclient import server_context

if TYPE_CHECKING:  # cluster mode's modules (and the Redis client) load only when it is on
    from logrouter.cluster import Cluster
    from logrouter.store.redis import RedisStore

__all__ = ["Node", "resolve_auth_key"]

log = get_logger("logrouter.node")

HISTORY_FILE = "history.msgpack"
CONFIG_DB = "config.sqlite3"
KEY_FILE = "auth_key"
SESSION_SWEEP_INTERVAL = 60.0

#: The signals that stop a node (and a worker supervisor) gracefully.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def resolve_auth_key(settings: Settings) -> tuple[str, bool | None]:
    """The API key: the setting, else the data dir's key file, else a new one saved there.

    Returns:
        ``(key, generated)``: ``generated`` is True for a key made now (print it once), False
        for one read from the key file, None for one given in the settings.

    Raises:
        ConfigError: the key file holds something that is not a key (it is left as it is).
        OSError: the key file cannot be read or written.
    """
    if settings.auth_key:
        return settings.auth_key, None
    path = os.path.join(settings.data_dir, KEY_FILE)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(4096).strip()
    except FileNotFoundError:
        raw = b""
    if raw:
        if not all(0x21 <= b <= 0x7e for b in raw):
            raise ConfigError(f"{path}: auth_key holds something other than a key (one word of "
                              "printable ASCII); delete the file to have a new key made, or give "
                              "the key with --auth-key or LOGROUTER_AUTH_KEY")
        return raw.decode("ascii"), False
    key = secrets.token_hex(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key + "\n")
    return key, True


class Node:
    """One logrouter process serving syslog, HTTP ingest and the control API.

    Args:
        settings: resolved settings.
        announce: called with each machine-readable start-up line
            (``listening syslog tcp 127.0.0.1:6001``).
        handle_signals: stop gracefully on SIGINT/SIGTERM.
        freeze_gc: once the config is loaded and the drains started, before the first
            listener opens, collect and then freeze every object made so far out of the cyclic
            garbage collector (``logrouter serve``; see :meth:`_settle_heap`).
    """

    def __init__(self, settings: Settings, announce: Callable[[str], None] = print,
                 handle_signals: bool = False, freeze_gc: bool = False) -> None:
        self.settings = settings
        self.announce = announce
        self.handle_signals = handle_signals
        self.freeze_gc = freeze_gc
        self.metrics = Metrics()
        #: The node's channels; built when :meth:`run` starts (in cluster mode the cluster's
        #: tap is wired into it).
        self.table: ChannelTable
        self.auth_key = ""
        self.public_url = settings.public_url
        self.addresses: dict[str, tuple[str, int]] = {}
        self._stop = trio.Event()
        self._servers: list[StreamServer] = []
        self._store: ConfigStore | None = None
        self.cluster: Cluster | None = None
        self.control: Control | None = None
        self.streamer: SessionStreamer | None = None
        self.drains: DrainSupervisor | None = None

    def request_stop(self) -> None:
        """Begin a graceful shutdown."""
        self._stop.set()

    async def run(self, *, task_status: trio.TaskStatus[dict[str, tuple[str, int]]]
                  = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until :meth:`request_stop` (or a signal); ``task_status`` gets the addresses.

        Raises:
            ConfigError: the data dir (another node holds it, or it cannot be made) or a
                port cannot be used, or the config database is damaged.
        """
        data_dir = self.settings.data_dir
        self._raise_file_limit()
        try:
            secure_data_dir(data_dir)
            lock = lock_data_dir(data_dir)  # ConfigError when another node holds it
        except OSError as exc:
            raise ConfigError(f"data dir {data_dir}: {exc}") from None
        try:
            await self._run_holding_data_dir(task_status)
        finally:
            os.close(lock)

    async def _run_holding_data_dir(self, task_status: trio.TaskStatus[dict[str, tuple[str, int]]],
                                    ) -> None:
        s = self.settings
        store: ConfigStore
        try:
            if s.redis_url:
                store = await self._connect_redis()
                self.auth_key, show_key = await self._cluster_auth_key(store)
            else:
                self.auth_key, show_key = resolve_auth_key(s)
                store = SqliteStore(os.path.join(s.data_dir, CONFIG_DB))
                if store.read_only is not None:
                    log.warning("config_read_only", reason=store.read_only)
        except OSError as exc:
            raise ConfigError(f"data dir {s.data_dir}: {exc}") from None
        self._store = store
        try:
            await self._serve(store, show_key, task_status)
        finally:
            with trio.CancelScope(shield=True):
                if not s.redis_url:
                    self._save_history()
                await store.aclose()

    async def _connect_redis(self) -> RedisStore:
        """Connect to Redis, retrying until it answers (listeners start only after)."""
        try:
            from logrouter.store.redis import RedisStore, route_client_logs
            from logrouter.store.redis import connect as redis_connect
        except ImportError:
            raise ConfigError("cluster mode needs the Redis client: pip install 'logrouter[cluster]'"
                              ) from None

        route_client_logs(self.settings.data_dir)
        delay = 0.5
        while True:
            try:
                client = await redis_connect(self.settings.redis_url)
                return RedisStore(client, self.settings.history_lines)
            except StoreUnavailable as exc:
                log.error("redis_unavailable", error=str(exc), retry_in_s=delay)
                await trio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _cluster_auth_key(self, store: RedisStore) -> tuple[str, bool | None]:
        """Every node shares one key: the setting, or one generated once and kept in Redis."""
        if self.settings.auth_key:
            return self.settings.auth_key, None
        candidate = secrets.token_hex(24)
        key = await store.shared_auth_key(candidate)
        return key, key == candidate

    async def _load(self, store: ConfigStore) -> SessionTable:
        s = self.settings
        snapshot = await store.load()
        try:
            saved = {} if s.redis_url else load_histories(os.path.join(s.data_dir, HISTORY_FILE))
        except ValueError as exc:
            log.error("history_load_failed", error=str(exc))
            saved = {}
        self.table.load(snapshot.channels, snapshot.tokens, snapshot.drains, saved)
        sessions = SessionTable(store, s.session_expiry, s.session_lifetime)
        sessions.load(snapshot.sessions)
        log.info("loaded", channels=len(self.table), tokens=len(self.table.tokens),
                 drains=len(self.table.drains), sessions=len(sessions),
                 history_lines=self.table.history_size())
        return sessions

    async def _bind(self, setting: str) -> list[trio.SocketListener]:
        """Listen on the port the setting named ``setting`` gives."""
        port = getattr(self.settings, setting)
        try:
            return await open_listeners(self.settings.bind, port, self.settings.reuse_port)
        except OSError as exc:
            flag = "--" + setting.replace("_", "-")
            raise ConfigError(
                f"cannot listen on {self.settings.bind}:{port}: {exc.strerror or exc}; choose "
                f"another port with {flag} or LOGROUTER_{setting.upper()} ({setting})") from None

    async def _serve(self, store: ConfigStore, show_key: bool | None,
                     task_status: trio.TaskStatus[dict[str, tuple[str, int]]]) -> None:
        s = self.settings
        metrics = self.metrics
        hubs = TailHubs(s.tail_buffer_lines, content_ids=bool(s.redis_url))
        cluster = None
        if s.redis_url:
            from logrouter.cluster import Cluster
            from logrouter.store.redis import RedisStore

            assert isinstance(store, RedisStore)
            cluster = self.cluster = Cluster(s.redis_url, store, metrics, hubs.get)
            # Cluster mode keeps history in Redis only: the local ring holds nothing (it still
            # numbers lines, which tails use); every channel gets the cluster's tap.
            self.table = ChannelTable(0, on_new_channel=cluster.attach)
        else:
            self.table = ChannelTable(s.history_lines)
        sessions = await self._load(store)
        syslog_l = await self._bind("syslog_port")
        logs_l = await self._bind("logs_port")
        api_l = await self._bind("api_port")
        tls_l = await self._bind("syslog_tls_port") if s.syslog_tls_cert else []
        own_ports = frozenset(lst[0].socket.getsockname()[1]
                              for lst in (syslog_l, logs_l, api_l, tls_l) if lst)
        destinations = DestinationPolicy(parse_networks(s.drain_deny_networks), own_ports)
        limits = Limits(s.max_drains_per_channel, s.max_channels, s.max_tokens_per_channel,
                        s.max_reserved_drains_per_channel)
        self.drains = drains = DrainSupervisor(self.table, DrainOptions.from_settings(s, destinations),
                                                 metrics)
        self.control = control = Control(store, self.table, sessions, limits,
                                         destinations=destinations, drains=drains)
        def channels() -> list[Channel]:
            return list(self.table.channels.values())

        metrics.sum_gauge("logrouter_history_lines", "Lines held in channel histories",
                          channels, lambda c: len(c.history))
        metrics.sum_gauge("logrouter_history_raw_lines", "History lines held uncompressed",
                          channels, lambda c: c.history.hot)
        metrics.sum_gauge("logrouter_history_compressed_bytes", "Bytes of compressed history "
                          "chunks", channels, lambda c: c.history.compressed_bytes)
        metrics.gauge_callback("logrouter_channels", "Channels", lambda: len(self.table))
        metrics.gauge_callback("logrouter_sessions", "Sessions held", lambda: len(sessions))

        api_port = api_l[0].socket.getsockname()[1]
        if not self.public_url:
            self.public_url = f"http://127.0.0.1:{api_port}"
        ingest = Ingest(self.table, metrics, s.drain_backpressure_max)
        logs = LogsHandler(self.table, ingest, metrics, self.auth_key, s.max_body_bytes,
                           s.max_frame_bytes)
        cluster_scope = trio.CancelScope()
        history: HistoryView = LocalHistory()
        ready_check = None
        if cluster is not None:
            assert isinstance(store, RedisStore)
            history = SharedHistory(store.read_history)
            ready_check = store.ping
        self.streamer = streamer = SessionStreamer(
            metrics, hubs, s.sse_keepalive, s.sse_retry_ms, s.session_lifetime,
            s.sse_shutdown_retry_ms, history=history,
            relay=cluster.relay if cluster is not None else None)
        metrics.gauge_callback("logrouter_tail_sessions", "Live tail sessions",
                               lambda: streamer.active_tails)
        api = ApiHandler(control, streamer, metrics, self.auth_key, self.public_url,
                         s.account_email,
                         refresh_channel=cluster.reload_channel if cluster is not None else None,
                         ready_check=ready_check)
        logs_listeners: list[trio.abc.Listener[trio.abc.Stream]] = list(logs_l)
        if s.logs_tls_cert:
            ctx = self._tls_context(s.logs_tls_cert, s.logs_tls_key)
            logs_listeners = [trio.SSLListener(lst, ctx, https_compatible=True) for lst in logs_l]
        self._servers = [
            SyslogServer(syslog_l, metrics, ingest, s.max_connections, s.max_frame_bytes),
            HttpServer("logs", logs_listeners, metrics, s.max_connections, logs, s.max_body_bytes,
                       s.idle_timeout, logs.inspect, s.http_header_timeout, s.http_body_timeout),
            HttpServer("api", api_l, metrics, s.max_connections, api, s.max_api_body_bytes,
                       s.idle_timeout, api.inspect, s.http_header_timeout, s.http_body_timeout),
        ]
        if tls_l:
            ctx = self._tls_context(s.syslog_tls_cert, s.syslog_tls_key)
            self._servers.append(SyslogServer(
                [trio.SSLListener(lst, ctx) for lst in tls_l], metrics, ingest,
                s.max_connections, s.max_frame_bytes, name="syslog_tls"))
        kinds = {"syslog": "tcp", "logs": "https" if s.logs_tls_cert else "http", "api": "http",
                 "syslog_tls": "tls"}
        key_place = "Redis" if s.redis_url else os.path.abspath(os.path.join(s.data_dir, KEY_FILE))
        if show_key:  # generated now: shown once, then only where it is kept
            self.announce(f"auth_key {self.auth_key}")
        elif show_key is False:
            self.announce(f"auth_key_kept {key_place} (logrouter key prints it)")
        drain_scope = trio.CancelScope()

        async def run_drains(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with drain_scope:
                await drains.run(task_status=task_status)

        async def run_cluster(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            assert cluster is not None
            with cluster_scope:
                await cluster.run(self.table, control, task_status=task_status)

        signal_scope = trio.CancelScope()

        async def watch_signals(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
                                ) -> None:
            with signal_scope:
                await self._watch_signals(task_status=task_status)

        async with trio.open_nursery() as nursery:
            await nursery.start(run_drains)
            if cluster is not None:
                await nursery.start(run_cluster)
            if self.handle_signals:  # from before the first listener: a stop is always graceful
                await nursery.start(watch_signals)
            if self.freeze_gc:
                self._settle_heap()
            for server in self._servers:
                addrs = await nursery.start(server.run)
                self.addresses[server.name] = addrs[0]
                host, port = addrs[0]
                self.announce(f"listening {server.name} {kinds[server.name]} {host}:{port}")
            log.info("ready", public_url=self.public_url, data_dir=s.data_dir)
            if show_key:
                self.announce(f"export LOGROUTER_URL={self.public_url} "
                              f"LOGROUTER_AUTH_KEY={self.auth_key}")
            task_status.started(dict(self.addresses))
            async with trio.open_nursery() as background:
                background.start_soon(self._sweep_sessions, sessions)
                if isinstance(store, SqliteStore):
                    background.start_soon(store.checkpoint_every)
                if not s.redis_url:  # cluster nodes keep no ring to compress or save
                    background.start_soon(HistoryCompactor(
                        lambda: [c.history for c in self.table.channels.values()],
                        s.history_compact_after, s.history_raw_bytes).run)
                    if s.history_save_interval > 0:
                        background.start_soon(self._save_history_every, s.history_save_interval)
                await self._stop.wait()
                background.cancel_scope.cancel()
            signal_scope.cancel()  # a second signal during the shutdown ends the process
            log.info("shutdown", grace_s=s.shutdown_timeout)
            streamer.close_all()
            for server in self._servers:
                grace = min(s.shutdown_timeout, 1.0) if server.name.startswith("syslog") \
                    else s.shutdown_timeout
                server.stop_accepting(grace)
            await drains.flush(min(s.shutdown_timeout, 2.0))
            drain_scope.cancel()
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await drains.flush_spools()
            if cluster is not None:
                with trio.move_on_after(2):
                    await cluster.flush()
                cluster_scope.cancel()
                with trio.CancelScope(shield=True), trio.move_on_after(2):
                    await cluster.aclose()
            nursery.cancel_scope.deadline = trio.current_time() + s.shutdown_timeout + 1

    @staticmethod
    def _tls_context(cert: str, key: str) -> ssl.SSLContext:
        try:
            return server_context(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"TLS certificate {cert} / key {key}: {exc}") from None

    @staticmethod
    def _raise_file_limit() -> None:
        """Raise the open-file limit to its hard limit: every drain and tail is a socket."""
        try:
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            if hard == resource.RLIM_INFINITY:
                hard = 1 << 20
            if soft < hard:
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
                log.info("file_limit_raised", soft=soft, now=hard)
        except (ValueError, OSError) as exc:
            log.warning("file_limit_not_raised", error=str(exc))

    async def _sweep_sessions(self, sessions: SessionTable) -> None:
        while True:
            await trio.sleep(SESSION_SWEEP_INTERVAL)
            expired = await sessions.sweep()
            if expired:
                log.info("sessions_expired", count=expired)

    async def _watch_signals(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
                             ) -> None:
        """Begin the graceful shutdown on the first SIGINT, SIGTERM or SIGHUP (the terminal
        `serve` ran in went away: its default action ended the process with nothing saved),
        then give the signals back to their default action."""
        with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
            task_status.started()
            async for signum in signals:
                log.info("signal", signal=signal.Signals(signum).name)
                self.request_stop()
                return

    def _settle_heap(self) -> None:
        """Freeze what start-up made (the channels, histories and drains of the whole config)
        out of the cyclic garbage collector. A full collection walks every object it tracks:
        with 5,000 drains one took about a second of the event loop, and a storm of failing
        reconnects makes enough garbage to set one off (bench/RESULTS.md). The price: a cycle
        among these objects that becomes garbage later (an app deleted) is never collected —
        bounded by the config loaded at start."""
        started = time.monotonic()
        gc.collect()
        gc.freeze()
        log.info("heap_frozen", objects=gc.get_freeze_count(),
                 ms=round((time.monotonic() - started) * 1000))

    async def _save_history_every(self, interval: float) -> None:
        """Save every channel's history each ``interval`` seconds in which lines came in, so a
        crash loses at most that much. What is saved is taken on the event loop a slice of
        channels at a time (a history's state is references to bytes: nothing is copied) and
        written by a worker thread while ingest goes on."""
        path = os.path.join(self.settings.data_dir, HISTORY_FILE)
        saved_mark: tuple[int, int] | None = None
        while True:
            await trio.sleep(interval)
            channels = list(self.table.channels.values())
            mark = (len(channels), sum(c.history.seq for c in channels))
            if mark == saved_mark:
                continue
            kept = [c for c in channels if len(c.history)]
            taken = await in_turns(kept, lambda c: (c.id, c.history.saved(), len(c.history)))
            state: dict[str, Saved] = {cid: saved for cid, saved, _ in taken}
            lines = sum(n for _, _, n in taken)
            started = trio.current_time()
            try:
                await trio.to_thread.run_sync(write_histories, path, state)
            except OSError as exc:
                log.error("history_save_failed", path=path, error=str(exc))
                continue
            saved_mark = mark
            log.info("history_saved", lines=lines, path=path,
                     seconds=round(trio.current_time() - started, 3))

    def _save_history(self) -> None:
        path = os.path.join(self.settings.data_dir, HISTORY_FILE)
        try:
            saved = save_histories(path, {c.id: c.history for c in self.table.channels.values()})
        except OSError as exc:
            log.error("history_save_failed", path=path, error=str(exc))
            return
        log.info("history_saved", lines=saved, path=path)
