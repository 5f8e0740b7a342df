"""Run the fuzz targets under atheris: ``python -m tests.fuzz [TARGET ...] [--seconds N]``.

Each target runs in its own process for ``--seconds`` (default 30), with coverage of
logrouter's Python code guiding the mutations (the C speed-ups are checked against their
Python twins on every input; CI also runs this on an ASan+UBSan build), starting from
``tests/fuzz/corpus/<target>/`` (new interesting inputs are added there; commit the ones
worth keeping). A crash or a failed check stops that target, prints the input and exits 1.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"


NAMES = ["framing", "lines", "http1", "logplex1", "spool"]


def run_one(name: str, seconds: int, grow: bool) -> int:
    import atheris

    with atheris.instrument_imports(include=["logrouter", "tests.fuzz"]):
        from tests.fuzz.targets import TARGETS

    corpus = CORPUS / name
    corpus.mkdir(parents=True, exist_ok=True)
    dirs = [str(corpus)] if grow else [str(Path("/tmp") / f"logrouter-fuzz-{name}"), str(corpus)]
    Path(dirs[0]).mkdir(parents=True, exist_ok=True)
    target = TARGETS[name]
    atheris.Setup([sys.argv[0], f"-max_total_time={seconds}", "-rss_limit_mb=4096",
                   "-max_len=65536", "-timeout=20", *dirs], target)
    atheris.Fuzz()
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("targets", nargs="*", default=NAMES)
    p.add_argument("--seconds", type=int, default=30)
    p.add_argument("--grow-corpus", action="store_true",
                   help="write new interesting inputs into tests/fuzz/corpus")
    p.add_argument("--one", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        return run_one(args.one, args.seconds, args.grow_corpus)
    failed = []
    for name in args.targets:
        print(f"fuzz {name}: {args.seconds} s", flush=True)
        cmd = [sys.executable, "-m", "tests.fuzz", "--one", name, "--seconds", str(args.seconds)]
        if args.grow_corpus:
            cmd.append("--grow-corpus")
        if subprocess.run(cmd).returncode != 0:
            failed.append(name)
    if failed:
        print("fuzz failures: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
