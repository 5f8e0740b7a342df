"""TLS client connections (drains, shuttle): verified by default (system store or a CA file), TLS 1.2+."""

from __future__ import annotations

import functools
import ssl

import trio

from logrouter.destinations import DestinationPolicy

__all__ = ["cert_error", "client_context", "open_stream", "server_context"]


@functools.lru_cache(maxsize=8)
def client_context(insecure: bool, ca_file: str) -> ssl.SSLContext:
    """A client context; ``insecure`` (the URL fragment ``#insecure``) skips verification."""
    ctx = ssl.create_default_context(cafile=ca_file or None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server context for TLS ingest (RFC 5425 syslog, HTTPS logs): TLS 1.2+.

    Raises:
        OSError, ssl.SSLError: the certificate or key cannot be read or do not match.
    """
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


def cert_error(exc: BaseException) -> str | None:
    """The certificate problem behind ``exc`` (as trio wraps it), or None."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen.verify_message or seen.reason or "certificate verify failed"
        if isinstance(seen, ssl.SSLError) and "CERTIFICATE" in str(seen).upper():
            return seen.reason or "bad certificate"
        seen = seen.__cause__ or seen.__context__
    return None


async def open_stream(host: str, port: int, tls: bool, insecure: bool, ca_file: str,
                      policy: DestinationPolicy | None = None) -> trio.abc.Stream:
    """Connect, and for TLS complete the handshake (SNI and host name checked).

    With a ``policy``, the name is resolved first and only the addresses the policy
    allows are dialled, in order.

    Raises:
        OSError: resolution or every connect failed.
        DestinationRefused: every address of ``host`` is refused by ``policy``.
        trio.BrokenResourceError: the TLS handshake failed (see :func:`cert_error`).
    """
    if policy is None:
        tcp = await trio.open_tcp_stream(host, port)
    else:
        tcp = await _connect_allowed(host, port, policy)
    if not tls:
        return tcp
    stream = trio.SSLStream(tcp, client_context(insecure, ca_file), server_hostname=host)
    try:
        await stream.do_handshake()
    except BaseException:
        await trio.aclose_forcefully(tcp)
        raise
    return stream


async def _connect_allowed(host: str, port: int, policy: DestinationPolicy) -> trio.SocketStream:
    error: OSError | None = None
    for ip in await policy.resolve(host, port):
        try:
            return await trio.open_tcp_stream(ip, port)
        except OSError as exc:
            error = exc
    assert error is not None
    raise error
