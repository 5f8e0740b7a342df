"""The Heroku Platform API subset the Heroku CLI uses for apps, logs and drains.

An *app* is a channel. ``POST /apps {"name": "demo"}`` creates channel ``demo``
with tokens ``app`` and ``heroku``; an app is found by channel id, or by the name
of a channel created through the Logplex API. Errors are JSON
``{"id": …, "message": …}`` so the CLI prints them; the app list is paged with
``Range``/``Next-Range`` (1,000 apps per answer), other lists are short and never
send ``Next-Range``; drains always say ``"addon": null``.
"""

from __future__ import annotations

import bisect
import re
import time
import uuid
from typing import Any

import trio

from logrouter.api.routing import BadJson, Call, ErrorTable, Router, json_response
from logrouter.control import Control
from logrouter.core.channels import Channel
from logrouter.errors import ConflictError, LimitError, NotFoundError, ValidationError
from logrouter.models import DrainRecord
from logrouter.transport.serving import Response

__all__ = ["PlatformRoutes", "platform_error"]

_NS = uuid.UUID("6f3c54c6-52c5-4bd0-9a43-7b1c3f1f6c1e")
_APP_NAME = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
_APP = r"([^/]+)"
_NOT_FOUND_APP = {"id": "not_found", "message": "Couldn't find that app.", "resource": "app"}
_NOT_FOUND_DRAIN = {"id": "not_found", "message": "Couldn't find that log drain.",
                    "resource": "log-drain"}
_BAD_URL = "Url must be a valid syslog://, syslog+tls://, http:// or https:// URL"


PAGE_MAX = 1000
_RANGE = re.compile(r"\s*name\s+(\]?)([^.;]*)\.\.\s*(?:;\s*max=([0-9]{1,7}))?\s*\Z")


def parse_range(header: str) -> tuple[str, bool, int] | None:
    """A Platform API ``Range`` on names → ``(start, start included, page size)``;
    empty → from the first; None when it is not one."""
    if not header.strip():
        return "", True, PAGE_MAX
    m = _RANGE.match(header)
    if m is None:
        return None
    size = min(int(m.group(3)), PAGE_MAX) if m.group(3) else PAGE_MAX
    return m.group(2).strip(), not m.group(1), max(size, 1)


def platform_error(status: int, ident: str, message: str) -> Response:
    return json_response(status, {"id": ident, "message": message})


#: The Platform API's own words for a body that is not a JSON object; the other control errors
#: get the API handler's Platform-shaped answers (``id`` naming the error).
PLATFORM_ERRORS = ErrorTable(lambda status, message: platform_error(status, "bad_request", message),
                             {BadJson: (400, "Request body must be a JSON object.")})


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def drain_uuid(drain_id: int) -> str:
    """The Platform API id of a drain: a stable UUID derived from its number."""
    return str(uuid.uuid5(_NS, f"drain:{drain_id}"))


