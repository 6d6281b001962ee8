"""The index an answer reads: one generation's passages, retriever, and the sentence-level
facts the verifier and the judge read (its verifier and corpus statistics), swapped whole.

:class:`StoreIndexes` loads snapshots from the store (a directory or a Chroma server) and
swaps in a newer one between answers; :class:`FixedIndexes` holds one snapshot (tests, and
anyone embedding the pipeline over passages already in memory). The pipeline sees them
through the :class:`Indexes` protocol only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from index.ingest import ingest
from index.store import vector_store
from qa.answerability import AnswerabilityChecker
from qa.citations import Verifier
from qa.config import Config
from qa.errors import GenerationRemovedError, IndexMissingError, QAError
from qa.evidence import Similarity
from qa.prompts import document_title
from qa.retrieval import HybridRetriever, Retrieved
from qa.support import SourceSentence, source_sentences
from qa.types import Passage

# How often a reader opens the newest generation again when the one it had was removed.
READ_ATTEMPTS = 3


class Retriever(Protocol):
    def retrieve(self, query: str, top_k: int | None = None) -> Retrieved: ...


@dataclass
class IndexSnapshot:
    """The passages this process answers from, as of one manifest generation."""

    generation: int
    retriever: Retriever
    passages: list[Passage]  # every passage: documents in the order added, then position
    sentences: list[SourceSentence]
    docs: dict[str, int]  # doc name -> passage count
    verifier: Verifier  # checks a draft against these sentences
    checker: AnswerabilityChecker  # the judge's lexical signals from these sentences
    collection: str = ""  # the published generation on a Chroma server ("" locally)


class Indexes(Protocol):
    """Where the pipeline's snapshots come from."""

    @property
    def current(self) -> IndexSnapshot: ...

    def reading(self) -> AbstractContextManager[IndexSnapshot]: ...

    def refresh(self) -> bool: ...

    def retrieve(self, snapshot: IndexSnapshot, query: str, top_k: int) -> Retrieved: ...


