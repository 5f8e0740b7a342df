"""The console's files: served without a key, only the shipped ones, with a strict CSP."""

from __future__ import annotations

from tests.conftest import Router
from tests.helpers import request


async def test_console_page_and_files_carry_a_strict_policy(router: Router) -> None:
    page = await request(router.api_port, "GET", "/console/")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert b'<script type="module" src="/console/console.js">' in page.body
    csp = page.headers["content-security-policy"]
    for rule in ("default-src 'none'", "script-src 'self'", "connect-src 'self'",
                 "frame-ancestors 'none'"):
        assert rule in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    script = await request(router.api_port, "GET", "/console/console.js")
    assert script.status == 200 and script.headers["content-type"].startswith("text/javascript")
    assert b"innerHTML" not in script.body  # log lines only ever become text
    style = await request(router.api_port, "GET", "/console/console.css")
    assert style.status == 200 and style.headers["content-type"].startswith("text/css")
    moved = await request(router.api_port, "GET", "/console")
    assert moved.status == 308 and moved.headers["location"] == "/console/"


async def test_only_shipped_files_are_served(router: Router) -> None:
    for path in ("/console/nope.js", "/console/__init__.py", "/console/..%2f..%2fsettings.py"):
        resp = await request(router.api_port, "GET", path)
        assert resp.status == 404, path
    resp = await request(router.api_port, "GET", "/console/../v3/stats")
    assert resp.status in (401, 404)


async def test_scripts_get_a_401_without_a_basic_challenge(router: Router) -> None:
    plain = await request(router.api_port, "GET", "/v3/stats", auth="Bearer wrong")
    assert plain.status == 401 and "www-authenticate" in plain.headers  # Logplex clients
    scripted = await request(router.api_port, "GET", "/v3/stats", auth="Bearer wrong",
                             headers={"X-Requested-With": "logrouter-console"})
    assert scripted.status == 401 and "www-authenticate" not in scripted.headers
