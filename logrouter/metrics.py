"""Prometheus metrics. Counted per batch, never per message.

A :class:`Metrics` owns its own registry (tests start many nodes in one
process). Labelled children used on hot paths are resolved once and cached:
``labels().inc()`` costs three times a plain ``inc()``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from logrouter import __version__
from logrouter.protocol.framing import DROP_REASONS
from logrouter.protocol.speedups import native

__all__ = ["CONTENT_TYPE", "MALFORMED_REASONS", "DrainRow", "Metrics"]

# ``*_created`` samples double the exposition for no use here.
disable_created_metrics()  # type: ignore[no-untyped-call]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Label values of ``logrouter_messages_malformed_total``.
MALFORMED_REASONS = (*DROP_REASONS, "no_token", "not_syslog", "http_body")


@dataclass(frozen=True, slots=True)
class DrainRow:
    """One drain's counters at scrape time."""

    drain_id: str
    delivered: int
    dropped: int
    buffered: int
    connects: int
    errors: int


class _DrainCollector(Collector):
    """Per-drain counters read from the running drains at scrape time (no per-batch cost;
    a removed drain's series disappear with it)."""

    def __init__(self, source: Callable[[], list[DrainRow]]) -> None:
        self.source = source

    def collect(self):  # type: ignore[no-untyped-def]
        labels = ["drain_id"]
        delivered = CounterMetricFamily("logrouter_drain_delivered", "Lines delivered per drain",
                                        labels=labels)
        dropped = CounterMetricFamily("logrouter_drain_dropped",
                                      "Lines a drain lost (reported as L10)", labels=labels)
        buffered = GaugeMetricFamily("logrouter_drain_buffered", "Lines waiting per drain",
                                     labels=labels)
        connects = CounterMetricFamily("logrouter_drain_connects",
                                       "Connections a drain opened to its receiver", labels=labels)
        errors = CounterMetricFamily("logrouter_drain_errors",
                                     "Failed connects, writes and requests per drain", labels=labels)
        for row in self.source():
            delivered.add_metric([row.drain_id], row.delivered)
            dropped.add_metric([row.drain_id], row.dropped)
            buffered.add_metric([row.drain_id], row.buffered)
            connects.add_metric([row.drain_id], row.connects)
            errors.add_metric([row.drain_id], row.errors)
        yield from (delivered, dropped, buffered, connects, errors)


class _Callback(Collector):
    """Gauges and counters computed at scrape time from callables (history size, sessions,
    the cluster's drop counts)."""

    def __init__(self) -> None:
        self.gauges: list[tuple[str, str, Callable[[], float]]] = []
        self.counters: list[tuple[str, str, Callable[[], float]]] = []

    def collect(self):  # type: ignore[no-untyped-def]
        for name, doc, fn in self.gauges:
            family = GaugeMetricFamily(name, doc)
            family.add_metric([], fn())
            yield family
        for name, doc, fn in self.counters:
            counter = CounterMetricFamily(name, doc)  # exposed as <name>_total
            counter.add_metric([], fn())
            yield counter


class Metrics:
    """The node's metrics; one instance per node."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.received = Counter("logrouter_messages_received", "Messages accepted for a known token",
                                ["transport"], registry=r)
        self.received_tcp = self.received.labels("syslog_tcp")
        self.received_tls = self.received.labels("syslog_tls")
        self.received_http = self.received.labels("http")
        malformed = Counter("logrouter_messages_malformed", "Frames dropped as malformed",
                            ["reason"], registry=r)
        self.malformed = {reason: malformed.labels(reason) for reason in MALFORMED_REASONS}
        self.unknown_token = Counter("logrouter_messages_unknown_token",
                                     "Frames dropped because their token is unknown", registry=r)
        self.http_requests = Counter("logrouter_http_ingest_requests",
                                     "POST /logs requests by status", ["status"], registry=r)
        self.connections = Gauge("logrouter_connections", "Open connections per listener",
                                 ["listener"], registry=r)
        self.connections_total = Counter("logrouter_connections_accepted",
                                         "Connections accepted per listener", ["listener"],
                                         registry=r)
        self.connection_errors = Counter(
            "logrouter_connection_errors", "Connections ended by their client's behaviour or an "
            "error, per listener and reason (client_gone, send_timeout, header_timeout, "
            "body_timeout, evicted, bad_request, error)", ["listener", "reason"], registry=r)
        self.backpressure_waits = Counter(
            "logrouter_ingest_backpressure_waits", "Times an ingest connection waited for "
            "drains absorbing a burst", registry=r)
        self.backpressure_seconds = Counter(
            "logrouter_ingest_backpressure_seconds", "Time ingest connections waited for drains "
            "absorbing a burst", registry=r)
        self.http_drain_request_seconds = Histogram(
            "logrouter_http_drain_request_seconds", "Time an HTTP drain request took to answer",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=r)
        self.drain_write_delay_seconds = Histogram(
            "logrouter_drain_write_delay_seconds", "Time from a write's oldest line entering its "
            "drain's buffer to the write's delivery (send→drain latency inside the router)",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r)
        self.tail_lost = Counter("logrouter_tail_lines_dropped",
                                 "Lines a slow tail client lost (reported as L11)", registry=r)
        self.sessions_opened = Counter("logrouter_sessions_streamed",
                                       "Session streams opened", ["mode"], registry=r)
        self._callbacks = _Callback()
        r.register(self._callbacks)
        ProcessCollector(registry=r)  # process_cpu_seconds_total, process_resident_memory_bytes, …
        PlatformCollector(registry=r)
        Info("logrouter_build", "The running logrouter", registry=r).info(
            {"version": __version__, "speedups": "c" if native is not None else "python"})

    def drain_rows(self, source: Callable[[], list[DrainRow]]) -> None:
        """Export the per-drain counters ``source`` returns at each scrape."""
        self.registry.register(_DrainCollector(source))

    def gauge_callback(self, name: str, doc: str, fn: Callable[[], float]) -> None:
        """Expose ``fn()`` as gauge ``name``, evaluated at each scrape."""
        self._callbacks.gauges.append((name, doc, fn))

    def counter_callback(self, name: str, doc: str, fn: Callable[[], float]) -> None:
        """Expose ``fn()`` (which only grows) as counter ``<name>_total`` at each scrape."""
        self._callbacks.counters.append((name, doc, fn))

    def count_malformed(self, drops: dict[str, int]) -> None:
        for reason, n in drops.items():
            if n:
                self.malformed[reason].inc(n)

    def render(self) -> bytes:
        """The exposition text for ``GET /metrics``."""
        return generate_latest(self.registry)
