"""Checking user input and shaping conversation history, before any model runs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from qa.errors import InvalidQuestionError
from qa.text import POINTS_BACK, strip_markers

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Besides a word pointing back (qa.text.POINTS_BACK), words that continue a conversation.
_CONTINUES = re.compile(r"\b(?:same|also|else|why not|and)\b", re.IGNORECASE)

# "What about Putin?", "How about Japan?": the previous question, asked of something new.
_ASKS_AGAIN = re.compile(r"^\W*(?:what|how)\s+about\b", re.IGNORECASE)
# A short question names its own subject: a name after its first word, or "the/a/an" + noun.
_NAMES_SOMETHING = re.compile(r"(?<=\s)[A-Z]\w|\b(?i:the|a|an)\s+\w")

History = Sequence[Any]


def clean_question(question: object, max_chars: int) -> str:
    """The question with control characters removed, or a clear error why it is unusable."""
    if isinstance(question, bytes):
        try:
            question = question.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidQuestionError("the question is not UTF-8 text; type it as text") from exc
    if not isinstance(question, str):
        raise InvalidQuestionError(
            f"the question must be text, not {type(question).__name__}; pass a string"
        )
    text = " ".join(_CONTROL.sub(" ", question).split())
    if not text:
        raise InvalidQuestionError("the question is empty; type a question about the document")
    if len(text) > max_chars:
        raise InvalidQuestionError(
            f"the question is {len(text):,} characters long; the limit is {max_chars:,}, "
            "so shorten it"
        )
    return text


def normalise_history(history: History | None, turns: int) -> list[tuple[str, str]]:
    """The last ``turns`` (question, answer) pairs from any supported history shape.

    Accepts ``[(question, answer), ...]``, Gradio's messages format
    ``[{"role": "user", "content": ...}, {"role": "assistant", ...}]``, or ``Answer``s.
    Citation markers are stripped from answers: they mean nothing outside their turn.
    """
    pairs: list[tuple[str, str]] = []
    pending_user: str | None = None
    for item in history or []:
        if hasattr(item, "question") and hasattr(item, "text"):
            pairs.append((item.question, item.text))
        elif isinstance(item, dict):
            role, content = item.get("role"), _content_text(item.get("content"))
            if role == "user":
                pending_user = content
            elif role == "assistant" and pending_user is not None:
                pairs.append((pending_user, content))
                pending_user = None
        elif isinstance(item, list | tuple) and len(item) == 2:
            pairs.append((_content_text(item[0]), _content_text(item[1])))
    cleaned = [(q.strip(), strip_markers(a)) for q, a in pairs if q and a]
    return cleaned[-turns:] if turns > 0 else []


def _content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(_content_text(part) for part in content)
    if isinstance(content, dict):
        return str(content.get("text", ""))
    return "" if content is None else str(content)


def needs_rewrite(question: str, history: Sequence[tuple[str, str]]) -> bool:
    """A follow-up that leans on earlier turns: a pronoun, or a few words that name nothing.

    A short question that names its own subject ("Who approved the budget?", "Who is
    Kozlov?") stands alone and is not rewritten: a rewrite can only add what was not asked
    ("Who approved the budget?" came back as "The city council approved the budget.").
    A fragment ("When?", "The budget?", "In which city?", "What about Putin?") is rewritten.
    """
    if not history:
        return False
    if POINTS_BACK.search(question) or _CONTINUES.search(question):
        return True
    words = len(question.split())
    return words <= 2 or (
        words <= 4 and (bool(_ASKS_AGAIN.match(question)) or not _NAMES_SOMETHING.search(question))
    )


def clean_rewrite(text: str, fallback: str) -> str:
    """First line of the model's rewrite, stripped of labels and quotes."""
    line = next((ln.strip() for ln in text.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^(standalone|rewritten)?\s*question\s*:\s*", "", line, flags=re.IGNORECASE)
    line = strip_markers(line).strip("\"'“”")
    if not line or len(line) > 3 * len(fallback) + 200:
        return fallback
    # The follow-up's own question word must survive: "When?" after "What did they agree
    # on?" was seen rewritten as "What did they agree on?", which answers the wrong thing.
    asked, rewritten = _WH_WORD.match(fallback), _WH_WORD.match(line)
    if asked and rewritten and asked.group(1).lower() != rewritten.group(1).lower():
        line = asked.group(1).capitalize() + line[rewritten.end(1) :]
    return line


_WH_WORD = re.compile(
    r"^\W*(when|where|why|who|whom|what|which|how\s+(?:many|much|long|far))\b", re.IGNORECASE
)


_INDIRECT = re.compile(
    r"^\W*(?:please\s+)?(?:(?:can|could|would)\s+you\s+)?(?:please\s+)?(?:tell|show)\s+me\s+"
    r"(?=(?:what|where|when|who|whom|whose|why|how|which)\b)",
    re.IGNORECASE,
)


def as_direct_question(text: str) -> str:
    """ "Tell me what Putin said when he greeted Kim." -> "What Putin said when he greeted Kim?"

    The 1.5B model answered the request form with the wrong quote and the question form
    with the right one; the request adds nothing but words for it to trip on.
    """
    match = _INDIRECT.match(text)
    if not match:
        return text
    rest = text[match.end() :].strip().rstrip(".!")
    return rest[:1].upper() + rest[1:] + ("" if rest.endswith("?") else "?")
