"""The node's data directory: made private to this user, and held by one process at a time.

It holds the API key, the config database, the saved history and the drain spools. Two nodes
on one data dir would overwrite each other's saved history and append to the same spool files,
so a node takes an exclusive lock on ``<data_dir>/lock`` for as long as it runs (``flock``: the
kernel drops it when the process exits, however it exits, so a crash leaves nothing stale).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable
from typing import BinaryIO

from logrouter.errors import ConfigError
from logrouter.logs import get_logger

__all__ = ["LOCK_FILE", "lock_data_dir", "replace_file", "secure_data_dir"]

log = get_logger("logrouter.node")

LOCK_FILE = "lock"


def secure_data_dir(path: str) -> None:
    """Create the data dir readable by this user only (0700) and tighten what is in it to
    0600: it holds the API key, tokens, drain credentials and log lines.

    Raises:
        OSError: the directory cannot be created.
    """
    os.makedirs(path, mode=0o700, exist_ok=True)
    try:
        os.chmod(path, 0o700)
        for name in os.listdir(path):
            full = os.path.join(path, name)
            if os.path.isfile(full) and not os.path.islink(full):
                os.chmod(full, 0o600)
    except PermissionError as exc:  # not ours (a mounted volume): say so, carry on
        log.warning("data_dir_permissions", path=path, error=str(exc))


def lock_data_dir(path: str) -> int:
    """Hold the data dir at ``path`` (which must exist) for this process, and write this
    process's id into the lock file for whoever is refused.

    Returns:
        The lock file's descriptor: the lock lasts until it is closed or the process exits.

    Raises:
        ConfigError: another process holds the data dir.
        OSError: the lock file cannot be opened.
    """
    fd = os.open(os.path.join(path, LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise ConfigError(f"data dir {path} is in use by another logrouter (pid {holder}); "
                          "give each node its own data dir (--data-dir, LOGROUTER_DATA_DIR)"
                          ) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return fd


def replace_file(path: str, write: Callable[[BinaryIO], object], sync: bool = True) -> None:
    """Replace ``path`` atomically with what ``write`` writes: into a temporary file beside
    it (0600), fsync'd when ``sync``, then renamed over ``path``.

    Raises:
        OSError: it could not be written; ``path`` is as it was and the temporary file is
            removed (a half-written one would take the disk a full disk needs).
    """
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb", opener=lambda name, flags: os.open(name, flags, 0o600)) as fh:
            write(fh)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
