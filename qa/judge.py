"""The judge: the one place that decides to answer, to refuse, or to correct an answer.

Every other stage reports facts — how close the best passage is (retrieval), what the
model wrote with its token log-probabilities and which sentences support it (draft,
verify) — and the judge turns them into the decision, with its reasons and a confidence:

- *screen*, before the model is asked: a question whose best passage is not even about
  it (dense cosine below ``min_retrieval_score``; not for summaries, lists and bylines,
  whose wording is far from any one passage) is refused without spending a model call.
- *second look*: after the model declined over the whole document, another attempt over
  the question's best sentences is taken only when the draft's P(refusal phrase) is
  below the fitted ``second_look_below`` (1.01: always, 0: never; ``qa calibrate``
  keeps the look only where it adds measurably more right answers than wrong ones).
- *decide*, after the draft is verified:
  - the model declined, or none of its sentences is supported: refuse, quoting the
    closest sentence when the question is on topic (best cosine ≥ ``min_related_score``)
    and the model quoted nothing itself;
  - a fact or a why/how answer: the learned model (:mod:`qa.answerability`, chosen and
    fitted by ``qa calibrate`` through this same class) turns the model's own signals
    (a self-check over the evidence window, or asked as the next turn of the answering
    conversation; the draft's token log-probabilities), the answer's, and the lexical
    gaps of the cited evidence — whichever earned their place — into
    P(the answer is right); below the threshold of the user's caution level the answer
    is refused and the closest cited sentence shows what the text does say. A costly
    self-check is skipped where the free-signal model is already sure (the fitted
    shortcut); a worked calculation is checked by its arithmetic instead;
  - a yes/no answer: its first word is made to agree with the model's P("Yes") read from
    the cited evidence alone (:mod:`qa.polarity`): a correction;
  - otherwise (a summary, a list, a byline) the verified answer stands.

Every answer shown carries a certainty band (:class:`~qa.types.Certainty`): the fitted
model's band of its P(right), or "unchecked" where nothing rated it.

With no fitted model the judge decides nothing it would need one for: a model that has
no judge fitted for it (:mod:`qa.judge_files`) is *unchecked* — no self-check, no second
look, no polarity correction, every answer labelled so; ``qa calibrate --collect``
(``Config.answerability`` off) instead computes every signal (``Judgement.signals``,
surfaced as ``Answer.signals``) and answers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from qa.answerability import (
    COSTLY,
    WINDOW_CHECK,
    AnswerabilityChecker,
    Evidence,
    JudgePolicy,
    answer_signals,
    assess,
    draft_signals,
    log_odds,
    window_text,
)
from qa.calculate import shown_calculation
from qa.citations import Verified, assemble
from qa.config import DEFAULT_CAUTION, Caution, Config
from qa.draft import Draft
from qa.language import BROAD_KINDS, CHECKED_KINDS, Kind
from qa.polarity import agree
from qa.prepare import PreparedQuestion
from qa.prompts import ABSTAIN_TEXT, polarity_messages, self_check_messages, self_check_turn
from qa.retrieval import Retrieved
from qa.support import SourceSentence, sentences_cited, sentences_in
from qa.text import strip_markers
from qa.types import Citation, Decision, Judgement

YesProbability = Callable[[list], "float | None"]  # chat messages -> P("Yes") or None


@dataclass(frozen=True)
class Shown:
    """The part of a draft the judge shows, written out with its citations."""

    text: str
    citations: tuple[Citation, ...]


def shown_of(verified: Verified) -> Shown:
    """What of a verified draft is shown: the refusal it led with, if any, and every
    sentence the context supports; an unsupported, repeated or label sentence is not, and
    with nothing left the refusal is."""
    lead = verified.sentences[:1] if verified.declined else ()
    text, citations = assemble([*lead, *verified.supported])
    return Shown(text or ABSTAIN_TEXT, tuple(citations))


@dataclass(frozen=True)
class Case:
    """What the judge decides on, for one question: the snapshot's sentence statistics,
    the question, what was retrieved, and the verified draft (with the refused one a
    second look followed, if any)."""

    corpus: AnswerabilityChecker
    question: PreparedQuestion
    retrieved: Retrieved
    verified: Verified
    draft: Draft
    earlier: Draft | None = None


@dataclass(frozen=True)
class JudgeSettings:
    """The judge's own settings (from :class:`~qa.config.Config`)."""

    caution: Caution = DEFAULT_CAUTION  # which fitted threshold an answer must reach
    min_retrieval_score: float = 0.0  # below: no passage is about the question, refuse
    min_related_score: float = 0.0  # from here a refusal quotes the closest sentence
    collecting: bool = False  # `qa calibrate --collect`: every signal read, nothing refused

    @classmethod
    def of(cls, config: Config) -> JudgeSettings:
        return cls(
            config.caution,
            config.min_retrieval_score,
            config.min_related_score,
            collecting=not config.answerability,
        )


