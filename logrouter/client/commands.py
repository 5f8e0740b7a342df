"""The ``logrouter`` client commands: apps, logs, drains, tokens.

Output follows the Heroku CLI: ``=== `` headers, one item a line, log lines as
``TIME SOURCE[DYNO]: MSG`` coloured by source and dyno on a terminal and plain
when piped; ``--json`` prints listings as JSON. Exit codes: 0 success, 1 the
router could not do it (unreachable, key refused, unknown app, rejected input),
2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import zlib
from typing import Any, TextIO

from logrouter.client.api import ClientError, RouterClient

__all__ = ["add_client_commands", "run_client_command"]

_LINE = re.compile(r"^(\S+ )([\w-]+)\[([\w.-]+)\](:.*)$", re.S)
_COLOURS = (31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96)
_MAX_RECONNECTS = 20


def _colour(text: str, key: str) -> str:
    code = _COLOURS[zlib.crc32(key.encode()) % len(_COLOURS)]
    return f"\x1b[{code}m{text}\x1b[0m"


def format_line(line: str, colour: bool) -> str:
    """A log line, with source and dyno coloured when ``colour``."""
    if not colour:
        return line
    m = _LINE.match(line)
    if m is None:
        return line
    when, source, dyno, rest = m.groups()
    head = _colour(f"{source}[{dyno}]", source + dyno.split(".")[0])
    return f"\x1b[2m{when}\x1b[0m{head}{rest}"


def use_colour(out: TextIO, args: argparse.Namespace) -> bool:
    """Colour only on a terminal, and not with ``--no-color``, ``NO_COLOR`` or ``TERM=dumb``."""
    return (out.isatty() and not getattr(args, "no_color", False)
            and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb")


def add_client_commands(commands: Any, connection: argparse.ArgumentParser) -> None:
    """Add the client sub-commands to an argparse sub-parser set."""
    connection.add_argument("--no-color", action="store_true",
                            help="no colour (also NO_COLOR or TERM=dumb)")
    app = argparse.ArgumentParser(add_help=False)
    app.add_argument("-a", "--app", help="app name (env LOGROUTER_APP)")
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON")

    commands.add_parser("apps", parents=[connection, as_json], help="list apps")
    p = commands.add_parser("apps:create", parents=[connection, as_json], help="create an app")
    p.add_argument("name", nargs="?")
    p = commands.add_parser("apps:destroy", parents=[connection], help="destroy an app")
    p.add_argument("name")
    p.add_argument("--confirm", help="the app name again (required when not on a terminal)")
    p = commands.add_parser("logs", parents=[connection, app], help="show or tail an app's logs")
    p.add_argument("-n", "--num", type=int, default=100, help="lines of backlog (default 100)")
    p.add_argument("-d", "--dyno", help="dyno name or process type (web.1, web)")
    p.add_argument("-s", "--source", help="source (app, heroku)")
    p.add_argument("-t", "--tail", action="store_true", help="keep streaming new lines")
    commands.add_parser("drains", parents=[connection, app, as_json], help="list an app's drains")
    p = commands.add_parser("drains:add", parents=[connection, app, as_json], help="add a drain")
    p.add_argument("drain_url", metavar="URL")
    p = commands.add_parser("drains:remove", parents=[connection, app], help="remove a drain")
    p.add_argument("ref", metavar="URL|TOKEN|ID")
    commands.add_parser("tokens", parents=[connection, app, as_json], help="an app's input tokens")
    p = commands.add_parser("top", parents=[connection],
                            help="a live view of the router: lines/s in and out per app and "
                                 "drain, drops, connections")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes")
    p.add_argument("--once", action="store_true", help="print one frame and exit")


def _health(status: dict[str, Any] | None) -> str:
    """A drain's delivery status in one indented line."""
    if not status:
        return "  status: not running on this router"
    state = "connected" if status.get("connected") else "not connected"
    if status.get("degraded"):
        state += ", degraded"
    if status.get("slow"):
        state += ", slow"
    line = (f"  {state}; delivered {status.get('delivered', 0)}, "
            f"dropped {status.get('dropped', 0)}, buffered {status.get('buffered', 0)}")
    if status.get("last_error"):
        line += f"; last error {status['last_error']} at {status.get('last_error_at')}"
    return line


def _need_app(args: argparse.Namespace) -> str:
    if not args.app:
        raise ClientError("no app given: use -a APP or set LOGROUTER_APP")
    app: str = args.app
    return app


def _print_json(data: Any, out: TextIO) -> None:
    out.write(json.dumps(data, indent=2) + "\n")


