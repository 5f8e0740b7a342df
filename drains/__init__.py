"""Drain delivery: syslog over TCP/TLS and HTTP(S) webhooks, supervised per node."""

from drains.base import Drain, DrainOptions
from drains.supervisor import KINDS, DrainSupervisor

__all__ = ["KINDS", "Drain", "DrainOptions", "DrainSupervisor"]
