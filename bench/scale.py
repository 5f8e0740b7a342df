"""How a node's cost grows: sweep apps (history full), drains and tails; write the curves.

    python bench/scale.py [--quick] [--only apps|drains|tails|tails-10k] [--repeat N]
        [--json-out F]
    python bench/scale.py --from-json F     # table and plot again from saved results

Three sweeps of ``bench/run.py`` scenarios, each run in a fresh router:

* **apps** (scenario H, realistic lines of 200 bytes): 100 → 1,000 → 10,000 → 50,000 apps,
  each given its full 1,500 lines of history flat out (the first 100 apps drained, for
  latency); peak RSS during the fill and settled RSS once quiet channels are compressed.
* **drains** (scenario S1, 3 M lines of 150 bytes): 100 → 1,000 → 5,000 apps, each with its
  own syslog drain to one receiver (3 M lines: 600 a drain at 5,000, so that the run is not
  mostly its first second).
* **tails** (scenario S4, 1 M lines paced at 100,000 lines/s): 1 → 100 → 1,000 SSE tails on
  one app; whether every tail got every line. **tails-10k**: 1,000 tails at 10,000 lines/s
  (100,000 lines): the same number of tail lines a second as 100 tails at 100,000.

The table goes into ``bench/RESULTS.md`` between the ``scale`` markers, the plot into
``bench/scale.png``. ``--quick`` runs the small points only (a smoke test of the script).
``--repeat N`` runs each sweep N times over, point after point, pass after pass (on a shared
box the spread between runs is tens of percent, and a ratio between points means most when
they ran next to each other): each row then gives the median run, every run's lines/s, and
for the points after a sweep's first, their lines/s against the first point of the same pass.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import scenario  # noqa: E402

BEGIN, END = "<!-- scale:begin -->", "<!-- scale:end -->"

SWEEPS: dict[str, tuple[str, list[int], dict[str, Any]]] = {
    "apps": ("H", [100, 1_000, 10_000, 50_000], {"size": 200, "payload": "mixed"}),
    "drains": ("S1", [100, 1_000, 5_000], {"size": 150, "n": 3_000_000}),
    "tails": ("S4", [1, 100, 1_000], {"size": 150, "rate": 100_000.0}),
    "tails-10k": ("S4", [1_000], {"size": 150, "rate": 10_000.0}),
}


def run_point(sweep: str, value: int) -> dict[str, Any]:
    name, _, opts = SWEEPS[sweep]
    rate = opts.get("rate", 0.0)
    kwargs: dict[str, Any] = {"size": opts["size"], "rate": rate,
                              "n": opts.get("n", 100_000 if rate and rate < 100_000 else 1_000_000),
                              "payload": opts.get("payload", "pad")}
    if sweep.startswith("tails"):
        kwargs["tails"] = value
    else:
        kwargs["apps"] = value
    started = time.time()
    result = scenario(name, **kwargs)
    result.update(sweep=sweep, value=value, wall_s=round(time.time() - started, 1))
    return result


def combine(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per point: a point run once is its run; a point run in several passes is its
    median run (by lines/s) with ``runs`` (every pass's lines/s) and, after a sweep's first
    point, ``ratios`` (lines/s against that sweep's first point in the same pass)."""
    points: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in results:
        points.setdefault((r["sweep"], r["value"]), []).append(r)
    first = {(r["sweep"], r.get("pass", 0)): r for r in reversed(results)}  # first of a pass
    rows = []
    for (sweep, _), runs in points.items():
        if len(runs) == 1:
            rows.append(runs[0])
            continue
        ranked = sorted(runs, key=lambda r: r["lines_per_s"])
        row = dict(ranked[(len(ranked) - 1) // 2])
        row["runs"] = [r["lines_per_s"] for r in runs]
        bases = [first.get((sweep, r.get("pass", 0))) for r in runs]
        if all(b is not None and b is not r for b, r in zip(bases, runs, strict=True)):
            row["ratios"] = [round(r["lines_per_s"] / b["lines_per_s"], 2)  # type: ignore[index]
                             for b, r in zip(bases, runs, strict=True)]
        rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    out = ["| sweep | value | lines/s | µs CPU/line | peak RSS MiB | settled RSS MiB | p99 ms | "
           "lost | notes |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        notes = ""
        if r["sweep"] == "apps":
            notes = (f"history {r['history_lines']:,} lines, {r['history_compressed_mb']} MB "
                     f"compressed, {r['history_raw_lines']:,} raw")
        elif r["sweep"].startswith("tails"):
            notes = (f"every tail got every line: {'yes' if r['tails_complete'] else 'no'} "
                     f"(fewest {r['tail_lines_min']:,}); {r['tail_lines_per_s']:,} tail lines/s")
        if "runs" in r:
            notes += ("; " if notes else "") + (
                f"median of {len(r['runs'])} runs: " + " / ".join(f"{v:,}" for v in r["runs"]))
        if "ratios" in r:
            notes += "; against the first point, pass by pass: " + " / ".join(
                str(v) for v in r["ratios"])
        out.append("| {sweep} | {value:,} | {lps:,} | {cpu} | {peak} | {settled} | {p99} | {lost} | "
                   "{notes} |".format(
                       sweep=r["sweep"], value=r["value"], lps=r["lines_per_s"],
                       cpu=r["cpu_us_per_line"], peak=r["peak_rss_mb"],
                       settled=r.get("settled_rss_mb", "—"), p99=r.get("p99_ms", "—"),
                       lost=r.get("lost", "—"), notes=notes))
    return "\n".join(out)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [p for p in ("apps", "drains", "tails") if any(r["sweep"] == p for r in rows)]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, sweep in zip(axes[0], panels, strict=True):
        pts = [r for r in rows if r["sweep"] == sweep]
        xs = [r["value"] for r in pts]
        if sweep == "tails":  # what the tails got in all, against what every line to all would be
            ax.plot(xs, [r["tail_lines_per_s"] / 1e6 for r in pts], "o-", color="tab:blue",
                    label="delivered, 100k lines/s in")
            ax.plot(xs, [r["value"] * 0.1 for r in pts], ":", color="tab:gray", label="every line")
            for r in rows:
                if r["sweep"] == "tails-10k":
                    ax.plot([r["value"]], [r["tail_lines_per_s"] / 1e6], "D", color="tab:green",
                            label="delivered, 10k lines/s in")
            ax.set_ylabel("M tail lines/s", color="tab:blue")
            ax.set_ylim(0, 12)
            ax.legend(loc="upper left", fontsize=8)
        else:
            ax.plot(xs, [r["lines_per_s"] / 1e6 for r in pts], "o-", color="tab:blue")
            ax.set_ylabel("M lines/s in", color="tab:blue")
            ax.set_ylim(bottom=0)
        ax.set_xscale("log")
        ax.set_xlabel(sweep)
        rss = ax.twinx()
        rss.plot(xs, [r["peak_rss_mb"] for r in pts], "s--", color="tab:red", label="peak RSS")
        if sweep == "apps":
            rss.plot(xs, [r["settled_rss_mb"] for r in pts], "^:", color="tab:orange",
                     label="settled RSS")
            rss.axhline(1024, color="tab:red", linewidth=0.5)
        rss.legend(loc="lower right" if sweep == "tails" else "center left", fontsize=8)
        rss.set_ylabel("RSS MiB", color="tab:red")
        rss.set_ylim(bottom=0)
        ax.set_title({"apps": "apps with full history (H)", "drains": "syslog drains, one per app (S1)",
                      "tails": "SSE tails on one app (S4)"}[sweep], fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_results(rows: list[dict[str, Any]], command: str) -> None:
    path = HERE / "RESULTS.md"
    text = path.read_text()
    block = (f"{BEGIN}\n`{command}` ({time.strftime('%Y-%m-%d')}, 2-core VM shared with the load "
             f"generator and the receiver):\n\n{table(rows)}\n\n![scale](scale.png)\n{END}")
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text += f"\n## Scale per node (`bench/scale.py`)\n\n{block}\n"
    path.write_text(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=list(SWEEPS), action="append")
    p.add_argument("--quick", action="store_true", help="the smallest point of each sweep only")
    p.add_argument("--json-out")
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    p.add_argument("--from-json", help="write the table and plot of a saved --json-out file")
    p.add_argument("--repeat", type=int, default=1,
                   help="passes over each sweep, one after the other (see above)")
    args = p.parse_args()
    results: list[dict[str, Any]] = []
    if args.from_json:
        results = [json.loads(line) for line in Path(args.from_json).read_text().splitlines()
                   if line]
        rows = combine(results)
        write_results(rows, "python bench/scale.py")
        plot(rows, HERE / "scale.png")
        return
    for sweep in args.only or list(SWEEPS):
        values = SWEEPS[sweep][1][:1] if args.quick else SWEEPS[sweep][1]
        for pass_ in range(max(1, args.repeat)):
            for value in values:
                result = run_point(sweep, value)
                result["pass"] = pass_
                print(json.dumps(result), flush=True)
                results.append(result)
                if args.json_out:
                    with open(args.json_out, "a") as fh:
                        fh.write(json.dumps(result) + "\n")
    rows = combine(results)
    print(table(rows))
    if not args.no_write:
        write_results(rows, "python " + " ".join(["bench/scale.py", *sys.argv[1:]]))
        plot(rows, HERE / "scale.png")


if __name__ == "__main__":
    main()
