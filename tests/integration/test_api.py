"""Control API: Logplex v1, v2 and v3 routes with their error cases, and auth."""

from __future__ import annotations

import base64

import pytest

from tests.conftest import AUTH_KEY, Router
from tests.helpers import basic


@pytest.mark.parametrize("auth", [
    "Basic " + AUTH_KEY,  # Logplex: raw key in place of base64
    basic("", AUTH_KEY), basic("anyone", AUTH_KEY), "Bearer " + AUTH_KEY,
])
async def test_accepted_auth_forms(router: Router, auth: str) -> None:
    resp = await router.api("GET", "/healthcheck", auth=auth)
    assert resp.status == 200 and resp.json() == {"status": "normal"}


@pytest.mark.parametrize("auth", [None, "Basic wrong", basic("", "wrong"), "Bearer wrong",
                                  "Basic " + base64.b64encode(AUTH_KEY.encode()).decode(), "Digest x"])
async def test_rejected_auth(router: Router, auth: str | None) -> None:
    resp = await router.api("POST", "/channels", {"name": "x"}, auth=auth)
    assert resp.status == 401 and resp.body == b"Not Authorized"
    assert resp.headers["www-authenticate"] == "Basic realm=Logplex"


async def test_unauthenticated_routes(router: Router) -> None:
    assert (await router.api("GET", "/v3/healthcheck", auth=None)).body == b"OK"
    metrics = await router.api("GET", "/metrics", auth=None)
    assert metrics.status == 200 and b"logrouter_messages_received_total" in metrics.body
    assert (await router.api("GET", "/sessions/not-a-session", auth=None)).status == 404


async def test_unknown_route_and_method(router: Router) -> None:
    assert (await router.api("GET", "/nope")).status == 404
    assert (await router.api("PATCH", "/channels")).status == 405


async def test_v1_channel_lifecycle(router: Router) -> None:
    resp = await router.api("POST", "/channels", {"name": "demo", "tokens": ["app"]})
    assert resp.status == 201
    data = resp.json()
    cid = data["channel_id"]
    assert isinstance(cid, int) and data["tokens"]["app"].startswith("t.")
    resp = await router.api("POST", f"/channels/{cid}/token", {"name": "heroku"})
    assert resp.status == 201 and resp.body.startswith(b"t.")
    info = (await router.api("GET", f"/channels/{cid}/info")).json()
    assert info["channel_id"] == cid and set(info["tokens"]) == {"app", "heroku"}
    resp = await router.api("POST", f"/channels/{cid}/drains/tokens")
    assert resp.status == 201 and resp.json()["msg"] == "Successfully reserved drain token"
    assert (await router.api("POST", f"/channels/{cid}/drains", {})).status == 501
    assert (await router.api("DELETE", f"/channels/{cid}")).body == b"OK"
    assert (await router.api("DELETE", f"/channels/{cid}")).status == 404
    assert (await router.api("GET", f"/channels/{cid}/info")).status == 404


async def test_v1_errors(router: Router) -> None:
    resp = await router.api("POST", "/channels", {"name": 5})
    assert (resp.status, resp.body) == (400, b"Channel name must be a string.")
    assert (await router.api("POST", "/channels", b"{not json")).status == 400
    resp = await router.api("POST", "/channels", {})
    assert resp.status == 201 and resp.json()["tokens"] == []
    cid = resp.json()["channel_id"]
    resp = await router.api("POST", f"/channels/{cid}/token", {})
    assert (resp.status, resp.body) == (400, b"'name' post param missing")


async def test_v2_channel_tokens_and_drains(router: Router) -> None:
    cid, _ = await router.create_channel()
    resp = await router.api("POST", f"/v2/channels/{cid}/tokens", {"name": "extra"})
    assert resp.status == 201 and resp.json()["name"] == "extra"
    resp = await router.api("POST", f"/v2/channels/{cid}/tokens", {})
    assert (resp.status, resp.json()) == (422, {"error": "NAME is a required field"})
    resp = await router.api("POST", f"/v2/channels/{cid}/drains", {"url": "syslog://logs.example.com:514"})
    assert resp.status == 201
    drain = resp.json()
    assert drain["token"].startswith("d.") and drain["url"] == "syslog://logs.example.com:514"
    resp = await router.api("POST", f"/v2/channels/{cid}/drains", {"url": "syslog://logs.example.com:514"})
    assert (resp.status, resp.json()) == (409, {"error": "Already exists"})
    resp = await router.api("POST", f"/v2/channels/{cid}/drains", {"host": "h.example.com", "port": 515})
    assert resp.json()["url"] == "syslog://h.example.com:515"
    resp = await router.api("POST", f"/v2/channels/{cid}/drains", {"url": "ftp://x"})
    assert resp.status == 422 and resp.json()["error"].startswith("Invalid drain destination")
    for i in range(4):
        assert (await router.api("POST", f"/v2/channels/{cid}/drains",
                                 {"url": f"https://d{i}.example.com/logs"})).status == 201
    resp = await router.api("POST", f"/v2/channels/{cid}/drains", {"url": "https://seven.example.com/"})
    assert resp.status == 422 and "maximum number of drains" in resp.json()["error"]
    chan = (await router.api("GET", f"/v2/channels/{cid}")).json()
    assert len(chan["drains"]) == 6 and {t["name"] for t in chan["tokens"]} == {"app", "heroku", "extra"}
    resp = await router.api("DELETE", f"/v2/channels/{cid}/drains/{drain['id']}")
    assert resp.status == 200
    resp = await router.api("DELETE", f"/v2/channels/{cid}/drains/{drain['id']}")
    assert (resp.status, resp.json()) == (404, {"error": "Not found"})
    assert (await router.api("POST", "/v2/channels/999/drains", {"url": "syslog://a"})).json() == {
        "error": "No such channel"}
    assert (await router.api("DELETE", f"/v2/channels/{cid}")).status == 200
    assert (await router.api("GET", f"/v2/channels/{cid}")).json() == {"error": "Not Found"}


