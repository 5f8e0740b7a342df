"""The OpenAPI document describes exactly the routes served; schemathesis fuzzes a live router
against it (no 5xx, answers as documented)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from logrouter.api.openapi import document
from tests.conftest import Router
from tests.helpers import request
from tests.procs import AUTH_KEY, RouterProcess

_PARAM = re.compile(r"\{[^}]+\}")


def example(path: str) -> str:
    return _PARAM.sub("123", path)


async def test_every_route_is_documented_and_nothing_else(router: Router) -> None:
    routes = router.node._servers[2].handler.router.routes  # type: ignore[attr-defined]
    doc = document("http://x", "0")
    documented = [(m.upper(), p) for p, item in doc["paths"].items() for m in item]
    for method, path in documented:
        assert any(r.method == method and r.pattern.match(example(path)) for r in routes), \
            (method, path)
    for route in routes:
        assert any(m == route.method and route.pattern.match(example(p)) for m, p in documented), \
            (route.method, route.pattern.pattern)
    resp = await request(router.api_port, "GET", "/openapi.json")
    assert resp.status == 200 and resp.json()["openapi"].startswith("3.")


def test_schemathesis_against_a_live_router(tmp_path: Path) -> None:
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if cli is None:
        pytest.fail("schemathesis is needed (pip install -e '.[test]')")
    proc = RouterProcess(tmp_path / "data")
    proc.start()
    try:
        # what the documented examples name: channel 1, app/channel "demo", drain 1
        proc.api("POST", "/channels", {"name": "one", "tokens": ["app"]})
        proc.api("POST", "/apps", {"name": "demo"})
        proc.api("POST", "/v2/channels/1/drains", {"url": "syslog://192.0.2.1:514"})
        proc.api("POST", "/apps/demo/log-drains", {"url": "https://192.0.2.1/logs"})
        result = subprocess.run(
            [cli, "run", f"{proc.api_url}/openapi.json", "-H", f"Authorization: Bearer {AUTH_KEY}",
             "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
             "response_schema_conformance", "--max-examples", "25", "--workers", "1",
             "--seed", "1", "--phases", "examples,coverage,fuzzing", "--request-timeout", "10",
             "--suppress-health-check", "all", "--exclude-path", "/sessions/{id}",
             "--exclude-deprecated"],
            capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
        assert proc.proc is not None and proc.proc.poll() is None  # still running
    finally:
        proc.stop()
