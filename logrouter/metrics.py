"""Prometheus metrics. Counted per batch, never per message.

A :class:`Metrics` owns its own registry (tests start many nodes in one
process). Labelled children used on hot paths are resolved once and cached:
``labels().inc()`` costs three times a plain ``inc()``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

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
from prometheus_client.utils import floatToGoString

from logrouter import __version__
from logrouter.core.turns import in_turns, runs_in_turns
from logrouter.protocol.framing import DROP_REASONS
from logrouter.protocol.speedups import native

__all__ = ["CONTENT_TYPE", "DRAIN_FAMILIES", "MALFORMED_REASONS", "DrainCounters", "DrainRow",
           "Metrics", "drain_exposition", "drain_series"]

# ``*_created`` samples double the exposition for no use here.
disable_created_metrics()  # type: ignore[no-untyped-call]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Label values of ``logrouter_messages_malformed_total``.
MALFORMED_REASONS = (*DROP_REASONS, "no_token", "not_syslog", "http_body")


class DrainCounters(Protocol):
    """A running drain as ``/metrics`` reads it."""

    def metric_row(self) -> tuple[int, int, int, int, int]:
        """``(delivered, dropped, buffered, connects, errors)``: the values of
        :data:`DRAIN_FAMILIES`, in that order."""


#: The per-drain series: (name, type, help), one per value of a drain's ``metric_row``.
DRAIN_FAMILIES = (
    ("logrouter_drain_delivered_total", "counter", "Lines delivered per drain"),
    ("logrouter_drain_dropped_total", "counter", "Lines a drain lost (reported as L10)"),
    ("logrouter_drain_buffered", "gauge", "Lines waiting per drain"),
    ("logrouter_drain_connects_total", "counter", "Connections a drain opened to its receiver"),
    ("logrouter_drain_errors_total", "counter", "Failed connects, writes and requests per drain"),
)

#: ``(drain id, the drain's metric_row())``
DrainRow = tuple[int, tuple[int, int, int, int, int]]


T = TypeVar("T")

_go_float: Callable[[float], str] = floatToGoString  # prometheus-client's value format


def drain_series(rows: Sequence[DrainRow]) -> list[bytes]:
    """The sample lines of ``rows``, one piece per family of :data:`DRAIN_FAMILIES`, byte for
    byte what prometheus-client writes (its value format included) at several times its
    speed: a node with 50,000 drains has 250,000 of these series (bench/RESULTS.md)."""
    return ["".join([f'{name}{{drain_id="{drain_id}"}} '
                     f'{f"{v}.0" if (v := row[col]) < 1_000_000 else _go_float(v)}\n'
                     for drain_id, row in rows]).encode()
            for col, (name, _, _) in enumerate(DRAIN_FAMILIES)]


def drain_exposition(pieces: Sequence[list[bytes]]) -> bytes:
    """The per-drain families in the text format, from :func:`drain_series` pieces of
    successive runs of drains."""
    out: list[bytes] = []
    for col, (name, kind, doc) in enumerate(DRAIN_FAMILIES):
        out.append(f"# HELP {name} {doc}\n# TYPE {name} {kind}\n".encode())
        out += [piece[col] for piece in pieces]
    return b"".join(out)


def _drain_series(drains: Sequence[tuple[int, DrainCounters]]) -> list[bytes]:
    return drain_series([(drain_id, drain.metric_row()) for drain_id, drain in drains])


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
        self._drains: Callable[[], list[tuple[int, DrainCounters]]] | None = None
        self._sums: list[tuple[Gauge, Callable[[], Sequence[Any]], Callable[[Any], float]]] = []
        self._totals = (self.received, malformed, self.unknown_token, self.connections,
                        self.connections_total, self.connection_errors, self.backpressure_waits,
                        self.backpressure_seconds, self.tail_lost)
        self._callbacks = _Callback()
        r.register(self._callbacks)
        ProcessCollector(registry=r)  # process_cpu_seconds_total, process_resident_memory_bytes, …
        PlatformCollector(registry=r)
        Info("logrouter_build", "The running logrouter", registry=r).info(
            {"version": __version__, "speedups": "c" if native is not None else "python"})

    def export_drains(self, source: Callable[[], list[tuple[int, DrainCounters]]]) -> None:
        """Export the counters of the drains ``source`` returns (a new list: ``(drain id,
        drain)``) at each scrape."""
        self._drains = source

    def sum_gauge(self, name: str, doc: str, items: Callable[[], Sequence[T]],
                  value: Callable[[T], float]) -> None:
        """Expose the sum of ``value(item)`` over ``items()`` (a new list) as gauge ``name``,
        summed at each scrape ``PER_TURN`` items a turn of the event loop (a sum over every
        channel of 100,000 took 30 ms in one go)."""
        self._sums.append((Gauge(name, doc, registry=self.registry), items, value))

    def gauge_callback(self, name: str, doc: str, fn: Callable[[], float]) -> None:
        """Expose ``fn()`` as gauge ``name``, evaluated at each scrape."""
        self._callbacks.gauges.append((name, doc, fn))

    def counter_callback(self, name: str, doc: str, fn: Callable[[], float]) -> None:
        """Expose ``fn()`` (which only grows) as counter ``<name>_total`` at each scrape."""
        self._callbacks.counters.append((name, doc, fn))

    def totals(self) -> dict[str, float]:
        """The node-wide counters ``logrouter top`` and the console show, by sample name with
        its labels (``name{label=value,…}``): messages, connections, ingest waits and tail
        losses."""
        out: dict[str, float] = {}
        for metric in self._totals:
            for family in metric.collect():
                for sample in family.samples:
                    label = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                    out[sample.name + (f"{{{label}}}" if label else "")] = sample.value
        return out

    def count_malformed(self, drops: dict[str, int]) -> None:
        for reason, n in drops.items():
            if n:
                self.malformed[reason].inc(n)

    async def exposition(self) -> bytes:
        """The exposition text for ``GET /metrics``: the sums over every channel and the
        drains' counters read (and the latter written out) ``PER_TURN`` items a turn of the
        event loop; the registry's other series, a few dozen, at once."""
        for gauge, items, value in self._sums:
            gauge.set(sum(await in_turns(items(), value)))
        head = generate_latest(self.registry)
        drains = self._drains() if self._drains is not None else []
        pieces = await runs_in_turns(drains, _drain_series)
        return head + drain_exposition(pieces)