async def test_v2_reserved_drain_gets_url(router: Router) -> None:
    cid, _ = await router.create_channel()
    reserved = (await router.api("POST", f"/channels/{cid}/drains/tokens")).json()
    resp = await router.api("POST", f"/v2/channels/{cid}/drains/{reserved['id']}",
                            {"url": "syslog+tls://logs.example.com:6514"})
    assert resp.status == 201 and resp.json() == {
        "id": reserved["id"], "token": reserved["token"], "url": "syslog+tls://logs.example.com:6514"}
    resp = await router.api("POST", f"/v2/channels/{cid}/drains/9999", {"url": "syslog://a"})
    assert (resp.status, resp.json()) == (404, {"error": "Unknown drain."})


async def test_v3_channels_tokens_drains(router: Router) -> None:
    resp = await router.api("PUT", "/v3/channels/app-123", {"tokens": ["app", "heroku"]})
    assert resp.status == 201
    body = resp.json()
    assert body["channel"] == "app-123" and set(body["tokens"]) == {"app", "heroku"}
    assert "drains" not in body
    resp = await router.api("PUT", "/v3/channels/app-123", {"tokens": ["app"]})
    assert resp.status == 200 and set(resp.json()["tokens"]) == {"app"}
    assert resp.json()["tokens"]["app"] == body["tokens"]["app"]  # idempotent: kept
    assert (await router.api("PUT", "/v3/channels/app-123", b"[1]")).status == 400
    resp = await router.api("POST", "/v3/channels/app-123/tokens", {"name": "extra"})
    assert resp.status == 200 and resp.json()["name"] == "extra"
    assert (await router.api("POST", "/v3/channels/app-123/tokens", {})).status == 400
    assert (await router.api("POST", "/v3/channels/nope/tokens", {"name": "a"})).status == 404
    resp = await router.api("POST", "/v3/channels/app-123/drains", {})
    assert resp.status == 201 and "url" not in resp.json()
    did = resp.json()["id"]
    assert resp.headers["location"].endswith(f"/v3/channels/app-123/drains/{did}")
    resp = await router.api("PUT", f"/v3/channels/app-123/drains/{did}", {"url": "https://a.example.com/x"})
    assert resp.status == 200 and resp.json()["url"] == "https://a.example.com/x"
    resp = await router.api("POST", "/v3/channels/app-123/drains", {"url": "https://a.example.com/x"})
    assert (resp.status, resp.json()) == (409, {"error": "already exists"})
    assert (await router.api("POST", "/v3/channels/app-123/drains", {"url": "nope"})).status == 400
    assert (await router.api("GET", f"/v3/channels/app-123/drains/{did}")).json()["url"] == (
        "https://a.example.com/x")
    assert (await router.api("DELETE", f"/v3/channels/app-123/drains/{did}")).status == 204
    assert (await router.api("DELETE", f"/v3/channels/app-123/drains/{did}")).status == 404
    assert (await router.api("GET", "/v3/channels/app-123")).status == 200
    assert (await router.api("DELETE", "/v3/channels/app-123")).status == 204
    assert (await router.api("GET", "/v3/channels/app-123")).status == 404


async def test_v3_max_drains(router: Router) -> None:
    await router.api("PUT", "/v3/channels/c", {})
    for i in range(6):
        assert (await router.api("POST", "/v3/channels/c/drains",
                                 {"url": f"syslog://h{i}.example.com"})).status == 201
    resp = await router.api("POST", "/v3/channels/c/drains", {"url": "syslog://h9.example.com"})
    assert (resp.status, resp.json()) == (422, {"error": "maximum number of drains reached"})


async def test_config_survives_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import trio

    from logrouter.node import Node
    from tests.conftest import Router as R
    from tests.conftest import make_settings

    settings = make_settings(tmp_path)
    node = Node(settings, announce=lambda line: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        r = R(node)
        cid, tokens = await r.create_channel()
        await r.api("POST", f"/v2/channels/{cid}/drains", {"url": "syslog://a.example.com"})
        node.request_stop()
    node2 = Node(settings, announce=lambda line: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(node2.run)
        chan = (await R(node2).api("GET", f"/v2/channels/{cid}")).json()
        assert {t["token"] for t in chan["tokens"]} == set(tokens.values())
        assert chan["drains"][0]["url"] == "syslog://a.example.com"
        cid2, _ = await R(node2).create_channel()
        assert cid2 != cid
        node2.request_stop()
