"""Config stores: the contract and its backends."""

from logrouter.store.base import ConfigSnapshot, ConfigStore

__all__ = ["ConfigSnapshot", "ConfigStore"]