class Judge:
    """Decides for the pipeline, over whichever index snapshot an answer reads (its
    sentences and their statistics arrive as ``corpus``); safe to share between threads."""

    def __init__(
        self,
        settings: JudgeSettings,
        policy: JudgePolicy | None,
        similarity: Callable[[str, str], float],
        yes_probability: YesProbability,
    ) -> None:
        self.settings = settings
        self.policy = policy
        self.model = policy.model if policy is not None else None
        self.similarity = similarity
        self.yes_probability = yes_probability
        # Serving reads only the costly signals the fitted model uses; calibrating, all;
        # an unchecked model, none.
        unfitted = COSTLY if settings.collecting else frozenset()
        self.self_checks = sorted(self.model.costly if self.model else unfitted)

    def screen(self, question: PreparedQuestion, retrieved: Retrieved) -> Judgement | None:
        """A refusal decided before drafting, or None to ask the model."""
        off_topic = retrieved.max_dense < self.settings.min_retrieval_score
        if question.kind not in BROAD_KINDS and off_topic:
            reason = f"no passage is about the question (best similarity {retrieved.max_dense:.2f})"
            return Judgement(Decision.REFUSE, ABSTAIN_TEXT, reasons=(reason,))
        return None

    def worth_second_look(self, draft: Draft) -> bool:
        """Does the fitted model say another look at this refusal pays for its request?"""
        p_refusal = refusal_probability(draft)
        if self.model is not None:
            below = self.model.second_look_below
        else:
            below = 1.0 if self.settings.collecting else 0.0
        return below > 0 and (p_refusal is None or p_refusal < below)

    def decide(self, case: Case) -> Judgement:
        """Answer, refuse or correct the verified draft of ``case``.

        ``case.earlier`` is the refused draft a second look followed, if one did: its
        P(refusal phrase) is reported among the signals (``qa calibrate`` fits when a
        second look pays from it).
        """
        judgement = self._decide(case)
        p_earlier = refusal_probability(case.earlier) if case.earlier else None
        if p_earlier is None:
            return judgement
        return replace(judgement, signals={**judgement.signals, "looked_again_after": p_earlier})

    def _decide(self, case: Case) -> Judgement:
        corpus, question, retrieved = case.corpus, case.question, case.retrieved
        verified, draft = case.verified, case.draft
        asked = question.standalone
        shown = shown_of(verified)
        if not verified.answered:
            return self._refusal(corpus, shown, asked, retrieved, draft)
        claim = strip_markers(shown.text)
        cited = sentences_cited(corpus.sentences, list(shown.citations))
        if question.kind in CHECKED_KINDS and shown_calculation(claim) is None:
            return self._check(corpus, asked, claim, cited, verified, shown, retrieved, draft)
        if question.kind is Kind.YES_NO and self.model is not None:
            return self._polarity(corpus, asked, cited, shown)
        return Judgement(Decision.ANSWER, shown.text, citations=shown.citations)

    def signals(
        self,
        corpus: AnswerabilityChecker,
        asked: str,
        claim: str,
        cited: Sequence[SourceSentence],
        verified: Verified,
        retrieved: Retrieved,
        draft: Draft,
    ) -> tuple[dict[str, float], tuple[SourceSentence, ...]]:
        """The signals that come free with the draft, and the answer's evidence window."""
        signals, window = corpus.features(Evidence(asked, cited, claim))
        signals |= draft_signals(draft.logprobs)
        signals |= answer_signals(asked, claim, verified.checks, retrieved.max_dense)
        return signals, window

    def costly_signals(
        self, asked: str, claim: str, window: Sequence[SourceSentence], draft: Draft
    ) -> dict[str, float]:
        """The self-checks the model reads (every one while collecting): a request each."""
        signals = {}
        for check in self.self_checks:
            p_yes = None
            if check == WINDOW_CHECK and window:  # a prompt of its own: ~100 fresh tokens
                p_yes = self.yes_probability(self_check_messages(window_text(window), asked, claim))
            elif check != WINDOW_CHECK and draft.messages:  # the answering turn's next turn
                p_yes = self.yes_probability(self_check_turn(draft.messages, draft.raw, check))
            signals[check] = log_odds(p_yes)
        return signals

    def _check(
        self,
        corpus: AnswerabilityChecker,
        asked: str,
        claim: str,
        cited: list[SourceSentence],
        verified: Verified,
        shown: Shown,
        retrieved: Retrieved,
        draft: Draft,
    ) -> Judgement:
        """The learned model's verdict on a fact or why/how answer.

        Where the shortcut model is sure the answer is right, the costly check is skipped
        (the fit found the full model answers those anyway); otherwise the full model reads it.
        """
        signals, window = self.signals(corpus, asked, claim, cited, verified, retrieved, draft)
        caution = self.settings.caution
        policy = self.policy
        p_free = policy.skips_check(signals, caution) if policy else None
        if policy is not None and p_free is not None:
            model = policy.shortcut
            signals["shortcut"] = p_free  # reported: this answer's check was skipped
        else:
            signals |= self.costly_signals(asked, claim, window, draft)
            model = self.model
        if model is None:  # collecting signals, or a model no judge is fitted for
            reasons = () if self.settings.collecting else ("no judge is fitted for this model",)
            return Judgement(
                Decision.ANSWER,
                shown.text,
                reasons=reasons,
                citations=shown.citations,
                signals=signals,
            )
        threshold = model.threshold(caution)
        verdict = assess(model, signals, threshold)
        reasons = verdict.reasons
        if verdict.score >= threshold:
            return Judgement(
                Decision.ANSWER,
                shown.text,
                round(verdict.score, 3),
                reasons,
                citations=shown.citations,
                signals=signals,
                certainty=model.certainty_of(verdict.score),
            )
        closest = self._closest(asked, window)
        return Judgement(
            Decision.REFUSE,
            ABSTAIN_TEXT,
            round(1 - verdict.score, 3),  # that refusing is right
            reasons,
            closest,
            signals=signals,
        )

    def _polarity(
        self, corpus: AnswerabilityChecker, asked: str, cited: list[SourceSentence], shown: Shown
    ) -> Judgement:
        """A yes/no answer whose first word agrees with the cited evidence."""
        window = corpus.window_of(cited)
        p_yes = self.yes_probability(polarity_messages(window_text(window), asked))
        if p_yes is None:
            return Judgement(Decision.ANSWER, shown.text, citations=shown.citations)
        agreed = agree(shown.text, p_yes)
        confidence = round(max(p_yes, 1 - p_yes), 3)
        if not agreed.changed:
            return Judgement(Decision.ANSWER, agreed.text, confidence, citations=shown.citations)
        word = "Yes" if p_yes >= 0.5 else "No"
        reason = f"the cited passage answers {word} (P(yes) = {p_yes:.2f})"
        return Judgement(
            Decision.CORRECT, agreed.text, confidence, (reason,), citations=shown.citations
        )

    def _refusal(
        self,
        corpus: AnswerabilityChecker,
        shown: Shown,
        asked: str,
        retrieved: Retrieved,
        draft: Draft,
    ) -> Judgement:
        """The model declined, or none of its sentences is supported: refuse, and point at
        the closest evidence when on topic."""
        reason = "the model found no supported answer in the passages"
        p_refusal = refusal_probability(draft)
        signals = {} if p_refusal is None else {"refusal_probability": p_refusal}
        confidence = None if p_refusal is None else round(p_refusal, 3)
        if shown.citations:  # it said what the text does say, cited: that stands
            return Judgement(
                Decision.REFUSE,
                shown.text,
                confidence,
                (reason,),
                citations=shown.citations,
                signals=signals,
            )
        refuse = Judgement(Decision.REFUSE, shown.text, confidence, (reason,), signals=signals)
        if retrieved.max_dense < self.settings.min_related_score:
            return refuse
        pool = sentences_in(corpus.sentences, retrieved.passages[:2])
        return Judgement(
            Decision.REFUSE,
            shown.text,
            confidence,
            (reason,),
            closest=self._closest(asked, pool),
            signals=signals,
        )

    def _closest(self, asked: str, pool: Sequence[SourceSentence]) -> Citation | None:
        """The sentence of ``pool`` closest to the question, as the one citation to quote."""
        if not pool:
            return None
        sentence = max(pool, key=lambda s: self.similarity(asked, s.text))
        passage = sentence.passage
        return Citation(
            1, passage.id, passage.doc, sentence.start, sentence.end, sentence.text, passage.page
        )


def refusal_probability(draft: Draft) -> float | None:
    """P(the refusal phrase) along the draft's tokens, if the draft opens with it.

    The product of the probabilities of the tokens that spell the phrase: near 1 when the
    model was sure there is nothing to say, lower when an answer nearly won.
    """
    if not draft.logprobs or not draft.raw.lstrip().startswith(ABSTAIN_TEXT):
        return None
    spelled, total = "", 0.0
    for entry in draft.logprobs:
        spelled += entry.token
        total += entry.logprob
        if len(spelled.strip()) >= len(ABSTAIN_TEXT):
            break
    return math.exp(total)
