"""The passage: the unit the indexer writes and the answering side retrieves and cites.

It lives here, not in ``qa``, so the indexer depends on nothing of the answering side;
``qa.types`` re-exports it beside the answer types.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Passage:
    """A few consecutive sentences of one document, with offsets into its text.

    ``text == document_text[start:end]`` always holds, where the document's text is the
    file itself for plain text and Markdown, and the extracted text (kept with the
    index, see :mod:`index.texts`) for HTML, PDF and Word files; ``sentences`` are the
    absolute ``(start, end)`` offsets of each sentence inside it.
    """

    id: str
    doc: str
    start: int
    end: int
    text: str
    sentences: tuple[tuple[int, int], ...]
    position: int = 0
    score: float = 0.0
    page: int | None = None  # 1-based page of a PDF passage; None for formats without pages

    def sentence_texts(self) -> list[tuple[int, int, str]]:
        """Each sentence as ``(start, end, text)`` with absolute offsets."""
        return [(s, e, self.text[s - self.start : e - self.start]) for s, e in self.sentences]
