"""The drain spool: what a drain has not delivered yet, kept on disk across crashes.

:class:`SpoolQueue` is a drain's queue (the disk-backed twin of
:class:`~logrouter.core.buffer.BoundedBuffer`); :class:`Spooler` writes every queue of a
node; :mod:`logrouter.spool.files` holds the file operations, run in worker threads.
"""

from logrouter.spool.files import remove_dir
from logrouter.spool.queue import SpoolQueue
from logrouter.spool.spooler import Spooler

__all__ = ["SpoolQueue", "Spooler", "remove_dir"]
