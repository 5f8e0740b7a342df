"""Every setting, declared once: default, environment variable, TOML key, type.

Precedence, lowest first: the defaults below, the TOML file (``--config`` or
``LOGROUTER_CONFIG``), ``LOGROUTER_*`` environment variables, command-line
flags. This is the only module that reads ``os.environ`` or a config file;
``config/logrouter.toml`` documents the same table.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from logrouter.errors import ConfigError

__all__ = ["SETTINGS", "ClientSettings", "Setting", "Settings", "client_settings", "load_settings",
           "render_effective", "render_toml", "unknown_env"]


@dataclass(frozen=True, slots=True)
class Setting:
    """One row of the settings table."""

    name: str
    type: type
    default: Any
    help: str

    @property
    def env(self) -> str:
        return "LOGROUTER_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _opt(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved settings. Each field is one setting: its default and its help text."""

    bind: str = _opt("0.0.0.0", "address every listener binds")
    syslog_port: int = _opt(6001, "syslog over TCP ingest port (0 = pick a free port)")
    logs_port: int = _opt(8601, "HTTP ingest port: POST /logs, GET /healthcheck")
    api_port: int = _opt(8001, "control API, session streams and /metrics")
    syslog_tls_port: int = _opt(6514, "syslog over TLS ingest port (RFC 5425); on when "
                                "syslog_tls_cert and syslog_tls_key are set")
    syslog_tls_cert: str = _opt("", "PEM certificate (chain) of the syslog TLS listener")
    syslog_tls_key: str = _opt("", "PEM private key of the syslog TLS listener")
    logs_tls_cert: str = _opt("", "PEM certificate (chain): the logs port speaks HTTPS when set")
    logs_tls_key: str = _opt("", "PEM private key of the HTTPS logs port")
    auth_key: str = _opt("", "control API key; empty = generated once, kept in the data dir")
    data_dir: str = _opt("./.logrouter", "config database, saved history, generated key")
    public_url: str = _opt("", "base of session URLs; empty = http://127.0.0.1:<api port>")
    history_lines: int = _opt(1500, "recent lines kept per channel")
    history_compact_after: float = _opt(
        10.0, "seconds a channel must be quiet before its history is kept compressed (0 = never)")
    history_raw_bytes: int = _opt(
        64 << 20, "uncompressed history a node aims to keep (estimated); past it the channels "
        "holding most are compressed too, all out past 16 times it (0 = no limit)")
    history_save_interval: float = _opt(
        300.0, "seconds between saves of the history while lines come in (a crash loses at most "
        "this much; it is also saved at shutdown; 0 = at shutdown only)")
    tail_buffer_lines: int = _opt(1024, "lines a slow tail client may fall behind (L11)")
    max_frame_bytes: int = _opt(10240, "largest syslog frame accepted")
    max_body_bytes: int = _opt(8 * 1024 * 1024, "largest POST /logs body (decoded); 413 past it")
    max_api_body_bytes: int = _opt(1024 * 1024, "largest control API request body")
    max_connections: int = _opt(1024, "open connections per listener")
    idle_timeout: float = _opt(300.0, "seconds an idle HTTP keep-alive connection is kept")
    http_header_timeout: float = _opt(10.0, "seconds from a request's first byte to its last header")
    http_body_timeout: float = _opt(60.0, "seconds from a request's headers to the end of its body")
    max_drains_per_channel: int = _opt(6, "drains with a URL per channel")
    max_channels: int = _opt(100000, "channels (apps) a router holds")
    max_tokens_per_channel: int = _opt(100, "tokens per channel")
    max_reserved_drains_per_channel: int = _opt(20, "drain tokens reserved without a URL, per channel")
    session_expiry: float = _opt(360.0, "seconds an unopened session stays valid")
    session_lifetime: float = _opt(3600.0, "seconds a session stays valid after first opened")
    sse_keepalive: float = _opt(30.0, "seconds between SSE keep-alive comments")
    sse_retry_ms: int = _opt(100, "reconnect delay announced to SSE clients")
    sse_shutdown_retry_ms: int = _opt(5000, "reconnect delay told to SSE tails when shutting down")
    account_email: str = _opt("admin@logrouter.invalid", "owner e-mail shown by the Platform API")
    shutdown_timeout: float = _opt(5.0, "seconds in-flight work gets after SIGTERM")
    drain_buffer_lines: int = _opt(1024, "lines buffered per drain before the oldest drop (L10)")
    drain_burst_lines: int = _opt(
        32768, "lines a connected, delivering drain may hold while ingest waits for it "
        "(plus one round of ingest, kept whole)")
    drain_backpressure_max: float = _opt(
        1.0, "seconds an ingest connection waits for a drain absorbing a burst")
    drain_spool_bytes: int = _opt(
        0, "bytes of undelivered lines each drain keeps on disk (0 = memory only)")
    drain_degraded_lines: int = _opt(10, "buffer of a drain failing for long (degraded mode)")
    drain_connect_rate: float = _opt(
        2000.0, "drain connection attempts (and ends of connections a receiver closed) a node "
        "starts per second at most (0 = no limit)")
    drain_backoff_initial: float = _opt(1.0, "first reconnect delay of a failing drain; doubles")
    drain_backoff_max: float = _opt(300.0, "longest reconnect delay of a failing drain")
    drain_max_connection_age: float = _opt(18000.0, "seconds before a drain connection is renewed")
    syslog_drain_send_timeout: float = _opt(4.0, "syslog drain connect and write timeout")
    syslog_drain_idle_timeout: float = _opt(240.0, "idle seconds before a syslog drain disconnects")
    syslog_drain_linger: float = _opt(0.002, "seconds a syslog drain waits to fill a write")
    syslog_drain_shrink_after: int = _opt(
        10, "failed connects after which a full, losing syslog drain is degraded")
    http_drain_connect_timeout: float = _opt(3.0, "HTTP drain connect timeout")
    http_drain_response_timeout: float = _opt(5.0, "HTTP drain response timeout")
    http_drain_attempts: int = _opt(3, "tries per HTTP drain batch (same Logplex-Frame-Id)")
    http_drain_batch_bytes: int = _opt(102400, "target body size of an HTTP drain batch")
    http_drain_shrink_after: float = _opt(
        300.0, "seconds since its last success after which a failing HTTP drain is degraded")
    drain_deny_networks: str = _opt(
        "", "comma-separated CIDRs drains may not connect to (e.g. 127.0.0.0/8,169.254.0.0/16)")
    tls_ca_file: str = _opt("", "CA bundle for syslog+tls/https drains; empty = system store")
    redis_url: str = _opt("", "cluster mode: redis://host:port/db, or redis+cluster://host:port")
    workers: int = _opt(1, "node processes sharing the ports (more than 1 needs redis_url)")
    reuse_port: bool = _opt(False, "bind listeners with SO_REUSEPORT (set for --workers)")
    log_level: str = _opt("info", "service log level: debug, info, warn, error")
    log_format: str = _opt("logfmt", "service log format: logfmt or json")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


