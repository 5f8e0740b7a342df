"""Service logs: one line per event on stderr, logfmt (default) or JSON, built on structlog.

Modules log events with fields — ``log.warning("drain_error", drain_id=3, error="refused")`` —
and :func:`configure` renders them::

    ts=2026-11-27T17:55:00.123456Z level=warn logger=logrouter.drains at=drain_error drain_id=3 error=refused

Values are quoted the logfmt way (``error="connect: refused"``), never as Python ``repr``; level
names are the ones the ``log_level`` setting takes (``debug``, ``info``, ``warn``, ``error``).
Records go through the standard library's logging, so test runners capture them as usual.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import Any

import structlog

__all__ = ["FORMATS", "LEVELS", "Throttle", "configure", "get_logger"]

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "error": logging.ERROR}
FORMATS = ("logfmt", "json")
_LEVEL_NAMES = {"warning": "warn", "exception": "error", "critical": "error"}


def _level_name(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    level = event.get("level")
    if isinstance(level, str):
        event["level"] = _LEVEL_NAMES.get(level, level)
    return event


_SHARED: list[Any] = [
    structlog.stdlib.add_log_level,
    _level_name,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
    structlog.processors.EventRenamer("at"),
]

structlog.configure(
    processors=[structlog.stdlib.filter_by_level, *_SHARED,
                structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)


def get_logger(name: str) -> Any:
    """A logger for ``name`` (``logrouter.<module>``)."""
    return structlog.stdlib.get_logger(name)


class Throttle:
    """Lets an event through at most once per ``interval`` seconds per key and counts what it
    held back: the service log's guard against a client, a receiver or a disk that causes the
    same event thousands of times a second. Keys are reasons or names from a bounded set."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def passes(self, key: str, count: int = 1) -> int:
        """0 when this event (weighing ``count``, at least 1) is held back; else the weight of
        the events of ``key`` since the last one that passed, this one included."""
        held = self._held.get(key, 0) + count
        now = time.monotonic()
        if now - self._last.get(key, -math.inf) < self.interval:
            self._held[key] = held
            return 0
        self._last[key] = now
        self._held.pop(key, None)
        return held


def configure(level: str = "info", fmt: str = "logfmt") -> None:
    """Send logrouter's service logs to stderr at ``level`` in ``fmt`` (``logfmt`` or ``json``)."""
    renderer: Any = (structlog.processors.JSONRenderer() if fmt == "json" else
                     structlog.processors.LogfmtRenderer(
                         key_order=["ts", "level", "logger", "at"], bool_as_flag=False))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer],
        foreign_pre_chain=_SHARED))
    root = logging.getLogger("logrouter")
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    root.propagate = False
