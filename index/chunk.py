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

from index.clean import Paragraph
from qa.types import Passage

# Tokens that end with a period but do not end a sentence.
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "st", "jr", "sr", "gen", "col", "lt", "sgt", "capt", "gov",
    "sen", "rep", "rev", "prof", "no", "vs", "etc", "inc", "co", "corp", "ltd", "jan",
    "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "a.m",
    "p.m", "u.s", "u.n", "u.k", "d.c", "e.g", "i.e", "mt", "ft", "approx",
}  # fmt: skip
_BOUNDARY = re.compile(r"[.!?][\"”’')\]]*\s+(?=[\"“‘(\[]?[A-Z0-9])")


def split_sentences(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Return ``(start, end)`` offsets (shifted by ``offset``) of each sentence in ``text``."""
    spans, start = [], 0
    for match in _BOUNDARY.finditer(text):
        head = text[start : match.start() + 1]
        last_token = head.split()[-1].rstrip(".").lower() if head.split() else ""
        if last_token in _ABBREVIATIONS or re.fullmatch(r"[a-z]", last_token):
            continue
        end = match.start() + len(match.group(0).rstrip())
        spans.append((start, end))
        start = match.end()
    if text[start:].strip():
        spans.append((start, len(text.rstrip())))
    return [(s + offset, e + offset) for s, e in spans if e > s]


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
