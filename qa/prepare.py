"""Prepare the question: what is looked up and answered, and what kind of request it is.

The question is never emptied or cut: instructions in it are data, like the documents
(the prompt's rules say so, and the judge refuses what the documents do not answer). A
request is made direct ("Tell me what Putin said…" -> "What Putin said…?"), a follow-up
that leans on earlier turns is rewritten by the model into a standalone question, and the
request's kind (fact, list, summary, yes/no, why/how, byline) is read from its wording
(:mod:`qa.language`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qa.language import (
    ANY_WH,
    ASKED_WORD,
    ASKS_AGAIN,
    CONTINUES,
    INDIRECT,
    NAMES_SOMETHING,
    OPENING_WH_WORD,
    OPENS_AS_QUESTION,
    OPENS_YES_NO,
    QUESTION_WORDS,
    Kind,
    classify,
)
from qa.text import POINTS_BACK, strip_markers

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
    """``text`` (already checked by :func:`qa.user_input.clean_question`) made answerable.

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


_TEXT_AFTER_QUESTION = re.compile(r"\?[\W_]*\w")


def still_asks(rewrite: str, asked: str) -> bool:
    """Whether the model's ``rewrite`` of the follow-up ``asked`` is still that question.

    A model may answer instead of rewriting, so that an answer leaks into the question
    (docs/design.md, "Behind the question path"). A rewrite is kept only when it is
    one question (it opens with a question word, an auxiliary or a request such as "List",
    or ends with "?" around a question word; nothing follows its question mark) and it asks
    what the follow-up asked: the follow-up's question word ("who", "how far") is still in
    it, and a yes/no follow-up stays yes/no. "Did the council approve the budget?" for
    "Who approved it?" leaks the answer into the question and is refused too.
    """
    rewrite = rewrite.strip()
    if not rewrite or _TEXT_AFTER_QUESTION.search(rewrite):
        return False
    opens_as_question = bool(OPENS_AS_QUESTION.match(rewrite))
    if not (opens_as_question or (rewrite.endswith("?") and ANY_WH.search(rewrite))):
        return False  # a statement, with or without a question mark
    word = ASKED_WORD.match(asked)
    if word:
        return _same_word(word.group(1)) in set(map(_same_word, QUESTION_WORDS.findall(rewrite)))
    if OPENS_YES_NO.match(asked):
        return bool(OPENS_YES_NO.match(rewrite))
    return True


def _same_word(word: str) -> str:
    """A question word compared as asked: case and spacing ignored, "whom" as "who"."""
    return " ".join(word.lower().split()).replace("whom", "who")


def needs_rewrite(question: str, history: Sequence[tuple[str, str]]) -> bool:
    """A follow-up that leans on earlier turns: a pronoun, or a few words that name nothing.

    A short question that names its own subject ("Who approved the budget?", "Who is
    Kozlov?") stands alone and is not rewritten: a rewrite can only add what was not asked.
    A fragment ("When?", "The budget?", "In which city?", "What about Putin?") is rewritten.
    """
    if not history:
        return False
    if POINTS_BACK.search(question) or CONTINUES.search(question):
        return True
    words = len(question.split())
    return words <= 2 or (
        words <= 4 and (bool(ASKS_AGAIN.match(question)) or not NAMES_SOMETHING.search(question))
    )


def clean_rewrite(text: str, fallback: str) -> str:
    """First line of the model's rewrite, stripped of labels and quotes."""
    line = next((ln.strip() for ln in text.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^(standalone|rewritten)?\s*question\s*:\s*", "", line, flags=re.IGNORECASE)
    line = strip_markers(line).strip("\"'“”")
    if not line or len(line) > 3 * len(fallback) + 200:
        return fallback
    # The follow-up's own question word survives the rewrite: a rewrite with another one
    # ("When?" -> "What did they agree on?") asks another question.
    asked, rewritten = OPENING_WH_WORD.match(fallback), OPENING_WH_WORD.match(line)
    if asked and rewritten and asked.group(1).lower() != rewritten.group(1).lower():
        line = asked.group(1).capitalize() + line[rewritten.end(1) :]
    return line


def as_direct_question(text: str) -> str:
    """ "Tell me what Putin said when he greeted Kim." -> "What Putin said when he greeted Kim?"

    The request adds nothing a model needs, only words to trip on; the prompt's examples
    are questions (docs/design.md, "Behind the question path").
    """
    match = INDIRECT.match(text)
    if not match:
        return text
    rest = text[match.end() :].strip().rstrip(".!")
    return rest[:1].upper() + rest[1:] + ("" if rest.endswith("?") else "?")
