"""Command line: ``logrouter serve`` and friends. argv → Settings → command → exit code.

Every setting of :mod:`logrouter.settings` is a ``serve`` flag
(``--syslog-port``); a flag overrides the file and environment only when given.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence

import trio

from logrouter import __version__
from logrouter.errors import ConfigError
from logrouter.settings import SETTINGS, load_settings

__all__ = ["main"]

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "error": logging.ERROR}


class _LogfmtFormatter(logging.Formatter):
    """``ts=… level=… logger=… <message>``: messages are already logfmt pairs."""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line = (f"ts={ts}.{int(record.msecs):03d}Z level={record.levelname.lower()} "
                f"logger={record.name} {record.getMessage()}")
        if record.exc_info:
            line += " exception=" + repr(self.formatException(record.exc_info))
        return line


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogfmtFormatter())
    root = logging.getLogger("logrouter")
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[level])
    root.propagate = False


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="logrouter", description="Logplex-compatible log router")
    parser.add_argument("--version", action="version", version=f"logrouter {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="run a router node",
                                description="Run a router node. Every flag also reads "
                                            "LOGROUTER_<NAME> and the TOML file.")
    serve.add_argument("--config", metavar="FILE", help="TOML settings file (LOGROUTER_CONFIG)")
    for s in SETTINGS:
        serve.add_argument(s.flag, dest=s.name, default=argparse.SUPPRESS, metavar=s.name.upper(),
                           help=f"{s.help} (env {s.env}, default {s.default!r})")
    return parser


def _serve(args: argparse.Namespace) -> int:
    from logrouter.node import Node  # keeps client commands light

    flags = {s.name: getattr(args, s.name) for s in SETTINGS if hasattr(args, s.name)}
    try:
        settings = load_settings(flags, config_file=args.config)
    except ConfigError as exc:
        print(f"logrouter: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)

    def announce(line: str) -> None:
        print(line, flush=True)

    node = Node(settings, announce=announce, handle_signals=True)
    try:
        trio.run(node.run)
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
    parser.print_help()
    return 2
