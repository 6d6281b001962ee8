"""Where the configured index lives: a Chroma server, or the local directory."""

from __future__ import annotations

from pathlib import Path

from index.config import IndexConfig
from index.server_store import ServerStore
from index.store import LocalStore, Store


def open_store(config: IndexConfig) -> Store:
    """The configured store: a Chroma server with ``chroma_url``, else the local directory."""
    if config.chroma_url:
        return ServerStore(config.chroma_url, config.collection, config.chroma_token)
    return LocalStore(Path(config.store_dir))
