"""Where the index lives: opening it safely, locking writers, and its manifest.

Two kinds of :class:`Store`, one interface, used by ingest and the pipeline alike:

- :class:`LocalStore` (the default): one directory holds the embedded Chroma database, a
  ``manifest.json`` that records what was ingested (and bumps a generation number
  readers watch), a write lock so two ingesters never interleave, and a marker an
  ingest that dies midway leaves behind; readers then refuse the half-written store
  with the command that repairs it.
- :class:`ServerStore` (``--chroma-url``): a Chroma server, shared by ingesters and app
  replicas on other machines. Chroma offers no lock and no compare-and-set, so writers
  do not exclude each other: they cannot collide instead. Each ingest writes a new
  *generation*, a collection of its own (unchanged passages copied with their vectors
  from the published one), and publishes it by rewriting one record, the manifest,
  which names the collection readers use. Readers never see a half-written index; a
  writer killed midway leaves only an unpublished collection; of two concurrent
  ingests the second to finish finds the manifest changed under it and stops with one
  line instead of replacing the first (no clocks are compared anywhere).

Ingest talks to either through :meth:`Store.writing`, which yields a :class:`WriteBatch`:
the collection to read unchanged passages from, the one to write to, and ``publish``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

import chromadb
from chromadb.config import Settings as ChromaSettings
from filelock import FileLock, Timeout

if TYPE_CHECKING:
    from index.config import IndexConfig
    from index.extract import Extracted
    from index.vector_store import UpsertChromaVectorStore

from index.errors import (
    EmbeddingMismatchError,
    IndexBusyError,
    IndexCorruptError,
    IndexMissingError,
    IndexUnreachableError,
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


def open_store(config: IndexConfig) -> Store:
    """The configured store: a Chroma server with ``chroma_url``, else the local directory."""
    if config.chroma_url:
        return ServerStore(config.chroma_url, config.collection, config.chroma_token)
    return LocalStore(Path(config.store_dir))


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


T = TypeVar("T")
_MANIFEST_ID, _TEXT_PREFIX = "manifest", "text:"
TOKEN_PROVIDER = "chromadb.auth.token_authn.TokenAuthClientProvider"  # sends a bearer token


class ServerStore(Store):
    """An index on a Chroma server, its bookkeeping in a collection beside the passages.

    Every call to the server goes through :meth:`_call`, which turns a refused
    connection into one line naming the URL, and a refused token into another.
    """

    def __init__(self, url: str, collection: str, token: str = "") -> None:
        parsed = urlparse(url if "://" in url else f"http://{url}")
        if not parsed.hostname:
            raise IndexUnreachableError(f"{url!r} is not a server URL (e.g. http://127.0.0.1:8000)")
        self.url = url
        self.location = url
        self.where = f"the index server at {url}"
        self._host, self._ssl = parsed.hostname, parsed.scheme == "https"
        self._port = parsed.port or (443 if self._ssl else 8000)
        self._token = token
        self._collection_name = collection
        self._bookkeeping_name = f"{collection}-bookkeeping"
        self._client: chromadb.ClientAPI | None = None
        self._records: chromadb.Collection | None = None

    # --- the connection -------------------------------------------------------------
    def client(self) -> chromadb.ClientAPI:
        if self._client is None:
            auth = (
                {
                    "chroma_client_auth_provider": TOKEN_PROVIDER,
                    "chroma_client_auth_credentials": self._token,
                }
                if self._token
                else {}
            )
            settings = ChromaSettings(anonymized_telemetry=False, allow_reset=True, **auth)
            self._client = self._call(
                lambda: chromadb.HttpClient(
                    host=self._host, port=self._port, ssl=self._ssl, settings=settings
                )
            )
        return self._client

    def _call(self, action: Callable[[], T]) -> T:
        try:
            return action()
        except QAError:
            raise
        except Exception as exc:
            self._records = None  # look it up again next time (the server may have restarted)
            raise self.failure(exc) from exc

    def failure(self, exc: BaseException) -> Exception:
        """The one-line error for a failed call to the server."""
        text = " ".join(str(exc).split())[:160] or type(exc).__name__
        lowered = f"{type(exc).__name__} {text}".lower()
        if any(k in lowered for k in ("401", "403", "unauthorized", "forbidden", "authn")):
            return IndexUnreachableError(
                f"{self.where} refused the token (set QA_CHROMA_TOKEN): {text}"
            )
        if isinstance(exc, (ConnectionError, OSError, ValueError)) or "connect" in lowered:
            return IndexUnreachableError(
                f"index server unreachable at {self.url} ({text}); start it (`chroma run`) "
                "or fix --chroma-url"
            )
        return IndexCorruptError(f"{self.where} failed: {text}")

    def collection(self, name: str, embed_model: str, *, create: bool) -> chromadb.Collection:
        """The published generation of ``name`` (``create`` makes ``name`` itself)."""
        if not create:
            return self.open_index(name, embed_model)[1]
        return self._call(
            lambda: _collection(self.client(), self.where, name, embed_model, create=True)
        )

    def open_index(
        self, name: str, embed_model: str
    ) -> tuple[Manifest | None, chromadb.Collection]:
        manifest = self.read_manifest()  # first: the generation opened is the one it names
        if manifest is None:
            raise IndexMissingError(f"no index on {self.where}; build it with `qa ingest`")
        return manifest, self.published_collection(manifest, name, embed_model)

    def published_collection(
        self, manifest: Manifest, name: str, embed_model: str
    ) -> chromadb.Collection:
        """The collection ``manifest`` publishes (``name`` for an index built before)."""
        published = manifest.collection or name
        return self._call(
            lambda: _collection(self.client(), self.where, published, embed_model, create=False)
        )

    # --- bookkeeping records ----------------------------------------------------------
    def _bookkeeping(self) -> chromadb.Collection:
        """The bookkeeping collection, looked up once (every question reads two records)."""
        if self._records is None:
            self._records = self._call(
                lambda: self.client().get_or_create_collection(
                    self._bookkeeping_name, embedding_function=None
                )
            )
        return self._records

    def _get(self, ids: list[str]) -> dict[str, str]:
        got = self._call(lambda: self._bookkeeping().get(ids=ids, include=["documents"]))
        return dict(zip(got["ids"], got["documents"], strict=True))

    def _ids(self) -> list[str]:
        """Every bookkeeping record's id (without its document, which may be a whole text)."""
        return self._call(lambda: self._bookkeeping().get(include=[]))["ids"]

    def _put(self, records: dict[str, str]) -> None:
        if records:
            self._call(
                lambda: self._bookkeeping().upsert(
                    ids=list(records),
                    documents=list(records.values()),
                    embeddings=[[1.0]] * len(records),  # records are looked up by id only
                )
            )

    def _delete(self, ids: list[str]) -> None:
        if ids:
            self._call(lambda: self._bookkeeping().delete(ids=ids))

    def read_manifest(self) -> Manifest | None:
        raw = self._get([_MANIFEST_ID]).get(_MANIFEST_ID)
        if raw is None:
            return None
        try:
            return Manifest(**json.loads(raw))
        except (ValueError, TypeError) as exc:
            raise IndexCorruptError(
                f"the manifest on {self.where} is unreadable ({exc}); `qa ingest --rebuild`"
            ) from exc

    def write_manifest(self, manifest: Manifest) -> None:
        self._put({_MANIFEST_ID: json.dumps(manifest.__dict__, sort_keys=True)})

    # --- writers: a new generation each, published by one record ---------------------
    def check_complete(self) -> None:
        if self.read_manifest() is None:
            raise IndexMissingError(f"no index on {self.where}; build it with `qa ingest`")

    def writer_active(self) -> bool:
        """Always False: readers never see a generation before it is published."""
        return False

    @contextmanager
    def writing(self, timeout: float = 10.0) -> Iterator[WriteBatch]:
        batch = ServerBatch(self)
        try:
            yield batch
        except Exception as exc:
            with suppress(Exception):  # unpublished: readers never saw it
                batch.discard()
            # Another ingest that published meanwhile removes this one's generation: say
            # that, whatever the write that then failed reported.
            busy = None
            if not isinstance(exc, IndexBusyError):
                with suppress(Exception):
                    busy = batch.superseded()
            if busy is not None:
                raise busy from exc
            if isinstance(exc, QAError):
                raise
            raise self.failure(exc) from exc

    def generations(self, name: str) -> list[chromadb.Collection]:
        """Every generation collection of ``name`` on the server, published or not."""
        prefix = f"{name}{GENERATION_MARK}"

        def listed() -> list[chromadb.Collection]:
            client = self.client()
            found = []
            for listed in client.list_collections():
                name = getattr(listed, "name", listed)
                if name.startswith(prefix):
                    with suppress(Exception):  # dropped meanwhile by its failed writer
                        found.append(client.get_collection(name, embedding_function=None))
            return found

        return self._call(listed)

    def drop(self, names: list[str]) -> None:
        """Delete these collections and their text records (a missing one is no error)."""
        for collection in names:
            with suppress(Exception):
                self._call(lambda c=collection: self.client().delete_collection(c))
        doomed = [i for i in self._ids() if any(i.startswith(_text_prefix(c)) for c in names)]
        self._delete(doomed)


