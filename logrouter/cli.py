"""Command line: ``logrouter serve`` and friends. argv → Settings → command → exit code.

Every setting of :mod:`logrouter.settings` is a ``serve`` flag
(``--syslog-port``); a flag overrides the file and environment only when given.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence

import trio

from logrouter import __version__
from logrouter.errors import ConfigError
from logrouter.settings import (
    SETTINGS,
    client_settings,
    load_settings,
    render_effective,
    render_toml,
    unknown_env,
)

__all__ = ["main"]

def setup_logging(level: str, fmt: str = "logfmt") -> None:
    from logrouter.logs import configure

    configure(level, fmt)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="logrouter", description="Logplex-compatible log router")
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="run a router node",
                                description="Run a router node. Every flag also reads "
                                            "LOGROUTER_<NAME> and the TOML file.")
    serve.add_argument("--config", metavar="FILE", help="TOML settings file (LOGROUTER_CONFIG)")
    for s in SETTINGS:
        serve.add_argument(s.flag, dest=s.name, default=argparse.SUPPRESS, metavar=s.name.upper(),
                           help=f"{s.help} (env {s.env}, default {s.default!r})")
    config = commands.add_parser("config", help="print every setting at its default, as TOML",
                                 description="Print every setting at its default (as TOML); "
                                             "--check a file, or show the --effective settings.")
    config.add_argument("--check", metavar="FILE", help="validate a TOML settings file; exit 2 "
                                                         "with the reason if it is wrong")
    config.add_argument("--effective", action="store_true",
                        help="print the settings in effect (defaults, LOGROUTER_CONFIG file, "
                             "LOGROUTER_* environment)")

    key = commands.add_parser("key", help="print the router's API key (from the data dir, or "
                                          "from Redis in cluster mode)")
    key.add_argument("--config", metavar="FILE", help="TOML settings file (LOGROUTER_CONFIG)")

    client = client_settings()
    connection = argparse.ArgumentParser(add_help=False)
    connection.add_argument("--url", default=client.url,
                            help="router API URL (env LOGROUTER_URL, default %(default)s)")
    connection.add_argument("--auth-key", default=client.auth_key,
                            help="router API key (env LOGROUTER_AUTH_KEY, else .logrouter/auth_key)")
    from logrouter.client.commands import add_client_commands

    add_client_commands(commands, connection)
    for sub in commands.choices.values():
        if any(a.dest == "app" for a in sub._actions):
            sub.set_defaults(app=client.app or None)

    shuttle = commands.add_parser(
        "shuttle", help="ship stdin (or a command's output) to a router's POST /logs",
        description="Frame lines as log-shuttle does and POST them in batches. "
                    "Usage: logrouter shuttle --token t.… [-- COMMAND ARGS…]")
    shuttle.add_argument("--logs-url", default=client.logs_url,
                         help="HTTP ingest URL (env LOGROUTER_LOGS_URL, default %(default)s)")
    shuttle.add_argument("--token", default=client.token, help="input token t.… (env LOGROUTER_TOKEN)")
    shuttle.add_argument("--procid", default="shuttle", help="PROCID of every line, e.g. web.1")
    shuttle.add_argument("--hostname", default="shuttle", help="HOSTNAME of every line")
    shuttle.add_argument("--batch-size", type=int, default=500, help="lines per POST")
    shuttle.add_argument("--wait", type=float, default=0.25, help="seconds a partial batch waits")
    shuttle.add_argument("--buffer-lines", type=int, default=25000,
                         help="lines held while the router is slow (L12 past it)")
    shuttle.add_argument("--max-line-bytes", type=int, default=10000, help="longer lines are split")
    shuttle.add_argument("--max-attempts", type=int, default=10, help="tries per batch (L13 after)")
    shuttle.add_argument("cmd", nargs=argparse.REMAINDER, help="-- COMMAND ARGS… to wrap")
    return parser


def _serve(args: argparse.Namespace) -> int:
    from logrouter.node import Node  # keeps client commands light

    flags = {s.name: getattr(args, s.name) for s in SETTINGS if hasattr(args, s.name)}
    try:
        settings = load_settings(flags, config_file=args.config)
    except ConfigError as exc:
        print(f"logrouter: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_format)
    from logrouter.logs import get_logger

    for name, close in unknown_env():
        get_logger("logrouter.settings").warning("unknown_setting", variable=name,
                                                 did_you_mean=close or "-")

    def announce(line: str) -> None:
        print(line, flush=True)

    # The relay path makes and drops a burst of short-lived lists each read; at the default
    # threshold (700) that set off a collection every read or two, each promoting whatever
    # was in flight, and the full collections that followed (they walk every long-lived
    # object) took a quarter of the CPU of a node with 10,000 apps. What start-up made lives
    # as long as the process; collections stay on, rarer.
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    # Those short-lived lines also empty whole allocator arenas each read, and the reads and
    # rendered batches are large blocks: keeping up to 64 MiB of freed memory mapped spares
    # the kernel's page faults for the next read.
    from logrouter.protocol.speedups import keep_freed_memory

    keep_freed_memory(64 << 20)
    try:
        if settings.workers > 1:
            from logrouter.workers import run_workers

            return trio.run(run_workers, settings, announce)
        trio.run(Node(settings, announce=announce, handle_signals=True, freeze_gc=True).run)
    except ConfigError as exc:
        print(f"logrouter: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "config":
        return _config(args)
    if args.command == "key":
        return _key(args)
    if args.command == "shuttle":
        return _shuttle(args)
    if args.command is not None:
        from logrouter.client.commands import run_client_command

        return run_client_command(args)
    parser.print_help()
    return 2


def _version() -> str:
    from logrouter.protocol.speedups import native

    return f"logrouter {__version__} (C speed-ups: {'on' if native is not None else 'off'})"


def _key(args: argparse.Namespace) -> int:
    import os

    try:
        settings = load_settings({}, config_file=args.config)
    except ConfigError as exc:
        print(f"logrouter: {exc}", file=sys.stderr)
        return 2
    if settings.auth_key:
        print(settings.auth_key)
        return 0
    if settings.redis_url:
        async def read() -> str | None:
            from logrouter.store.redis import connect

            client = await connect(settings.redis_url)
            try:
                value = await client.get("lr:auth_key")
            finally:
                await client.close()
            return value.decode() if isinstance(value, bytes) else value

        try:
            key = trio.run(read)
        except Exception as exc:  # a Redis or import error: say which
            print(f"logrouter: cannot read the key from {settings.redis_url}: {exc}",
                  file=sys.stderr)
            return 1
        where = settings.redis_url
    else:
        where = os.path.join(settings.data_dir, "auth_key")
        try:
            with open(where, encoding="ascii") as fh:
                key = fh.read().strip() or None
        except OSError:
            key = None
    if not key:
        print(f"logrouter: no key in {where}: start `logrouter serve` once (it generates one), "
              "or set LOGROUTER_AUTH_KEY", file=sys.stderr)
        return 1
    print(key)
    return 0


def _config(args: argparse.Namespace) -> int:
    if not args.check and not args.effective:
        print(render_toml(), end="")
        return 0
    try:
        settings = load_settings({}, environ={} if args.check else None, config_file=args.check)
    except ConfigError as exc:
        print(f"logrouter: {exc}", file=sys.stderr)
        return 2
    if args.effective:
        print(render_effective(settings), end="")
    else:
        print(f"{args.check}: OK")
    return 0


def _shuttle(args: argparse.Namespace) -> int:
    from logrouter.client.shuttle import ShuttleOptions, run_shuttle

    if not args.token.startswith("t."):
        print("logrouter shuttle: --token t.… (or LOGROUTER_TOKEN) is required", file=sys.stderr)
        return 2
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    opts = ShuttleOptions(logs_url=args.logs_url, token=args.token, procid=args.procid,
                          hostname=args.hostname, batch_size=max(1, args.batch_size),
                          wait=args.wait, buffer_lines=max(1, args.buffer_lines),
                          max_line_bytes=max(1, args.max_line_bytes),
                          max_attempts=max(1, args.max_attempts))
    try:
        return trio.run(run_shuttle, opts, cmd)
    except KeyboardInterrupt:
        return 130
    except FileNotFoundError as exc:
        print(f"logrouter shuttle: {exc}", file=sys.stderr)
        return 127
