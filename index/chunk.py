"""Sentence-aware chunking with character offsets into the original file.

A passage is one paragraph, or a run of its sentences when the paragraph is long, capped
at ``max_chars`` (about 100 tokens). News paragraphs are one to three sentences, so a
passage is a self-contained claim or two: small enough that a citation points at the
fact rather than at a page, big enough that a pronoun's referent is usually inside it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

import pysbd

from index.clean import Paragraph
from index.types import Passage

# A sentence ends at a full stop, "!", "?" or "…", and any closing quotes or brackets.
_TERMINAL = re.compile(r"[.!?…][\"'”’)\]]*$")


def split_sentences(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Return ``(start, end)`` offsets (shifted by ``offset``) of each sentence in ``text``.

    pySBD (a port of the Pragmatic Segmenter's rules: abbreviations, initials, decimals,
    quotations) finds the sentences; the offsets are computed here by searching forward
    from the previous sentence's end (pySBD's own spans can point at an earlier copy of a
    repeated sentence). ``text[start:end]`` is the sentence without surrounding spaces.
    A boundary is kept only where whitespace separates two pieces and the first ends with
    sentence-final punctuation, so a boundary never falls inside a word (pySBD cuts
    "apply.[citation needed]" between the stop and the bracket) or after a bare token
    (it cuts the formula "O 2" after the "O"); otherwise the pieces are joined.
    """
    spans: list[tuple[int, int]] = []
    position = 0
    # A new segmenter per call: pySBD keeps the text on the instance (not thread-safe),
    # and building one costs microseconds.
    for piece in pysbd.Segmenter(language="en", clean=False).segment(text):
        body = piece.strip()
        start = text.find(body, position) if body else -1
        if start < 0:  # empty, or (never seen) altered: its text joins the next gap
            continue
        _append(spans, text, start, start + len(body))
        position = start + len(body)
    rest = text[position:]
    if rest.strip():  # whatever pySBD left out (never seen) stays in the last sentence
        start = position + len(rest) - len(rest.lstrip())
        _append(spans, text, start, len(text.rstrip()), force_join=bool(spans))
    return [(s + offset, e + offset) for s, e in spans if e > s]


def _append(
    spans: list[tuple[int, int]], text: str, start: int, end: int, *, force_join: bool = False
) -> None:
    """Add the sentence ``text[start:end]``, or join it to the previous one when the
    boundary between them is not a real one (no whitespace, no final punctuation)."""
    if spans:
        previous_start, previous_end = spans[-1]
        gap = text[previous_end:start]
        real = gap.isspace() and _TERMINAL.search(text[previous_start:previous_end])
        if force_join or not real:
            spans[-1] = (previous_start, end)
            return
    spans.append((start, end))


def passage_id(doc: str, start: int, end: int, text: str) -> str:
    """Deterministic id: the same text at the same place in the same doc gets the same id."""
    digest = hashlib.sha256(f"{doc}\x00{start}\x00{end}\x00{text}".encode()).hexdigest()
    return digest[:32]


def chunk_document(
    doc: str, source: str, paragraphs: Iterable[Paragraph], max_chars: int = 420
) -> list[Passage]:
    """Group each paragraph's sentences into passages of at most ``max_chars``.

    A single sentence longer than ``max_chars`` becomes its own passage.
    """
    passages: list[Passage] = []
    for paragraph in paragraphs:
        sentences = split_sentences(paragraph.text, paragraph.start)
        group: list[tuple[int, int]] = []
        for sentence in sentences:
            if group and sentence[1] - group[0][0] > max_chars:
                passages.append(_make(doc, source, group, len(passages)))
                group = []
            group.append(sentence)
        if group:
            passages.append(_make(doc, source, group, len(passages)))
    return passages


def _make(doc: str, source: str, sentences: list[tuple[int, int]], position: int) -> Passage:
    start, end = sentences[0][0], sentences[-1][1]
    text = source[start:end]
    return Passage(
        id=passage_id(doc, start, end, text),
        doc=doc,
        start=start,
        end=end,
        text=text,
        sentences=tuple(sentences),
        position=position,
    )
