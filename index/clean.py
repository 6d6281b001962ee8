"""Split a document's text into paragraphs with exact character offsets.

Nothing is dropped here: plain text and Markdown are indexed whole, every paragraph of
them, because a rule that guesses what is "clutter" from a paragraph's words also drops
real reporting ("Register of deeds Ann Lee resigned", "Cookie sales rose 40 percent").
Boilerplate removal happens only where a maintained extractor does it (trafilatura for
saved web pages, :mod:`index.extract`). The paragraphs are *spans* of the original text,
so every passage can cite exact character offsets into the untouched file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Paragraph:
    """A paragraph: ``text == original[start:end]``."""

    start: int
    end: int
    text: str


def split_paragraphs(text: str) -> list[Paragraph]:
    """Split on blank lines or single newlines, keeping exact offsets and trimming spaces."""
    paragraphs = []
    for match in re.finditer(r"[^\n]+", text):
        raw = match.group(0)
        lead = len(raw) - len(raw.lstrip())
        body = raw.strip()
        if body:
            start = match.start() + lead
            paragraphs.append(Paragraph(start, start + len(body), body))
    return paragraphs