class SnapshotGuard:
    """Many answers at once, or one index swap: a readers-writer lock.

    Answers hold a read share while they run; a refresh that has a new snapshot to put
    in place waits for the answers in flight to finish (new ones wait behind it), so an
    answer never reads passages from one generation and sentences from another. Not
    tied to threads: a streaming answer may be resumed on another worker thread.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing)
            self._writing = True
            self._cond.wait_for(lambda: self._readers == 0)
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


class FixedIndexes:
    """One snapshot, never refreshed."""

    def __init__(self, snapshot: IndexSnapshot) -> None:
        self.current = snapshot

    @contextmanager
    def reading(self) -> Iterator[IndexSnapshot]:
        yield self.current

    def refresh(self) -> bool:
        return False

    def retrieve(self, snapshot: IndexSnapshot, query: str, top_k: int) -> Retrieved:
        return snapshot.retriever.retrieve(query, top_k=top_k)


def snapshot_of(
    generation: int,
    retriever: Retriever,
    passages: Sequence[Passage],
    config: Config,
    similarity: Similarity,
    collection: str = "",
    added: Mapping[str, int] | None = None,
) -> IndexSnapshot:
    """A snapshot of ``passages`` (any order): sentences, document counts, the verifier
    of drafts against them and their statistics for the judge.

    Documents are ordered by ``added`` (doc name -> the generation that first indexed it;
    missing: 0), then by name, so a new document goes after the ones the prompt already had.
    """
    added = added or {}
    ordered = sorted(passages, key=lambda p: (added.get(p.doc, 0), p.doc, p.position))
    docs: dict[str, int] = {}
    for passage in ordered:
        docs[passage.doc] = docs.get(passage.doc, 0) + 1
    sentences = source_sentences(ordered)  # embedded lazily: a big corpus loads fast
    verifier = Verifier(
        sentences,
        threshold=config.support_threshold,
        min_qa_similarity=config.min_qa_similarity,
        similarity=similarity,
        paraphrase_min_support=config.paraphrase_min_support,
        paraphrase_min_similarity=config.paraphrase_min_similarity,
        document_titles=frozenset(document_title(d) for d in docs),
    )
    checker = AnswerabilityChecker(sentences, similarity)
    return IndexSnapshot(
        generation, retriever, ordered, sentences, docs, verifier, checker, collection
    )


class StoreIndexes:
    """Snapshots of the store's index; a newer ingest is swapped in between answers.

    Constructing it reads nothing; :meth:`load` reads the first snapshot (building the
    index from the documents folder on first use).
    """

    def __init__(
        self,
        config: Config,
        store: Any,  # index.store.LocalStore | ServerStore
        embedder: Any,
        similarity: Similarity,
        snapshot: IndexSnapshot | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self._embedder = embedder
        self._similarity = similarity
        self._snapshot = snapshot
        self._guard = SnapshotGuard()
        self._refreshing = threading.Lock()
        self.stale = False  # a reload failed: the snapshot's database handle may be dead

    @property
    def current(self) -> IndexSnapshot:
        if self._snapshot is None:
            raise IndexMissingError("the index has not been loaded")
        return self._snapshot

    def load(self) -> IndexSnapshot:
        """Read the store's index into a new snapshot (and keep it as the current one)."""
        config, store = self.config, self.store
        for attempt in range(READ_ATTEMPTS):
            try:
                manifest, collection = store.open_index(config.collection, config.embed_model)
            except GenerationRemovedError:
                continue
            except IndexMissingError:
                if not config.seeds_dir.exists():
                    raise
                ingest(config.seeds_dir, config)  # first use: build the index from the seeds
                manifest, collection = store.open_index(config.collection, config.embed_model)
            vectors = vector_store(collection)
            try:
                nodes = vectors.get_nodes(None)
                break
            except Exception as exc:
                failure = store.failure(exc)
                if isinstance(failure, GenerationRemovedError) and attempt + 1 < READ_ATTEMPTS:
                    continue  # removed between the manifest and its passages: the newest now
                raise failure from exc
        else:
            raise GenerationRemovedError(f"the index on {store.where} kept changing; ask again")
        if not nodes:
            raise IndexMissingError(f"the index on {store.where} is empty; run `qa ingest`")
        retriever = HybridRetriever(vectors, self._embedder, nodes, config.top_k)
        generation = manifest.generation if manifest else 0
        snapshot = snapshot_of(
            generation,
            retriever,
            list(retriever.passages.values()),
            config,
            self._similarity,
            manifest.collection if manifest else "",
            manifest.added() if manifest else None,
        )
        if self._snapshot is None:
            self._snapshot = snapshot
        return snapshot

    @contextmanager
    def reading(self) -> Iterator[IndexSnapshot]:
        """The current snapshot, held for the length of one answer."""
        with self._guard.reading():
            yield self.current

    def refresh(self) -> bool:
        """Pick up a newer ingest (True when a new snapshot was swapped in).

        A reload that failed (say, the store was damaged) leaves the snapshot stale: every
        later call retries it, reporting the same clear error, until it succeeds (after
        ``qa ingest --rebuild``), instead of querying a dead database handle.
        """
        store = self.store
        with self._refreshing:
            if not self.stale and store.writer_active():
                return False  # another process is writing: keep answering from our snapshot
            manifest = store.read_manifest()
            if manifest is None or self.stale:
                store.forget_handles()  # the old database handle is stale
            elif (manifest.generation, manifest.collection) == (
                self.current.generation,
                self.current.collection,
            ):
                return False
            self.stale = True
            snapshot = self.load()
            with self._guard.writing():  # answers in flight finish on the old snapshot
                self._snapshot = snapshot
                self.stale = False
            return True

    def retrieve(self, snapshot: IndexSnapshot, query: str, top_k: int) -> Retrieved:
        """The question's passages, best first; a store that failed is one clear error."""
        try:
            return snapshot.retriever.retrieve(query, top_k=top_k)
        except QAError:
            raise
        except Exception as exc:  # the store (or its server) failed under us
            self.stale = True  # reload on the next question, once it is back
            raise self.store.failure(exc) from exc