_TYPES = {"str": str, "int": int, "float": float, "bool": bool}
#: The settings table, derived from the dataclass so each setting is declared once.
SETTINGS: tuple[Setting, ...] = tuple(
    Setting(f.name, _TYPES[str(f.type)], f.default, f.metadata["help"])
    for f in dataclasses.fields(Settings))
_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Where the ``logrouter`` client commands find a router."""

    url: str = "http://127.0.0.1:8001"
    auth_key: str = ""
    app: str = ""
    logs_url: str = "http://127.0.0.1:8601/logs"
    token: str = ""


def client_settings(environ: Mapping[str, str] | None = None) -> ClientSettings:
    """Client defaults from ``LOGROUTER_URL``, ``LOGROUTER_AUTH_KEY`` (else the key file of
    ``LOGROUTER_DATA_DIR`` or ``./.logrouter``), ``LOGROUTER_APP``, ``LOGROUTER_LOGS_URL`` and
    ``LOGROUTER_TOKEN``."""
    env = os.environ if environ is None else environ
    key = env.get("LOGROUTER_AUTH_KEY", "")
    if not key:
        path = os.path.join(env.get("LOGROUTER_DATA_DIR", "./.logrouter"), "auth_key")
        try:
            with open(path, encoding="ascii") as fh:
                key = fh.read().strip()
        except OSError:
            key = ""
    defaults = ClientSettings()
    return ClientSettings(url=env.get("LOGROUTER_URL", defaults.url), auth_key=key,
                          app=env.get("LOGROUTER_APP", ""),
                          logs_url=env.get("LOGROUTER_LOGS_URL", defaults.logs_url),
                          token=env.get("LOGROUTER_TOKEN", ""))


def _coerce(setting: Setting, value: Any, origin: str) -> Any:
    try:
        if setting.type is bool and isinstance(value, str):
            lowered = value.strip().lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(value)
            return lowered in ("1", "true", "yes", "on")
        if setting.type is int and isinstance(value, float):
            raise ValueError(value)
        return setting.type(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{origin}: {setting.name} must be {setting.type.__name__}, "
                          f"got {value!r}") from None


def _validate(values: dict[str, Any]) -> None:
    for cert, key in (("syslog_tls_cert", "syslog_tls_key"), ("logs_tls_cert", "logs_tls_key")):
        if bool(values[cert]) != bool(values[key]):
            raise ConfigError(f"{cert} and {key} go together: set both or neither")
    for port in ("syslog_port", "logs_port", "api_port", "syslog_tls_port"):
        if not 0 <= values[port] <= 65535:
            raise ConfigError(f"{port} must be 0..65535, got {values[port]}")
    for positive in ("history_lines", "tail_buffer_lines", "max_frame_bytes", "max_body_bytes",
                     "max_api_body_bytes", "max_connections", "max_drains_per_channel",
                     "max_channels", "max_tokens_per_channel", "max_reserved_drains_per_channel",
                     "drain_buffer_lines", "drain_degraded_lines", "drain_burst_lines", "http_drain_attempts",
                     "http_drain_batch_bytes"):
        if values[positive] < 1:
            raise ConfigError(f"{positive} must be at least 1, got {values[positive]}")
    for not_negative in ("history_compact_after", "history_raw_bytes", "history_save_interval",
                         "drain_spool_bytes"):
        if values[not_negative] < 0:
            raise ConfigError(f"{not_negative} must not be negative, got {values[not_negative]}")
    if values["workers"] < 1:
        raise ConfigError(f"workers must be at least 1, got {values['workers']}")
    if values["workers"] > 1 and not values["redis_url"]:
        raise ConfigError("workers > 1 needs redis_url (LOGROUTER_REDIS_URL or --redis-url): "
                          "worker processes share config, history and tails through Redis")
    try:
        for part in str(values["drain_deny_networks"]).split(","):
            if part.strip():
                ipaddress.ip_network(part.strip(), strict=False)
    except ValueError as exc:
        raise ConfigError(f"drain_deny_networks: {exc}") from None
    if values["log_format"] not in ("logfmt", "json"):
        raise ConfigError(f"log_format must be logfmt or json, got {values['log_format']!r}")
    if values["log_level"] not in ("debug", "info", "warn", "error"):
        raise ConfigError(f"log_level must be debug, info, warn or error, got {values['log_level']!r}")


#: LOGROUTER_* variables that are not settings but are read elsewhere (client commands, tools).
OTHER_ENV = frozenset({"LOGROUTER_CONFIG", "LOGROUTER_URL", "LOGROUTER_APP", "LOGROUTER_LOGS_URL",
                       "LOGROUTER_TOKEN", "LOGROUTER_PURE_PYTHON", "LOGROUTER_EXPECT_SPEEDUPS",
                       "LOGROUTER_TEST_CACHE"})


def unknown_env(environ: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """``LOGROUTER_*`` variables that no setting reads (a typo is otherwise silently ignored):
    ``(name, the closest setting's variable or None)``."""
    import difflib

    env = os.environ if environ is None else environ
    known = {s.env for s in SETTINGS} | OTHER_ENV
    out = []
    for name in sorted(env):
        if name.startswith("LOGROUTER_") and name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
            out.append((name, close[0] if close else None))
    return out


def render_effective(settings: Settings) -> str:
    """``settings`` as TOML: what a node started with them would use."""
    lines = ["# logrouter settings in effect (defaults < file < LOGROUTER_* env < flags)", ""]
    for s in SETTINGS:
        value = getattr(settings, s.name)
        if s.name == "auth_key" and value:
            value = "(set)"
        literal = json.dumps(value) if isinstance(value, str) else (
            str(value).lower() if isinstance(value, bool) else repr(value))
        lines.append(f"{s.name} = {literal}")
    return "\n".join(lines) + "\n"


def render_toml() -> str:
    """``config/logrouter.toml``: every setting, commented out at its default."""
    lines = ["# logrouter settings: every setting with its default.",
             "# Precedence: defaults < this file (--config / LOGROUTER_CONFIG) < LOGROUTER_* env < flags.",
             "# Uncomment a line to change it.", ""]
    for s in SETTINGS:
        literal = f'"{s.default}"' if isinstance(s.default, str) else repr(s.default)
        lines += [f"# {s.help} (env {s.env}, flag {s.flag})", f"# {s.name} = {literal}", ""]
    return "\n".join(lines)


def load_settings(flags: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None,
                  config_file: str | None = None) -> Settings:
    """Resolve settings from defaults, a TOML file, the environment and flags.

    Args:
        flags: values given on the command line (only those given).
        environ: the environment; ``os.environ`` when None.
        config_file: TOML file; falls back to ``LOGROUTER_CONFIG``.

    Raises:
        ConfigError: unreadable file, unknown key, or a value of the wrong type.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    path = config_file or env.get("LOGROUTER_CONFIG")
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        for key, value in data.items():
            if key not in _BY_NAME:
                raise ConfigError(f"{path}: unknown setting {key!r}")
            values[key] = _coerce(_BY_NAME[key], value, path)
    for s in SETTINGS:
        if s.env in env:
            values[s.name] = _coerce(s, env[s.env], s.env)
    for key, value in (flags or {}).items():
        if key not in _BY_NAME:
            raise ConfigError(f"unknown setting {key!r}")
        values[key] = _coerce(_BY_NAME[key], value, _BY_NAME[key].flag)
    _validate(values)
    return Settings(**values)
