"""The optional C versions of the relay path's per-line loops, and the switch that turns them off.

``logrouter.protocol._speedups`` is built from ``csrc/*.c`` when the package is installed
with a C compiler at hand; without one the install still succeeds and every caller uses the
pure-Python twin of each function, which defines the behaviour (the tests check both give the
same results). Setting ``LOGROUTER_PURE_PYTHON=1`` forces the pure-Python versions.
"""

from __future__ import annotations

import os
from types import ModuleType

__all__ = ["keep_freed_memory", "native", "release_freed_memory", "untrack"]


def _load() -> ModuleType | None:
    if os.environ.get("LOGROUTER_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        from logrouter.protocol import _speedups
    except ImportError:
        return None
    return _speedups


#: The C module, or None when it is not built or turned off.
native: ModuleType | None = _load()


def untrack(container: object) -> None:
    """Take ``container`` out of the cyclic garbage collector (with the C module; without
    it, nothing changes but the cost of full collections).

    Only for containers that hold nothing but bytes for their whole life (a history's raw
    ring): they cannot be part of a reference cycle, and a full collection would otherwise
    visit every line of every channel — measured at over half the CPU of a node holding
    15 M lines of history.
    """
    if native is not None:
        native.untrack(container)


def keep_freed_memory(max_bytes: int) -> None:
    """Keep up to about ``max_bytes`` of freed memory mapped for reuse, in the object
    allocator (emptied arenas) and in the C heap (glibc: blocks below ``max_bytes`` from the
    heap, trimmed past twice that); with the C module, else nothing changes.

    Each syslog read creates and frees tens of thousands of short-lived line objects and a
    few large buffers (the read itself, rendered drain batches). By default the memory they
    free goes back to the kernel and the next read pays a page fault for every fresh page:
    measured at a quarter of the routing time for 4 MiB reads, and 10-15 % of the relay's CPU
    per line (bench/RESULTS.md). Process-wide; the server sets it once at start.
    """
    if native is not None:
        native.keep_arenas(max_bytes)
        native.hold_freed_memory(max_bytes)


def release_freed_memory() -> int:
    """Give the kernel back memory the process holds but no longer uses: the object
    allocator's empty pools and kept arenas, and the C heap's free pages (with the C module
    on CPython's own allocator; else nothing changes). Returns the bytes of object-allocator
    memory released (the C heap's share is not counted).

    For a node that has just gone quiet after a burst: its arenas, each held by a few
    long-lived objects, stay mapped though they are mostly empty (a 10,000-app node with its
    history compressed: ~340 of ~760 MB). Holds the GIL for ~2 µs per pool released (tens of
    ms after a burst of millions of lines); memory released is faulted in again when used.
    """
    if native is None:
        return 0
    released: int = native.release_free_pools()
    native.trim_freed_memory()
    return released
