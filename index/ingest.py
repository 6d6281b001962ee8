"""Sync documents (files or folders of them) into the Chroma store.

The index mirrors the documents given: new passages are embedded and upserted, passages whose
text or place changed get new ids (the old ones are deleted), and passages of deleted
files are removed. Ids are content hashes, so re-ingesting unchanged files embeds
nothing and writes nothing but the manifest.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llama_index.core.schema import TextNode

from index.chunk import chunk_document
from index.clean import split_paragraphs
from index.config import IndexConfig
from index.errors import SeedsNotFoundError
from index.extract import (
    SUPPORTED_SUFFIXES,
    Extracted,
    UnreadableDocument,
    extract,
    is_supported,
    unsupported_reason,
)
from index.store import Manifest, vector_store
from index.stores import open_store
from index.types import Passage

Progress = Callable[[str, int, int], None]
PathArg = Path | str | Sequence[Path | str] | None


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


@dataclass(frozen=True)
class Source:
    """One file to index and the name its passages and citations carry."""

    path: Path
    doc: str


def _as_paths(path: PathArg, default: Path) -> list[Path]:
    if path is None:
        return [default]
    if isinstance(path, str | Path):
        return [Path(path)]
    return [Path(p) for p in path] or [default]


def find_documents(paths: Sequence[Path]) -> tuple[list[Source], list[str]]:
    """The files to index under ``paths`` (files or folders, searched recursively).

    A folder's documents are named by their path inside it; a file given directly by its
    name. Hidden files are ignored; other files of unsupported types come back as
    one-line reasons to skip them, as does a second document with a name already taken.
    """
    sources: dict[str, Source] = {}
    skipped: list[str] = []
    for root in paths:
        if not root.exists():
            raise SeedsNotFoundError(
                f"documents path {root} does not exist; pass documents or a folder of them "
                f"({', '.join(SUPPORTED_SUFFIXES)})"
            )
        if root.is_file():
            candidates = [(root, root.name)]
        else:
            candidates = [
                (p, p.relative_to(root).as_posix())
                for p in sorted(root.rglob("*"))
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(root).parts)
            ]
        for file, doc in candidates:
            if not is_supported(file):
                skipped.append(f"{doc} ({unsupported_reason(file)})")
            elif doc in sources and sources[doc].path.resolve() != file.resolve():
                skipped.append(f"{doc} (a document with this name is already indexed)")
            else:
                sources[doc] = Source(file, doc)
    if not sources:
        where = ", ".join(str(p) for p in paths)
        reasons = f": {'; '.join(skipped)}" if skipped else ""
        raise SeedsNotFoundError(
            f"no documents under {where} ({', '.join(SUPPORTED_SUFFIXES)}){reasons}"
        )
    return list(sources.values()), skipped


def read_passages(source: Source, max_chars: int) -> tuple[str, Extracted, list[Passage]] | str:
    """Extract, clean and chunk one file.

    Returns ``(sha256 of the file, its text, passages)`` or a one-line reason to skip it.
    """
    try:
        extracted = extract(source.path)
        digest = hashlib.sha256(source.path.read_bytes()).hexdigest()
    except UnreadableDocument as exc:
        return f"{source.doc} ({exc})"
    except OSError as exc:
        return f"{source.doc} (cannot be read: {exc.strerror})"
    text = extracted.text
    # Every paragraph is kept: trafilatura has already taken a web page's article out of
    # its navigation; text, PDF and Word files are indexed whole.
    passages = chunk_document(source.doc, text, split_paragraphs(text), max_chars)
    if extracted.page_starts:
        passages = [replace(p, page=extracted.page_at(p.start)) for p in passages]
    if not passages:
        return f"{source.doc} (no article text)"
    return digest, extracted, passages


def to_node(passage: Passage) -> TextNode:
    """A llama-index node carrying the passage's offsets as flat metadata."""
    from llama_index.core.schema import TextNode

    metadata: dict[str, str | int] = {
        "doc": passage.doc,
        "start": passage.start,
        "end": passage.end,
        "position": passage.position,
        "sentences": json.dumps(passage.sentences),
    }
    if passage.page is not None:  # Chroma metadata has no null
        metadata["page"] = passage.page
    return TextNode(
        id_=passage.id,
        text=passage.text,
        metadata=metadata,
        excluded_embed_metadata_keys=list(metadata),
        excluded_llm_metadata_keys=list(metadata),
    )


