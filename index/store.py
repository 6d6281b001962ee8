"""The on-disk Chroma store: opening it safely, locking writers, and its manifest.

One directory holds the Chroma database, a ``manifest.json`` that records what was
ingested (and bumps a generation number readers watch), and a write lock so two
ingesters never interleave. An ingest that dies midway leaves a marker file behind;
readers then refuse the half-written store with the command that repairs it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import chromadb
from chromadb.config import Settings as ChromaSettings
from filelock import FileLock, Timeout

if TYPE_CHECKING:
    from index.vector_store import UpsertChromaVectorStore

from qa.errors import EmbeddingMismatchError, IndexBusyError, IndexCorruptError, IndexMissingError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
IN_PROGRESS = "ingest-in-progress"
LOCK = "write.lock"


@dataclass
class Manifest:
    """What the last completed ingest wrote."""

    generation: int = 0
    embed_model: str = ""
    root: str = ""  # the first of ``roots`` (kept for manifests written before ``roots``)
    roots: list[str] = field(default_factory=list)  # the files and folders the index mirrors
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def read(cls, store_dir: Path) -> Manifest | None:
        path = store_dir / MANIFEST
        if not path.exists():
            return None
        try:
            return cls(**json.loads(path.read_text()))
        except (ValueError, TypeError) as exc:
            raise IndexCorruptError(
                f"{path} is unreadable ({exc}); rebuild the index: `qa ingest --rebuild`"
            ) from exc

    def write(self, store_dir: Path) -> None:
        tmp = store_dir / f".{MANIFEST}.{os.getpid()}"
        tmp.write_text(json.dumps(self.__dict__, indent=2, sort_keys=True))
        os.replace(tmp, store_dir / MANIFEST)


def _client(store_dir: Path) -> chromadb.ClientAPI:
    try:
        return chromadb.PersistentClient(
            path=str(store_dir),
            settings=ChromaSettings(anonymized_telemetry=False, allow_reset=True),
        )
    except Exception as exc:  # chromadb raises many types for a damaged database
        raise IndexCorruptError(
            f"the store at {store_dir} cannot be opened ({type(exc).__name__}: {exc}); "
            "rebuild it: `qa ingest --rebuild`"
        ) from exc


def open_collection(
    store_dir: Path, name: str, embed_model: str, *, create: bool
) -> chromadb.Collection:
    """Open (or with ``create``, create) the passage collection and check its embedding model."""
    if not create:
        marker = store_dir / IN_PROGRESS
        if marker.exists() and not _pid_alive(marker):
            raise IndexCorruptError(
                f"the last ingest into {store_dir} was interrupted; re-run `qa ingest` to repair it"
            )
        if not (store_dir / MANIFEST).exists():
            raise IndexMissingError(
                f"no index at {store_dir}; build it with `qa ingest` (documents from seeds/)"
            )
    store_dir.mkdir(parents=True, exist_ok=True)
    client = _client(store_dir)
    try:
        if create:
            collection = client.get_or_create_collection(
                name,
                metadata={"embed_model": embed_model, "schema": SCHEMA_VERSION},
                configuration={"hnsw": {"space": "cosine"}},
                embedding_function=None,
            )
        else:
            collection = client.get_collection(name, embedding_function=None)
    except Exception as exc:
        if not create and "does not exist" in str(exc):
            raise IndexMissingError(
                f"no collection {name!r} in {store_dir}; build it with `qa ingest`"
            ) from exc
        raise IndexCorruptError(
            f"the store at {store_dir} cannot be read ({type(exc).__name__}: {exc}); "
            "rebuild it: `qa ingest --rebuild`"
        ) from exc
    stored_model = (collection.metadata or {}).get("embed_model")
    if stored_model != embed_model:
        raise EmbeddingMismatchError(
            f"the store at {store_dir} was built with embedding model {stored_model!r}, "
            f"not {embed_model!r}; rebuild it: `qa ingest --rebuild`"
        )
    return collection


def vector_store(collection: chromadb.Collection) -> UpsertChromaVectorStore:
    """The llama-index view of ``collection`` (llama-index is imported only when needed:
    a no-op re-ingest never touches it)."""
    from index.vector_store import UpsertChromaVectorStore

    return UpsertChromaVectorStore(chroma_collection=collection)


def reset_store(store_dir: Path) -> None:
    """Delete everything in the store but its lock (for ``--rebuild``; the caller holds it).

    Works on a damaged database too, which Chroma itself could not open to delete from.
    """
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()  # drop handles to the files we remove
    for entry in store_dir.iterdir() if store_dir.exists() else []:
        if entry.name in {LOCK, IN_PROGRESS}:
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _pid_alive(marker: Path) -> bool:
    try:
        pid = int(marker.read_text().strip() or 0)
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError, PermissionError, OSError):
        return False
    return pid > 0


@contextmanager
def write_lock(store_dir: Path, timeout: float = 10.0) -> Iterator[None]:
    """Hold the store's write lock and mark the ingest in progress until it completes."""
    store_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(store_dir / LOCK))
    try:
        lock.acquire(timeout=timeout)
    except Timeout as exc:
        raise IndexBusyError(
            f"another process is writing to {store_dir}; wait for it to finish and retry"
        ) from exc
    marker = store_dir / IN_PROGRESS
    try:
        marker.write_text(str(os.getpid()))
        yield
        marker.unlink(missing_ok=True)
    finally:
        lock.release()
