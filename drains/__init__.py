"""Drain delivery plug-ins: syslog over TCP/TLS and HTTP(S) webhooks."""

__all__: list[str] = []