class PlatformRoutes:
    """Registers the Platform API routes on a router."""

    def __init__(self, control: Control, public_url: str, account_email: str) -> None:
        self.control = control
        self.public_url = public_url.rstrip("/")
        self.email = account_email

    def register(self, r: Router) -> None:
        e = PLATFORM_ERRORS
        r.add("GET", r"/account", self.account, errors=e)
        r.add("GET", r"/users/~/apps", self.list_apps, errors=e)
        r.add("GET", r"/apps", self.list_apps, errors=e)
        r.add("POST", r"/apps", self.create_app, errors=e)
        r.add("POST", r"/teams/apps", self.create_app, errors=e)
        r.add("GET", rf"/apps/{_APP}", self.get_app, errors=e)
        r.add("DELETE", rf"/apps/{_APP}", self.delete_app, errors=e)
        r.add("POST", rf"/apps/{_APP}/log-sessions", self.create_log_session, errors=e)
        r.add("GET", rf"/apps/{_APP}/log-drains", self.list_drains, errors=e)
        r.add("POST", rf"/apps/{_APP}/log-drains", self.add_drain, errors=e)
        r.add("GET", rf"/apps/{_APP}/log-drains/([^/]+)", self.get_drain, errors=e)
        r.add("DELETE", rf"/apps/{_APP}/log-drains/([^/]+)", self.remove_drain, errors=e)

    # helpers ----------------------------------------------------------------------------

    def app_json(self, channel: Channel) -> dict[str, Any]:
        name = channel.name or channel.id
        created = _iso(channel.record.created_at)
        return {
            "id": str(uuid.uuid5(_NS, f"app:{channel.id}")), "name": name,
            "created_at": created, "updated_at": created, "released_at": created,
            "generation": {"name": "cedar"}, "owner": {"email": self.email},
            "region": {"name": "us"}, "stack": {"name": "logrouter"},
            "locked": False, "internal_routing": False, "maintenance": False,
            "web_url": None, "git_url": None, "channel_id": channel.id,
        }

    def drain_json(self, channel: Channel, d: DrainRecord) -> dict[str, Any]:
        return {
            "id": drain_uuid(d.id), "token": d.token, "url": d.url, "addon": None,
            "app": {"id": str(uuid.uuid5(_NS, f"app:{channel.id}")), "name": channel.name or channel.id},
            "created_at": _iso(d.created_at), "updated_at": _iso(d.updated_at),
        }

    def _find_drain(self, channel: Channel, ref: str) -> DrainRecord | None:
        for d in channel.drains.values():
            if d.url is not None and ref in (str(d.id), drain_uuid(d.id), d.token, d.url):
                return d
        return None

    # account and apps -------------------------------------------------------------------

    async def account(self, call: Call) -> Response:
        return json_response(200, {"email": self.email, "id": str(uuid.uuid5(_NS, "account")),
                                   "name": "logrouter"})

    async def list_apps(self, call: Call) -> Response:
        """Apps sorted by name, paged the Platform API way: at most ``max`` (default and
        cap :data:`PAGE_MAX`) per answer; a ``206`` with ``Next-Range`` means more follow
        (the CLI asks again with ``Range:`` set to it)."""
        wanted = parse_range(call.request.header("range"))
        if wanted is None:
            return platform_error(416, "requested_range_not_satisfiable",
                                  "Range must look like: name ]last-name..; max=1000")
        start, inclusive, size = wanted
        keyed = sorted((c.name or c.id, c.id) for c in self.control.table.channels.values())
        first = bisect.bisect_left(keyed, (start, "")) if inclusive else \
            bisect.bisect_right(keyed, (start, "\U0010ffff"))
        page = keyed[first:first + size]
        apps = []
        for i, (_, channel_id) in enumerate(page):
            channel = self.control.table.get(channel_id)
            if channel is not None:
                apps.append(self.app_json(channel))
            if i % 200 == 199:
                await trio.lowlevel.checkpoint()
        if first + size < len(keyed):
            return json_response(206, apps, [("Next-Range", f"name ]{page[-1][0]}..; max={size}")])
        return json_response(200, apps)

    async def create_app(self, call: Call) -> Response:
        body = call.json_object()
        name = body.get("name")
        if name is None:
            name = f"app-{uuid.uuid4().hex[:12]}"
        if not isinstance(name, str) or not _APP_NAME.match(name):
            return platform_error(422, "invalid_params",
                                  "Name must start with a letter and can only contain lowercase "
                                  "letters, numbers, and dashes.")
        if self.control.table.find(name) is not None:
            return platform_error(422, "invalid_params", f"Name {name} is already taken")
        try:
            channel = await self.control.create_channel(name, ["app", "heroku"], channel_id=name)
        except ConflictError:
            return platform_error(422, "invalid_params", f"Name {name} is already taken")
        return json_response(201, self.app_json(channel))

    async def get_app(self, call: Call) -> Response:
        channel = self.control.table.find(call.params[0])
        if channel is None:
            return json_response(404, _NOT_FOUND_APP)
        return json_response(200, self.app_json(channel))

    async def delete_app(self, call: Call) -> Response:
        channel = self.control.table.find(call.params[0])
        if channel is None:
            return json_response(404, _NOT_FOUND_APP)
        body = self.app_json(channel)
        await self.control.delete_channel(channel.id)
        return json_response(200, body)

    # logs ---------------------------------------------------------------------------------

    async def create_log_session(self, call: Call) -> Response:
        channel = self.control.table.find(call.params[0])
        if channel is None:
            return json_response(404, _NOT_FOUND_APP)
        body = call.json_object()
        lines, tail = body.get("lines", 100), body.get("tail", False)
        dyno, source = body.get("dyno"), body.get("source")
        if isinstance(lines, bool) or not isinstance(lines, int) or lines < 0 \
                or not isinstance(tail, bool) or not isinstance(dyno, str | None) \
                or not isinstance(source, str | None):
            return platform_error(422, "invalid_params",
                                  "lines must be a number, tail a boolean, dyno and source strings.")
        session = await self.control.create_session(channel.id, min(lines, 100_000), tail,
                                                    dyno, source)
        created = _iso(session.created_at)
        url = f"{self.public_url}/sessions/{session.id}?srv={int(session.created_at)}"
        return json_response(201, {"id": session.id, "logplex_url": url,
                                   "created_at": created, "updated_at": created})

    # drains -------------------------------------------------------------------------------

    async def list_drains(self, call: Call) -> Response:
        channel = self.control.table.find(call.params[0])
        if channel is None:
            return json_response(404, _NOT_FOUND_APP)
        drains = sorted((d for d in channel.drains.values() if d.url is not None), key=lambda d: d.id)
        return json_response(200, [self.drain_json(channel, d) for d in drains])

    async def add_drain(self, call: Call) -> Response:
        channel = self.control.table.find(call.params[0])
        if channel is None:
            return json_response(404, _NOT_FOUND_APP)
        url = call.json_object().get("url")
        if not isinstance(url, str):
            return platform_error(422, "invalid_params", _BAD_URL)
        try:
            drain = await self.control.add_drain(channel.id, url)
        except ValidationError as exc:
            reason = str(exc).removeprefix("Invalid drain destination: ")
            return platform_error(422, "invalid_params", f"{_BAD_URL} ({reason})")
        except ConflictError:
            return platform_error(422, "invalid_params", "Url has already been taken")
        except LimitError:
            return platform_error(422, "invalid_params",
                                  f"You can add at most {self.control.max_drains} drains to an app.")
        return json_response(201, self.drain_json(channel, drain))

    def _app_drain(self, call: Call) -> tuple[Channel, DrainRecord] | Response:
        """The app and drain a ``/apps/<app>/log-drains/<ref>`` path names, or the 404."""
        channel = self.control.table.find(call.params[0])
        if channel is None:
            return json_response(404, _NOT_FOUND_APP)
        drain = self._find_drain(channel, call.params[1])
        if drain is None:
            return json_response(404, _NOT_FOUND_DRAIN)
        return channel, drain

    async def get_drain(self, call: Call) -> Response:
        found = self._app_drain(call)
        if isinstance(found, Response):
            return found
        channel, drain = found
        return json_response(200, self.control.with_status(drain.id, self.drain_json(channel, drain)))

    async def remove_drain(self, call: Call) -> Response:
        found = self._app_drain(call)
        if isinstance(found, Response):
            return found
        channel, drain = found
        body = self.drain_json(channel, drain)
        try:
            await self.control.delete_drain(channel.id, drain.id)
        except NotFoundError:
            return json_response(404, _NOT_FOUND_DRAIN)
        return json_response(200, body)
