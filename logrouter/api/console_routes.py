"""The web console's files, served at ``/console/`` on the API port.

The console is static HTML, CSS and JavaScript modules shipped in the package
(``logrouter/console/``); it talks to the API with the key the user typed, kept in
the browser tab (``sessionStorage``). Its files need no key. Every answer carries a
strict Content-Security-Policy: scripts and styles from this origin only, no inline
script, no framing, connections to this origin only — log lines are hostile input,
and the page renders them as text.
"""

from __future__ import annotations

from importlib.resources import files

from logrouter.api.routing import Call, Router
from logrouter.transport.serving import Response

__all__ = ["CONSOLE_HEADERS", "ConsoleRoutes"]

#: Sent with every console file.
CONSOLE_HEADERS: list[tuple[str, str]] = [
    ("Content-Security-Policy",
     "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
     "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-cache"),
]

_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


def _load_assets() -> dict[str, tuple[bytes, str]]:
    """Every console file by name, read once: a request can only name one of these."""
    assets: dict[str, tuple[bytes, str]] = {}
    for entry in files("logrouter.console").iterdir():
        suffix = entry.name[entry.name.rfind("."):]
        if entry.is_file() and suffix in _TYPES:
            assets[entry.name] = (entry.read_bytes(), _TYPES[suffix])
    return assets


class ConsoleRoutes:
    """Registers ``/console`` (a redirect), ``/console/`` and ``/console/<file>``."""

    def __init__(self) -> None:
        self.assets = _load_assets()

    def register(self, r: Router) -> None:
        r.add("GET", r"/console", self.index, auth=False)  # with or without the slash
        r.add("GET", r"/console/([A-Za-z0-9_.-]+)", self.asset, auth=False)

    async def index(self, call: Call) -> Response:
        if not call.request.path.endswith("/"):  # relative URLs need the slash
            return Response(308, b"", "text/plain",
                            headers=[("Location", "/console/"), *CONSOLE_HEADERS])
        return self._file("index.html")

    async def asset(self, call: Call) -> Response:
        return self._file(call.params[0])

    def _file(self, name: str) -> Response:
        found = self.assets.get(name)
        if found is None:
            return Response(404, b"Not found\n", "text/plain", headers=list(CONSOLE_HEADERS))
        body, content_type = found
        return Response(200, body, content_type, headers=list(CONSOLE_HEADERS))
