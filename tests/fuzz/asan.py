"""Fuzz the C speed-ups built with AddressSanitizer and UndefinedBehaviorSanitizer.

    python -m tests.fuzz.asan [--seconds N]

Copies the package into a temporary directory, builds ``logrouter.protocol._speedups`` there
with ``gcc -fsanitize=address,undefined``, and runs every fuzz target against that build
(``LD_PRELOAD`` of gcc's sanitizer runtimes; any report aborts the run and fails it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def build(into: Path) -> Path:
    """Copy the sources to ``into`` and build the sanitised module there; return ``into``."""
    for pkg in ("logrouter", "drains", "tests"):
        shutil.copytree(ROOT / pkg, into / pkg, ignore=shutil.ignore_patterns(
            "*.so", "__pycache__", "corpus"))
    shutil.copytree(ROOT / "tests" / "fuzz" / "corpus", into / "tests" / "fuzz" / "corpus")
    csrc = ROOT / "logrouter" / "protocol" / "csrc"
    out = into / "logrouter" / "protocol" / ("_speedups" + sysconfig.get_config_var("EXT_SUFFIX"))
    cmd = ["gcc", "-shared", "-fPIC", "-O1", "-g", "-fno-omit-frame-pointer",
           "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
           f"-I{sysconfig.get_paths()['include']}", f"-I{csrc}",
           *map(str, sorted(csrc.glob("*.c"))), "-o", str(out)]
    subprocess.run(cmd, check=True)
    return into


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=int, default=20)
    args = p.parse_args()
    runtimes = [subprocess.run(["gcc", f"-print-file-name={lib}"], capture_output=True,
                               text=True, check=True).stdout.strip()
                for lib in ("libasan.so", "libubsan.so")]
    with tempfile.TemporaryDirectory(prefix="logrouter-asan-") as tmp:
        where = build(Path(tmp))
        env = {**os.environ, "LD_PRELOAD": " ".join(runtimes),
               "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1:allocator_may_return_null=1",
               "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
               "LOGROUTER_EXPECT_SPEEDUPS": "1"}
        env.pop("LOGROUTER_PURE_PYTHON", None)
        check = subprocess.run([sys.executable, "-c",
                                "import logrouter.protocol.speedups as s, sys; "
                                "sys.exit(0 if s.native is not None and 'asan' in s.native.__file__ "
                                "else 1)"], cwd=where, env=env)
        if check.returncode != 0:
            print("the sanitised module did not load", file=sys.stderr)
            return 1
        return subprocess.run([sys.executable, "-m", "tests.fuzz", "--seconds", str(args.seconds)],
                              cwd=where, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
