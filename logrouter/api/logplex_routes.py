"""Logplex's control API: legacy v1, v2 and v3 routes (Logplex §4.2, §4.3, §6.1).

Each handler translates one HTTP call into a :class:`~logrouter.control.Control`
operation and its errors into Logplex's statuses and bodies. Bodies are JSON
served as ``application/json`` (Logplex served some as ``text/html``).
"""

from __future__ import annotations

from typing import Any

from logrouter.api.routing import BadJson, Call, ErrorTable, Router, json_response, text_response
from logrouter.control import Control
from logrouter.core.channels import Channel
from logrouter.core.history_view import HistoryView, LocalHistory
from logrouter.errors import ConflictError, LimitError, NotFoundError, ValidationError
from logrouter.models import DrainRecord
from logrouter.protocol.logplex1 import channel_log_frames
from logrouter.transport.serving import Response, SendChunk

__all__ = ["LogplexRoutes"]

_ID = r"([0-9]{1,18})"  # ASCII digits only, and an int64
_SEG = r"([^/]+)"
MAX_NUM = 1_000_000  # a session's backlog can never be longer than a history


def _json_error(status: int, message: str) -> Response:
    return json_response(status, {"error": message})


#: What each version answers to the control errors (the texts Logplex's clients know);
#: a route with other texts says so with ``.but(...)``.
V1_ERRORS = ErrorTable(text_response, {BadJson: (400, "Invalid JSON body."),
                                       NotFoundError: (404, "Not found"),
                                       ValidationError: (400, None)})
V2_ERRORS = ErrorTable(_json_error, {BadJson: (400, "invalid JSON body"),
                                     NotFoundError: (404, "Not Found"),
                                     ValidationError: (422, None), LimitError: (422, None),
                                     ConflictError: (409, "Already exists")})
V3_ERRORS = ErrorTable(_json_error, {BadJson: (400, "invalid payload"),
                                     NotFoundError: (404, "not found"),
                                     ValidationError: (400, None),
                                     ConflictError: (409, "already exists"),
                                     LimitError: (422, None)})
#: Session creation, every version: an unknown channel is a 422.
SESSION_ERRORS = V2_ERRORS.but({NotFoundError: (422, "channel not found")})


def channel_id_json(channel_id: str) -> int | str:
    """Numeric channel ids are JSON numbers, as in Logplex."""
    return int(channel_id) if _is_number(channel_id) else channel_id


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 18


def _drain_json(d: DrainRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"id": d.id, "token": d.token}
    if d.url is not None:
        out["url"] = d.url
    return out


def _tail_flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0", "no", "off")
    return bool(value)


