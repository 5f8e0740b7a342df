"""``logrouter top``: a live view of one router node, refreshed in place (like ``vector top``).

Polls ``GET /v3/stats?limit=N`` every ``--interval`` seconds — the node's totals and its ``N``
busiest apps and drains with their rates, however many the node has — and shows lines/s in
and out (from the differences between two polls), the busiest apps and drains (with each
drain's state), drops by reason, and open connections. Rendered with rich (which honours ``NO_COLOR``);
Ctrl-C exits 0. ``--once`` prints one frame (two polls apart) and exits, for scripts.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from logrouter.client.api import RouterClient

__all__ = ["render", "run_top"]


def _rate(now: float, before: float | None, seconds: float) -> float:
    return max(0.0, (now - (before or 0.0)) / seconds) if before is not None else 0.0


def render(prev: dict[str, Any], cur: dict[str, Any], seconds: float, url: str,
           limit: int = 15) -> Group:
    """One frame from two polls ``seconds`` apart."""
    totals, before = cur["totals"], prev["totals"]

    def total(prefix: str) -> float:
        return float(sum(v for k, v in totals.items() if k.startswith(prefix)))

    def total_before(prefix: str) -> float:
        return float(sum(v for k, v in before.items() if k.startswith(prefix)))

    def rate(prefix: str) -> str:
        return f"{_rate(total(prefix), total_before(prefix), seconds):,.0f}"

    head = Table(title=f"logrouter at {url}", expand=True)
    for column in ("lines/s in", "lines/s out (drains)", "malformed/s", "unknown token/s",
                   "open connections"):
        head.add_column(column, justify="right")
    out_now = cur["drain_totals"]["delivered"]
    out_before = prev["drain_totals"]["delivered"]
    head.add_row(rate("logrouter_messages_received_total"),
                 f"{max(0.0, (out_now - out_before) / seconds):,.0f}",
                 rate("logrouter_messages_malformed_total"),
                 rate("logrouter_messages_unknown_token_total"),
                 f"{total('logrouter_connections{'):,.0f}")

    counts = cur["counts"]
    apps = Table(title=f"apps (busiest first, of {counts['channels']:,})", expand=True)
    apps.add_column("app")
    apps.add_column("lines/s in", justify="right")
    apps.add_column("history", justify="right")
    for c in cur["channels"][:limit]:
        apps.add_row(c["name"], f"{c['rate']:,.0f}", f"{c['history']:,}")

    drains = Table(title=f"drains (busiest first, of {counts['drains']:,})", expand=True)
    for column in ("drain", "url", "state", "lines/s out", "dropped", "buffered", "last error"):
        drains.add_column(column, justify="right" if column in ("lines/s out", "dropped",
                                                                "buffered") else "left")
    for d in cur["drains"][:limit]:
        rate = d["rate"]
        state = "connected" if d.get("connected") else "not connected"
        for flag in ("degraded", "slow"):
            if d.get(flag):
                state += f", {flag}"
        drains.add_row(str(d["id"]), d["url"], state, f"{rate:,.0f}", f"{d.get('dropped', 0):,}",
                       f"{d.get('buffered', 0):,}", d.get("last_error") or "")

    drops = Table(title="drops by reason (since start)", expand=True)
    drops.add_column("what")
    drops.add_column("count", justify="right")
    for key, value in sorted(totals.items()):
        if value and ("malformed" in key or "unknown_token" in key or "dropped" in key
                      or "connection_errors" in key):
            drops.add_row(key.replace("logrouter_", ""), f"{value:,.0f}")
    return Group(head, apps, drains, drops)


def run_top(client: RouterClient, interval: float, once: bool, console: Console | None = None,
            limit: int = 15) -> int:
    """Show the live view until Ctrl-C (exit 0); with ``once`` one frame."""
    console = console or Console()
    path = f"/v3/stats?limit={limit}"
    prev = client.request("GET", path)
    last = time.monotonic()
    if once:
        time.sleep(interval)
        cur = client.request("GET", path)
        console.print(render(prev, cur, time.monotonic() - last, client.url))
        return 0
    try:
        with Live(console=console, refresh_per_second=4, screen=False) as live:
            while True:
                time.sleep(interval)
                cur = client.request("GET", path)
                now = time.monotonic()
                live.update(render(prev, cur, now - last, client.url))
                prev, last = cur, now
    except KeyboardInterrupt:
        return 0
