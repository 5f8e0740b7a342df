"""Sans-IO protocol code: framing, RFC 5424 fields, logplex-1 bodies, HTTP/1.1
requests and session renderings.

Nothing in this package does I/O or imports trio, socket, ssl or a metrics
client; every parser is fed bytes and returns values (tests/test_layers.py
checks the imports).
"""
