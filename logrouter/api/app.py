"""The control API's request handler: auth, routing, health, metrics, session streams.

Every control route needs the router's key (see
:func:`~logrouter.api.routing.check_auth`); ``/v3/healthcheck``, ``/metrics``
and ``GET /sessions/<id>`` (the id is the capability) do not.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable

from logrouter import __version__
from logrouter.api.console_routes import ConsoleRoutes
from logrouter.api.logplex_routes import LogplexRoutes
from logrouter.api.openapi import document
from logrouter.api.platform_routes import PlatformRoutes, platform_error
from logrouter.api.routing import BadJson, Call, Router, check_auth, json_response, text_response
from logrouter.api.session_stream import SessionStreamer
from logrouter.api.shared_page import SharedPage
from logrouter.api.stats import StatsQuery, StatsView
from logrouter.control import Control
from logrouter.errors import (
    ConflictError,
    LimitError,
    LogrouterError,
    NotFoundError,
    StoreUnavailable,
    ValidationError,
)
from logrouter.logs import get_logger
from logrouter.metrics import CONTENT_TYPE, Metrics
from logrouter.protocol.http1 import Request
from logrouter.transport.serving import Response

__all__ = ["ApiHandler"]

log = get_logger("logrouter.api")

_UNAUTHORIZED = [("Www-Authenticate", "Basic realm=Logplex")]
_PLATFORM_PREFIXES = ("/apps", "/account", "/users/", "/teams/")


#: The control errors every route may raise → status and Platform API error id. Routes map
#: the cases where Logplex prescribes another status or text; the rest end here.
_ERRORS: dict[type[LogrouterError], tuple[int, str]] = {
    BadJson: (400, "bad_request"), NotFoundError: (404, "not_found"),
    ValidationError: (422, "invalid_params"), ConflictError: (409, "conflict"),
    LimitError: (422, "limit_reached"),
}


def request_id(request: Request) -> str:
    """The request's ``Request-Id`` (or ``X-Request-Id``) when it is a sane token, else a
    fresh UUID."""
    given = request.header("request-id") or request.header("x-request-id")
    if given and len(given) <= 200 and given.isascii() and given.isprintable():
        return given
    return str(uuid.uuid4())


def error_response(path: str, status: int, ident: str, message: str) -> Response:
    """An error in the shape of the API ``path`` belongs to: the Platform API's
    ``{"id", "message"}``, Logplex v2/v3's ``{"error"}``, or v1's plain text."""
    if path.startswith(_PLATFORM_PREFIXES):
        return platform_error(status, ident, message)
    if path.startswith(("/v2/", "/v3/")):
        return json_response(status, {"error": message})
    return text_response(status, message)


class ApiHandler:
    """Answers every request on the API port."""

    def __init__(self, control: Control, streamer: SessionStreamer, metrics: Metrics,
                 auth_key: str, public_url: str, account_email: str = "admin@logrouter.invalid",
                 refresh_channel: Callable[[str], Awaitable[None]] | None = None,
                 ready_check: Callable[[], Awaitable[str | None]] | None = None) -> None:
        self.control = control
        self.streamer = streamer
        self.metrics = metrics
        self.key = auth_key.encode()
        #: Cluster mode: reloads a channel from the shared store. A request can reach this node
        #: before the config message that announces a channel (created a moment ago on another
        #: node behind the same load balancer) does; a channel id the node does not know is
        #: looked up there before the request is answered.
        self.refresh_channel = refresh_channel
        #: Cluster mode: None when the shared store answers, else why not (``/readyz``).
        self.ready_check = ready_check
        self.public_url = public_url
        self._openapi: bytes | None = None
        self._metrics_page = SharedPage(metrics.exposition)
        self._stats = StatsView(control, metrics)
        self._stats_page = SharedPage(lambda: self._stats.page(StatsQuery(lambda _: None)))
        self.router = Router()
        r = self.router
        r.add("GET", r"/healthcheck", self.healthcheck)
        r.add("GET", r"/v3/healthcheck", self.v3_healthcheck, auth=False)
        r.add("GET", r"/healthz", self.healthz, auth=False)
        r.add("GET", r"/readyz", self.readyz, auth=False)
        r.add("GET", r"/metrics", self.prometheus, auth=False)
        r.add("GET", r"/openapi\.json", self.openapi, auth=False)
        r.add("GET", r"/v3/stats", self.stats)
        r.add("GET", r"/sessions/([^/]+)", self.stream_session, auth=False)
        r.add("GET", r"/v2/canary-fetch/([^/]+)", self.stream_session, auth=False)
        LogplexRoutes(control, public_url, streamer.history).register(r)
        PlatformRoutes(control, public_url, account_email).register(r)
        ConsoleRoutes().register(r)

    def inspect(self, request: Request) -> Response | None:
        """Answer from the head alone: unknown routes (404/405) and missing or wrong
        credentials (401) are refused before any body is read."""
        refused = self._refuse(request)
        if refused is not None:
            refused.headers.append(("request-id", request_id(request)))
        return refused

    def _refuse(self, request: Request) -> Response | None:
        route, _params, known = self.router.match(request.method, request.path)
        if route is None:
            if known:
                return error_response(request.path, 405, "method_not_allowed",
                                      "Method Not Allowed")
            return error_response(request.path, 404, "not_found", "Not Found")
        if route.auth and not check_auth(request.header("authorization"), self.key):
            if request.path.startswith(_PLATFORM_PREFIXES):
                return platform_error(401, "unauthorized", "Invalid credentials provided.")
            # a browser script asks not to be challenged: a Basic challenge would open the
            # browser's own password dialog over the page (and hold its request)
            challenge = [] if request.header("x-requested-with") else list(_UNAUTHORIZED)
            return text_response(401, "Not Authorized", headers=challenge)
        return None

    async def __call__(self, request: Request) -> Response:
        """Answer one request; every answer carries ``request-id`` (Logplex §4.3): the
        request's own ``Request-Id``, else a fresh UUID."""
        refused = self.inspect(request)
        if refused is not None:
            return refused
        response = await self._answer(request)
        response.headers.append(("request-id", request_id(request)))
        return response

    async def _answer(self, request: Request) -> Response:
        route, params, _known = self.router.match(request.method, request.path)
        assert route is not None
        try:
            if (self.refresh_channel is not None and params and route.handler != self.stream_session
                    and self.control.table.get(params[0]) is None):
                await self.refresh_channel(params[0])
            return await route.handler(Call(request, params))
        except StoreUnavailable as exc:
            log.warning("store_unavailable", method=request.method, path=request.path, error=str(exc))
            return json_response(503, {"id": "unavailable", "error": "config store unavailable",
                                       "message": f"The config store is unavailable: {exc}. "
                                                  "Try again."})
        except LogrouterError as exc:  # the route's own texts, else the shape of its API
            answer = route.errors.answer(exc) if route.errors is not None else None
            if answer is not None:
                return answer
            if type(exc) in _ERRORS:
                status, ident = _ERRORS[type(exc)]
                return error_response(request.path, status, ident, str(exc))
            raise

    async def healthcheck(self, call: Call) -> Response:
        return json_response(200, {"status": "normal"})

    async def healthz(self, call: Call) -> Response:
        """Alive: the process answers (no key, for load balancers and orchestrators)."""
        return json_response(200, {"status": "alive"})

    async def readyz(self, call: Call) -> Response:
        """Ready: config loaded and listeners up (this answer proves both), and in cluster
        mode the shared store answers. 503 with the reason otherwise."""
        if self.ready_check is not None:
            problem = await self.ready_check()
            if problem is not None:
                return json_response(503, {"status": "not ready", "reason": problem})
        return json_response(200, {"status": "ready"})

    async def v3_healthcheck(self, call: Call) -> Response:
        return text_response(200, "OK")

    async def stats(self, call: Call) -> Response:
        """The node's counters as JSON, per app and per drain (``logrouter top``, the console;
        see :mod:`~logrouter.api.stats`). The answer to every app and drain is made as
        :mod:`~logrouter.api.shared_page` says."""
        query = StatsQuery(call.query)
        page = await (self._stats_page.get() if query.everything else self._stats.page(query))
        return Response(200, page, "application/json")

    async def openapi(self, call: Call) -> Response:
        if self._openapi is None:
            self._openapi = json.dumps(document(self.public_url, __version__)).encode()
        return Response(200, self._openapi, "application/json")

    async def prometheus(self, call: Call) -> Response:
        """``GET /metrics``, made as :mod:`~logrouter.api.shared_page` says."""
        return Response(200, await self._metrics_page.get(), CONTENT_TYPE)

    async def stream_session(self, call: Call) -> Response:
        sessions = self.control.sessions
        session = await sessions.lookup(call.params[0])
        if session is None:
            return text_response(404, "Not found")
        channel = self.control.table.get(session.channel_id)
        if channel is None and self.refresh_channel is not None:
            await self.refresh_channel(session.channel_id)
            channel = self.control.table.get(session.channel_id)
        if channel is None:
            return text_response(404, "Not found")
        request = call.request
        if request.method == "HEAD":  # what a GET would answer, without opening the session
            sse = "text/event-stream" in request.header("accept")
            return Response(200, content_type="text/event-stream; charset=utf-8" if sse
                            else "text/plain; charset=utf-8")
        session = await sessions.open(session)
        return await self.streamer.respond(session, channel, request.header("accept"),
                                           request.header("last-event-id"))