def _logs(client: RouterClient, args: argparse.Namespace, out: TextIO) -> int:
    app = _need_app(args)
    colour = use_colour(out, args)
    url = client.log_session(app, max(args.num, 0), args.dyno, args.source, args.tail)
    last_id: str | None = None
    reconnects = 0
    retry = 1.0
    while True:
        try:
            for kind, value in client.stream(url, last_id):
                if kind == "data":
                    for line in value.split("\n"):
                        out.write(format_line(line, colour) + "\n")
                    out.flush()
                    reconnects = 0
                elif kind == "id":
                    last_id = value
                elif kind == "retry" and value.isascii() and value.isdigit():
                    retry = int(value) / 1000
        except ClientError:
            if not args.tail or last_id is None:
                raise
        if not args.tail:
            return 0
        # A tail ended cleanly (the router restarted) or broke: resume after the last id.
        reconnects += 1
        if reconnects > _MAX_RECONNECTS:
            raise ClientError("the log stream keeps failing; giving up")
        delay = min(retry * reconnects, 10.0)
        print(f"logrouter: log stream ended; reconnecting in {delay:g} s "
              f"(try {reconnects} of {_MAX_RECONNECTS})", file=sys.stderr, flush=True)
        time.sleep(delay)


def run_client_command(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Run one client command; print errors as one line; return the exit code."""
    try:
        key_file = os.path.abspath(os.path.join(os.environ.get("LOGROUTER_DATA_DIR", ".logrouter"),
                                                "auth_key"))
        client = RouterClient(args.url, args.auth_key, key_file=key_file)
        return _dispatch(client, args, out)
    except ClientError as exc:
        print(f"logrouter: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0 if getattr(args, "tail", False) else 130
    except BrokenPipeError:
        return 0


def _dispatch(client: RouterClient, args: argparse.Namespace, out: TextIO) -> int:
    cmd = args.command
    if cmd == "apps":
        apps = client.apps()
        if args.json:
            _print_json(apps, out)
        elif not apps:
            out.write("You have no apps.\n")
        else:
            out.write(f"=== {client.account().get('email', '')} Apps\n\n")
            out.writelines(f"{a['name']}\n" for a in apps)
    elif cmd == "apps:create":
        created = client.create_app(args.name)
        if args.json:
            _print_json(created, out)
        else:
            print(f"Created {created['name']}", file=sys.stderr)
            out.write(f"{created['name']}\n")
    elif cmd == "apps:destroy":
        confirm = args.confirm
        if confirm is None and not sys.stdin.isatty():
            raise ClientError(f"apps:destroy needs --confirm {args.name} when it is not run "
                              "on a terminal")
        if confirm is None:
            confirm = input(f"To proceed, type {args.name}: ").strip()
        if confirm != args.name:
            raise ClientError(f"confirmation {confirm!r} did not match {args.name!r}; "
                              f"pass --confirm {args.name}")
        client.destroy_app(args.name)
        print(f"Destroyed {args.name}", file=sys.stderr)
    elif cmd == "logs":
        return _logs(client, args, out)
    elif cmd == "drains":
        app = _need_app(args)
        drains = [client.drain(app, d["id"]) for d in client.drains(app)]  # with their status
        if args.json:
            _print_json(drains, out)
        elif drains:
            out.write("=== Drains\n\n")
            out.writelines(f"{d['url']} ({d['token']})\n{_health(d.get('status'))}\n"
                           for d in drains)
    elif cmd == "drains:add":
        drain = client.add_drain(_need_app(args), args.drain_url)
        if args.json:
            _print_json(drain, out)
        else:
            out.write(f"Successfully added drain {drain['url']}\n")
    elif cmd == "drains:remove":
        drain = client.remove_drain(_need_app(args), args.ref)
        out.write(f"Successfully removed drain {drain['url']}\n")
    elif cmd == "top":
        from rich.console import Console

        from logrouter.client.top import run_top

        console = Console(file=out, no_color=not use_colour(out, args) or None)
        return run_top(client, max(0.2, args.interval), args.once, console)
    elif cmd == "tokens":
        tokens = client.tokens(_need_app(args))
        if args.json:
            _print_json(tokens, out)
        else:
            width = max((len(n) for n in tokens), default=0)
            out.writelines(f"{name.ljust(width)}  {token}\n" for name, token in sorted(tokens.items()))
    else:  # pragma: no cover - argparse only offers the commands above
        raise ClientError(f"unknown command {cmd}")
    return 0
