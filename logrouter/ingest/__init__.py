"""Ingest: syslog over TCP and HTTP ``POST /logs``, both feeding :class:`Ingest`."""

from logrouter.ingest.http_server import LogsHandler
from logrouter.ingest.pipeline import Ingest
from logrouter.ingest.tcp_server import SyslogServer

__all__ = ["Ingest", "LogsHandler", "SyslogServer"]
