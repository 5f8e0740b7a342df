"""What a save of the history costs: ``python bench/history_save.py [--apps 10000]``.

Fills ``--apps`` histories with 1,500 Heroku-like lines each, compresses them as the node's
compactor would, then does what the node's periodic save does: takes every history's state
1,000 channels a turn (the event loop's share: the total, and the longest turn) and writes the
file (a worker thread's share), and prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from logrouter.core.history import History, Saved, compress_all
from logrouter.core.history_file import write_histories
from logrouter.core.turns import PER_TURN

WORDS = [b"GET", b"/api/v1/items", b"status=200", b"bytes=5123", b"host=web.1",
         b"fwd=10.0.0.1", b"dyno=web.2", b"connect=1ms", b"service=23ms", b"protocol=https"]


def full_histories(apps: int) -> dict[str, History]:
    histories = {}
    for app in range(apps):
        history = History(1500)
        for start in range(0, 1500, 100):
            history.extend([b"<158>1 2026-11-29T02:00:00.%06d+00:00 host app web.1 - - " % i
                            + b" ".join(random.sample(WORDS, 8)) for i in range(start, start + 100)])
        histories[str(app)] = history
    jobs = [h.take_raw() for h in histories.values()]
    compress_all(jobs)
    for job in jobs:
        job.history.put_compressed(job)
    return histories


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=10_000)
    args = parser.parse_args()
    histories = list(full_histories(args.apps).items())
    state: dict[str, Saved] = {}
    longest = 0.0
    started = time.perf_counter()
    for i in range(0, len(histories), PER_TURN):
        turn = time.perf_counter()
        for cid, history in histories[i:i + PER_TURN]:
            state[cid] = history.saved()
        longest = max(longest, time.perf_counter() - turn)
    taken = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "history.msgpack")
        started = time.perf_counter()
        write_histories(path, state)
        written = time.perf_counter() - started
        size = os.path.getsize(path)
    print(json.dumps({"apps": args.apps, "lines": sum(len(h) for _, h in histories),
                      "state_ms": round(taken * 1000, 1), "longest_turn_ms": round(longest * 1000, 1),
                      "write_s": round(written, 3), "file_mb": round(size / 1e6, 1)}))


if __name__ == "__main__":
    main()
