"""The typed results that ``ask()`` returns and every interface (CLI, UI, eval) shares."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from index.types import Passage

__all__ = [
    "Answer", "Citation", "Decision", "Delta", "EngineUsage", "Judgement", "Passage",
    "SentenceCheck",
]  # fmt: skip


@dataclass
class EngineUsage:
    """What one answer cost the model server, summed over its requests (its own timings).

    ``qa bench`` reports these, so a slower answer shows whether it read more fresh
    prompt tokens, generated more, or drafted worse.
    """

    requests: int = 0
    prompt_read: int = 0  # fresh prompt tokens the server evaluated
    prompt_cached: int = 0  # prompt tokens reused from the slot's cache
    generated: int = 0
    drafted: int = 0  # tokens proposed by speculative decoding
    accepted: int = 0  # of those, kept by the model
    prompt_ms: float = 0.0
    generate_ms: float = 0.0

    def add(self, timings: dict[str, Any]) -> None:
        """Add one request's ``timings`` object (llama.cpp's server sends one per request)."""
        self.requests += 1
        self.prompt_read += int(timings.get("prompt_n") or 0)
        self.prompt_cached += int(timings.get("cache_n") or 0)
        self.generated += int(timings.get("predicted_n") or 0)
        self.drafted += int(timings.get("draft_n") or 0)
        self.accepted += int(timings.get("draft_n_accepted") or 0)
        self.prompt_ms += float(timings.get("prompt_ms") or 0.0)
        self.generate_ms += float(timings.get("predicted_ms") or 0.0)

    @property
    def acceptance(self) -> float | None:
        """Share of drafted tokens the model kept (None when nothing was drafted)."""
        return self.accepted / self.drafted if self.drafted else None


@dataclass(frozen=True)
class Citation:
    """One numbered source: the exact span of a passage that supports part of the answer."""

    number: int
    passage_id: str
    doc: str
    start: int
    end: int
    quote: str
    page: int | None = None

    @property
    def source(self) -> str:
        """How the source is named to a reader: ``report.pdf p. 4`` or ``article.html``."""
        return f"{self.doc} p. {self.page}" if self.page else self.doc


@dataclass(frozen=True)
class SentenceCheck:
    """Why one answer sentence was kept or dropped (for debugging and calibration)."""

    claim: str
    kept: bool
    score: float = 0.0
    qa_similarity: float = 0.0
    reattached: bool = False


class Certainty(StrEnum):
    """How sure an answer is, in words a reader weighs (``Answer.certainty``).

    "sure" and "likely" are bands of the judge's P(right) whose cut-offs ``qa calibrate``
    fits per model (``AnswerabilityModel.certainty``) so that, on calibration articles the
    fit never saw, at least ``CERTAINTY_RIGHT[band]`` of such answers were right; "unsure"
    is every other answer the judge rated. "unchecked": nothing measured this answer
    (no judge is fitted for the model in use, or a kind the judge does not rate:
    summaries, lists, bylines, yes/no).
    """

    SURE = "sure"
    LIKELY = "likely"
    UNSURE = "unsure"
    UNCHECKED = "unchecked"

    @property
    def label(self) -> str:
        """What the chat shows beside the answer."""
        return CERTAINTY_LABELS[self]


CERTAINTY_LABELS = {
    Certainty.SURE: "sure",
    Certainty.LIKELY: "likely",
    Certainty.UNSURE: "unsure — read the quote",
    Certainty.UNCHECKED: "unchecked — read the quote",
}
# The least share of right answers each fitted band promises (on unseen calibration articles).
CERTAINTY_RIGHT = {Certainty.SURE: 0.85, Certainty.LIKELY: 0.65}


class Decision(StrEnum):
    ANSWER = "answer"
    REFUSE = "refuse"
    CORRECT = "correct"  # answered, with the draft's yes/no turned to what the text says


@dataclass(frozen=True)
class Judgement:
    """The decision on one question, what to show, and why."""

    decision: Decision
    text: str  # the answer (or the refusal) as it is shown, before any closest quote
    confidence: float | None = None  # P(the decision is right), where a model gave one
    reasons: tuple[str, ...] = ()
    # A refusal's closest evidence: what the documents say instead (quoted by render).
    closest: Citation | None = None
    citations: tuple[Citation, ...] = ()  # those of ``text``, numbered as its markers
    signals: dict[str, float] = field(default_factory=dict)
    # How sure an answer shown is; None for a refusal (an answer with none: unchecked).
    certainty: Certainty | None = None


@dataclass(frozen=True)
class Answer:
    """What ``ask()`` returns: the answer text with inline ``[n]`` markers and its sources.

    Built once, by :func:`qa.render.render`, after the judge (:mod:`qa.judge`) decided.
    """

    question: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    abstained: bool = False
    passages: list[Passage] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    rewritten_question: str | None = None
    raw_text: str = ""
    model: str = ""
    checks: list[SentenceCheck] = field(default_factory=list)
    # What was asked for: fact, summary, list, yes_no, why_how or authorship (qa.language).
    kind: str = "fact"
    # The judge's probability that its decision is right: for a fact or why/how answer the
    # calibrated P(it is right) (qa calibrate); for a refusal it made, P(refusing is
    # right); for the model's own refusal, the draft's P(refusal phrase); for a yes/no,
    # the polarity probe's. None where nothing measured it (summaries, lists, bylines).
    confidence: float | None = None
    # The answer's certainty band (None for a refusal): what the chat shows beside it.
    certainty: Certainty | None = None
    reasons: list[str] = field(default_factory=list)
    # Checks this configuration cannot run, each with why (e.g. a model behind an HTTP
    # server gives no logits for the self-check); empty with the local model.
    disabled: list[str] = field(default_factory=list)
    # The judge's decision: "answer", "refuse" or "correct" (a yes/no turned to what the
    # cited text says), and the signals it read (the answerability check's features).
    decision: str = "answer"
    signals: dict[str, float] = field(default_factory=dict)
    # The model server's account of this answer's requests (tokens read, generated,
    # drafted and accepted); empty against a server that does not report timings.
    engine: EngineUsage = field(default_factory=EngineUsage)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view (used by the CLI's ``--json`` and the eval report)."""
        return asdict(self)


@dataclass(frozen=True)
class Delta:
    """A piece of answer text as the model generates it (streaming)."""

    text: str
