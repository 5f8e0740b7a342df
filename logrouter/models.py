"""Frozen value types of the control plane. Standard library (and the idna codec) only.

A model that exists is valid: constructors and ``parse_*`` functions validate
and raise :class:`~logrouter.errors.ValidationError`.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import idna

from logrouter.errors import ValidationError

__all__ = [
    "DRAIN_SCHEMES", "ChannelRecord", "DrainRecord", "DrainUrl", "SessionRecord", "TokenRecord",
    "drain_host", "new_drain_token", "new_session_id", "new_token", "parse_drain_url",
]

#: scheme → default port (Logplex §7.1).
DRAIN_SCHEMES = {"syslog": 601, "syslog+tls": 6514, "http": 80, "https": 443}


def new_token() -> str:
    """A channel token ``t.<uuid4>``."""
    return f"t.{uuid.uuid4()}"


def new_drain_token() -> str:
    """A drain token ``d.<uuid4>``."""
    return f"d.{uuid.uuid4()}"


def new_session_id() -> str:
    """An unguessable session id: a uuid4 from the OS random source (122 random bits)."""
    return str(uuid.UUID(bytes=secrets.token_bytes(16), version=4))


@dataclass(frozen=True, slots=True)
class ChannelRecord:
    """A channel (one app's log stream). ``id`` is numeric for v1/v2 channels."""

    id: str
    name: str
    created_at: float


@dataclass(frozen=True, slots=True)
class TokenRecord:
    token: str
    channel_id: str
    name: str


@dataclass(frozen=True, slots=True)
class DrainUrl:
    """A validated drain destination."""

    url: str
    scheme: str
    host: str
    port: int
    insecure: bool

    @property
    def kind(self) -> str:
        """``syslog`` (TCP or TLS) or ``http`` (HTTP or HTTPS)."""
        return "syslog" if self.scheme.startswith("syslog") else "http"

    @property
    def tls(self) -> bool:
        return self.scheme in ("syslog+tls", "https")


_HOST_LABELS = re.compile(r"[A-Za-z0-9_-]{1,63}(\.[A-Za-z0-9_-]{1,63})*\.?")
_URL_CHARS = re.compile(r"[!-~]+")  # printable ASCII, no space


def drain_host(host: str) -> str:
    """The ASCII form of a drain's host (an IP literal, or a DNS name, IDNA-encoded).

    Raises:
        ValidationError: not an IP address and not a name DNS could look up.
    """
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        ascii_host = host if host.isascii() else idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise ValidationError(f"Invalid drain destination: host {host!r}: {exc}") from None
    if len(ascii_host) > 253 or not _HOST_LABELS.fullmatch(ascii_host):
        raise ValidationError(f"Invalid drain destination: host {host!r} is not a valid name")
    return ascii_host.lower()


def parse_drain_url(url: str) -> DrainUrl:
    """Validate a drain URL: ``syslog://``, ``syslog+tls://``, ``http://`` or ``https://``.

    The fragment ``#insecure`` turns certificate verification off (TLS kinds). The host
    may be an IP literal or a DNS name (internationalised names are IDNA-encoded into
    :attr:`DrainUrl.host`); the rest of the URL must be printable ASCII (percent-encode
    anything else), so every byte that goes on the wire is known here.

    Raises:
        ValidationError: another scheme, no host or a host that is not a name, a bad
            port, non-ASCII outside the host, or not a URL; the text says which.
    """
    if not isinstance(url, str) or not url or len(url) > 2048:
        raise ValidationError("Invalid drain destination: a URL of 1 to 2048 characters is needed")
    if any(c.isspace() or not c.isprintable() for c in url):
        raise ValidationError(f"Invalid drain destination: {url!r} contains spaces or control "
                              "characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValidationError(f"Invalid drain destination: {url}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in DRAIN_SCHEMES:
        raise ValidationError(f"Invalid drain destination: {url}: the scheme must be syslog, "
                              "syslog+tls, http or https")
    if not parts.hostname:
        raise ValidationError(f"Invalid drain destination: {url}: no host")
    if port == 0:
        raise ValidationError(f"Invalid drain destination: {url}: port 0")
    if scheme.startswith("syslog") and (parts.path not in ("", "/") or parts.query):
        raise ValidationError(f"Invalid drain destination: {url}: a syslog URL has no path or "
                              "query (certificate checks are turned off with #insecure)")
    rest = url.replace(parts.hostname, "", 1) if not parts.hostname.isascii() else url
    if not _URL_CHARS.fullmatch(rest):
        raise ValidationError(f"Invalid drain destination: {url}: only the host may be "
                              "non-ASCII; percent-encode the path, query and user info")
    return DrainUrl(url=url, scheme=scheme, host=drain_host(parts.hostname),
                    port=port or DRAIN_SCHEMES[scheme], insecure=parts.fragment == "insecure")


@dataclass(frozen=True, slots=True)
class DrainRecord:
    """A drain: reserved (``url`` None) or provisioned."""

    id: int
    channel_id: str
    token: str
    url: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A log session: which channel, what backlog, whether it tails.

    ``opened_at`` is set the first time it is streamed; an unopened session
    expires ``session_expiry`` after ``created_at``, an opened one
    ``session_lifetime`` after ``opened_at``.
    """

    id: str
    channel_id: str
    num: int
    tail: bool
    ps: str | None
    source: str | None
    created_at: float
    opened_at: float | None = None
