"""Where the index lives: opening it safely, locking writers, and its manifest.

Two kinds of :class:`Store`, one interface, used by ingest and the pipeline alike:

- :class:`LocalStore` (the default): one directory holds the embedded Chroma database, a
  ``manifest.json`` that records what was ingested (and bumps a generation number
  readers watch), a write lock so two ingesters never interleave, and a marker an
  ingest that dies midway leaves behind; readers then refuse the half-written store
  with the command that repairs it.
- :class:`~index.server_store.ServerStore` (``--chroma-url``): a Chroma server, shared by
  ingesters and app replicas on other machines; each ingest writes a generation of its
  own and publishes it with a compare-and-set (see :mod:`index.server_store`).

Ingest talks to either through :meth:`Store.writing`, which yields a :class:`WriteBatch`:
the collection to read unchanged passages from, the one to write to, and ``publish``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import chromadb
from chromadb.config import Settings as ChromaSettings
from filelock import FileLock, Timeout

if TYPE_CHECKING:
    from index.extract import Extracted
    from index.vector_store import UpsertChromaVectorStore

from index.errors import (
    EmbeddingMismatchError,
    IndexBusyError,
    IndexCorruptError,
    IndexMissingError,
    QAError,
)

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
    # Doc name -> {"sha256", "passages", "path", "added" (the generation that first
    # indexed it: prompts list documents in that order), "pages" for a paged format}.
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The published generation's collection on a Chroma server ("" in a local store,
    # whose one collection is written in place under its file lock).
    collection: str = ""

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

    def added(self) -> dict[str, int]:
        """Doc name -> the generation that first indexed it (0 for manifests from before)."""
        return {name: int(info.get("added", 0)) for name, info in self.docs.items()}

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
    return LocalStore(store_dir).collection(name, embed_model, create=create)


def _collection(
    client: chromadb.ClientAPI, where: str, name: str, embed_model: str, *, create: bool
) -> chromadb.Collection:
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
                f"no collection {name!r} in {where}; build it with `qa ingest`"
            ) from exc
        raise IndexCorruptError(
            f"{where} cannot be read ({type(exc).__name__}: {exc}); "
            "rebuild it: `qa ingest --rebuild`"
        ) from exc
    stored_model = (collection.metadata or {}).get("embed_model")
    if stored_model != embed_model:
        raise EmbeddingMismatchError(
            f"{where} was built with embedding model {stored_model!r}, "
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


class WriteBatch:
    """One ingest's access to the store: where unchanged passages are, where to write.

    ``base`` is the published collection (None on a first or ``--rebuild`` ingest);
    ``target`` is where this ingest's passages go — the same collection in a local store,
    a new generation on a server. Nothing a reader uses changes before :meth:`publish`
    on a server; locally the file lock and the in-progress marker guard the in-place write.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        try:
            self.previous = store.read_manifest()  # the manifest when the ingest started
        except QAError:  # unreadable: the ingest replaces it
            self.previous = None

    def collections(
        self, name: str, embed_model: str, *, rebuild: bool
    ) -> tuple[chromadb.Collection | None, chromadb.Collection]:
        """``(base, target)`` for the passage collection ``name``."""
        raise NotImplementedError

    def publish(self, manifest: Manifest, texts: dict[str, Extracted]) -> None:
        """Make what was written the index readers use, with the converted texts."""
        raise NotImplementedError


class Store:
    """The index's home: its Chroma client, manifest, write lock and extracted texts."""

    location: str  # a directory or a URL, for messages
    where: str  # "the store at .qa" / "the index server at http://…"

    def client(self) -> chromadb.ClientAPI:
        raise NotImplementedError

    def collection(self, name: str, embed_model: str, *, create: bool) -> chromadb.Collection:
        """The passage collection; readers (not ``create``) first check the index is whole."""
        if not create:
            self.check_complete()
        return _collection(self.client(), self.where, name, embed_model, create=create)

    def check_complete(self) -> None:
        """Raise when the last ingest was interrupted or none ever completed."""
        raise NotImplementedError

    def open_index(
        self, name: str, embed_model: str
    ) -> tuple[Manifest | None, chromadb.Collection]:
        """The manifest and the passage collection it describes, read as one pair."""
        collection = self.collection(name, embed_model, create=False)
        return self.read_manifest(), collection

    def read_manifest(self) -> Manifest | None:
        raise NotImplementedError

    def write_manifest(self, manifest: Manifest) -> None:
        raise NotImplementedError

    def writing(self, timeout: float = 10.0) -> AbstractContextManager[WriteBatch]:
        """One ingest's write: a lock held locally, a new generation on a server."""
        raise NotImplementedError

    def writer_active(self) -> bool:
        """Is another ingest writing right now? (Readers keep their snapshot meanwhile.)"""
        raise NotImplementedError

    def forget_handles(self) -> None:
        """Drop cached database handles (after the store was replaced underneath us)."""

    def failure(self, exc: BaseException) -> Exception:
        """The one-line error for a failed read of the index."""
        return IndexCorruptError(
            f"{self.where} cannot be read ({exc}); rebuild it: `qa ingest --rebuild`"
        )


class LocalStore(Store):
    """The embedded Chroma database in a directory, with its bookkeeping in files beside it."""

    def __init__(self, store_dir: Path) -> None:
        self.store_dir = store_dir
        self.location = str(store_dir)
        self.where = f"the store at {store_dir}"

    def client(self) -> chromadb.ClientAPI:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        return _client(self.store_dir)

    def check_complete(self) -> None:
        marker = self.store_dir / IN_PROGRESS
        if marker.exists() and not _pid_alive(marker):
            raise IndexCorruptError(
                f"the last ingest into {self.store_dir} was interrupted; "
                "re-run `qa ingest` to repair it"
            )
        if not (self.store_dir / MANIFEST).exists():
            raise IndexMissingError(
                f"no index at {self.store_dir}; build it with `qa ingest` (documents from seeds/)"
            )

    def read_manifest(self) -> Manifest | None:
        return Manifest.read(self.store_dir) if self.store_dir.exists() else None

    def write_manifest(self, manifest: Manifest) -> None:
        manifest.write(self.store_dir)

    @contextmanager
    def writing(self, timeout: float = 10.0) -> Iterator[WriteBatch]:
        with write_lock(self.store_dir, timeout):
            yield LocalBatch(self)

    def writer_active(self) -> bool:
        return (self.store_dir / IN_PROGRESS).exists()

    def forget_handles(self) -> None:
        from chromadb.api.client import SharedSystemClient

        SharedSystemClient.clear_system_cache()


class LocalBatch(WriteBatch):
    """An ingest into a local store: in place, under the store's file lock."""

    store: LocalStore

    def collections(
        self, name: str, embed_model: str, *, rebuild: bool
    ) -> tuple[chromadb.Collection | None, chromadb.Collection]:
        if rebuild:
            reset_store(self.store.store_dir)
        collection = self.store.collection(name, embed_model, create=True)
        return collection, collection

    def publish(self, manifest: Manifest, texts: dict[str, Extracted]) -> None:
        from index.texts import prune_texts, save_text

        for doc, extracted in texts.items():
            save_text(self.store.store_dir, doc, extracted)
        prune_texts(self.store.store_dir, set(texts))
        self.store.write_manifest(manifest)
