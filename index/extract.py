"""Turn a file of any supported format into the text we index, cite and highlight.

Plain text and Markdown are indexed as they are: offsets point into the file itself.
For formats whose bytes are not the text (HTML, PDF, Word), a maintained library
extracts the text once — trafilatura finds the article inside a web page and drops its
navigation, ads and scripts; pypdf reads a PDF page by page; python-docx reads a Word
file's paragraphs and tables — and every passage's offsets point into that extracted
text, which the index keeps beside the store (:mod:`index.texts`). A PDF's page breaks
are kept, so each passage knows its page and a citation can say "report.pdf p. 4".

A file that cannot be read raises :class:`UnreadableDocument` with a one-line reason
(encrypted PDF, no text layer, not UTF-8, too large, unknown type); ingest skips it and
says why.
"""

from __future__ import annotations

import bisect
import itertools
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TEXT_SUFFIXES = (".txt", ".md")
HTML_SUFFIXES = (".html", ".htm")
SUPPORTED_SUFFIXES = (*TEXT_SUFFIXES, *HTML_SUFFIXES, ".pdf", ".docx")
MAX_FILE_BYTES = 50_000_000  # a 200 MB "document" is an archive or a scan, not an article


class UnreadableDocument(Exception):
    """The file cannot be indexed; ``str(exc)`` is the one-line reason."""


@dataclass(frozen=True)
class Extracted:
    """A document's text and where its pages start (PDF only; empty for other formats)."""

    text: str
    page_starts: tuple[int, ...] = ()
    converted: bool = False  # True when ``text`` is not the file's own bytes

    def page_at(self, offset: int) -> int | None:
        """The 1-based page holding ``offset``, or None for formats without pages."""
        if not self.page_starts:
            return None
        return max(1, bisect.bisect_right(self.page_starts, offset))


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def unsupported_reason(path: Path) -> str:
    """The one-line reason a file of an unsupported type is not indexed."""
    return f"unsupported file type {path.suffix or '(none)'}"


def extract(path: Path, max_bytes: int = MAX_FILE_BYTES) -> Extracted:
    """Read ``path`` into indexable text, or raise :class:`UnreadableDocument` saying why."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        kinds = ", ".join(SUPPORTED_SUFFIXES)
        raise UnreadableDocument(f"{unsupported_reason(path)}; use {kinds}")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UnreadableDocument(f"cannot be read ({exc.strerror})") from exc
    if size > max_bytes:
        raise UnreadableDocument(
            f"too large ({size / 1e6:.0f} MB; the limit is {max_bytes / 1e6:.0f} MB)"
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UnreadableDocument(f"cannot be read ({exc.strerror})") from exc
    reader = _READERS.get(suffix, _plain_text)
    extracted = reader(raw)
    if not extracted.text.strip():
        raise UnreadableDocument("no text found")
    return extracted


def _plain_text(raw: bytes) -> Extracted:
    if b"\x00" in raw:
        raise UnreadableDocument("binary file")
    try:
        return Extracted(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UnreadableDocument("not UTF-8 text") from exc


def _decode_markup(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # HTML without a UTF-8 body: never fail on bytes


def _html(raw: bytes) -> Extracted:
    """The main text of a web page, headline and byline first (trafilatura)."""
    import trafilatura

    page = _decode_markup(raw)
    if "<" not in page:
        raise UnreadableDocument("not HTML")
    found = trafilatura.bare_extraction(
        page,
        include_comments=False,
        include_tables=True,
        include_images=False,
        favor_precision=True,
        with_metadata=True,
    )
    body = (getattr(found, "text", None) or "").strip() if found else ""
    if not body:  # a page too small or odd for the article heuristics: take its visible text
        body = (trafilatura.html2txt(page) or "").strip()
    if not body:
        raise UnreadableDocument("no article text found in the page")
    title = ((getattr(found, "title", None) if found else None) or "").strip()
    author = ((getattr(found, "author", None) if found else None) or "").strip()
    if title and body.startswith(title):
        body = body[len(title) :].lstrip()
    byline = [f"By {author}"] if author and author not in body else []
    return Extracted("\n\n".join([*([title] if title else []), *byline, body]), converted=True)


def _pdf(raw: bytes) -> Extracted:
    """A PDF's text page by page (pypdf); pages are separated by a blank line."""
    import io

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            raise UnreadableDocument("encrypted PDF (remove the password and add it again)")
        pages = [_page_text(page) for page in reader.pages]
    except UnreadableDocument:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UnreadableDocument(f"damaged PDF ({type(exc).__name__})") from exc
    if not any(p.strip() for p in pages):
        raise UnreadableDocument("no text layer (a scanned or image-only PDF)")
    text, starts = "", []
    for page in pages:
        if text:
            text += "\n\n"
        starts.append(len(text))
        text += page
    return Extracted(text, tuple(starts), converted=True)


def _page_text(page: Any) -> str:
    """One PDF page's text, its printed lines joined back into paragraphs.

    pypdf gives one line per printed line. A line continues the previous one unless the
    vertical gap between them is clearly wider than the page's usual line spacing (a
    paragraph break); a word hyphenated across lines is rejoined.
    """
    lines: list[list[Any]] = [["", None]]  # [text, baseline y]

    def visit(text: str, cm: Any, tm: Any, font: Any, size: Any) -> None:
        parts = text.split("\n")
        for number, part in enumerate(parts):
            if number:
                lines.append(["", None])
            if part.strip() and lines[-1][1] is None:
                lines[-1][1] = float(tm[5]) + float(cm[5])
            lines[-1][0] += part

    page.extract_text(visitor_text=visit)
    rows = [(text.strip(), y) for text, y in lines if text.strip()]
    gaps = [
        a[1] - b[1] for a, b in itertools.pairwise(rows) if a[1] is not None and b[1] is not None
    ]
    spacing = statistics.median([g for g in gaps if g > 0] or [0.0])
    paragraphs: list[str] = []
    previous_y: float | None = None
    for text, y in rows:
        gap = previous_y - y if previous_y is not None and y is not None else None
        new_paragraph = not paragraphs or gap is None or gap <= 0 or gap > 1.4 * spacing
        if new_paragraph:
            paragraphs.append(text)
        elif paragraphs[-1].endswith("-") and text[:1].islower():
            paragraphs[-1] = paragraphs[-1][:-1] + text
        else:
            paragraphs[-1] = f"{paragraphs[-1]} {text}"
        previous_y = y
    return "\n\n".join(paragraphs)


def _docx(raw: bytes) -> Extracted:
    """A Word file's paragraphs and table cells in document order (python-docx)."""
    import io
    import zipfile

    import docx

    try:
        document = docx.Document(io.BytesIO(raw))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise UnreadableDocument(f"damaged Word file ({type(exc).__name__})") from exc
    blocks = [p.text.strip() for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            cells = [c.text.strip() for c in row.cells if c.text.strip()]
            if cells:
                blocks.append(" | ".join(dict.fromkeys(cells)))  # merged cells repeat
    return Extracted("\n\n".join(b for b in blocks if b), converted=True)


_READERS: dict[str, Callable[[bytes], Extracted]] = {
    ".html": _html,
    ".htm": _html,
    ".pdf": _pdf,
    ".docx": _docx,
}
