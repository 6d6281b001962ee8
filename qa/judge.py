"""The judge: the one place that decides to answer, to refuse, or to correct an answer.

Every other stage reports facts — how close the best passage is (retrieval), what the
model wrote and which sentences support it (draft, verify) — and the judge turns them
into the decision, with its reasons and a confidence:

- *screen*, before the model is asked: a question holding only instructions, or one
  whose best passage is not even about it (dense cosine below ``min_retrieval_score``;
  not for summaries, lists and bylines, whose wording is far from any one passage), is
  refused without spending a model call.
- *decide*, after the draft is verified:
  - the model declined, or none of its sentences is supported: refuse, quoting the
    closest sentence when the question is on topic (best cosine ≥ ``min_related_score``)
    and the model quoted nothing itself;
  - a fact or a why/how answer: the calibrated answerability model
    (:mod:`qa.answerability`, fitted by ``qa calibrate`` through this same class) reads
    the cited evidence against the question; below its threshold the answer is refused
    and the closest cited sentence shows what the text does say (a swapped detail corrects
    itself); a worked calculation is checked by its arithmetic instead;
  - a yes/no answer: its first word is made to agree with the model's P("Yes") read from
    the cited evidence alone (:mod:`qa.polarity`): a correction;
  - otherwise (a summary, a list, a byline) the verified answer stands.

``qa calibrate`` runs the pipeline with no fitted model: the judge then computes the
same signals (``Judgement.signals``, surfaced as ``Answer.signals``) and answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from qa.answerability import AnswerabilityChecker, AnswerabilityModel, Evidence, window_text
from qa.calculate import shown_calculation
from qa.citations import Verified
from qa.config import Config
from qa.kinds import BROAD_KINDS, CHECKED_KINDS, Kind
from qa.polarity import agree
from qa.prepare import PreparedQuestion
from qa.prompts import polarity_messages, self_check_messages
from qa.retrieval import Retrieved
from qa.support import SourceSentence, sentences_cited, sentences_in
from qa.text import strip_markers

YesProbability = Callable[[list], "float | None"]  # chat messages -> P("Yes") or None


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
    closest: SourceSentence | None = None
    keep_citations: bool = True  # False: the draft's citations go (the answer is refused)
    signals: dict[str, float] = field(default_factory=dict)

    @property
    def refused(self) -> bool:
        return self.decision is Decision.REFUSE


class Judge:
    """Decides for one index snapshot (its sentences and their corpus statistics)."""

    def __init__(
        self,
        config: Config,
        model: AnswerabilityModel | None,
        sentences: Sequence[SourceSentence],
        similarity: Callable[[str, str], float],
        yes_probability: YesProbability,
        abstain: str,
    ) -> None:
        self.config = config
        self.model = model
        self.sentences = sentences
        self.similarity = similarity
        self.yes_probability = yes_probability
        self.abstain = abstain
        self.checker = AnswerabilityChecker(sentences, similarity, model, self._self_check)

    def screen(self, question: PreparedQuestion, retrieved: Retrieved) -> Judgement | None:
        """A refusal decided before drafting, or None to ask the model."""
        if question.only_instructions:
            reason = "the question only gives instructions; it asks nothing about the documents"
            return Judgement(Decision.REFUSE, self.abstain, reasons=(reason,))
        off_topic = retrieved.max_dense < self.config.min_retrieval_score
        if question.kind not in BROAD_KINDS and off_topic:
            reason = f"no passage is about the question (best similarity {retrieved.max_dense:.2f})"
            return Judgement(Decision.REFUSE, self.abstain, reasons=(reason,))
        return None

    def decide(
        self, question: PreparedQuestion, retrieved: Retrieved, verified: Verified
    ) -> Judgement:
        """Answer, refuse or correct the verified draft of ``question``."""
        asked = question.standalone
        if verified.declined:
            return self._refusal(verified, asked, retrieved)
        claim = strip_markers(verified.text)
        cited = sentences_cited(self.sentences, verified.citations)
        if question.kind in CHECKED_KINDS and shown_calculation(claim) is None:
            return self._check(asked, claim, cited, verified)
        if question.kind is Kind.YES_NO and self.model is not None:
            return self._polarity(asked, cited, verified)
        return Judgement(Decision.ANSWER, verified.text)

    def _check(
        self, asked: str, claim: str, cited: list[SourceSentence], verified: Verified
    ) -> Judgement:
        """The answerability model's verdict on a fact or why/how answer."""
        verdict = self.checker.assess(Evidence(asked, cited, claim))
        signals = dict(verdict.features)
        if self.model is None:  # calibrating: signals only, no decision
            return Judgement(Decision.ANSWER, verified.text, signals=signals)
        reasons = verdict.reasons
        if verdict.score >= self.model.threshold:
            return Judgement(
                Decision.ANSWER, verified.text, round(verdict.score, 3), reasons, signals=signals
            )
        closest = self._closest(asked, verdict.window)
        return Judgement(
            Decision.REFUSE,
            self.abstain,
            round(1 - verdict.score, 3),  # that refusing is right
            reasons,
            closest,
            keep_citations=False,
            signals=signals,
        )

    def _polarity(self, asked: str, cited: list[SourceSentence], verified: Verified) -> Judgement:
        """A yes/no answer whose first word agrees with the cited evidence."""
        window = self.checker.window_of(cited)
        p_yes = self.yes_probability(polarity_messages(window_text(window), asked))
        if p_yes is None:
            return Judgement(Decision.ANSWER, verified.text)
        settled = agree(verified.text, p_yes)
        confidence = round(max(p_yes, 1 - p_yes), 3)
        if not settled.changed:
            return Judgement(Decision.ANSWER, settled.text, confidence)
        word = "Yes" if p_yes >= 0.5 else "No"
        reason = f"the cited passage answers {word} (P(yes) = {p_yes:.2f})"
        return Judgement(Decision.CORRECT, settled.text, confidence, (reason,))

    def _refusal(self, verified: Verified, asked: str, retrieved: Retrieved) -> Judgement:
        """The model declined: refuse, and point at the closest evidence when on topic."""
        reason = "the model found no supported answer in the passages"
        if verified.citations:  # it said what the text does say, cited: that stands
            return Judgement(Decision.REFUSE, verified.text, reasons=(reason,))
        if retrieved.max_dense < self.config.min_related_score:
            return Judgement(Decision.REFUSE, verified.text, reasons=(reason,))
        pool = sentences_in(self.sentences, retrieved.passages[:2])
        return Judgement(
            Decision.REFUSE, verified.text, reasons=(reason,), closest=self._closest(asked, pool)
        )

    def _closest(self, asked: str, pool: Sequence[SourceSentence]) -> SourceSentence | None:
        return max(pool, key=lambda s: self.similarity(asked, s.text)) if pool else None

    def _self_check(self, passage: str, question: str, claim: str) -> float | None:
        """The model's P("Yes") that ``passage`` states ``claim`` as the answer to ``question``."""
        return self.yes_probability(self_check_messages(passage, question, claim))