def ingest(
    path: PathArg = None,
    config: IndexConfig | None = None,
    *,
    rebuild: bool = False,
    progress: Progress | None = None,
) -> IngestReport:
    """Make the store mirror the documents at ``path`` — one or more files or folders
    (default: ``config.seeds_dir``)."""
    config = config or IndexConfig.from_env()
    roots = _as_paths(path, Path(config.seeds_dir))
    started = time.perf_counter()
    report = IngestReport()

    wanted: dict[str, Passage] = {}
    docs: dict[str, dict[str, object]] = {}
    texts: dict[str, Extracted] = {}
    sources, report.skipped = find_documents(roots)
    for number, source in enumerate(sources, 1):
        if progress:
            progress("reading", number, len(sources))
        result = read_passages(source, config.passage_max_chars)
        if isinstance(result, str):
            report.skipped.append(result)
            continue
        digest, extracted, passages = result
        docs[source.doc] = {
            "sha256": digest,
            "passages": len(passages),
            "path": str(source.path.resolve()),
        }
        if extracted.page_starts:
            docs[source.doc]["pages"] = len(extracted.page_starts)
        if extracted.converted:
            texts[source.doc] = extracted
        wanted.update((p.id, p) for p in passages)
    if not docs:
        where = ", ".join(str(p) for p in roots)
        raise SeedsNotFoundError(
            f"no readable documents under {where}: " + "; ".join(report.skipped)
        )

    store = open_store(config)
    with store.writing() as batch:
        previous = batch.previous
        base, target = batch.collections(config.collection, config.embed_model, rebuild=rebuild)
        published = set(base.get(include=[])["ids"]) if base is not None else set()
        written = published if target is base else set(target.get(include=[])["ids"])
        new = [wanted[i] for i in wanted if i not in published]
        stale = sorted(published - set(wanted))
        carried = [i for i in wanted if i in published and i not in written]
        if carried:  # a new generation: the unchanged passages, vectors and all
            _copy(base, target, carried)
        if new:
            reusable = _stored_vectors(base, stale)  # nothing is stale without a base
            _embed_and_store(new, target, config, progress, reusable)
        if stale and target is base:
            target.delete(ids=stale)
        generation = (previous.generation if previous else 0) + 1
        known = previous.added() if previous else {}
        for name, info in docs.items():
            info["added"] = known.get(name, generation)
        batch.publish(
            Manifest(
                generation=generation,
                embed_model=config.embed_model,
                root=str(roots[0].resolve()),
                roots=[str(p.resolve()) for p in roots],
                docs=docs,
            ),
            texts,
        )

    report.files = len(docs)
    report.passages = len(wanted)
    report.added = len(new)
    report.removed = len(stale)
    report.unchanged = len(wanted) - len(new)
    report.seconds = time.perf_counter() - started
    return report


def _copy(source: Any, target: Any, ids: list[str]) -> None:
    """Copy passages (text, metadata and vector) between collections, in batches."""
    for i in range(0, len(ids), 1000):
        chunk = ids[i : i + 1000]
        got = source.get(ids=chunk, include=["documents", "metadatas", "embeddings"])
        target.add(
            ids=got["ids"],
            documents=got["documents"],
            metadatas=got["metadatas"],
            embeddings=got["embeddings"],
        )


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
    config: IndexConfig,
    progress: Progress | None,
    reusable: dict[str, list[float]],
) -> None:
    nodes = [to_node(p) for p in passages]
    for node in nodes:
        node.embedding = reusable.get(node.get_content())
    todo = [n for n in nodes if n.embedding is None]
    if todo:
        from index.embed import load_embedder  # loading a model costs time: only when needed

        embedder = load_embedder(config.embed_model, config.model_cache_dir)
        batch = 16
        for i in range(0, len(todo), batch):
            chunk = todo[i : i + batch]
            vectors = embedder.get_text_embedding_batch([n.get_content() for n in chunk])
            for node, vector in zip(chunk, vectors, strict=True):
                node.embedding = vector
            if progress:
                progress("embedding", min(i + batch, len(todo)), len(todo))
    vector_store(collection).add(nodes)