GENERATION_MARK = "-gen-"


def _text_prefix(collection: str) -> str:
    return f"{_TEXT_PREFIX}{collection}:"


class ServerBatch(WriteBatch):
    """An ingest into a Chroma server: a new generation, published by the manifest."""

    store: ServerStore

    def __init__(self, store: ServerStore) -> None:
        super().__init__(store)
        self.name = ""  # the generation this ingest writes, once it has one

    def collections(
        self, name: str, embed_model: str, *, rebuild: bool
    ) -> tuple[chromadb.Collection | None, chromadb.Collection]:
        store = self.store
        base = None
        if self.previous is not None and not rebuild:
            with suppress(QAError):  # a published collection that is gone: embed anew
                base = store.published_collection(self.previous, name, embed_model)
        self.name = f"{name}{GENERATION_MARK}{uuid.uuid4().hex}"
        # What it was started from: the publish that makes this base stale knows the
        # collection is a doomed or dead writer's, without comparing anyone's clock.
        base_name = self.previous.collection if self.previous and not rebuild else ""
        created = {"writer": f"{socket.gethostname()}:{os.getpid()}", "base": base_name}

        def create() -> chromadb.Collection:
            return store.client().create_collection(
                self.name,
                metadata={"embed_model": embed_model, "schema": SCHEMA_VERSION, **created},
                configuration={"hnsw": {"space": "cosine"}},
                embedding_function=None,
            )

        return base, store._call(create)

    def publish(self, manifest: Manifest, texts: dict[str, Extracted]) -> None:
        """Point the manifest at this generation, unless another ingest published first.

        The check narrows the window to the time between one read and one write; Chroma
        has no compare-and-set to close it. Either way readers get one whole generation.
        """
        from index.texts import text_key, text_record

        store = self.store
        busy = self.superseded()
        if busy is not None:
            raise busy
        published = self.previous.collection if self.previous else ""  # still published
        prefix = _text_prefix(self.name)
        store._put({prefix + text_key(doc): text_record(doc, e) for doc, e in texts.items()})
        manifest.collection = self.name
        store.write_manifest(manifest)
        # Keep the generation just replaced (an answer in flight may still read it). Any
        # other generation was started from an older index: superseded, a dead writer's,
        # or a running writer's that will find the manifest changed and stop: drop them.
        # One started from this generation began after it was published: keep it.
        # Published already: tidying up is best effort and never fails the ingest.
        family = self.name.split(GENERATION_MARK)[0]
        with suppress(QAError):
            stale = [
                c.name
                for c in store.generations(family)
                if c.name not in {self.name, published}
                and (c.metadata or {}).get("base") != self.name
            ]
            if published:  # the collection of an index built before generations existed
                stale.append(family)
            store.drop(stale)

    def superseded(self) -> IndexBusyError | None:
        """The error to stop with when another ingest published since this one began."""
        current = self.store.read_manifest()
        published = current.collection if current else ""
        if published == (self.previous.collection if self.previous else ""):
            return None
        return IndexBusyError(
            f"another ingest published a new index on {self.store.where} while this one "
            f"ran (generation {current.generation if current else 0}); re-run `qa ingest` "
            "to index these documents on top of it"
        )

    def discard(self) -> None:
        """Remove this ingest's unpublished generation (after it failed)."""
        if self.name:
            self.store.drop([self.name])
