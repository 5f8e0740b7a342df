"""The OpenAPI 3 document of the control API, served at ``GET /openapi.json``.

Built from a table of operations; ``tests/api/test_openapi.py`` checks that every route the
router serves is described (and nothing else), and schemathesis fuzzes a live router
against it: no 5xx, and every answer matches what is written here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["document"]

_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_ERROR_V2 = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
_ERROR_PLATFORM = {"type": "object", "properties": {"id": {"type": "string"},
                                                    "message": {"type": "string"}},
                   "required": ["id", "message"]}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_DRAIN = {"type": "object", "properties": {
    "id": {"type": "integer"}, "token": {"type": "string"}, "url": {"type": "string"},
    "status": {"type": "object"}}, "required": ["id", "token"]}
_CHANNEL_ID = {"oneOf": [{"type": "integer"}, {"type": "string"}]}
_SESSION_BODY = {"type": "object", "properties": {
    "channel_id": _CHANNEL_ID, "num": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    "tail": {"oneOf": [{"type": "boolean"}, {"type": "string"}]},
    "ps": {"type": "string"}, "source": {"type": "string"}}, "required": ["channel_id"]}
_APP = {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                                         "channel_id": {"type": "string"}},
        "required": ["id", "name"]}
_PLATFORM_DRAIN = {"type": "object", "properties": {
    "id": {"type": "string"}, "token": {"type": "string"}, "url": {"type": "string"},
    "addon": {"nullable": True}, "app": {"type": "object"}}, "required": ["id", "token", "url"]}
_URL_BODY = {"type": "object", "properties": {"url": {"type": "string"}}}
_NAME_BODY = {"type": "object", "properties": {"name": {"type": "string"}}}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _resp(description: str, content: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if content is not None:
        out["content"] = content
    return out


def _v1_errors() -> dict[str, Any]:
    return {"400": _resp("invalid input", _TEXT), "401": _resp("bad or missing API key", _TEXT),
            "404": _resp("no such channel", _TEXT), "405": _resp("method not allowed", _TEXT),
            "409": _resp("already exists", _TEXT), "422": _resp("invalid input", _TEXT),
            "503": _resp("config store unavailable", _json(_ERROR_PLATFORM))}


def _v2_errors() -> dict[str, Any]:
    return {"400": _resp("invalid JSON", _json(_ERROR_V2)),
            "401": _resp("bad or missing API key", _TEXT),
            "404": _resp("not found", _json(_ERROR_V2)),
            "405": _resp("method not allowed", _json(_ERROR_V2)),
            "409": _resp("already exists", _json(_ERROR_V2)),
            "422": _resp("invalid input or a limit reached", _json(_ERROR_V2)),
            "503": _resp("config store unavailable", _json(_ERROR_PLATFORM))}


def _platform_errors() -> dict[str, Any]:
    return {code: _resp(text, _json(_ERROR_PLATFORM)) for code, text in (
        ("400", "invalid JSON"), ("401", "bad or missing API key"), ("404", "not found"),
        ("405", "method not allowed"), ("409", "conflict"), ("416", "bad Range"), ("422", "invalid input"),
        ("503", "config store unavailable"))}


def _op(summary: str, ok: dict[str, Any], errors: dict[str, Any], body: dict[str, Any] | None = None,
        auth: bool = True, params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {**ok, **errors}}
    if body is not None:
        op["requestBody"] = {"required": False, "content": _json(body)}
    if not auth:
        op["security"] = []
    if params:
        op["parameters"] = params
    return op


def _deprecated(op: dict[str, Any]) -> dict[str, Any]:
    op["deprecated"] = True
    return op


def _path(name: str, pattern: str | None = None, example: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if pattern:
        schema["pattern"] = pattern
    param: dict[str, Any] = {"name": name, "in": "path", "required": True, "schema": schema}
    if example is not None:
        param["example"] = example
    return param


_NUM = _path("id", "^[0-9]{1,18}$", "1")
_DRAIN_ID = _path("drain", "^[0-9]{1,18}$", "1")
_CHANNEL = _path("channel", "^[^/]+$", "demo")
_APP_NAME = _path("app", "^[^/]+$", "demo")


def document(server_url: str, version: str) -> dict[str, Any]:
    """The control API's OpenAPI 3.0 document for a router at ``server_url``."""
    v1, v2, pf = _v1_errors(), _v2_errors(), _platform_errors()
    empty = _resp("done", _TEXT)
    paths: dict[str, dict[str, Any]] = {
        "/healthcheck": {"get": _op("health (Logplex v1)", {"200": _resp("healthy", _json(
            {"type": "object"}))}, v1)},
        "/healthz": {"get": _op("alive (no key)", {"200": _resp("alive", _json(
            {"type": "object"}))}, v1, auth=False)},
        "/readyz": {"get": _op("ready: config loaded, listening, Redis answering (no key)", {
            "200": _resp("ready", _json({"type": "object"})),
            "503": _resp("not ready", _json({"type": "object"}))}, v1, auth=False)},
        "/v3/healthcheck": {"get": _op("health (Logplex v3)", {"200": _resp("OK", _TEXT)}, v2,
                                       auth=False)},
        "/metrics": {"get": _op("Prometheus metrics", {"200": _resp("exposition", _TEXT)}, v1,
                                auth=False)},
        "/openapi.json": {"get": _op("this document", {"200": _resp("OpenAPI 3", _json(
            {"type": "object"}))}, v1, auth=False)},
        "/sessions/{id}": {"get": _op(
            "stream a session (the id is the credential); text or SSE", {"200": _resp(
                "chunked lines", {"text/plain": {"schema": {"type": "string"}},
                                  "text/event-stream": {"schema": {"type": "string"}}})},
            {"404": _resp("no such session", _TEXT)}, auth=False, params=[_path("id")])},
        "/channels": {"post": _op("create a channel (v1)", {"201": _resp("created", _json({
            "type": "object", "properties": {"channel_id": _CHANNEL_ID,
                                             "tokens": {"oneOf": [_STRING_MAP, {"type": "array"}]}}}))},
            v1, {"type": "object", "properties": {"name": {"type": "string"},
                                                  "tokens": {"type": "array",
                                                             "items": {"type": "string"}}}})},
        "/channels/{id}": {"delete": _op("delete a channel (v1)", {"200": empty}, v1,
                                         params=[_NUM])},
        "/channels/{id}/info": {"get": _op("a channel's tokens and drains (v1)", {"200": _resp(
            "channel", _json({"type": "object"}))}, v1, params=[_NUM])},
        "/channels/{id}/token": {"post": _op("create a token (v1)", {"201": _resp(
            "the token", _TEXT)}, v1, _NAME_BODY, params=[_NUM])},
        "/channels/{id}/drains/tokens": {"post": _op("reserve a drain id and token (v1)", {
            "201": _resp("reserved", _json({"type": "object"}))}, v1, params=[_NUM])},
        "/channels/{id}/drains": {m: _deprecated(_op(
            "gone (v1): 501 V1 Drain API Deprecated, as Logplex", {
                "501": _resp("deprecated", _TEXT)}, v1, params=[_NUM]))
            for m in ("get", "post", "delete")},
        "/channels/{id}/drains/{drain}": {"post": _deprecated(_op(
            "gone (v1): 501 V1 Drain API Deprecated, as Logplex", {
                "501": _resp("deprecated", _TEXT)}, v1, params=[_NUM, _DRAIN_ID]))},
        "/v2/channels/{id}": {
            "get": _op("a channel (v2)", {"200": _resp("channel", _json({"type": "object"}))}, v2,
                       params=[_NUM]),
            "delete": _op("delete a channel (v2)", {"200": empty}, v2, params=[_NUM])},
        "/v2/channels/{id}/tokens": {"post": _op("create a token (v2)", {"201": _resp(
            "token", _json({"type": "object"}))}, v2, _NAME_BODY, params=[_NUM])},
        "/v2/channels/{id}/drains": {"post": _op("add a drain (v2)", {"201": _resp(
            "drain", _json(_DRAIN))}, v2, {"type": "object", "properties": {
                "url": {"type": "string"}, "host": {"type": "string"},
                "port": {"type": "integer"}}}, params=[_NUM])},
        "/v2/channels/{id}/drains/{drain}": {
            "post": _op("set a drain's URL (v2)", {"201": _resp("drain", _json(_DRAIN))}, v2,
                        _URL_BODY, params=[_NUM, _DRAIN_ID]),
            "delete": _op("remove a drain (v2)", {"200": empty}, v2, params=[_NUM, _DRAIN_ID])},
        "/sessions": {"post": _op("create a session (v1): the URL as text", {"201": _resp(
            "session URL", _TEXT)}, v2, _SESSION_BODY)},
        "/v2/sessions": {"post": _op("create a session (v2)", {"201": _resp("session", _json(
            {"type": "object", "properties": {"url": {"type": "string"}}}))}, v2, _SESSION_BODY)},
        "/v2/canary-sessions": {"post": _op(
            "create a canary session (fetched, without a tail, at a relative URL)", {
                "201": _resp("session", _json({"type": "object", "properties": {
                    "url": {"type": "string"}}}))}, v2, _SESSION_BODY)},
        "/v2/canary-fetch/{id}": {"get": _op("fetch a canary session", {"200": _resp(
            "chunked lines", _TEXT)}, {"404": _resp("no such session", _TEXT)}, auth=False,
            params=[_path("id")])},
        "/v3/sessions": {"post": _op("create a session (v3)", {"201": _resp("session", _json(
            {"type": "object", "properties": {"url": {"type": "string"}}}))}, v2, _SESSION_BODY)},
        "/v3/channels/{channel}": {
            "put": _op("create a channel or set its token names (v3)", {
                "200": _resp("updated", _json({"type": "object"})),
                "201": _resp("created", _json({"type": "object"}))}, v2,
                {"type": "object", "properties": {"tokens": {"type": "array",
                                                             "items": {"type": "string"}}}},
                params=[_CHANNEL]),
            "get": _op("a channel (v3)", {"200": _resp("channel", _json({"type": "object"}))}, v2,
                       params=[_CHANNEL]),
            "delete": _op("delete a channel (v3)", {"204": _resp("deleted")}, v2,
                          params=[_CHANNEL])},
        "/v3/channels/{channel}/tokens": {"post": _op("create a token (v3)", {"200": _resp(
            "token", _json({"type": "object"}))}, v2, _NAME_BODY, params=[_CHANNEL])},
        "/v3/channels/{channel}/drains": {"post": _op(
            "add a drain, or reserve one without a URL (v3)", {"201": _resp(
                "drain", _json(_DRAIN))}, v2, _URL_BODY, params=[_CHANNEL])},
        "/v3/channels/{channel}/drains/{drain}": {
            "get": _op("a drain and its delivery status (v3)", {"200": _resp(
                "drain", _json(_DRAIN))}, v2, params=[_CHANNEL, _DRAIN_ID]),
            "put": _op("set a drain's URL (v3)", {"200": _resp("drain", _json(_DRAIN))}, v2,
                       _URL_BODY, params=[_CHANNEL, _DRAIN_ID]),
            "delete": _op("remove a drain (v3)", {"204": _resp("removed")}, v2,
                          params=[_CHANNEL, _DRAIN_ID])},
        "/v3/channels/{channel}/logs": {"get": _op(
            "the newest lines as application/logplex-1", {"200": _resp("frames", {
                "application/logplex-1": {"schema": {"type": "string"}}}),
                "406": _resp("not acceptable", _json(_ERROR_V2))}, v2,
            params=[_CHANNEL, {"name": "num", "in": "query", "schema": {"type": "string"}}])},
        "/console": {"get": _op("the web console (redirects to /console/)", {"308": _resp(
            "redirect", _TEXT)}, v1, auth=False)},
        "/console/": {"get": _op("the web console's page", {"200": _resp(
            "page", {"text/html": {"schema": {"type": "string"}}})}, v1, auth=False)},
        "/console/{file}": {"get": _op("a file of the web console", {"200": _resp(
            "file", {"text/javascript": {"schema": {"type": "string"}},
                     "text/css": {"schema": {"type": "string"}},
                     "image/svg+xml": {"schema": {"type": "string"}}}),
            "404": _resp("no such file", _TEXT)}, v1, auth=False,
            params=[_path("file", "^[A-Za-z0-9_.-]+$", "console.js")])},
        "/v3/stats": {"get": _op(
            "the node's counters: every channel and drain, or (channel, limit, sort, q) those "
            "a view shows", {
                "200": _resp("stats", _json({"type": "object", "properties": {
                    "totals": {"type": "object"}, "drain_totals": {"type": "object"},
                    "counts": {"type": "object"}, "channels": {"type": "array"},
                    "drains": {"type": "array"}}}))}, v2,
            params=[{"name": "channel", "in": "query", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "schema": {"type": "string"}},
                    {"name": "sort", "in": "query",
                     "schema": {"type": "string", "enum": ["busiest", "name"]}},
                    {"name": "q", "in": "query", "schema": {"type": "string"}}])},
        "/account": {"get": _op("the account (Platform API)", {"200": _resp("account", _json(
            {"type": "object"}))}, pf)},
        "/users/~/apps": {"get": _op("apps (Platform API)", {"200": _resp("apps", _json(
            {"type": "array", "items": _APP})), "206": _resp("apps; more follow (Next-Range)", _json(
                {"type": "array", "items": _APP}))}, pf)},
        "/apps": {
            "get": _op("apps, paged with Range / Next-Range (Platform API)", {
                "200": _resp("apps", _json({"type": "array", "items": _APP})),
                "206": _resp("apps; more follow (Next-Range)", _json({"type": "array",
                                                                       "items": _APP}))}, pf,
                params=[{"name": "Range", "in": "header", "schema": {"type": "string"}}]),
            "post": _op("create an app: a channel with tokens app and heroku", {
                "201": _resp("app", _json(_APP))}, pf, _NAME_BODY)},
        "/teams/apps": {"post": _op("create an app (Platform API)", {"201": _resp("app", _json(
            _APP))}, pf, _NAME_BODY)},
        "/apps/{app}": {
            "get": _op("an app", {"200": _resp("app", _json(_APP))}, pf, params=[_APP_NAME]),
            "delete": _op("delete an app", {"200": _resp("app", _json(_APP))}, pf,
                          params=[_APP_NAME])},
        "/apps/{app}/log-sessions": {"post": _op("create a log session", {"201": _resp(
            "session", _json({"type": "object", "properties": {"logplex_url": {"type": "string"}},
                              "required": ["logplex_url"]}))}, pf,
            {"type": "object", "properties": {"lines": {"type": "integer"},
                                              "tail": {"type": "boolean"},
                                              "dyno": {"type": "string"},
                                              "source": {"type": "string"}}},
            params=[_APP_NAME])},
        "/apps/{app}/log-drains": {
            "get": _op("an app's drains", {"200": _resp("drains", _json(
                {"type": "array", "items": _PLATFORM_DRAIN}))}, pf, params=[_APP_NAME]),
            "post": _op("add a drain", {"201": _resp("drain", _json(_PLATFORM_DRAIN))}, pf,
                        _URL_BODY, params=[_APP_NAME])},
        "/apps/{app}/log-drains/{ref}": {
            "get": _op("a drain (by id, token or URL) and its status", {"200": _resp(
                "drain", _json(_PLATFORM_DRAIN))}, pf, params=[_APP_NAME, _path("ref", example="1")]),
            "delete": _op("remove a drain", {"200": _resp("drain", _json(_PLATFORM_DRAIN))}, pf,
                          params=[_APP_NAME, _path("ref", example="1")])},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "logrouter control API", "version": version,
                 "description": "Logplex v1/v2/v3 routes, the Heroku Platform API subset the "
                                "Heroku CLI uses, sessions, health and metrics."},
        "servers": [{"url": server_url}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                           "basic": {"type": "http", "scheme": "basic"}}},
        "security": [{"bearer": []}, {"basic": []}],
        "paths": paths,
    }
