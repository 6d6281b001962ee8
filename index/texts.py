"""The extracted text of converted documents (HTML, PDF, Word), kept beside the store.

A citation's offsets point into a document's text. For plain text and Markdown that text
is the file; for converted formats it is what :mod:`index.extract` produced, so ingest
saves it here (with the PDF page starts) to keep every citation checkable and every
highlight reproducible without re-running the extractor.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from index.extract import Extracted

TEXTS = "texts"


def text_key(doc: str) -> str:
    """A short, file- and id-safe name for ``doc``'s saved text (local file or server record)."""
    return hashlib.sha256(doc.encode()).hexdigest()[:24]


def text_record(doc: str, extracted: Extracted) -> str:
    """``doc``'s extracted text and page starts as the JSON both kinds of store keep."""
    payload = {"doc": doc, "text": extracted.text, "page_starts": list(extracted.page_starts)}
    return json.dumps(payload, ensure_ascii=False)


def _path(store_dir: Path, doc: str) -> Path:
    return store_dir / TEXTS / f"{text_key(doc)}.json"


def save_text(store_dir: Path, doc: str, extracted: Extracted) -> None:
    """Write ``doc``'s extracted text atomically."""
    path = _path(store_dir, doc)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(text_record(doc, extracted))
    os.replace(tmp, path)


def load_text(store_dir: Path, doc: str) -> Extracted | None:
    """``doc``'s saved extracted text, or None when it was indexed from its own bytes."""
    path = _path(store_dir, doc)
    if not path.exists():
        return None
    payload = json.loads(path.read_text())
    return Extracted(payload["text"], tuple(payload["page_starts"]), converted=True)


def prune_texts(store_dir: Path, keep: set[str]) -> None:
    """Delete the saved texts of documents no longer indexed."""
    folder = store_dir / TEXTS
    wanted = {_path(store_dir, doc).name for doc in keep}
    for path in folder.glob("*.json") if folder.exists() else []:
        if path.name not in wanted:
            path.unlink(missing_ok=True)
