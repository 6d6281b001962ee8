"""Sync a directory of documents into the Chroma store.

The index mirrors the directory: new passages are embedded and upserted, passages whose
text or place changed get new ids (the old ones are deleted), and passages of deleted
files are removed. Ids are content hashes, so re-ingesting unchanged files embeds
nothing and writes nothing but the manifest.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llama_index.core.schema import TextNode

from index.chunk import chunk_document
from index.clean import clean_paragraphs
from index.store import Manifest, open_collection, reset_store, vector_store, write_lock
from qa.config import Config
from qa.errors import QAError, SeedsNotFoundError
from qa.types import Passage

DOCUMENT_SUFFIXES = (".txt", ".md")
Progress = Callable[[str, int, int], None]


@dataclass
class IngestReport:
    """What one ingest run did."""

    files: int = 0
    passages: int = 0
    added: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        text = (
            f"{self.files} file(s), {self.passages} passages: {self.added} added, "
            f"{self.removed} removed, {self.unchanged} unchanged in {self.seconds:.2f} s"
        )
        if self.skipped:
            text += f"; skipped {len(self.skipped)}: " + "; ".join(self.skipped)
        return text


def find_documents(path: Path) -> list[Path]:
    """The ``.txt``/``.md`` files at ``path`` (a file or a directory, searched recursively)."""
    if not path.exists():
        raise SeedsNotFoundError(
            f"documents path {path} does not exist; pass a folder of .txt/.md files"
        )
    if path.is_file():
        return [path]
    files = sorted(
        p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES
    )
    if not files:
        raise SeedsNotFoundError(f"no .txt or .md documents under {path}")
    return files


def read_passages(path: Path, root: Path, max_chars: int) -> tuple[str, str, list[Passage]] | str:
    """Clean and chunk one file. Returns ``(doc, sha256, passages)`` or a reason to skip it."""
    doc = path.name if root.is_file() else path.relative_to(root).as_posix()
    raw = path.read_bytes()
    if b"\x00" in raw:
        return f"{doc} (binary file)"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return f"{doc} (not UTF-8 text)"
    passages = chunk_document(doc, text, clean_paragraphs(text), max_chars)
    if not passages:
        return f"{doc} (no article text)"
    return doc, hashlib.sha256(raw).hexdigest(), passages


def to_node(passage: Passage) -> TextNode:
    """A llama-index node carrying the passage's offsets as flat metadata."""
    from llama_index.core.schema import TextNode

    metadata = {
        "doc": passage.doc,
        "start": passage.start,
        "end": passage.end,
        "position": passage.position,
        "sentences": json.dumps(passage.sentences),
    }
    return TextNode(
        id_=passage.id,
        text=passage.text,
        metadata=metadata,
        excluded_embed_metadata_keys=list(metadata),
        excluded_llm_metadata_keys=list(metadata),
    )


def ingest(
    path: Path | None = None,
    config: Config | None = None,
    *,
    rebuild: bool = False,
    progress: Progress | None = None,
) -> IngestReport:
    """Make the store mirror the documents at ``path`` (default: ``config.seeds_dir``)."""
    config = config or Config.from_env()
    root = Path(path or config.seeds_dir)
    started = time.perf_counter()
    report = IngestReport()

    wanted: dict[str, Passage] = {}
    docs: dict[str, dict[str, object]] = {}
    files = find_documents(root)
    for number, file in enumerate(files, 1):
        if progress:
            progress("reading", number, len(files))
        result = read_passages(file, root, config.passage_max_chars)
        if isinstance(result, str):
            report.skipped.append(result)
            continue
        doc, digest, passages = result
        docs[doc] = {"sha256": digest, "passages": len(passages)}
        wanted.update((p.id, p) for p in passages)
    if not docs:
        raise SeedsNotFoundError(
            f"no readable documents under {root}: " + "; ".join(report.skipped)
        )

    with write_lock(config.store_dir):
        try:
            previous = Manifest.read(config.store_dir)
        except QAError:  # unreadable: a rebuild replaces it
            previous = None
        if rebuild:
            reset_store(config.store_dir)
        collection = open_collection(
            config.store_dir, config.collection, config.embed_model, create=True
        )
        existing = set(collection.get(include=[])["ids"])
        new = [wanted[i] for i in wanted if i not in existing]
        stale = sorted(existing - set(wanted))
        if new:
            reusable = _stored_vectors(collection, stale)
            _embed_and_store(new, collection, config, progress, reusable)
        if stale:
            collection.delete(ids=stale)
        Manifest(
            generation=(previous.generation if previous else 0) + 1,
            embed_model=config.embed_model,
            root=str(root.resolve()),
            docs=docs,
        ).write(config.store_dir)

    report.files = len(docs)
    report.passages = len(wanted)
    report.added = len(new)
    report.removed = len(stale)
    report.unchanged = len(wanted) - len(new)
    report.seconds = time.perf_counter() - started
    return report


def _stored_vectors(collection: Any, ids: list[str]) -> dict[str, list[float]]:
    """Text -> embedding of passages about to be replaced.

    An edit near the top of a file moves the offsets (so the ids) of every later passage;
    their text is unchanged and so is its embedding.
    """
    if not ids:
        return {}
    stored = collection.get(ids=ids, include=["documents", "embeddings"])
    return {
        text: list(vector)
        for text, vector in zip(stored["documents"], stored["embeddings"], strict=True)
    }


def _embed_and_store(
    passages: list[Passage],
    collection: Any,
    config: Config,
    progress: Progress | None,
    reusable: dict[str, list[float]],
) -> None:
    nodes = [to_node(p) for p in passages]
    for node in nodes:
        node.embedding = reusable.get(node.get_content())
    todo = [n for n in nodes if n.embedding is None]
    if todo:
        from index.embed import load_embedder  # loading torch costs seconds: only when needed

        embedder = load_embedder(config.embed_model)
        batch = 16
        for i in range(0, len(todo), batch):
            chunk = todo[i : i + batch]
            vectors = embedder.get_text_embedding_batch([n.get_content() for n in chunk])
            for node, vector in zip(chunk, vectors, strict=True):
                node.embedding = vector
            if progress:
                progress("embedding", min(i + batch, len(todo)), len(todo))
    vector_store(collection).add(nodes)
