"""Exception hierarchy. Standard library only.

Errors raised by the sans-IO protocol layer say whose fault they are: a
:class:`PeerError` carries the HTTP status to answer with (the h11 habit), so the
I/O layer never has to guess.
"""

from __future__ import annotations

__all__ = [
    "BadJson", "ConfigError", "ConflictError", "DestinationRefused", "HttpClientError", "LimitError",
    "LogrouterError", "NotFoundError", "PeerError", "StoreUnavailable", "ValidationError",
]


class LogrouterError(Exception):
    """Base of every error logrouter raises on purpose."""


class ConfigError(LogrouterError):
    """A setting is missing or invalid; the process cannot start."""


class PeerError(LogrouterError):
    """The peer sent something we cannot accept.

    Attributes:
        status: the HTTP status to answer with.
        text: a one-line, human-readable reason (also the body).
        drop_reason: when the error drops log frames, the ``reason`` label they are
            counted under in ``logrouter_messages_malformed_total``.
    """

    def __init__(self, status: int, text: str, drop_reason: str | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.drop_reason = drop_reason


class BadJson(LogrouterError):
    """A request body is not the JSON its route needs (not JSON, too deep, not an object)."""


class NotFoundError(LogrouterError):
    """A channel, token, drain or session does not exist."""


class ConflictError(LogrouterError):
    """The object already exists (a drain URL on the same channel)."""


class LimitError(LogrouterError):
    """A configured maximum was reached (drains per channel)."""


class StoreUnavailable(LogrouterError):
    """The shared config store (Redis) did not answer: down, restarting or timed out."""


class ValidationError(LogrouterError):
    """A value given to the control plane is invalid (a drain URL, a name)."""


class DestinationRefused(LogrouterError):
    """A drain may not deliver to that address (this router itself, or a denied network)."""


class HttpClientError(LogrouterError):
    """A receiver's answer to logrouter's own HTTP client was not valid HTTP, or too large."""
