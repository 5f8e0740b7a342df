"""The control API: Logplex v1/v2/v3 routes, session streams, health and metrics."""

from logrouter.api.app import ApiHandler
from logrouter.api.session_stream import SessionStreamer

__all__ = ["ApiHandler", "SessionStreamer"]
