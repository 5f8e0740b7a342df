"""TLS ingest: syslog over TLS (RFC 5425) and HTTPS on the logs port, with real clients."""

from __future__ import annotations

import shutil
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio
import trustme

from logrouter.errors import ConfigError
from logrouter.node import Node
from tests.conftest import Router, make_settings
from tests.helpers import frame, octet


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_router(nursery: trio.Nursery, tmp_path: Path, ca: trustme.CA) -> AsyncIterator[Router]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    settings = make_settings(tmp_path / "data", syslog_tls_port=0, syslog_tls_cert=str(cert_file),
                             syslog_tls_key=str(key_file), logs_tls_cert=str(cert_file),
                             logs_tls_key=str(key_file))
    lines: list[str] = []
    node = Node(settings, announce=lines.append)
    await nursery.start(node.run)
    assert any(line.startswith("listening syslog_tls tls ") for line in lines)
    assert any(line.startswith("listening logs https ") for line in lines)
    yield Router(node)
    node.request_stop()


async def test_syslog_over_tls_from_openssl_s_client(tls_router: Router, tmp_path: Path) -> None:
    """The real `openssl s_client` as the sender (Python's ssl module where it is missing)."""
    cid, tokens = await tls_router.create_channel()
    port = tls_router.node.addresses["syslog_tls"][1]
    data = octet(*[frame(tokens["app"], f"over tls {i}") for i in range(100)])
    if shutil.which("openssl"):
        proc = await trio.run_process(
            ["openssl", "s_client", "-quiet", "-no_ign_eof", "-verify_return_error",
             "-CAfile", str(tmp_path / "ca.pem"), "-connect", f"127.0.0.1:{port}"],
            stdin=data, capture_stdout=True, capture_stderr=True, check=False)
        detail = proc.stderr
    else:
        ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        stream = await trio.open_ssl_over_tcp_stream("127.0.0.1", port, ssl_context=ctx)
        await stream.send_all(data)
        await stream.aclose()
        detail = b"python ssl"
    history = await tls_router.wait_history(cid, 100)
    assert history[-1].endswith(b"over tls 99"), detail
    metrics = tls_router.node.metrics
    assert metrics.received.labels("syslog_tls")._value.get() == 100


async def test_plain_bytes_on_the_tls_port_are_refused_without_harm(tls_router: Router) -> None:
    cid, tokens = await tls_router.create_channel()
    port = tls_router.node.addresses["syslog_tls"][1]
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(octet(frame(tokens["app"], "plaintext")))
    with trio.fail_after(5):
        try:
            while await stream.receive_some(1024):
                pass
        except trio.BrokenResourceError:
            pass
    await stream.aclose()
    assert len(tls_router.node.table.get(cid).history) == 0  # type: ignore[union-attr]


async def test_https_post_logs_with_curl(tls_router: Router, tmp_path: Path) -> None:
    cid, tokens = await tls_router.create_channel()
    body = tmp_path / "body"
    body.write_bytes(octet(frame(tokens["app"], "over https")))
    url = f"https://127.0.0.1:{tls_router.logs_port}/logs"
    if shutil.which("curl"):
        proc = await trio.run_process(
            ["curl", "-sS", "--cacert", str(tmp_path / "ca.pem"), "-u", f"token:{tokens['app']}",
             "-H", "Content-Type: application/logplex-1", "--data-binary", f"@{body}",
             "-w", "%{http_code}", url], capture_stdout=True, capture_stderr=True, check=False)
        status, detail = proc.stdout, proc.stderr
    else:  # the tests' own HTTP client where curl is missing
        ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        async with httpx.AsyncClient(verify=ctx) as client:
            resp = await client.post(url, content=body.read_bytes(), headers={
                "Content-Type": "application/logplex-1", "Authorization": "Bearer " + tokens["app"]})
        status, detail = str(resp.status_code).encode(), resp.content
    assert status == b"204", detail
    assert (await tls_router.wait_history(cid, 1))[0].endswith(b"over https")


async def test_mismatched_tls_settings_are_config_errors(tmp_path: Path) -> None:
    from logrouter.settings import load_settings

    with pytest.raises(ConfigError, match="go together"):
        load_settings(environ={"LOGROUTER_SYSLOG_TLS_CERT": "/x.pem"})
    node = Node(make_settings(tmp_path / "d", syslog_tls_port=0, syslog_tls_cert="/nonexistent.pem",
                              syslog_tls_key="/nonexistent.key"), announce=lambda _: None)
    with pytest.raises(ConfigError, match="nonexistent"):
        await node.run()
