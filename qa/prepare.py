"""Prepare the question: what is looked up and answered, and what kind of request it is.

The question is never emptied or cut: instructions in it are data, like the documents
(the prompt's rules say so, and the judge refuses what the documents do not answer). A
request is made direct
("Tell me what Putin said…" -> "What Putin said…?": the 1.5B model answers the question
form better), a follow-up that leans on earlier turns is rewritten by the model into a
standalone question, and the request's kind (fact, list, summary, yes/no, why/how,
byline) is read from its wording (:mod:`qa.kinds`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qa.kinds import Kind, classify
from qa.questions import as_direct_question, clean_rewrite, needs_rewrite

# (earlier turns, the follow-up as asked) -> the model's one-line standalone rewrite
Rewriter = Callable[[Sequence[tuple[str, str]], str], str]


@dataclass(frozen=True)
class PreparedQuestion:
    """The question as asked, the standalone question answered, and its kind."""

    text: str  # as asked, cleaned of control characters
    standalone: str  # what is retrieved and answered
    kind: Kind
    rewritten: str | None = None  # shown to the user when it differs from ``text``


def prepare(text: str, turns: Sequence[tuple[str, str]], rewrite: Rewriter) -> PreparedQuestion:
    """``text`` (already checked by :func:`qa.questions.clean_question`) made answerable.

    A follow-up's rewrite is used only when :func:`still_asks` what the follow-up asked;
    otherwise the follow-up is answered as it would be with no earlier turns.
    """
    standalone = as_direct_question(text)
    rewritten = standalone if standalone != text else None
    if needs_rewrite(standalone, turns):
        candidate = clean_rewrite(rewrite(turns, text), standalone)
        if candidate != standalone and still_asks(candidate, standalone):
            rewritten = standalone = candidate
    return PreparedQuestion(text, standalone, classify(standalone), rewritten)


_CONNECTIVE = r"(?:(?:and|so|but|then|also|ok(?:ay)?|well)\W+)?"
_PREPOSITION = r"(?:(?:in|on|at|by|for|from|to|since|until|of|with|about)\s+)?"
# A leading phrase before the question proper: "In the photo, whom…", "According to X, what…"
_LEAD_PHRASE = (
    r"(?:(?:in|on|at|by|for|from|during|after|before|since|besides|according\s+to|apart\s+from|"
    r"other\s+than|aside\s+from|of|with|among|between|under)\b[^,?]{0,80},\s*)?"
)
_WH = r"who|whom|whose|what|when|where|which|why|how"
_AUXILIARY = (
    r"is|are|was|were|am|do|does|did|can|could|will|would|should|shall|may|might|must|has|have|"
    r"had|isn't|aren't|wasn't|weren't|don't|doesn't|didn't|can't|couldn't|won't|wouldn't|"
    r"hasn't|haven't|hadn't"
)
_REQUEST = (
    r"list|name|summari[sz]e|sum\s+up|describe|explain|give|tell|compare|identify|enumerate|"
    r"outline|quote|show"
)
_OPENS_AS_QUESTION = re.compile(
    rf"^\W*{_CONNECTIVE}{_LEAD_PHRASE}{_PREPOSITION}(?:{_WH}|{_AUXILIARY}|{_REQUEST})\b",
    re.IGNORECASE,
)
_OPENS_YES_NO = re.compile(rf"^\W*{_CONNECTIVE}{_LEAD_PHRASE}(?:{_AUXILIARY})\b", re.IGNORECASE)
_ANY_WH = re.compile(rf"\b(?:{_WH})\b", re.IGNORECASE)
# A question word, "how many/much/…" as one ("How far?" is not "How many…?").
_QUESTION_WORD = rf"(how\s+(?:many|much|long|far|often|old|soon|big|large)|{_WH})\b"
_QUESTION_WORDS = re.compile(rf"\b{_QUESTION_WORD}", re.IGNORECASE)
# The follow-up's own question word ("what about …" asks the last question again: none).
_ASKED_WORD = re.compile(
    rf"^\W*{_CONNECTIVE}{_LEAD_PHRASE}{_PREPOSITION}{_QUESTION_WORD}(?!\s+about\b)",
    re.IGNORECASE,
)
# Anything after the question mark: "Who approved it? The city council." carries an answer.
_TEXT_AFTER_QUESTION = re.compile(r"\?[\W_]*\w")


def still_asks(rewrite: str, asked: str) -> bool:
    """Whether the model's ``rewrite`` of the follow-up ``asked`` is still that question.

    The 1.5B model sometimes answers instead of rewriting: "Who approved the budget?" came
    back as "The city council approved the budget.": the answer leaked into the question,
    which was then answered "Yes, …". A rewrite is kept only when it is
    one question (it opens with a question word, an auxiliary or a request such as "List",
    or ends with "?" around a question word; nothing follows its question mark) and it asks
    what the follow-up asked: the follow-up's question word ("who", "how far") is still in
    it, and a yes/no follow-up stays yes/no. "Did the council approve the budget?" for
    "Who approved it?" leaks the answer into the question and is refused too.
    """
    rewrite = rewrite.strip()
    if not rewrite or _TEXT_AFTER_QUESTION.search(rewrite):
        return False
    opens_as_question = bool(_OPENS_AS_QUESTION.match(rewrite))
    if not (opens_as_question or (rewrite.endswith("?") and _ANY_WH.search(rewrite))):
        return False  # a statement, with or without a question mark
    word = _ASKED_WORD.match(asked)
    if word:
        return _same_word(word.group(1)) in set(map(_same_word, _QUESTION_WORDS.findall(rewrite)))
    if _OPENS_YES_NO.match(asked):
        return bool(_OPENS_YES_NO.match(rewrite))
    return True


def _same_word(word: str) -> str:
    """A question word compared as asked: case and spacing ignored, "whom" as "who"."""
    return " ".join(word.lower().split()).replace("whom", "who")
