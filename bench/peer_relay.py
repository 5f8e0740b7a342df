"""Run logrouter as a bench-peers custom relay (../shared/bench-peers/README.md).

    python bench/peer_relay.py IN_PORT SINK_PORT TOKENS_FILE WORKDIR [--apps 100] [--workers N]

Phase 1 starts a router on free ports, creates the apps, each with a syslog drain to
127.0.0.1:SINK_PORT, writes their tokens to TOKENS_FILE and stops. Phase 2 *execs*
`logrouter serve` with the syslog port on IN_PORT, so the harness measures the router itself.

With ``--workers N`` (N > 1) the wrapper first starts its own redis-server (a child, so its CPU
counts against logrouter), provisions through it, and phase 2 runs ``--workers N`` on it.

Keep apps times workers at 64 or fewer when counting losses: the harness's C sink sets SO_RCVLOWAT 64 KiB and,
when epoll goes quiet, reads the rest only from its first 64 connection slots, so with 100 drain
connections the last < 64 KiB on 36 of them stays unread until they close (our router's own
counters show every line delivered; see bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("in_port")
    p.add_argument("sink_port")
    p.add_argument("tokens_file")
    p.add_argument("workdir")
    p.add_argument("--apps", type=int, default=100)
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args()
    env: dict[str, str] = {}
    if args.workers > 1:
        _redis, env["LOGROUTER_REDIS_URL"] = run.start_redis(args.workdir)
    router = run.Router(env)
    tokens, _drains = run.provision(router, args.apps, f"syslog://127.0.0.1:{args.sink_port}")
    router.stop()
    os.environ.update({"LOGROUTER_BIND": "127.0.0.1", "LOGROUTER_SYSLOG_PORT": args.in_port,
                       "LOGROUTER_LOGS_PORT": "0", "LOGROUTER_API_PORT": "0",
                       "LOGROUTER_AUTH_KEY": run.KEY, "LOGROUTER_DATA_DIR": router.dir,
                       "LOGROUTER_LOG_LEVEL": os.environ.get("LOGROUTER_LOG_LEVEL", "error"),
                       "LOGROUTER_WORKERS": str(args.workers), **env})
    Path(args.tokens_file).write_text("\n".join(tokens) + "\n")
    os.chdir(run.ROOT)
    os.execv(sys.executable, [sys.executable, "-m", "logrouter", "serve"])


if __name__ == "__main__":
    main()
