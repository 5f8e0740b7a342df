"""Cluster mode: identical nodes sharing one Redis.

``config_sync`` (each node's table follows Redis), ``history_writer`` (what a node
ingests goes to the shared history), ``tail_relay`` (tails see lines ingested on
other nodes) and ``coordinator`` (:class:`Cluster`: the tap on every channel and
the tasks that drive the three). All Redis access goes through ``logrouter.store``.
"""

from logrouter.cluster.coordinator import Cluster

__all__ = ["Cluster"]