def _num(value: Any, default: int = 100) -> int:
    """Logplex wants ``num`` as a string; a number or a bad value is accepted too."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return min(max(0, value), MAX_NUM)
    if isinstance(value, str) and _is_number(value.strip()):
        return min(int(value.strip()), MAX_NUM)
    return default


class LogplexRoutes:
    """Registers the Logplex routes on a router.

    Args:
        control: control operations.
        public_url: base of session URLs and v3 ``Location`` headers.
    """

    def __init__(self, control: Control, public_url: str,
                 history: HistoryView | None = None) -> None:
        self.control = control
        self.public_url = public_url.rstrip("/")
        #: How ``…/logs`` reads a channel's history (the node's rings, or the shared history).
        self.history: HistoryView = history if history is not None else LocalHistory()

    def register(self, r: Router) -> None:
        v1, v2, v3 = V1_ERRORS, V2_ERRORS, V3_ERRORS
        v2_channel = v2.but({NotFoundError: (404, "No such channel")})
        r.add("POST", r"/channels", self.v1_create_channel, errors=v1)
        r.add("DELETE", rf"/channels/{_ID}", self.v1_delete_channel, errors=v1)
        r.add("GET", rf"/channels/{_ID}/info", self.v1_channel_info, errors=v1)
        r.add("POST", rf"/channels/{_ID}/token", self.v1_create_token, errors=v1)
        r.add("POST", rf"/channels/{_ID}/drains/tokens", self.v1_reserve_drain, errors=v1)
        for method in ("GET", "POST", "DELETE"):
            r.add(method, rf"/channels/{_ID}/drains", self.v1_deprecated)
        r.add("POST", rf"/channels/{_ID}/drains/{_ID}", self.v1_deprecated)
        r.add("GET", rf"/v2/channels/{_ID}", self.v2_get_channel, errors=v2)
        r.add("DELETE", rf"/v2/channels/{_ID}", self.v2_delete_channel, errors=v2)
        r.add("POST", rf"/v2/channels/{_ID}/tokens", self.v2_create_token, errors=v2_channel)
        r.add("POST", rf"/v2/channels/{_ID}/drains", self.v2_create_drain, errors=v2_channel)
        r.add("POST", rf"/v2/channels/{_ID}/drains/{_ID}", self.v2_attach_drain, errors=v2_channel)
        r.add("DELETE", rf"/v2/channels/{_ID}/drains/{_ID}", self.v2_delete_drain,
              errors=v2.but({NotFoundError: (404, "Not found")}))
        for path, handler in ((r"/sessions", self.v1_create_session),
                              (r"/v2/sessions", self.v2_create_session),
                              (r"/v3/sessions", self.v3_create_session),
                              (r"/v2/canary-sessions", self.v2_create_canary_session)):
            r.add("POST", path, handler, errors=SESSION_ERRORS)
        r.add("PUT", rf"/v3/channels/{_SEG}", self.v3_put_channel,
              errors=v3.but({ValidationError: (400, "invalid payload")}))
        r.add("GET", rf"/v3/channels/{_SEG}", self.v3_get_channel, errors=v3)
        r.add("DELETE", rf"/v3/channels/{_SEG}", self.v3_delete_channel, errors=v3)
        r.add("POST", rf"/v3/channels/{_SEG}/tokens", self.v3_create_token, errors=v3)
        v3_drains = v3.but({LimitError: (422, "maximum number of drains reached")})
        r.add("POST", rf"/v3/channels/{_SEG}/drains", self.v3_create_drain, errors=v3_drains)
        r.add("GET", rf"/v3/channels/{_SEG}/drains/{_ID}", self.v3_get_drain, errors=v3)
        r.add("PUT", rf"/v3/channels/{_SEG}/drains/{_ID}", self.v3_put_drain, errors=v3_drains)
        r.add("DELETE", rf"/v3/channels/{_SEG}/drains/{_ID}", self.v3_delete_drain, errors=v3)
        r.add("GET", rf"/v3/channels/{_SEG}/logs", self.v3_channel_logs, errors=v3)

    # v1 ---------------------------------------------------------------------------

    async def v1_create_channel(self, call: Call) -> Response:
        body = call.json_object()
        name = body.get("name", "")
        tokens = body.get("tokens", [])
        if not isinstance(name, str):
            return text_response(400, "Channel name must be a string.")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            return text_response(400, "Tokens must be a list of strings.")
        channel = await self.control.create_channel(name, tokens)
        token_map = {n: t for t, n in channel.tokens.items()}
        return json_response(201, {"channel_id": channel_id_json(channel.id),
                                   "tokens": token_map or []})

    async def v1_delete_channel(self, call: Call) -> Response:
        await self.control.delete_channel(call.params[0])
        return text_response(200, "OK")

    async def v1_channel_info(self, call: Call) -> Response:
        channel = self.control.channel(call.params[0])
        return json_response(200, {
            "channel_id": channel_id_json(channel.id),
            "tokens": {n: t for t, n in channel.tokens.items()},
            "drains": [d.url for d in channel.drains.values() if d.url is not None]})

    async def v1_create_token(self, call: Call) -> Response:
        try:
            name = call.json_object().get("name")
        except BadJson:
            name = None
        if not isinstance(name, str) or not name:
            return text_response(400, "'name' post param missing")
        token = await self.control.create_token(call.params[0], name)
        return text_response(201, token.token)

    async def v1_reserve_drain(self, call: Call) -> Response:
        drain = await self.control.reserve_drain(call.params[0])
        return json_response(201, {"id": drain.id, "token": drain.token,
                                   "msg": "Successfully reserved drain token"})

    async def v1_deprecated(self, call: Call) -> Response:
        if call.request.method == "POST" and len(call.params) == 1:
            return text_response(501, "V1 Drain Creation API deprecated.")
        return text_response(501, "V1 Drain API Deprecated.")

    # v2 ---------------------------------------------------------------------------

    def _v2_channel(self, channel: Channel) -> dict[str, Any]:
        return {
            "channel_id": channel_id_json(channel.id),
            "tokens": sorted(({"name": n, "token": t} for t, n in channel.tokens.items()),
                             key=lambda x: (x["name"], x["token"])),
            "drains": [_drain_json(d) for d in sorted(channel.drains.values(), key=lambda d: d.id)
                       if d.url is not None],
        }

    async def v2_get_channel(self, call: Call) -> Response:
        return json_response(200, self._v2_channel(self.control.channel(call.params[0])))

    async def v2_delete_channel(self, call: Call) -> Response:
        await self.control.delete_channel(call.params[0])
        return text_response(200, "")

    async def v2_create_token(self, call: Call) -> Response:
        name = call.json_object().get("name")
        if not isinstance(name, str) or not name:
            return json_response(422, {"error": "NAME is a required field"})
        token = await self.control.create_token(call.params[0], name)
        return json_response(201, {"name": token.name, "token": token.token})

    @staticmethod
    def _v2_url(body: dict[str, Any]) -> str | None:
        url = body.get("url")
        if url is None and "host" in body:
            port = body.get("port", 514)
            return f"syslog://{body['host']}:{port}"
        return url if isinstance(url, str) else None

    async def _v2_drain_call(self, call: Call, drain_id: int | None) -> Response:
        url = self._v2_url(call.json_object())
        if url is None:
            return json_response(422, {"error": "Invalid drain destination: missing url"})
        if drain_id is None:
            drain = await self.control.add_drain(call.params[0], url)
        else:
            self.control.channel(call.params[0])  # an unknown channel is "No such channel"
            if drain_id not in self.control.table.channels[call.params[0]].drains:
                return json_response(404, {"error": "Unknown drain."})
            drain = await self.control.set_drain_url(call.params[0], drain_id, url)
        return json_response(201, _drain_json(drain))

    async def v2_create_drain(self, call: Call) -> Response:
        return await self._v2_drain_call(call, None)

    async def v2_attach_drain(self, call: Call) -> Response:
        return await self._v2_drain_call(call, int(call.params[1]))

    async def v2_delete_drain(self, call: Call) -> Response:
        await self.control.delete_drain(call.params[0], int(call.params[1]))
        return text_response(200, "")

    # sessions ---------------------------------------------------------------------

    async def _create_session(self, call: Call, canary: bool = False,
                              ) -> tuple[str | None, Response | None]:
        """Create a session from a Logplex session body; return (url, error response)."""
        body = call.json_object()
        channel_id = body.get("channel_id")
        if isinstance(channel_id, int) and not isinstance(channel_id, bool):
            channel_id = str(channel_id)
        if not isinstance(channel_id, str) or not channel_id:
            return None, json_response(400, {"error": "'channel_id' missing"})
        ps, source = body.get("ps"), body.get("source")
        session = await self.control.create_session(
            channel_id, _num(body.get("num")), _tail_flag(body.get("tail")) and not canary,
            ps if isinstance(ps, str) else None, source if isinstance(source, str) else None)
        if canary:
            return f"/v2/canary-fetch/{session.id}", None
        return f"{self.public_url}/sessions/{session.id}", None

    async def v1_create_session(self, call: Call) -> Response:
        url, error = await self._create_session(call)
        return error or text_response(201, url or "")

    async def v2_create_session(self, call: Call) -> Response:
        url, error = await self._create_session(call)
        return error or json_response(201, {"url": url})

    async def v2_create_canary_session(self, call: Call) -> Response:
        """Logplex's health probe of the session path: a session fetched (without a tail)
        at the relative URL ``/v2/canary-fetch/<id>``."""
        url, error = await self._create_session(call, canary=True)
        return error or json_response(201, {"url": url})

    async def v3_create_session(self, call: Call) -> Response:
        url, error = await self._create_session(call)
        return error or json_response(201, {"url": url}, [("Location", url or "")])

    # v3 ---------------------------------------------------------------------------

    def _v3_channel(self, channel: Channel) -> dict[str, Any]:
        out: dict[str, Any] = {"channel": channel.id}
        if channel.tokens:
            out["tokens"] = {n: t for t, n in sorted(channel.tokens.items(), key=lambda x: x[1])}
        drains = [_drain_json(d) for d in sorted(channel.drains.values(), key=lambda d: d.id)]
        if drains:
            out["drains"] = drains
        return out

    async def v3_put_channel(self, call: Call) -> Response:
        body = call.json_object()
        tokens = body.get("tokens", [])
        if not isinstance(tokens, list) or not all(isinstance(t, str) and t for t in tokens):
            return json_response(400, {"error": "invalid payload"})
        channel, created = await self.control.put_channel_tokens(call.params[0], tokens)
        return json_response(201 if created else 200, self._v3_channel(channel))

    async def v3_get_channel(self, call: Call) -> Response:
        return json_response(200, self._v3_channel(self.control.channel(call.params[0])))

    async def v3_delete_channel(self, call: Call) -> Response:
        await self.control.delete_channel(call.params[0])
        return Response(204)

    async def v3_create_token(self, call: Call) -> Response:
        name = call.json_object().get("name")
        if not isinstance(name, str) or not name:
            return json_response(400, {"error": "name is required"})
        token = await self.control.create_token(call.params[0], name)
        return json_response(200, {"token": token.token, "name": token.name})

    def _v3_location(self, drain: DrainRecord) -> list[tuple[str, str]]:
        return [("Location", f"{self.public_url}/v3/channels/{drain.channel_id}/drains/{drain.id}")]

    async def v3_create_drain(self, call: Call) -> Response:
        body = call.json_object()
        url = body.get("url")
        if url is not None and not isinstance(url, str):
            return json_response(400, {"error": "invalid url"})
        if url is None:
            drain = await self.control.reserve_drain(call.params[0])
        else:
            drain = await self.control.add_drain(call.params[0], url)
        return json_response(201, _drain_json(drain), self._v3_location(drain))

    async def v3_get_drain(self, call: Call) -> Response:
        drain = self.control.drain(call.params[0], int(call.params[1]))
        return json_response(200, self.control.with_status(drain.id, _drain_json(drain)))

    async def v3_put_drain(self, call: Call) -> Response:
        url = call.json_object().get("url")
        if not isinstance(url, str):
            return json_response(400, {"error": "invalid url"})
        drain = await self.control.set_drain_url(call.params[0], int(call.params[1]), url)
        return json_response(200, _drain_json(drain))

    async def v3_delete_drain(self, call: Call) -> Response:
        await self.control.delete_drain(call.params[0], int(call.params[1]))
        return Response(204)

    async def v3_channel_logs(self, call: Call) -> Response:
        channel = self.control.channel(call.params[0])
        accept = call.request.header("accept", "*/*")
        if not any(a.split(";")[0].strip() in ("*/*", "application/*", "application/logplex-1")
                   for a in accept.split(",")):
            return json_response(406, {"error": "only application/logplex-1 is served"})
        num = _num(call.query("num"))
        lines = await self.history.newest(channel, num)
        frames = channel_log_frames(lines)

        async def stream(send: SendChunk) -> None:
            for start in range(0, len(frames), 256):  # chunked, as Logplex streams it
                await send(b"".join(frames[start:start + 256]))

        return Response(200, content_type="application/logplex-1", stream=stream,
                        headers=[("Logplex-Msg-Count", str(len(frames)))])
