"""Session renderings: Logplex text lines and Server-Sent Events.

A session stream shows each log line as ``TIME SOURCE[PS]: MSG`` (Logplex's
``logplex_utils:format/4``). Two encodings of the same stream exist:

* text: the lines themselves, newline-terminated, sent as HTTP chunks;
* SSE (``text/event-stream``): one event per log line. A line break inside a
  message becomes a new ``data:`` field (SSE joins them with LF again), CR is
  removed, so no byte of a message can end an event early. Events may carry
  ``id:`` so a reconnecting client can resume (``Last-Event-ID``): the line's
  number in its channel (one node), or in cluster mode :func:`line_id`, which
  every node derives from the line's bytes alone.

Lines that are not RFC 5424 shaped cannot be rendered and are skipped, as in
Logplex.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from logrouter.protocol.speedups import native
from logrouter.protocol.syslog import SyslogLine, parse_line

__all__ = [
    "SSE_KEEPALIVE", "TailFilter", "line_id", "render_lines", "render_text", "sse_event",
    "sse_preamble",
]

#: An SSE comment: keeps proxies and the Heroku CLI's 300 s body timeout happy.
SSE_KEEPALIVE = b": keep-alive\n\n"
_LINE_BREAKS = re.compile(rb"\r\n|\r|\n")


def sse_preamble(retry_ms: int) -> bytes:
    """First bytes of an SSE stream: the client's reconnect delay."""
    return b"retry: %d\n\n" % retry_ms


@dataclass(frozen=True, slots=True)
class TailFilter:
    """A session's ``ps`` and ``source`` filters (Logplex §5).

    ``ps`` matches a PROCID equal to it or starting with it plus ``.``
    (``web`` matches ``web.1``); ``source`` matches APP-NAME exactly.
    """

    ps: bytes | None = None
    source: bytes | None = None

    @property
    def active(self) -> bool:
        return self.ps is not None or self.source is not None

    def matches(self, line: SyslogLine) -> bool:
        if self.source is not None and line.app != self.source:
            return False
        if self.ps is not None:
            procid = line.procid
            ps = self.ps
            if procid != ps and not (procid.startswith(ps) and procid[len(ps):len(ps) + 1] == b"."):
                return False
        return True


def render_text(line: SyslogLine) -> bytes:
    """``TIME SOURCE[PS]: MSG`` plus a newline when MSG lacks one."""
    msg = line.msg
    end = b"" if msg.endswith(b"\n") else b"\n"
    return b"%s %s[%s]: %s%s" % (line.time, line.app, line.procid, msg, end)


def line_id(raw: bytes) -> bytes:
    """A cooked line's SSE id in cluster mode, the same on every node: ``c`` and 16 hex
    digits of its BLAKE2b hash (lines carry microsecond timestamps, so equal ids mean equal
    lines in all but contrived cases)."""
    return b"c" + hashlib.blake2b(raw, digest_size=8).hexdigest().encode()


def sse_event(text: bytes, event_id: int | bytes | None = None) -> bytes:
    """One SSE event carrying ``text`` (a rendered line)."""
    parts = _LINE_BREAKS.split(text.rstrip(b"\r\n"))
    out = b"".join([b"data: " + p + b"\n" for p in parts])
    if isinstance(event_id, bytes):
        out += b"id: %s\n" % event_id
    elif event_id is not None:
        out += b"id: %d\n" % event_id
    return out + b"\n"


def render_lines(lines: list[bytes], filt: TailFilter, sse: bool,
                 first_id: int | None = None, content_ids: bool = False) -> bytes:
    """Render cooked syslog ``lines`` that pass ``filt`` in one encoding.

    Args:
        lines: cooked frames, oldest first.
        filt: the session's filters.
        sse: SSE events instead of text lines.
        first_id: sequence number of ``lines[0]``; when given, SSE events carry
            ``id:`` (the line's sequence number).
        content_ids: SSE events carry :func:`line_id` instead (cluster mode).
    """
    if native is None:
        return _render_lines_py(lines, filt, sse, first_id, content_ids)

    def slow(raw: bytes, index: int) -> bytes:
        return _render_lines_py([raw], filt, sse, None if first_id is None else first_id + index,
                                content_ids)

    rendered: bytes = native.render_tail(lines, sse, first_id, line_id if content_ids else None,
                                         filt.ps, filt.source, slow)
    return rendered


def _render_lines_py(lines: list[bytes], filt: TailFilter, sse: bool,
                     first_id: int | None = None, content_ids: bool = False) -> bytes:
    """:func:`render_lines` in Python: the definition the C version is tested against."""
    out: list[bytes] = []
    for i, raw in enumerate(lines):
        line = parse_line(raw)
        if line is None or (filt.active and not filt.matches(line)):
            continue
        text = render_text(line)
        if sse:
            event_id: int | bytes | None = (
                line_id(raw) if content_ids else None if first_id is None else first_id + i)
            out.append(sse_event(text, event_id))
        else:
            out.append(text)
    return b"".join(out)
