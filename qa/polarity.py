"""Yes/no answers: the polarity is re-read from the cited evidence alone.

Drafting a yes/no answer, the small model says "Yes" to almost anything and then states
the fact that contradicts it ("Yes, Kim arrived in Russia on Tuesday" to "Did Kim arrive
on Wednesday?"). Its reading of the one cited passage, asked as a bare Yes/No question,
is far less biased. This stage reads the model's P("Yes") for the question against the
cited sentences (one forward pass, nothing generated) and makes the answer's first word
agree with it; the cited fact that follows is kept, since it is what shows the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_POLARITY = re.compile(r"^\s*(yes|no)\b[,.;:!]?\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Polarity:
    """The drafted answer with its first word made to agree with the evidence."""

    text: str
    changed: bool
    p_yes: float


def stated_polarity(answer: str) -> bool | None:
    """True for an answer that opens with "Yes", False for "No", None otherwise."""
    match = _POLARITY.match(answer)
    return None if match is None else match.group(1).lower() == "yes"


def agree(answer: str, p_yes: float) -> Polarity:
    """``answer`` opening with the polarity the evidence gives (P(yes) >= 0.5 is Yes)."""
    says_yes = p_yes >= 0.5
    word = "Yes" if says_yes else "No"
    match = _POLARITY.match(answer)
    if match is None:
        rest = answer.strip()
        return Polarity(f"{word}. {rest[:1].upper()}{rest[1:]}", True, p_yes)
    if (match.group(1).lower() == "yes") == says_yes:
        return Polarity(answer, False, p_yes)
    return Polarity(f"{word}, {answer[match.end() :]}", True, p_yes)
