"""A blocking client of a router's Platform API (apps, log sessions, drains).

Blocking on purpose: a command-line client does one thing at a time. Every
failure becomes a :class:`ClientError` with a one-line message a person can act
on (router unreachable, key refused, unknown app, the router's own message).
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote, urlsplit

__all__ = ["ClientError", "RouterClient"]


class ClientError(Exception):
    """A request failed; ``str()`` is the message to print."""


class RouterClient:
    """Talks to the control API at ``url`` with ``auth_key``."""

    def __init__(self, url: str, auth_key: str, timeout: float = 30.0,
                 key_file: str = "./.logrouter/auth_key") -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ClientError(f"not a router URL: {url!r}")
        self.url = f"{parts.scheme}://{parts.netloc}"
        self.auth_key = auth_key
        self.timeout = timeout
        self.key_file = key_file

    def _connection(self, url: str, timeout: float | None) -> http.client.HTTPConnection:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme == "https":
            return http.client.HTTPSConnection(host, parts.port, timeout=timeout,
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(host, parts.port, timeout=timeout)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """One JSON call; returns the decoded body."""
        conn = self._connection(self.url, self.timeout)
        headers = {"Authorization": f"Bearer {self.auth_key}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, data, headers)
            resp = conn.getresponse()
            raw = resp.read()
        except OSError as exc:
            raise ClientError(f"cannot reach the router at {self.url} ({exc.strerror or exc}): "
                              "is `logrouter serve` running there? (--url or LOGROUTER_URL)"
                              ) from None
        finally:
            conn.close()
        if resp.status == 401:
            if not self.auth_key:
                raise ClientError(f"no API key for {self.url}: looked in --auth-key, "
                                  f"LOGROUTER_AUTH_KEY and {self.key_file} (`logrouter key` on "
                                  "the router's host prints it)")
            raise ClientError(f"the router at {self.url} refused the auth key "
                              "(--auth-key or LOGROUTER_AUTH_KEY)")
        try:
            decoded = json.loads(raw) if raw else None
        except ValueError:
            decoded = None
        if resp.status >= 400:
            message = decoded.get("message") if isinstance(decoded, dict) else None
            if resp.status == 404 and path.startswith("/apps/") and message:
                message = f"{message} (app {unquote(path.split('/')[2])!r})"
            raise ClientError(message or f"HTTP {resp.status} for {method} {path}")
        return decoded

    # resources -------------------------------------------------------------------

    def apps(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/apps")
        return result

    def account(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/account")
        return result

    def create_app(self, name: str | None) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", "/apps", {"name": name} if name else {})
        return result

    def destroy_app(self, app: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("DELETE", f"/apps/{quote(app, safe='')}")
        return result

    def drains(self, app: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", f"/apps/{quote(app, safe='')}/log-drains")
        return result

    def drain(self, app: str, ref: str) -> dict[str, Any]:
        """One drain, with its delivery ``status`` when it runs on this router."""
        result: dict[str, Any] = self.request(
            "GET", f"/apps/{quote(app, safe='')}/log-drains/{quote(ref, safe='')}")
        return result

    def add_drain(self, app: str, url: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", f"/apps/{quote(app, safe='')}/log-drains",
                                              {"url": url})
        return result

    def remove_drain(self, app: str, ref: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "DELETE", f"/apps/{quote(app, safe='')}/log-drains/{quote(ref, safe='')}")
        return result

    def tokens(self, app: str) -> dict[str, str]:
        channel = self.request("GET", f"/apps/{quote(app, safe='')}")["channel_id"]
        data = self.request("GET", f"/v3/channels/{quote(channel, safe='')}")
        tokens: dict[str, str] = data.get("tokens", {})
        return tokens

    def log_session(self, app: str, lines: int, dyno: str | None, source: str | None,
                    tail: bool) -> str:
        body: dict[str, Any] = {"lines": lines, "tail": tail}
        if dyno:
            body["dyno"] = dyno
        if source:
            body["source"] = source
        url: str = self.request("POST", f"/apps/{quote(app, safe='')}/log-sessions", body)["logplex_url"]
        return url

    def stream(self, session_url: str, last_event_id: str | None = None,
               ) -> Iterator[tuple[str, str]]:
        """Read a session as SSE; yield ``("data", line)``, ``("id", id)`` and ``("retry", ms)``.

        Returns at the stream's clean end. Raises ClientError when it cannot
        open it or the connection breaks.
        """
        parts = urlsplit(session_url)
        conn = self._connection(session_url, None)
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        try:
            conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""),
                         headers=headers)
            resp = conn.getresponse()
            if resp.status == 404:
                raise ClientError("the log session expired; run the command again")
            if resp.status != 200:
                raise ClientError(f"log stream failed: HTTP {resp.status}")
            data: list[str] = []
            while True:
                raw = resp.readline()
                if not raw:
                    return
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if not line:
                    if data:
                        yield "data", "\n".join(data)
                        data = []
                    continue
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "data":
                    data.append(value)
                elif name in ("id", "retry"):
                    yield name, value
        except (OSError, http.client.HTTPException) as exc:
            raise ClientError(f"log stream broke: {exc}") from None
        finally:
            conn.close()
