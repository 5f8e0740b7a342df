"""The command-line client (apps, logs, drains, tokens) and the shuttle."""
