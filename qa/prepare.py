"""Prepare the question: what is looked up and answered, and what kind of request it is.

Before anything is retrieved the question is cleaned of instructions aimed at the system
("Ignore the article and …": the model never sees them), a request is made direct
("Tell me what Putin said…" -> "What Putin said…?": the 1.5B model answers the question
form better), a follow-up that leans on earlier turns is rewritten by the model into a
standalone question, and the request's kind (fact, list, summary, yes/no, why/how,
byline) is read from its wording (:mod:`qa.kinds`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qa.kinds import Kind, classify
from qa.questions import as_direct_question, clean_rewrite, needs_rewrite, split_instructions

# (earlier turns, the follow-up as asked) -> the model's one-line standalone rewrite
Rewriter = Callable[[Sequence[tuple[str, str]], str], str]


@dataclass(frozen=True)
class PreparedQuestion:
    """The question as asked, the standalone question answered, and its kind."""

    text: str  # as asked, cleaned of control characters
    standalone: str  # what is retrieved and answered; "" when it held only instructions
    kind: Kind
    rewritten: str | None = None  # shown to the user when it differs from ``text``

    @property
    def only_instructions(self) -> bool:
        """Nothing in it asks about the documents: nothing to look up."""
        return not self.standalone


def prepare(text: str, turns: Sequence[tuple[str, str]], rewrite: Rewriter) -> PreparedQuestion:
    """``text`` (already checked by :func:`qa.questions.clean_question`) made answerable."""
    standalone, instructed = split_instructions(text)
    standalone = as_direct_question(standalone)
    rewritten = standalone if instructed or standalone != text else None
    if standalone and needs_rewrite(standalone, turns):
        rewritten = standalone = clean_rewrite(rewrite(turns, text), standalone)
    return PreparedQuestion(text, standalone, classify(standalone), rewritten)
