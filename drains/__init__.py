"""Drain delivery plug-ins: syslog over TCP/TLS and HTTP(S) webhooks.

A drain is fed a channel's lines and delivers them to one receiver. This package depends only on
logrouter's lower layers (protocol, buffer, spool, settings, the TLS and HTTP clients); the
supervisor that ties drains to channels is :mod:`logrouter.drain_supervisor`.
"""

from drains.base import Drain, DrainOptions
from drains.http_drain import HttpDrain
from drains.syslog_drain import SyslogDrain
from drains.syslog_writer import SyslogWriter

__all__ = ["KINDS", "Drain", "DrainOptions", "HttpDrain", "SyslogDrain", "SyslogWriter"]

#: drain kind (``DrainUrl.kind``) → implementation, Logplex's type → module table.
KINDS: dict[str, type[Drain]] = {"syslog": SyslogDrain, "http": HttpDrain}
