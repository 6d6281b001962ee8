"""Manage the corpus: add files to the documents folder, remove one, list what is indexed.

The documents folder (``config.seeds_dir``) is the corpus the chat and the CLI share:
files added in the chat are copied into it, so ``qa ingest`` sees them too. The index
mirrors the files and folders of the last ingest (the manifest's ``roots``) plus that
folder, so adding a file never drops documents indexed from elsewhere.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from index.config import IndexConfig
from index.errors import QAError
from index.extract import SUPPORTED_SUFFIXES, is_supported, unsupported_reason
from index.ingest import IngestReport, Progress, ingest
from index.store import Manifest
from index.stores import open_store


class DocumentError(QAError):
    """A document cannot be added or removed; the message says why and what to do."""


@dataclass(frozen=True)
class IndexedDocument:
    """One indexed document, as ``qa docs`` and the chat header list it."""

    name: str
    passages: int
    pages: int | None
    path: str


def list_documents(config: IndexConfig) -> list[IndexedDocument]:
    """What the last completed ingest indexed (empty when there is no index)."""
    manifest = open_store(config).read_manifest()
    if manifest is None:
        return []
    return [
        IndexedDocument(name, int(info["passages"]), info.get("pages"), str(info.get("path", "")))
        for name, info in sorted(manifest.docs.items())
    ]


def _roots(config: IndexConfig, manifest: Manifest | None) -> list[Path]:
    """The index's roots (from its ``manifest``) with the documents folder among them."""
    folder = Path(config.seeds_dir)
    roots = [Path(p) for p in (manifest.roots or [manifest.root]) if p] if manifest else []
    roots = [p for p in roots if p.exists()]
    if not any(_same(p, folder) for p in roots):
        roots.append(folder)
    return roots


def _same(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


def add_files(
    files: Sequence[Path], config: IndexConfig, *, progress: Progress | None = None
) -> IngestReport:
    """Copy ``files`` into the documents folder (replacing same-named ones) and re-index.

    Unsupported files are not copied; they are reported as skipped, with the reason.
    """
    folder = Path(config.seeds_dir)
    folder.mkdir(parents=True, exist_ok=True)
    refused = []
    for file in files:
        if not is_supported(file):
            refused.append(
                f"{file.name} ({unsupported_reason(file)}; use {', '.join(SUPPORTED_SUFFIXES)})"
            )
            continue
        target = folder / file.name
        if not _same(file, target):
            shutil.copyfile(file, target)
    manifest = open_store(config).read_manifest()
    report = ingest(_roots(config, manifest), config, progress=progress)
    report.skipped[:0] = refused
    return report


def remove_document(name: str, config: IndexConfig) -> IngestReport:
    """Delete document ``name`` from the documents folder and from the index.

    A document indexed from elsewhere is dropped from the index only when it was given as
    a file; a file inside another mirrored folder must be deleted there.
    """
    manifest = open_store(config).read_manifest()
    if manifest is None or name not in manifest.docs:
        known = ", ".join(sorted(manifest.docs)) if manifest else "none"
        raise DocumentError(f"no indexed document named {name!r} (indexed: {known})")
    if len(manifest.docs) == 1:
        raise DocumentError(f"{name} is the only indexed document; add another before removing it")
    path = Path(manifest.docs[name].get("path") or "")
    folder = Path(config.seeds_dir).resolve()
    roots = _roots(config, manifest)
    if path.is_relative_to(folder):
        path.unlink(missing_ok=True)
    elif any(_same(root, path) for root in roots):
        roots = [root for root in roots if not _same(root, path)]
    else:
        raise DocumentError(
            f"{name} comes from {path.parent}, a folder the index mirrors; delete it there "
            "and run `qa ingest`"
        )
    return ingest(roots, config)
