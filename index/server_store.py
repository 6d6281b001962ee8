"""The index on a Chroma server, shared by ingesters and app replicas on other machines.

Chroma has no transactions and no lock, but it refuses to create a collection whose name
exists, and that refusal is atomic in the server. This module builds its one
compare-and-set on it:

- Every ingest writes a **generation**, a collection of its own (``passages-gen-<uuid>``;
  unchanged passages copied with their vectors from the published one), and beside it, in
  the bookkeeping collection, that generation's manifest (``manifest:<collection>``) and
  converted texts (``text:<collection>:<key>``). Nothing a reader uses changes meanwhile.
- It then **claims** the generation number after the one it started from by creating the
  empty collection ``passages-published-<number>``, whose metadata names its collection.
  Only one writer can create a given number: that creation *is* the publication. A writer
  whose number was taken lost the race: it says so in one line and removes only its own
  generation. Markers are never deleted, so a number once taken stays taken.
- The ``manifest`` record is a pointer to the newest generation, rewritten after each
  claim so that readers find it in one read. It may lag (a writer killed between claim and
  pointer, or two pointer writes out of order): readers and writers therefore follow the
  markers forward from it (one missing-collection lookup when it is current).
- Clean-up, after each publish, deletes a generation only when it can never be published
  (its number was claimed by another) and is neither the published one nor the one it
  replaced (answers in flight may still read that). Because numbers only grow, a
  generation that may be deleted stays deletable; the rule is re-checked right before each
  delete anyway. A reader that still hits a removed generation gets
  :class:`~index.errors.GenerationRemovedError` and re-opens the newest one.

``docs/scaling-out.md`` walks through every interleaving.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlparse

import chromadb
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import NotFoundError

from index.errors import (
    GenerationRemovedError,
    IndexBusyError,
    IndexCorruptError,
    IndexMissingError,
    IndexUnreachableError,
    QAError,
)
from index.store import SCHEMA_VERSION, Manifest, Store, WriteBatch, _collection

if TYPE_CHECKING:
    from index.extract import Extracted

T = TypeVar("T")
GENERATION_MARK = "-gen-"
PUBLISHED_MARK = "-published-"
POINTER_ID = "manifest"  # the newest generation's manifest, for a reader's first read
TOKEN_PROVIDER = "chromadb.auth.token_authn.TokenAuthClientProvider"  # sends a bearer token
OPEN_ATTEMPTS = 5  # a reader re-resolves this often when its generation vanished under it


def _manifest_id(collection: str) -> str:
    return f"manifest:{collection}"


def _text_prefix(collection: str) -> str:
    return f"text:{collection}:"


def record_owner(record_id: str) -> str | None:
    """The generation a bookkeeping record belongs to (None for the pointer)."""
    kind, _, rest = record_id.partition(":")
    if kind == "manifest" and rest:
        return rest
    if kind == "text" and ":" in rest:
        return rest.rsplit(":", 1)[0]
    return None


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
        self.family = collection  # generations and markers are named after it
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
        if isinstance(exc, NotFoundError):  # a generation removed under a slow reader
            return GenerationRemovedError(
                f"the index generation being read on {self.where} was replaced and removed; "
                "ask again"
            )
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

    def lookup(self, name: str) -> chromadb.Collection | None:
        """The collection ``name``, or None when the server has none by that name."""
        try:
            return self.client().get_collection(name, embedding_function=None)
        except NotFoundError:
            return None
        except Exception as exc:
            self._records = None
            raise self.failure(exc) from exc

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
        """The newest published manifest and its collection, opened as one pair.

        A generation removed between the two reads (two publishes passed meanwhile) is
        resolved again; only a manifest that names a missing collection twice is an error.
        """
        missing: IndexMissingError | None = None
        for _ in range(OPEN_ATTEMPTS):
            manifest = self.read_manifest()
            if manifest is None:
                raise IndexMissingError(f"no index on {self.where}; build it with `qa ingest`")
            try:
                return manifest, self.published_collection(manifest, name, embed_model)
            except IndexMissingError as exc:
                now = self.read_manifest()
                if now is not None and now.collection == manifest.collection:
                    raise  # the newest generation itself is missing: nothing to retry
                missing = exc
        assert missing is not None
        raise missing

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

    def record_ids(self) -> list[str]:
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

    def _parse(self, raw: str, what: str) -> Manifest:
        try:
            return Manifest(**json.loads(raw))
        except (ValueError, TypeError) as exc:
            raise IndexCorruptError(
                f"the {what} on {self.where} is unreadable ({exc}); `qa ingest --rebuild`"
            ) from exc

    # --- publication markers: the compare-and-set ---------------------------------------
    def marker_name(self, generation: int) -> str:
        return f"{self.family}{PUBLISHED_MARK}{generation:08d}"

    def published_as(self, generation: int) -> str | None:
        """The collection published as ``generation`` (None: that number is not taken)."""
        marker = self.lookup(self.marker_name(generation))
        return None if marker is None else str((marker.metadata or {}).get("collection", ""))

    def claim(self, generation: int, collection: str) -> bool:
        """Publish ``collection`` as ``generation`` unless another took that number first.

        Atomic: the server creates a collection name once. A creation whose reply was
        lost is recognised by the marker naming ``collection``.
        """
        try:
            self.client().create_collection(
                self.marker_name(generation),
                metadata={"collection": collection, "schema": SCHEMA_VERSION},
                embedding_function=None,
            )
            return True
        except Exception as exc:
            taken = self.published_as(generation)
            if taken is None:  # not created, and not because it exists: the call failed
                raise self.failure(exc) from exc
            return taken == collection

    def _newest_marker(self) -> int:
        """The highest generation number claimed on the server (0 when none is)."""
        prefix = f"{self.family}{PUBLISHED_MARK}"
        numbers = [
            int(name[len(prefix) :])
            for name in self.collection_names()
            if name.startswith(prefix) and name[len(prefix) :].isdigit()
        ]
        return max(numbers, default=0)

    def collection_names(self) -> list[str]:
        listed = self._call(lambda: self.client().list_collections())
        return [str(getattr(c, "name", c)) for c in listed]

    # --- reading the newest manifest ----------------------------------------------------
    def read_manifest(self) -> Manifest | None:
        """The newest published generation's manifest: the pointer, followed forward."""
        for _ in range(OPEN_ATTEMPTS):
            raw = self._get([POINTER_ID]).get(POINTER_ID)
            pointer: Manifest | None = None
            if raw is not None:
                with suppress(IndexCorruptError):
                    pointer = self._parse(raw, "manifest")
            if pointer is None:  # none yet, or damaged: start from the markers themselves
                generation = self._newest_marker()
                if generation == 0:
                    if raw is not None:
                        self._parse(raw, "manifest")  # raises the one-line error
                    return None
                generation -= 1
            else:
                generation = pointer.generation
            newest, collection = generation, None
            while (named := self.published_as(newest + 1)) is not None:
                newest, collection = newest + 1, named
            if collection is None:  # the pointer is current
                return pointer
            record = self._get([_manifest_id(collection)]).get(_manifest_id(collection))
            if record is not None:
                return self._parse(record, f"manifest of {collection}")
            # Removed meanwhile: two more publishes passed. Resolve again from the pointer.
        raise IndexCorruptError(
            f"the newest manifest on {self.where} keeps moving or is missing; re-run `qa ingest`"
        )

    def write_manifest(self, manifest: Manifest) -> None:
        """Point readers at ``manifest`` (only ever forward: a later one stays)."""
        current = self._get([POINTER_ID]).get(POINTER_ID)
        with suppress(IndexCorruptError):
            if current is not None and self._parse(current, "manifest").generation > (
                manifest.generation
            ):
                return
        self._put({POINTER_ID: json.dumps(manifest.__dict__, sort_keys=True)})

    # --- writers: a new generation each, published by a claimed number ----------------
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
        found = []
        for listed in self.collection_names():
            if listed.startswith(prefix) and (collection := self.lookup(listed)) is not None:
                found.append(collection)
        return found

    def drop(self, names: list[str]) -> None:
        """Delete these collections and their records (a missing one is no error)."""
        for collection in names:
            with suppress(GenerationRemovedError):  # Chroma's "does not exist"
                self._call(lambda c=collection: self.client().delete_collection(c))
        doomed = [i for i in self.record_ids() if record_owner(i) in names]
        self._delete(doomed)

    def readable(self, manifest: Manifest) -> set[str]:
        """The generations readers may be reading: the newest and the one it replaced."""
        keep = {manifest.collection or self.family}
        replaced = self.published_as(manifest.generation - 1)
        if replaced:
            keep.add(replaced)
        return keep

    def _removable(self, collection: chromadb.Collection) -> bool:
        """Can never be published and no reader may still be reading it (see module doc)."""
        current = self.read_manifest()
        if current is None:
            return False
        base = (collection.metadata or {}).get("base_generation")
        started_from = int(base) if isinstance(base, int) else -1  # written before markers
        return collection.name not in self.readable(current) and started_from < (current.generation)

    def tidy(self, also_keep: set[str]) -> list[str]:
        """Remove generations that can never be published and are no longer read.

        Records are listed before collections, so a record whose collection is not listed
        belongs to a generation already removed (a writer creates its collection first).
        """
        records = self.record_ids()
        removed = []
        candidates = self.generations(self.family)
        legacy = self.lookup(self.family)  # an index built before generations existed
        if legacy is not None:
            candidates.append(legacy)
        for collection in candidates:
            if collection.name in also_keep:
                continue
            if self._removable(collection):  # reads the newest manifest right before the delete
                self.drop([collection.name])
                removed.append(collection.name)
        existing = set(self.collection_names())
        orphans = [i for i in records if (owner := record_owner(i)) and owner not in existing]
        self._delete(orphans)
        return removed


