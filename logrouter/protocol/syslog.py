"""RFC 5424 header fields and the Logplex L-lines.

Theory of operation
-------------------
Ingest touches only what routing needs: the APP-NAME field (the 4th
space-separated field, RFC 5424 §6.2.5) carries the token ``t.<uuid>``. The
frame is *cooked* by swapping that field for the token's name (``app``,
``heroku``; done in bulk by :mod:`logrouter.core.token_routing`); the rest of the bytes are
kept as they came. Every other reader
(tails, drains, history readers) parses the cooked line lazily with
:func:`parse_line`, once per consumer kind and never on the ingest path.

STRUCTURED-DATA (§6.3) may contain spaces inside quoted values, so it is
scanned with a grammar-aware pattern, not split on spaces.
"""

from __future__ import annotations

import re
import time
from typing import NamedTuple

__all__ = [
    "L14_PRI", "SyslogLine", "format_time", "l10_text", "l11_line", "l11_text", "l14_line",
    "l14_text",
    "parse_line",
]

# SD-ELEMENT = "[" SD-ID *(SP SD-PARAM) "]"; PARAM-VALUE is quoted and may
# escape '"', '\' and ']' with a backslash (RFC 5424 §6.3.3).
_SD = re.compile(rb'(?:\[(?:[^\]"\\]|\\.|"(?:[^"\\]|\\.)*")*\])+', re.DOTALL)


class SyslogLine(NamedTuple):
    """The fields of one RFC 5424 line that consumers render.

    ``pri`` is the PRIVAL as bytes (``b"190"``); ``msg`` is MSG byte-for-byte,
    including any trailing newline; STRUCTURED-DATA is not kept (Logplex drops
    it on every output path).
    """

    pri: bytes
    time: bytes
    host: bytes
    app: bytes
    procid: bytes
    msgid: bytes
    msg: bytes


def parse_line(line: bytes) -> SyslogLine | None:
    """Parse ``<PRI>VERSION TIME HOST APP PROCID MSGID SD [MSG]``.

    Returns None when the header is not RFC 5424 shaped (no ``<PRI>``, fewer
    than seven fields, or a STRUCTURED-DATA field that is neither ``-`` nor a
    sequence of SD-ELEMENTs). MSG may be absent.
    """
    if line[:1] != b"<":
        return None
    parts = line.split(b" ", 6)
    if len(parts) < 7:
        if len(parts) == 6:
            parts.append(b"")
        else:
            return None
    head = parts[0]
    gt = head.find(b">")
    if gt < 2 or not head[1:gt].isdigit() or not head[gt + 1:].isdigit():
        return None
    rest = parts[6]
    first = rest[:1]
    if first == b"-":
        if len(rest) == 1:
            msg = b""
        elif rest[1] == 32:
            msg = rest[2:]
        else:
            return None
    elif first == b"[":
        m = _SD.match(rest)
        if m is None:
            return None
        end = m.end()
        if end == len(rest):
            msg = b""
        elif rest[end] == 32:
            msg = rest[end + 1:]
        else:
            return None
    elif not rest:
        msg = b""
    else:
        return None
    return SyslogLine(head[1:gt], parts[1], parts[2], parts[3], parts[4], parts[5], msg)


def format_time(ts: float | None = None) -> bytes:
    """Second-precision UTC RFC 3339 time as Logplex writes it: ``2024-05-01T12:00:00+00:00``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts)).encode()


def l10_text(lost: int, since: float) -> bytes:
    """MSG of the L10 line a drain sends after losing ``lost`` lines (Logplex §7.6)."""
    return (b"Error L10 (output buffer overflow): %d messages dropped since %s."
            % (lost, format_time(since)))


def l11_text(lost: int, since: float) -> bytes:
    """MSG of the L11 line a tail session shows after dropping ``lost`` lines (§6.4)."""
    return (b"Error L11 (Tail buffer overflow) -> This tail session dropped %d messages since %s."
            % (lost, format_time(since)))


def l14_text(error: str, uri: str) -> bytes:
    """MSG of the L14 line injected when a TLS drain's certificate fails (§7.4)."""
    return b'Error L14 (certificate validation): error="%s" uri="%s"' % (
        error.replace('"', "'").encode(), uri.encode())


L14_PRI = 188  # local7.warning


def l14_line(drain_token: bytes, error: str, uri: str, now: float | None = None) -> bytes:
    """The whole L14 line (RFC 5424, cooked: APP-NAME ``heroku``) posted into the app's own
    stream — history and tails, never drains — when its TLS drain's certificate fails."""
    return b"<%d>1 %s %s heroku logplex - - %s" % (L14_PRI, format_time(now), drain_token,
                                                     l14_text(error, uri))


def l11_line(lost: int, since: float, now: float | None = None) -> bytes:
    """The L11 line a tail session shows, in session text form, after dropping ``lost``."""
    return b"%s logplex[1]: %s\n" % (format_time(now), l11_text(lost, since))
