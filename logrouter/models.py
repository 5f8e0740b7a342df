"""Frozen value types of the control plane. Standard library only.

A model that exists is valid: constructors and ``parse_*`` functions validate
and raise :class:`~logrouter.errors.ValidationError`.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from logrouter.errors import ValidationError

__all__ = [
    "DRAIN_SCHEMES", "ChannelRecord", "DrainRecord", "DrainUrl", "SessionRecord", "TokenRecord",
    "new_drain_token", "new_session_id", "new_token", "parse_drain_url",
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


def parse_drain_url(url: str) -> DrainUrl:
    """Validate a drain URL: ``syslog://``, ``syslog+tls://``, ``http://`` or ``https://``.

    The fragment ``#insecure`` turns certificate verification off (TLS kinds).

    Raises:
        ValidationError: another scheme, no host, a bad port, or not a URL.
    """
    if not isinstance(url, str) or not url or len(url) > 2048 or any(c.isspace() for c in url):
        raise ValidationError(f"Invalid drain destination: {url!r}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationError(f"Invalid drain destination: {url}") from None
    scheme = parts.scheme.lower()
    if scheme not in DRAIN_SCHEMES or not parts.hostname:
        raise ValidationError(f"Invalid drain destination: {url}")
    if port == 0:
        raise ValidationError(f"Invalid drain destination: {url}")
    if scheme.startswith("syslog") and (parts.path not in ("", "/") or parts.query):
        raise ValidationError(f"Invalid drain destination: {url}")
    return DrainUrl(url=url, scheme=scheme, host=parts.hostname,
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
