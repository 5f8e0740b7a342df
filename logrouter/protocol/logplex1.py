"""``application/logplex-1`` bodies: HTTP ingest (Logplex §2.2), drain requests (§7.3) and
the v3 channel logs (§4.3).

An ingest body is a concatenation of octet-counted RFC 5424 frames with no
separators. :func:`parse_ingest` validates a request the way Logplex's
``logplex_logs_rest`` does and raises :class:`~logrouter.errors.PeerError` with
Logplex's exact status and text; the texts double as the reason phrase.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from logrouter.errors import PeerError
from logrouter.protocol.framing import split_octet_counted
from logrouter.protocol.syslog import parse_line

__all__ = [
    "CONTENT_TYPES", "IngestAuth", "channel_log_frames", "decode_body", "drain_request",
    "drain_request_head", "parse_auth", "parse_ingest",
]

CONTENT_TYPES = ("application/logplex-1", "application/x-logplex-1")


@dataclass(frozen=True, slots=True)
class IngestAuth:
    """Who is posting: a token (``kind="token"``) or a credential (``kind="credential"``)."""

    kind: str
    user: str
    secret: str


def parse_auth(header: str) -> IngestAuth | None:
    """Read ``Authorization`` for ``POST /logs``.

    ``Basic token:t.…`` and ``Bearer t.…`` name a token; any other Basic
    ``user:password`` is a credential (Logplex treats user ``token`` with a
    password not starting ``t.`` as a credential id too). Returns None when the
    header is absent or unreadable.
    """
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "bearer" and value:
        if value.startswith("t."):
            return IngestAuth("token", "token", value)
        return IngestAuth("credential", "", value)
    if scheme != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    if user == "token" and password.startswith("t."):
        return IngestAuth("token", user, password)
    return IngestAuth("credential", user, password)


def decode_body(body: bytes, content_encoding: str, max_bytes: int) -> bytes:
    """Undo ``Content-Encoding: gzip`` without ever inflating past ``max_bytes``.

    Raises:
        PeerError: 400 ``Bad request`` for bad gzip or an unknown coding; 413
            when the inflated body would exceed ``max_bytes``.
    """
    coding = content_encoding.strip().lower()
    if coding in ("", "identity"):
        return body
    if coding not in ("gzip", "x-gzip"):
        raise PeerError(400, "Bad request")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error:
        raise PeerError(400, "Bad request") from None
    if len(out) > max_bytes:
        raise PeerError(413, "Request body too large")
    if not inflater.eof:
        raise PeerError(400, "Bad request")
    return out


def parse_ingest(content_type: str, msg_count: str | None, body: bytes,
                 max_frame_bytes: int) -> list[bytes]:
    """Validate a decoded ingest body and split it into frames.

    Args:
        content_type: the request's Content-Type.
        msg_count: ``Logplex-Msg-Count`` if sent.
        body: the body after :func:`decode_body`.
        max_frame_bytes: largest accepted frame.

    Raises:
        PeerError: 415 for another content type; 400 ``Malformed log messages``
            for a newline-framed, oversize or truncated frame; 400
            ``Message count mismatch`` when the count header disagrees.
    """
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in CONTENT_TYPES:
        raise PeerError(415, "Unsupported Media Type")
    frames, ok = split_octet_counted(body, max_frame_bytes)
    if not ok:
        raise PeerError(400, "Malformed log messages", drop_reason="http_body")
    if msg_count is not None:
        count = msg_count.strip()
        if not (count.isascii() and count.isdigit() and len(count) <= 12) or int(count) != len(frames):
            raise PeerError(400, "Message count mismatch")
    return frames


def channel_log_frames(lines: list[bytes]) -> list[bytes]:
    """``GET /v3/channels/C/logs``'s frames (Logplex §4.3): ``LEN <PRI>1 TIME host APP PROCID -
    MSG`` with MSG newline-terminated; lines that are not RFC 5424 are left out."""
    frames = []
    for raw in lines:
        f = parse_line(raw)
        if f is None:
            continue
        msg = f.msg if f.msg.endswith(b"\n") else f.msg + b"\n"
        line = b"<%s>1 %s host %s %s - %s" % (f.pri, f.time, f.app, f.procid, msg)
        frames.append(b"%d %s" % (len(line), line))
    return frames


def drain_request_head(url: str, host: str, drain_token: str, user_agent: str) -> bytes:
    """The fixed part of every request an HTTP drain sends to ``url`` (Logplex §7.3): request
    line, ``Host`` (``host`` is the URL's host, IDNA-encoded), Basic auth from the URL's user
    info, content type, drain token and user agent — without the final CRLF."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host += f":{parts.port}"
    head = [f"POST {path} HTTP/1.1", f"Host: {host}"]
    if parts.username is not None:
        userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        head.append("Authorization: Basic " + base64.b64encode(userinfo.encode()).decode())
    head += ["Content-Type: application/logplex-1", f"Logplex-Drain-Token: {drain_token}",
             f"User-Agent: {user_agent}"]
    return "\r\n".join(head).encode("latin-1")


def drain_request(head: bytes, body: bytes, count: int, frame_id: str) -> bytes:
    """A whole drain request: ``head`` (:func:`drain_request_head`), the per-batch headers
    ``Logplex-Msg-Count`` and ``Logplex-Frame-Id``, and the logplex-1 ``body``."""
    return b"%s\r\nLogplex-Msg-Count: %d\r\nLogplex-Frame-Id: %s\r\nContent-Length: %d\r\n\r\n%s" % (
        head, count, frame_id.encode(), len(body), body)