class ServerBatch(WriteBatch):
    """An ingest into a Chroma server: a new generation, published by claiming a number."""

    store: ServerStore

    def __init__(self, store: ServerStore) -> None:
        super().__init__(store)
        self.name = ""  # the generation this ingest writes, once it has one
        self.number = (self.previous.generation if self.previous else 0) + 1  # to claim
        self.published = False

    def collections(
        self, name: str, embed_model: str, *, rebuild: bool
    ) -> tuple[chromadb.Collection | None, chromadb.Collection]:
        store = self.store
        base = None
        if self.previous is not None and not rebuild:
            with suppress(QAError):  # a published collection that is gone: embed anew
                base = store.published_collection(self.previous, name, embed_model)
        self.name = f"{name}{GENERATION_MARK}{uuid.uuid4().hex}"
        created = {
            "writer": f"{socket.gethostname()}:{os.getpid()}",
            "base": self.previous.collection if self.previous and not rebuild else "",
            "base_generation": self.number - 1,  # it can only ever be published as number
        }

        def create() -> chromadb.Collection:
            return store.client().create_collection(
                self.name,
                metadata={"embed_model": embed_model, "schema": SCHEMA_VERSION, **created},
                configuration={"hnsw": {"space": "cosine"}},
                embedding_function=None,
            )

        return base, store._call(create)

    def publish(self, manifest: Manifest, texts: dict[str, Extracted]) -> None:
        """Claim this generation's number; a lost claim is one line and changes nothing."""
        from index.texts import text_key, text_record

        store = self.store
        busy = self.superseded()  # cheap early exit; the claim below is what decides
        if busy is not None:
            raise busy
        manifest.collection, manifest.generation = self.name, self.number
        prefix = _text_prefix(self.name)
        records = {prefix + text_key(doc): text_record(doc, e) for doc, e in texts.items()}
        records[_manifest_id(self.name)] = json.dumps(manifest.__dict__, sort_keys=True)
        store._put(records)
        if not store.claim(self.number, self.name):
            raise self.superseded() or self._lost()
        self.published = True
        # Published. The rest is best effort and never fails the ingest: readers follow the
        # markers past a pointer that lags, and the next publish tidies what this one left.
        with suppress(QAError):
            store.write_manifest(manifest)
        with suppress(QAError):
            replaced = {self.previous.collection} if self.previous else set()
            store.tidy(also_keep={self.name, *replaced})

    def _lost(self) -> IndexBusyError:
        return IndexBusyError(
            f"another ingest published generation {self.number} on {self.store.where} while "
            "this one ran; re-run `qa ingest` to index these documents on top of it"
        )

    def superseded(self) -> IndexBusyError | None:
        """The error to stop with when another ingest published since this one began."""
        if self.published:
            return None
        current = self.store.read_manifest()
        now = (current.generation, current.collection) if current else (0, "")
        began = (self.previous.generation, self.previous.collection) if self.previous else (0, "")
        if now == began:
            return None
        return IndexBusyError(
            f"another ingest published a new index on {self.store.where} while this one "
            f"ran (generation {now[0]}); re-run `qa ingest` to index these documents on top "
            "of it"
        )

    def discard(self) -> None:
        """Remove this ingest's generation, unless its number names it (then it is live)."""
        if self.name and not self.published and self.store.published_as(self.number) != self.name:
            self.store.drop([self.name])
