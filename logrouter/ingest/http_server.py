"""HTTP ingest (Logplex §2.2): ``POST /logs`` with ``application/logplex-1`` bodies.

Statuses and texts are Logplex's: 204 on success; 401 with
``Www-Authenticate: Basic realm=Logplex`` for missing or unknown credentials;
403, 400 ``Message count mismatch``, 400 ``Malformed log messages``, 400
``Bad request``, 415, 405, plus 413 past the body limit. Error texts are both
the reason phrase and the body.

Credentials: ``Basic token:t.…`` or ``Bearer t.…`` post to that token's
channel; Basic with the router's auth key as password (or ``Bearer <key>``) is
an ``any_channel`` credential that routes each frame by its own APP-NAME token.
"""

from __future__ import annotations

import hmac

from logrouter.core.channels import ChannelTable
from logrouter.errors import PeerError
from logrouter.ingest.pipeline import Ingest
from logrouter.metrics import Metrics
from logrouter.protocol.http1 import Request
from logrouter.protocol.logplex1 import decode_body, parse_auth, parse_ingest
from logrouter.transport.serving import Response

__all__ = ["LogsHandler"]

_REALM = [("Www-Authenticate", "Basic realm=Logplex")]
#: A body is posted in slices of this many frames, so a large body waits for drains absorbing
#: it between slices (like reads on a TCP connection) instead of overflowing them at once.
POST_CHUNK_FRAMES = 2048


def _error(status: int, text: str) -> Response:
    return Response(status, text.encode(), "text/plain; charset=utf-8", list(_REALM), reason=text)


class LogsHandler:
    """The request handler of the logs port."""

    def __init__(self, table: ChannelTable, ingest: Ingest, metrics: Metrics, auth_key: str,
                 max_body_bytes: int, max_frame_bytes: int) -> None:
        self.table = table
        self.ingest = ingest
        self.metrics = metrics
        self.auth_key = auth_key.encode()
        self.max_body_bytes = max_body_bytes
        self.max_frame_bytes = max_frame_bytes
        self.ready = True
        self._status = {s: metrics.http_requests.labels(str(s))
                        for s in (204, 400, 401, 403, 404, 405, 413, 415, 503)}

    def inspect(self, request: Request) -> Response | None:
        """Answer from the head alone when the body would be refused anyway (wrong path or
        method, bad credentials, wrong content type), so no body is read for it."""
        if request.path not in ("/logs", "/logs/"):
            return None if request.path == "/healthcheck" else Response(404, b"Not found",
                                                                         "text/plain")
        early = self._check_head(request)
        if early is not None:
            self._count(early)
        return early

    def _check_head(self, request: Request) -> Response | None:
        if request.method != "POST":
            return _error(405, "Method Not Allowed")
        if not self.ready:
            return _error(503, "SYSTEM BOOTING")
        auth = parse_auth(request.header("authorization"))
        if auth is None:
            return _error(401, "Unauthorized")
        if auth.kind == "token":
            if auth.secret.encode() not in self.table.route:
                return _error(401, "Unauthorized")
        elif not hmac.compare_digest(auth.secret.encode(), self.auth_key):
            return _error(401, "Unauthorized")
        return None

    def _count(self, response: Response) -> None:
        counter = self._status.get(response.status)
        if counter is not None:
            counter.inc()

    async def __call__(self, request: Request) -> Response:
        if request.path == "/healthcheck":
            if request.method not in ("GET", "HEAD"):
                return _error(405, "Method Not Allowed")
            if not self.ready:
                return Response(503, b"SYSTEM BOOTING", "text/plain", reason="SYSTEM BOOTING")
            return Response(200, b"OK", "text/plain")
        if request.path not in ("/logs", "/logs/"):
            return Response(404, b"Not found", "text/plain")
        response = await self._post_logs(request)
        self._count(response)
        return response

    async def _post_logs(self, request: Request) -> Response:
        refused = self._check_head(request)
        if refused is not None:
            return refused
        auth = parse_auth(request.header("authorization"))
        assert auth is not None
        entry = self.table.route.get(auth.secret.encode()) if auth.kind == "token" else None
        if auth.kind == "token" and entry is None:  # the token was deleted meanwhile
            return _error(401, "Unauthorized")
        try:
            body = decode_body(request.body, request.header("content-encoding"),
                               self.max_body_bytes)
            frames = parse_ingest(request.header("content-type"),
                                  request.headers.get("logplex-msg-count"), body,
                                  self.max_frame_bytes)
        except PeerError as exc:
            if exc.drop_reason is not None:
                self.ingest.dropped(exc.drop_reason, 1, request.header("x-forwarded-for", "-"))
            return _error(exc.status, exc.text)
        received = self.metrics.received_http
        ingest = self.ingest
        budget = ingest.budget()
        for start in range(0, len(frames), POST_CHUNK_FRAMES):
            chunk = frames[start:start + POST_CHUNK_FRAMES] if len(frames) > POST_CHUNK_FRAMES \
                else frames
            if entry is not None:
                channel, name = entry
                pressured = await ingest.token_frames(chunk, channel, auth.secret.encode(),
                                                      name, received)
            else:
                pressured = await ingest.frames(chunk, received, "http")
            if pressured:
                await ingest.wait_for_room(pressured, budget)
        return Response(204)
