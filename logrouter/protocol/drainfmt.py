"""Drain renderings (Logplex §3.4, §7.3, §7.4): what receivers get.

* syslog drains: ``LEN SP <PRI>1 TIME d.<drain-token> APP PROCID - - MSG\\n`` — a
  newline is appended when MSG lacks one and is counted in LEN;
* HTTP drains (``application/logplex-1``): ``LEN SP <PRI>1 TIME host APP PROCID - MSG``
  — no STRUCTURED-DATA and no NILVALUE for it, MSG as it came (Logplex's quirk,
  which receivers parse on).

STRUCTURED-DATA is dropped and MSGID becomes ``-``. A line that is not RFC 5424
shaped cannot be rendered and is left out (counted by the caller). The L10 line
that reports losses always ends with a newline (fixing Logplex issue #105).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from logrouter.protocol.speedups import native
from logrouter.protocol.syslog import format_time, l10_text, parse_line

__all__ = ["L10_PRI", "fast_fields", "http_body", "http_l10", "render_http", "render_syslog", "syslog_frames",
           "syslog_l10", "syslog_unsent"]

#: local5.warning, as Logplex sends L10.
L10_PRI = 172


def fast_fields(line: bytes) -> list[bytes] | None:
    """The eight space-separated fields of a line of the shape nearly every line has —
    ``<PRI>1 TIME HOST APP PROCID MSGID - MSG``: version 1, no STRUCTURED-DATA, the shape the
    C renderers take themselves — or None for any other."""
    p = line.split(b" ", 7)
    return p if len(p) == 8 and p[6] == b"-" and p[0][-2:] == b">1" and p[0][:1] == b"<" else None


def syslog_frames(lines: list[bytes], drain_token: bytes) -> tuple[list[bytes], int]:
    """Render cooked lines for a syslog drain; return (frames, lines skipped)."""
    out: list[bytes] = []
    append = out.append
    skipped = 0
    for raw in lines:
        p = fast_fields(raw)
        if p is not None:
            p[2] = drain_token
            p[5] = b"-"
            line = b" ".join(p)
            if line[-1] != 10:
                line += b"\n"
            append(b"%d %s" % (len(line), line))
            continue
        frame = _syslog_frame(raw, drain_token)
        if frame is None:
            skipped += 1
        else:
            append(frame)
    return out, skipped


def _syslog_frame(raw: bytes, drain_token: bytes) -> bytes | None:
    """One line's syslog drain frame, any RFC 5424 shape; None when it is not RFC 5424."""
    f = parse_line(raw)
    if f is None:
        return None
    msg = f.msg if f.msg.endswith(b"\n") else f.msg + b"\n"
    line = b"<%s>1 %s %s %s %s - - %s" % (f.pri, f.time, drain_token, f.app, f.procid, msg)
    return b"%d %s" % (len(line), line)


def _render_syslog_py(lines: list[bytes], drain_token: bytes,
                      slow: Callable[[bytes], bytes | None]) -> tuple[bytes, int, int]:
    frames, skipped = syslog_frames(lines, drain_token)
    return b"".join(frames), len(frames), skipped


_render_syslog: Callable[[list[bytes], bytes, Callable[[bytes], bytes | None]],
                         tuple[bytes, int, int]] = (
    native.render_syslog if native is not None else _render_syslog_py)


def render_syslog(lines: list[bytes], drain_token: bytes) -> tuple[bytes, int, int]:
    """Render cooked lines for a syslog drain as one write.

    Returns ``(data, frames rendered, lines skipped)``; ``data`` is the concatenation of
    :func:`syslog_frames`' frames.
    """
    return _render_syslog(lines, drain_token, partial(_syslog_frame, drain_token=drain_token))


def syslog_unsent(lines: list[bytes], drain_token: bytes, sent: int) -> tuple[int, int, int]:
    """After ``sent`` bytes of ``render_syslog(lines, drain_token)`` went out (a write that
    stopped part-way): ``(frames sent whole, lines done with, unrenderable lines among
    them)``; ``lines[done:]`` are to be sent again.

    A line whose frame was only partly sent is sent again, so a receiver may see one
    truncated frame before the whole one. Runs only on that failure path, so it renders
    line by line in Python.
    """
    whole = skipped = 0
    for i, raw in enumerate(lines):
        frame = _syslog_frame(raw, drain_token)
        if frame is None:
            skipped += 1
            continue
        if sent < len(frame):
            return whole, i, skipped
        sent -= len(frame)
        whole += 1
    return whole, len(lines), skipped


def syslog_l10(drain_token: bytes, lost: int, since: float, now: float | None = None) -> bytes:
    """The framed L10 line for a syslog drain."""
    line = b"<%d>1 %s %s heroku logplex - - %s\n" % (
        L10_PRI, format_time(now), drain_token, l10_text(lost, since))
    return b"%d %s" % (len(line), line)


def http_body(lines: list[bytes]) -> tuple[list[bytes], int]:
    """Render cooked lines as logplex-1 frames for an HTTP drain; return (frames, skipped)."""
    out = []
    skipped = 0
    for raw in lines:
        p = fast_fields(raw)
        if p is not None:
            line = b"%s %s host %s %s - %s" % (p[0], p[1], p[3], p[4], p[7])
            out.append(b"%d %s" % (len(line), line))
            continue
        frame = _http_frame(raw)
        if frame is None:
            skipped += 1
        else:
            out.append(frame)
    return out, skipped


def _http_frame(raw: bytes) -> bytes | None:
    """One line's logplex-1 frame, any RFC 5424 shape; None when it is not RFC 5424."""
    f = parse_line(raw)
    if f is None:
        return None
    line = b"<%s>1 %s host %s %s - %s" % (f.pri, f.time, f.app, f.procid, f.msg)
    return b"%d %s" % (len(line), line)


def _render_http_py(lines: list[bytes], slow: Callable[[bytes], bytes | None],
                    ) -> tuple[bytes, int, int]:
    frames, skipped = http_body(lines)
    return b"".join(frames), len(frames), skipped


_render_http: Callable[[list[bytes], Callable[[bytes], bytes | None]], tuple[bytes, int, int]] = (
    native.render_http if native is not None else _render_http_py)


def render_http(lines: list[bytes]) -> tuple[bytes, int, int]:
    """Render cooked lines as an HTTP drain's logplex-1 body.

    Returns ``(body, frames rendered, lines skipped)``; ``body`` is the concatenation of
    :func:`http_body`'s frames.
    """
    return _render_http(lines, _http_frame)


def http_l10(lost: int, since: float, now: float | None = None) -> bytes:
    """The framed L10 line for an HTTP drain (with a trailing newline)."""
    line = b"<%d>1 %s host heroku logplex - %s\n" % (L10_PRI, format_time(now), l10_text(lost, since))
    return b"%d %s" % (len(line), line)
