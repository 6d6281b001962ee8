"""The user's input checked, and conversation history in one shape, before any model runs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from qa.errors import InvalidQuestionError
from qa.text import strip_markers

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

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
            role, content = item.get("role"), content_text(item.get("content"))
            if role == "user":
                pending_user = content
            elif role == "assistant" and pending_user is not None:
                pairs.append((pending_user, content))
                pending_user = None
        elif isinstance(item, list | tuple) and len(item) == 2:
            pairs.append((content_text(item[0]), content_text(item[1])))
    cleaned = [(q.strip(), strip_markers(a)) for q, a in pairs if q and a]
    return cleaned[-turns:] if turns > 0 else []


def content_text(content: object) -> str:
    """The text of a chat message's content: a string, a list of parts, or a part dict."""
    if isinstance(content, str):
        return content
    if isinstance(content, list | tuple):
        return " ".join(content_text(part) for part in content)
    if isinstance(content, dict):
        return str(content.get("text") or "")
    return "" if content is None else str(content)
