"""The rest of the Logplex API contract: request-id, canary sessions, 405s, chunked v3 logs."""

from __future__ import annotations

from tests.conftest import Router
from tests.helpers import frame, octet, open_request, request


async def test_every_response_carries_a_request_id(router: Router) -> None:
    echoed = await router.api("GET", "/v3/channels/nope", headers={"Request-Id": "abc-123"})
    assert echoed.status == 404 and echoed.headers["request-id"] == "abc-123"
    fresh = await router.api("POST", "/channels", {"name": "x", "tokens": ["app"]})
    assert fresh.status == 201 and len(fresh.headers["request-id"]) == 36
    refused = await request(router.api_port, "GET", "/v2/channels/1")  # no key
    assert refused.status == 401 and "request-id" in refused.headers


async def test_canary_session_is_fetched_without_a_tail(router: Router) -> None:
    cid, tokens = await router.create_channel()
    await router.send_tcp(octet(*[frame(tokens["app"], f"canary {i}") for i in range(3)]))
    await router.wait_history(cid, 3)
    resp = await router.api("POST", "/v2/canary-sessions",
                            {"channel_id": cid, "num": "2", "tail": "true"})
    url = resp.json()["url"]
    assert resp.status == 201 and url.startswith("/v2/canary-fetch/")
    stream = await open_request(router.api_port, "GET", url)
    body = await stream.read_to_end(timeout=3)  # ends: a canary never tails
    await stream.aclose()
    assert body.decode().splitlines() == [
        "2026-11-26T10:00:00.000000+00:00 app[web.1]: canary 1",
        "2026-11-26T10:00:00.000000+00:00 app[web.1]: canary 2"]


async def test_known_route_with_another_method_is_405(router: Router) -> None:
    await router.api("PUT", "/v3/channels/demo", {"tokens": ["app"]})
    head = await router.api("HEAD", "/v3/channels/demo")
    assert head.status == 200 and head.body == b""
    patch = await router.api("PATCH", "/v3/channels/demo")
    assert patch.status == 405 and patch.json() == {"error": "Method Not Allowed"}
    missing = await router.api("HEAD", "/v3/channels/missing")
    assert missing.status == 404


async def test_v3_channel_logs_are_chunked(router: Router) -> None:
    await router.api("PUT", "/v3/channels/demo", {"tokens": ["app"]})
    token = (await router.api("GET", "/v3/channels/demo")).json()["tokens"]["app"]
    await router.send_tcp(octet(*[frame(token, f"line {i}") for i in range(300)]))
    await router.wait_history("demo", 300)
    resp = await router.api("GET", "/v3/channels/demo/logs?num=300")
    assert resp.status == 200 and resp.headers["transfer-encoding"] == "chunked"
    assert resp.headers["logplex-msg-count"] == "300" and resp.body.count(b" app web.1 - ") == 300


async def test_healthz_and_readyz_need_no_key(router: Router) -> None:
    alive = await request(router.api_port, "GET", "/healthz")
    ready = await request(router.api_port, "GET", "/readyz")
    assert alive.status == 200 and ready.status == 200 and ready.json() == {"status": "ready"}
