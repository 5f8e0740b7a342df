"""Careless and hostile control-plane input: clear 4xx answers, caps, no 500, safe files."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import trio

from logrouter.node import Node
from tests.conftest import Router, make_settings
from tests.helpers import frame, octet, request


async def test_drain_urls_that_cannot_be_encoded_are_refused_with_the_reason(router: Router) -> None:
    cid, _ = await router.create_channel()
    for url in ("http://127.0.0.1:1/€", "https://€€.example/", "syslog://a..b:514",
                "http://h.example:99999/"):
        v2 = await router.api("POST", f"/v2/channels/{cid}/drains", {"url": url})
        assert v2.status == 422 and "Invalid drain destination" in v2.json()["error"], url
        v3 = await router.api("POST", f"/v3/channels/{cid}/drains", {"url": url})
        assert v3.status == 400, url
    platform = await router.api("POST", f"/apps/{cid}/log-drains", {"url": "https://€€.example/"})
    assert platform.status == 422 and "U+20AC" in platform.json()["message"]
    assert not router.node.table.drains  # nothing stored


async def test_a_stored_drain_that_cannot_start_does_not_stop_the_node(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "d")
    node = Node(settings, announce=lambda _: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        cid, _ = await Router(node).create_channel()
        node.request_stop()
    db = sqlite3.connect(tmp_path / "d" / "config.sqlite3")  # as an older version stored it
    db.execute("INSERT INTO drains (id, channel_id, token, url, created_at, updated_at) "
               "VALUES (7, ?, 'd.x', 'http://127.0.0.1:1/€', 0, 0)", (cid,))
    db.commit()
    db.close()
    node = Node(settings, announce=lambda _: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        router = Router(node)
        status = (await router.api("GET", f"/v3/channels/{cid}/drains/7")).json()["status"]
        assert status["connected"] is False and status["last_error"].startswith("cannot start")
        resp = await router.api("DELETE", f"/v3/channels/{cid}/drains/7")
        assert resp.status == 204
        node.request_stop()


async def test_drains_into_the_router_itself_are_refused(router: Router) -> None:
    cid, tokens = await router.create_channel()
    for url in (f"http://token:{tokens['app']}@127.0.0.1:{router.logs_port}/logs",
                f"syslog://localhost:{router.syslog_port}",
                f"https://[::1]:{router.api_port}/"):
        resp = await router.api("POST", f"/v2/channels/{cid}/drains", {"url": url})
        assert resp.status == 422 and "own listener" in resp.json()["error"], url


async def test_denied_networks_are_refused_on_input_and_on_connect(tmp_path: Path) -> None:
    from tests.drains.sinks import SyslogSink

    sink = SyslogSink()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(sink.run)
        node = Node(make_settings(tmp_path / "d", drain_backoff_initial=0.05,
                                  drain_backoff_max=0.1), announce=lambda _: None)
        async with trio.open_nursery() as inner:
            await inner.start(node.run)
            router = Router(node)
            cid, tokens = await router.create_channel()
            resp = await router.api("POST", f"/v2/channels/{cid}/drains",
                                    {"url": f"syslog://127.0.0.1:{port}"})
            drain_id = resp.json()["id"]
            node.request_stop()
        dialled = sink.connections  # the first node may have connected (drains dial at start)
        node = Node(make_settings(tmp_path / "d", drain_deny_networks="127.0.0.0/8, ::1",
                                  drain_backoff_initial=0.05, drain_backoff_max=0.1),
                    announce=lambda _: None)
        async with trio.open_nursery() as inner:
            await inner.start(node.run)
            router = Router(node)
            resp = await router.api("POST", f"/v2/channels/{cid}/drains",
                                    {"url": "syslog://127.0.0.9:514"})
            assert resp.status == 422 and "denied network" in resp.json()["error"]
            await router.send_tcp(octet(frame(tokens["app"], "never delivered")))
            with trio.fail_after(5):
                while True:
                    status = (await router.api(
                        "GET", f"/v3/channels/{cid}/drains/{drain_id}")).json()["status"]
                    if (status["last_error"] or "").startswith("refused"):
                        break
                    await trio.sleep(0.05)
            assert "denied network" in status["last_error"] and sink.connections == dialled
            node.request_stop()
        nursery.cancel_scope.cancel()


async def test_caps_on_tokens_channels_and_reserved_drains(tmp_path: Path) -> None:
    node = Node(make_settings(tmp_path / "d", max_channels=3, max_tokens_per_channel=5,
                              max_reserved_drains_per_channel=2), announce=lambda _: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        router = Router(node)
        start = trio.current_time()
        resp = await router.api("PUT", "/v3/channels/big",
                                {"tokens": [f"t{i}" for i in range(90_000)]})
        assert resp.status == 422 and "max_tokens_per_channel" in resp.json()["error"]
        assert trio.current_time() - start < 2.0
        cid, _ = await router.create_channel(tokens=("a", "b", "c", "d", "e"))
        resp = await router.api("POST", f"/v2/channels/{cid}/tokens", {"name": "f"})
        assert resp.status == 422
        for _ in range(2):
            assert (await router.api("POST", f"/channels/{cid}/drains/tokens")).status == 201
        resp = await router.api("POST", f"/channels/{cid}/drains/tokens")
        assert resp.status == 422 and b"reserved" in resp.body
        await router.create_channel("two")
        await router.create_channel("three")
        resp = await router.api("POST", "/apps", {"name": "fourth"})
        assert resp.status == 422 and resp.json()["id"] == "limit_reached"
        node.request_stop()


async def test_bad_numbers_and_deep_json_are_400s_not_500s(router: Router) -> None:
    cid, tokens = await router.create_channel()
    deep = b"[" * 10_000 + b"]" * 10_000
    for path in ("/v2/sessions", "/v3/channels/x", "/apps"):
        method = "PUT" if path.startswith("/v3") else "POST"
        resp = await request(router.api_port, method, path, deep,
                             headers={"Content-Type": "application/json"},
                             auth=f"Bearer {router.node.auth_key}")
        assert resp.status == 400, (path, resp.body)
    for num in (2**63, 2**70, "9" * 5000, "²", "٣"):
        resp = await router.api("POST", "/v2/sessions", {"channel_id": cid, "num": num})
        assert resp.status == 201, (num, resp.body)
    for path in ("/v2/channels/" + "9" * 4400, f"/v2/channels/{cid}/drains/" + "9" * 4400,
                 "/v2/channels/²", "/channels/²/info"):
        resp = await router.api("GET", path)
        assert resp.status in (400, 404, 405), (path, resp.status)
    body = octet(frame(tokens["app"], "x"))
    resp = await request(router.logs_port, "POST", "/logs", body,
                         headers={"Content-Type": "application/logplex-1", "Logplex-Msg-Count": "²"},
                         auth=f"Bearer {tokens['app']}")
    assert resp.status == 400 and resp.reason == "Message count mismatch"
    resp = await request(router.api_port, "POST", "/v2/sessions",
                         json.dumps({"channel_id": cid, "num": 1e308}).encode(),
                         auth=f"Bearer {router.node.auth_key}")
    assert resp.status == 201


async def test_trailing_slash_on_post_logs(router: Router) -> None:
    cid, tokens = await router.create_channel()
    resp = await request(router.logs_port, "POST", "/logs/", octet(frame(tokens["app"], "slash")),
                         headers={"Content-Type": "application/logplex-1"},
                         auth=f"Bearer {tokens['app']}")
    assert resp.status == 204
    await router.wait_history(cid, 1)


async def test_data_dir_and_files_are_private(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir(mode=0o755)
    (data / "history.msgpack").write_bytes(b"")
    os.chmod(data / "history.msgpack", 0o644)
    settings = make_settings(data).replace(auth_key="")
    node = Node(settings, announce=lambda _: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        router = Router(node)
        resp = await router.api("POST", "/channels", {"name": "d", "tokens": ["app"]},
                                auth=f"Bearer {node.auth_key}")
        cid, token = str(resp.json()["channel_id"]), resp.json()["tokens"]["app"]
        await router.send_tcp(octet(frame(token, "secret line")))
        await router.wait_history(cid, 1)
        node.request_stop()
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
    names = sorted(os.listdir(data))
    assert {"auth_key", "config.sqlite3", "history.msgpack"} <= set(names)
    for name in names:
        assert stat.S_IMODE(os.stat(data / name).st_mode) == 0o600, name


async def test_app_list_is_paged_with_next_range(router: Router) -> None:
    control = router.node.control
    assert control is not None
    for i in range(1005):
        await control.create_channel(f"app-{i:04d}", ["app"], channel_id=f"app-{i:04d}")
    resp = await router.api("GET", "/apps")
    assert resp.status == 206 and len(resp.json()) == 1000
    assert resp.headers["next-range"] == "name ]app-0999..; max=1000"
    names: list[str] = []
    rng = "name ..; max=300"
    pages = 0
    while True:  # what the Heroku CLI does: repeat with Range until no Next-Range
        resp = await router.api("GET", "/apps", headers={"Range": rng})
        assert resp.status in (200, 206)
        names += [a["name"] for a in resp.json()]
        pages += 1
        if "next-range" not in resp.headers:
            break
        rng = resp.headers["next-range"]
    assert pages == 4 and names == sorted(f"app-{i:04d}" for i in range(1005))
    bad = await router.api("GET", "/apps", headers={"Range": "bogus"})
    assert bad.status == 416
