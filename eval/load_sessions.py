"""Chat sessions for load tests of the served app, and how to read its replies.

Each :class:`Session` is one conversation with the real ``qa chat`` app through
``gradio_client``: a question, a follow-up that only makes sense with that session's own
history (a pronoun), another question, and then :data:`OFF_TOPIC`, which must be
abstained. One ``gradio_client.Client`` is one browser session: calls made through the
same client share one conversation, so the follow-up is read with its history.

Used by :mod:`eval.load` (``python -m eval.load``) and by the robustness tests.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

CHAT_API = "/chat"
"""The app's chat endpoint: returns the final message (answer + sources as HTML)."""

ERROR_CLASS = "qa-error"
"""Marks a chat message that is an error, not an answer."""

ABSTAINED_CLASS = "qa-abstained"
"""Marks a chat message whose answer is a refusal ("not in the document")."""


@dataclass(frozen=True)
class Session:
    """One conversation: a fact, a follow-up that needs its history, another fact."""

    first: str
    first_keywords: tuple[str, ...]
    follow_up: str
    subject: str  # the rewritten follow-up must name this (it comes from the history)
    follow_up_keywords: tuple[str, ...]
    third: str
    third_keywords: tuple[str, ...]

    def questions(self) -> tuple[str, str, str, str]:
        """The four questions, in the order they are asked (the off-topic one last)."""
        return (self.first, self.follow_up, self.third, OFF_TOPIC)


SESSIONS = [
    Session("Who is Lloyd Austin?", ("Defense Secretary",),
            "Who did he meet on Sept. 7?", "Austin", ("Lee Jong-sup", "Hamada"),
            "What kind of missiles did North Korea fire on Wednesday?", ("ballistic",)),
    Session("Where were the missiles fired from?", ("Sunan",),
            "How far did they fly?", "missiles", ("400",),
            "Who greeted Kim at the cosmodrome's entrance?", ("Putin",)),
    Session("Who is the State Department spokesman?", ("Miller",),
            "When did he hold a news briefing?", "Miller", ("Monday",),
            "In the photo, whom was Kim Jong Un speaking to?", ("Kozlov",)),
    Session("Where did Kim Jong Un meet Vladimir Putin?", ("Vostochny",),
            "How far is that spaceport from Pyongyang?", "Vostochny", ("890",),
            "When did the communist regime last launch missiles before Wednesday?",
            ("Aug. 30",)),
    Session("How did Kim arrive in Russia?", ("train",),
            "On which day did he arrive?", "Kim", ("Tuesday",),
            "Which news agency showed Kim touring the space launch facility?", ("RIA Novosti",)),
    Session("Who is David Choi?", ("military",),
            "Which university did he graduate from?", "Choi", ("Los Angeles",),
            "Where did Kim Jong Un cross the border into Russia?", ("Khasan",)),
    Session("Where did Kim and Putin last meet before this summit?", ("Vladivostok",),
            "When was that?", "Putin", ("2019",),
            "How far north of Pyongyang is the Vostochny Cosmodrome?", ("890",)),
    Session("Who is Kim Jong Un?", ("leader",),
            "Whom did he meet at the cosmodrome?", "Kim", ("Putin",),
            "How far did the missiles fired on Aug. 30 fly?", ("220",)),
]  # fmt: skip
OFF_TOPIC = "Who is the president of France?"

_ANSWER = re.compile(r'<div class="qa-answer[^"]*"[^>]*>(.*?)</div>', re.DOTALL)
_READ_AS = re.compile(r"read as: “(.*?)”")


def chat(client: Any, question: str, timeout: float) -> str:
    """Ask ``question`` on ``client``'s conversation; the final chat message as a string.

    ``client`` is a ``gradio_client.Client``; the message is the verified answer followed
    by its sources as HTML, or an error message (marked :data:`ERROR_CLASS`).
    """
    result = client.submit(question, api_name=CHAT_API).result(timeout=timeout)
    if not isinstance(result, str):
        raise TypeError(f"{CHAT_API} returned {type(result).__name__}, not a message: {result!r}")
    return result


def answer_part(message: str) -> str:
    """The answer's HTML inside a chat message (without its sources); "" if there is none."""
    match = _ANSWER.search(message)
    return match.group(1) if match else ""


def read_as(message: str) -> str:
    """The question as the app read it (a follow-up rewritten with its history); "" if the
    message does not say."""
    match = _READ_AS.search(message)
    return html.unescape(match.group(1)) if match else ""


def is_error(message: str) -> bool:
    """Whether a chat message is an error (or nothing at all) rather than an answer."""
    return not message.strip() or ERROR_CLASS in message


def is_abstained(message: str) -> bool:
    """Whether a chat message is a refusal to answer (and not an error)."""
    return ABSTAINED_CLASS in message and not is_error(message)


def has_keyword(message: str, keywords: tuple[str, ...]) -> bool:
    """Whether the answer part of ``message`` contains any of ``keywords``."""
    answer = answer_part(message)
    return any(keyword in answer for keyword in keywords)
