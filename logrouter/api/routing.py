"""Route table, auth check and response helpers of the control API.

Routes match the *raw* request path; each captured segment is percent-decoded
once afterwards, so ``/apps/a/log-drains/syslog%2Btls%3A%2F%2Fh%3A1`` is one
segment whose value is a URL.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

from logrouter.errors import BadJson, LogrouterError
from logrouter.protocol.http1 import Request
from logrouter.transport.serving import Response

__all__ = ["BadJson", "Call", "ErrorTable", "Route", "Router", "check_auth", "json_response",
           "text_response"]


@dataclass(slots=True)
class Call:
    """One routed request: the request and its decoded path parameters."""

    request: Request
    params: tuple[str, ...]

    def json(self, default: Any = None) -> Any:
        """The JSON body; ``default`` when the body is empty.

        Raises:
            BadJson: the body is not valid UTF-8 JSON.
        """
        body = self.request.body
        if not body.strip():
            return default
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise BadJson("invalid JSON body") from None
        except RecursionError:
            raise BadJson("JSON body nested too deeply") from None

    def json_object(self) -> dict[str, Any]:
        """The JSON body, which must be an object (empty body → ``{}``)."""
        data = self.json({})
        if not isinstance(data, dict):
            raise BadJson("JSON body must be an object")
        return data

    def query(self, name: str) -> str | None:
        values = parse_qs(self.request.query).get(name)
        return values[-1] if values else None


Handler = Callable[[Call], Awaitable[Response]]

#: An error class → (status, message; None means the error's own text).
ErrorCases = Mapping[type[LogrouterError], tuple[int, str | None]]


@dataclass(frozen=True, slots=True)
class ErrorTable:
    """How the routes of one API version answer the errors a handler raises.

    Handlers let :mod:`logrouter.errors` exceptions propagate; the router answers them from
    the route's table (its texts are the ones Logplex's clients know), so no handler holds a
    ladder of ``except`` clauses.
    """

    render: Callable[[int, str], Response]
    cases: ErrorCases

    def but(self, cases: ErrorCases) -> ErrorTable:
        """This table with some cases answered differently (one route's own texts)."""
        return ErrorTable(self.render, {**self.cases, **cases})

    def answer(self, exc: LogrouterError) -> Response | None:
        """The answer to ``exc``, or None when this table does not cover it."""
        for cls in type(exc).__mro__:
            case = self.cases.get(cls)  # type: ignore[call-overload]
            if case is not None:
                status, message = case
                return self.render(status, message if message is not None else str(exc))
        return None


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: bool
    errors: ErrorTable | None = None


class Router:
    """An ordered list of routes; the first whose method and pattern match wins."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, pattern: str, handler: Handler, auth: bool = True,
            errors: ErrorTable | None = None) -> None:
        self.routes.append(Route(method, re.compile(pattern + r"/?\Z"), handler, auth, errors))

    def match(self, method: str, path: str) -> tuple[Route | None, tuple[str, ...], bool]:
        """Return ``(route, params, path_known)``; ``path_known`` tells 405 from 404."""
        known = False
        for route in self.routes:
            m = route.pattern.match(path)
            if m is None:
                continue
            known = True
            if route.method == method or (route.method == "GET" and method == "HEAD"):
                return route, tuple(unquote(g) for g in m.groups()), True
        return None, (), known


def check_auth(header: str, key: bytes) -> bool:
    """Accept Logplex's raw ``Basic <key>``, standard Basic with the key as password,
    and ``Bearer <key>``; every comparison is constant-time."""
    scheme, _, text = header.strip().partition(" ")
    value = text.strip().encode()
    scheme = scheme.lower()
    if not value or not key:
        return False
    if scheme == "bearer":
        return hmac.compare_digest(value, key)
    if scheme != "basic":
        return False
    raw_ok = hmac.compare_digest(value, key)
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return raw_ok
    _, sep, password = decoded.partition(b":")
    return raw_ok or (bool(sep) and hmac.compare_digest(password, key))


def json_response(status: int, obj: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, json.dumps(obj).encode(), "application/json", headers or [])


def text_response(status: int, text: str, content_type: str = "text/plain; charset=utf-8",
                  headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, text.encode(), content_type, headers or [])
