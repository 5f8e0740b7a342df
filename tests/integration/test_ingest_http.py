"""HTTP POST /logs: every status Logplex answers, plus our 413."""

from __future__ import annotations

import gzip

import pytest

from tests.conftest import AUTH_KEY, Router
from tests.helpers import basic, frame, octet, request

CT = {"Content-Type": "application/logplex-1"}


async def post(router: Router, body: bytes, auth: str | None, headers: dict[str, str] | None = None,
               method: str = "POST", path: str = "/logs"):  # type: ignore[no-untyped-def]
    return await request(router.logs_port, method, path, body, {**CT, **(headers or {})}, auth=auth)


async def test_token_basic_auth_204_and_cooking(router: Router) -> None:
    cid, tokens = await router.create_channel()
    tok = tokens["app"]
    body = octet(frame(tok, "one\n"), frame(tok, "two\n", procid="worker.3"))
    resp = await post(router, body, basic("token", tok), {"Logplex-Msg-Count": "2"})
    assert resp.status == 204 and resp.body == b""
    lines = await router.wait_history(cid, 2)
    assert lines[1] == b"<190>1 2026-11-26T10:00:00.000000+00:00 host app worker.3 - - two\n"


async def test_bearer_token_and_gzip(router: Router) -> None:
    cid, tokens = await router.create_channel()
    body = gzip.compress(octet(*(frame(tokens["app"], f"z{i}") for i in range(100))))
    resp = await post(router, body, f"Bearer {tokens['app']}", {"Content-Encoding": "gzip"})
    assert resp.status == 204
    assert len(await router.wait_history(cid, 100)) == 100


async def test_auth_key_credential_routes_by_app_name(router: Router) -> None:
    a, ta = await router.create_channel("a")
    b, tb = await router.create_channel("b")
    body = octet(frame(ta["app"], "to a"), frame(tb["app"], "to b"), frame("t.unknown", "lost"))
    resp = await post(router, body, basic("any", AUTH_KEY))
    assert resp.status == 204
    assert (await router.wait_history(a, 1))[0].endswith(b"to a")
    assert (await router.wait_history(b, 1))[0].endswith(b"to b")


@pytest.mark.parametrize("case", ["no_auth", "bad_token", "bad_cred", "garbage_auth"])
async def test_401_with_realm(router: Router, case: str) -> None:
    await router.create_channel()
    auth = {"no_auth": None, "bad_token": basic("token", "t.nope"),
            "bad_cred": basic("user", "wrong"), "garbage_auth": "Basic %%%"}[case]
    resp = await post(router, octet(frame("t.x", "m")), auth)
    assert resp.status == 401
    assert resp.headers["www-authenticate"] == "Basic realm=Logplex"


async def test_error_statuses_and_texts(router: Router) -> None:
    cid, tokens = await router.create_channel()
    auth = basic("token", tokens["app"])
    good = octet(frame(tokens["app"], "m"))
    cases = [
        (dict(body=good, headers={"Logplex-Msg-Count": "3"}), 400, "Message count mismatch"),
        (dict(body=b"<13>1 newline framed\n"), 400, "Malformed log messages"),
        (dict(body=octet(b"y" * 20000)), 400, "Malformed log messages"),
        (dict(body=b"junk", headers={"Content-Encoding": "gzip"}), 400, "Bad request"),
        (dict(body=good, headers={"Content-Type": "text/plain"}), 415, "Unsupported Media Type"),
        (dict(body=good, method="GET"), 405, "Method Not Allowed"),
    ]
    for kwargs, status, text in cases:
        resp = await post(router, kwargs.pop("body"), auth, **kwargs)  # type: ignore[arg-type]
        assert (resp.status, resp.reason, resp.body.decode()) == (status, text, text), kwargs
    assert len(router.node.table.get(cid).history) == 0  # type: ignore[union-attr]


async def test_413_past_the_body_limit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import trio

    from logrouter.node import Node
    from tests.conftest import make_settings

    node = Node(make_settings(tmp_path, max_body_bytes=1000), announce=lambda line: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        port = node.addresses["logs"][1]
        resp = await request(port, "POST", "/logs", b"x" * 5000, CT, auth=basic("token", "t.x"))
        assert resp.status == 413
        big = gzip.compress(b"1 x" * 10000)
        resp = await request(port, "POST", "/logs", big, {**CT, "Content-Encoding": "gzip"},
                             auth=basic("any", AUTH_KEY))
        assert resp.status == 413
        node.request_stop()


async def test_healthcheck_and_unknown_path(router: Router) -> None:
    resp = await request(router.logs_port, "GET", "/healthcheck")
    assert (resp.status, resp.body) == (200, b"OK")
    resp = await request(router.logs_port, "GET", "/nope")
    assert resp.status == 404


async def test_keep_alive_connection_serves_many_posts(router: Router) -> None:
    import trio

    cid, tokens = await router.create_channel()
    tok = tokens["app"]
    stream = await trio.open_tcp_stream("127.0.0.1", router.logs_port)
    body = octet(frame(tok, "ka"))
    req = (f"POST /logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/logplex-1\r\n"
           f"Authorization: Bearer {tok}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    await stream.send_all(req * 50)  # pipelined
    got = b""
    with trio.fail_after(5):
        while got.count(b"204 No Content") < 50:
            got += await stream.receive_some(65536)
    await stream.aclose()
    assert len(await router.wait_history(cid, 50)) == 50
