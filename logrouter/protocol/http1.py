"""HTTP/1.1 requests in, response bytes out, over the httptools parser.

:class:`RequestParser` is fed the bytes of one connection and returns complete
:class:`Request` objects (pipelining works: one feed may finish several). It
enforces limits on the header block (counting a head that has not ended yet) and
the body while parsing, so a peer can never make it hold more than the limits
plus one read. A caller-supplied ``inspect`` sees each request as soon as its
head is complete, so credentials and routes are checked before a body is read.
A protocol error is kept as a :class:`~logrouter.errors.PeerError` with the
status to answer (400, 413, 431), after the requests completed before it.

Paths are kept *raw* (still percent-encoded): the control API routes on the raw
path and decodes one segment at a time, so an encoded ``%2F`` inside a drain URL
never splits a route.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import httptools

from logrouter.errors import PeerError

__all__ = ["BODY", "HEAD", "IDLE", "REASONS", "Request", "RequestParser", "chunk", "response_head",
           "simple_response"]

REASONS = {
    200: "OK", 201: "Created", 204: "No Content", 206: "Partial Content",
    308: "Permanent Redirect", 400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    409: "Conflict", 413: "Content Too Large", 415: "Unsupported Media Type",
    416: "Range Not Satisfiable",
    422: "Unprocessable Content", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable",
}

# Like h11's default for an incomplete event; nginx and Apache allow 8-16 KiB of headers.
DEFAULT_MAX_HEADER_BYTES = 16384
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024


@dataclass(slots=True)
class Request:
    """One parsed request. Header names are lower-case; a repeated header keeps the last value."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool
    version: str = "1.1"
    extra: dict[str, object] = field(default_factory=dict)

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)


class _Callbacks:
    """The httptools protocol object; collects one message at a time."""

    def __init__(self, owner: RequestParser) -> None:
        self.owner = owner
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.header_bytes = 0
        self.body_bytes = 0

    def on_message_begin(self) -> None:
        owner = self.owner
        owner.state = HEAD
        owner.begun += 1
        self.url = b""
        self.headers = {}
        self.body = []
        self.header_bytes = 0
        self.body_bytes = 0

    def on_url(self, url: bytes) -> None:
        self.url += url
        self._count(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def _count(self, n: int) -> None:
        self.header_bytes += n
        if self.header_bytes > self.owner.max_header_bytes:
            raise PeerError(431, "Request header fields too large")

    def _request(self, body: bytes) -> Request:
        raw = self.url.decode("latin-1")
        path, _, query = raw.partition("?")
        parser = self.owner.parser
        return Request(
            method=parser.get_method().decode("ascii", "replace"), path=path, query=query,
            headers=self.headers, body=body, keep_alive=parser.should_keep_alive(),
            version=parser.get_http_version())

    def on_headers_complete(self) -> None:
        owner = self.owner
        owner.state = BODY
        owner.head_bytes = 0
        declared = self.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > owner.max_body_bytes:
            raise PeerError(413, "Request body too large")
        if owner.inspect is not None:
            verdict = owner.inspect(self._request(b""))
            if verdict is not None:
                raise _Rejected(self._request(b""), verdict)

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        if self.body_bytes > self.owner.max_body_bytes:
            raise PeerError(413, "Request body too large")
        self.body.append(body)

    def on_message_complete(self) -> None:
        owner = self.owner
        owner.state = IDLE
        owner.head_bytes = 0
        owner.ready.append(self._request(b"".join(self.body)))
        self.body = []


class _Rejected(Exception):
    def __init__(self, request: Request, verdict: object) -> None:
        super().__init__("rejected on its head")
        self.request = request
        self.verdict = verdict


#: Parser states: between requests, inside a request's head, inside its body.
IDLE, HEAD, BODY = "idle", "head", "body"

Inspect = Callable[[Request], object]


class RequestParser:
    """Incremental request parser for one connection.

    Args:
        max_header_bytes: request line plus headers; above it, 431. Bytes of a head that
            has not ended yet count too (httptools holds an unfinished header without
            calling back), so a peer can make the parser hold at most this plus one read.
        max_body_bytes: decoded body (after chunked transfer coding); above it, 413.
        inspect: called with each request as soon as its head is complete (the body still
            empty); a non-None answer stops parsing: :attr:`rejected` holds the request and
            the answer, which the caller sends instead of reading the body (auth, 404, …).

    Attributes:
        state: :data:`IDLE`, :data:`HEAD` or :data:`BODY` — where the next byte belongs.
        begun: requests begun so far (tells a caller that a new request started).
        error: the :class:`PeerError` that ended parsing, once one did.
        rejected: ``(request, answer)`` once ``inspect`` refused a request.
    """

    def __init__(self, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, inspect: Inspect | None = None,
                 ) -> None:
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self.inspect = inspect
        self.error: PeerError | None = None
        self.rejected: tuple[Request, object] | None = None
        self.ready: list[Request] = []
        self.state = IDLE
        self.begun = 0
        self.head_bytes = 0
        self.parser = httptools.HttpRequestParser(_Callbacks(self))

    @property
    def idle(self) -> bool:
        """No byte of a next request has arrived."""
        return self.state == IDLE

    @property
    def stopped(self) -> bool:
        """Parsing ended (an error or a rejection); the connection must close."""
        return self.error is not None or self.rejected is not None

    def feed(self, data: bytes) -> list[Request]:
        """Parse ``data``; return the requests it completed.

        After a protocol error or a rejection the requests completed before it are still
        returned (answer them first); :attr:`error` or :attr:`rejected` is then set and
        further data is ignored.
        """
        if self.stopped:
            return []
        if self.state != BODY:
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.error = PeerError(400, "Protocol upgrade not supported")
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _Rejected):
                self.rejected = (cause.request, cause.verdict)
            elif isinstance(cause, PeerError):
                self.error = cause
            else:
                raise
        except httptools.HttpParserError:
            self.error = PeerError(400, "Bad request")
        if not self.stopped and self.state != BODY and self.head_bytes > self.max_header_bytes:
            self.error = PeerError(431, "Request header fields too large")
        ready, self.ready = self.ready, []
        return ready


def response_head(status: int, headers: list[tuple[str, str]], reason: str | None = None) -> bytes:
    """Status line and headers, ending with the blank line."""
    lines = [f"HTTP/1.1 {status} {reason or REASONS.get(status, 'Unknown')}\r\n"]
    lines.extend(f"{k}: {v}\r\n" for k, v in headers)
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


def simple_response(status: int, body: bytes = b"", content_type: str = "text/plain; charset=utf-8",
                    headers: list[tuple[str, str]] | None = None, reason: str | None = None,
                    close: bool = False) -> bytes:
    """A complete response with a Content-Length body."""
    hdrs: list[tuple[str, str]] = []
    if body or status not in (204, 304):
        hdrs.append(("Content-Type", content_type))
    if status != 204:
        hdrs.append(("Content-Length", str(len(body))))
    if headers:
        hdrs.extend(headers)
    if close:
        hdrs.append(("Connection", "close"))
    return response_head(status, hdrs, reason) + body


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (RFC 9112 §7.1); empty data is the last chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b"0\r\n\r\n"
