"""Find the article text inside a news page saved as plain text.

Pages saved from news sites as text carry clutter: "Subscribe" links, newsletter sign-up
boxes, and photo captions that appear twice (once bare, once with the photo credit). The
rules here are general (calls to action, near-duplicate paragraphs), not a list of one
page's lines, and they run on plain text and Markdown only (:func:`clean_paragraphs`):
trafilatura already finds the article in an HTML page, and a PDF's or Word file's text
is indexed as extracted, only split into paragraphs (:func:`split_paragraphs`), so a
heading that a later paragraph repeats is kept. Cleaning never rewrites text: it returns
the *spans* of the original file that are kept, so every passage can cite exact
character offsets into the untouched file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Paragraphs that open with a call to action are page furniture, not reporting.
_CALL_TO_ACTION = re.compile(
    r"^\s*(?:subscribe|sign\s*up|sign\s*in|log\s*in|register\b|join\s+our|get\s+our|"
    r"download\s+(our|the)\s+app|follow\s+us|share\s+(this|on)|click\s+here|read\s+more|"
    r"advertisement|sponsored|related(?=\s*:)|recommended\s+for\s+you|newsletter|"
    r"already\s+a\s+subscriber|cookie|accept\s+(all\s+)?cookies)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Paragraph:
    """A kept paragraph: ``text == original[start:end]``."""

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


def _normalise(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def is_call_to_action(paragraph: str) -> bool:
    """True for sign-up boxes, subscribe links and similar page furniture."""
    return bool(_CALL_TO_ACTION.match(paragraph))


def clean_paragraphs(text: str) -> list[Paragraph]:
    """A plain-text article's paragraphs in file order, with clutter and duplicates removed.

    A paragraph whose words are contained in a longer paragraph (a caption shown once
    bare and once with its credit) is dropped in favour of the longer one, so the
    caption's facts are kept exactly once.
    """
    paragraphs = [p for p in split_paragraphs(text) if not is_call_to_action(p.text)]
    normalised = [_normalise(p.text) for p in paragraphs]
    kept = []
    for i, paragraph in enumerate(paragraphs):
        words = normalised[i]
        duplicated = any(
            j != i
            and words
            and words in other
            and (len(other) > len(words) or (other == words and j < i))
            for j, other in enumerate(normalised)
        )
        if not duplicated:
            kept.append(paragraph)
    return kept
