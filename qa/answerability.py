"""The judge's signals, and the learned model that turns them into P(the answer is right).

The sentence-level support check (:mod:`qa.support`) asks whether an answer's words are
in its cited sentences. That passes a distractor: "Where did Kim and Putin meet in
2021?" -> "Vladivostok [1]" is word-for-word in a sentence about 2019. Questions that only
*seem* answerable are written exactly so: one detail of a real sentence swapped. The
judge therefore reads signals of two kinds:

- the model's own (:func:`draft_signals` and the judge's self-checks): "is that answer
  stated … for exactly my question?" asked either as the next turn of the answering
  conversation (the document, question and answer already in the slot's cache: ~20 new
  tokens) or in a prompt of its own over the evidence window (~100 tokens), its P("Yes")
  read from the next token's log-probabilities; the draft's token log-probabilities come
  with the answer at no cost;
- the answer's (:func:`answer_signals`): what it adds to the question, its support;
- lexical gaps of the question against the cited evidence window (the cited sentences
  and their neighbours): figures, names and negations it lacks, and how much of the
  question's rare content (IDF over the indexed sentences) it holds.

A logistic model over the signals that earn their place, chosen and fitted by
``qa calibrate`` on one model's answers to labelled questions (the SQuAD 2.0
calibration split, never the test split) and stored as that model's judge
(``qa/judges/<model>.json``, :mod:`qa.judge_files`), gives P(the answer is right):
the judge refuses below the calibrated threshold, and that probability is
``Answer.confidence``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from qa.config import CAUTION_LEVELS
from qa.errors import ModelIntegrityError
from qa.model_identity import ModelIdentity
from qa.prompts import ABSTAIN_TEXT
from qa.support import SourceSentence, analyse, coverage
from qa.text import NEGATION
from qa.types import CERTAINTY_RIGHT, Certainty

BANDS = frozenset(band.value for band in CERTAINTY_RIGHT)  # the fitted bands
WINDOW_CHECK = "self_check_window"
MODEL_SIGNALS = (
    "self_check",  # log-odds of the model's "Yes" to the self-check turn
    # ... and to the same question put in a prompt of its own over the evidence window
    # alone (the cited sentences and neighbours, the question, the answer; a prompt of its
    # own, its cost in docs/performance.md), where a swapped detail is not drowned by the
    # whole document
    WINDOW_CHECK,
    "min_logprob",  # the least likely token of the answer's text (citations left out)
    "mean_logprob",  # the answer's mean token log-probability
    "abstain_first",  # P(the first token starts the refusal instead), from the draft
)
ANSWER_SIGNALS = (
    "novelty",  # share of the answer's content words the question does not already hold
    "support",  # the verifier's support score of the kept sentences (mean)
    "qa_similarity",  # cosine of question + answer against the cited sentences (mean)
    "reattached",  # the verifier had to move a citation the model got wrong
    "retrieval",  # the best dense similarity of the question to any passage
)
LEXICAL_SIGNALS = (
    "missing_numbers",  # figures and years of the question the window lacks
    "negation_gap",  # the question negates ("not", "never") and the window does not
    "missing_names",  # capitalised question words (names) the window lacks
    "coverage",  # IDF-weighted share of the question's content words in the evidence window
    "missing_max_idf",  # the rarest question word the window lacks (0 = none), / log N
    "similarity",  # cosine of the question and the window's best sentence
)
SIGNALS = MODEL_SIGNALS + ANSWER_SIGNALS + LEXICAL_SIGNALS
# Signals that cost a model request each (the rest come free with the draft or the text).
COSTLY = frozenset({"self_check", WINDOW_CHECK})
_WORD = re.compile(r"[^\W\d_][\w'’-]*")
# Words that state a count of two without a figure: the evidence holds the question's "2".
_STATES_TWO = re.compile(r"\b(?:both|pair)\b", re.IGNORECASE)


def draft_signals(logprobs: Sequence) -> dict[str, float]:
    """What the draft's own token log-probabilities say (free with the answer).

    Tokens inside citation markers are left out: which number the model cites says
    little about whether the answer is right.
    """
    tokens, inside = [], False
    for entry in logprobs:
        token = entry.token
        if "[" in token:
            inside = True
        if not inside and token.strip():
            tokens.append(entry.logprob)
        if "]" in token:
            inside = False
    first = logprobs[0] if logprobs else None
    abstain_first = 0.0
    if first is not None:
        start = ABSTAIN_TEXT.split()[0]
        abstain_first = sum(
            math.exp(lp) for t, lp in first.top.items() if t.strip() and start.startswith(t.strip())
        )
    return {
        "min_logprob": min(tokens, default=0.0),
        "mean_logprob": sum(tokens) / len(tokens) if tokens else 0.0,
        "abstain_first": min(1.0, abstain_first),
    }


def answer_signals(
    question: str, claim: str, checks: Sequence, retrieval: float
) -> dict[str, float]:
    """What the verified answer itself says: does it add anything, how well it is supported.

    An answer that only restates the question ("Kim refused to tell Putin about rocket
    boosters") adds nothing the question did not assume; ``checks`` are the verifier's
    :class:`~qa.types.SentenceCheck`s, of which the kept ones count.
    """
    asked, answer = analyse(question).words, analyse(claim)
    said = answer.words | answer.numbers
    kept = [c for c in checks if c.kept]
    return {
        "novelty": len(said - asked) / max(1, len(said)),
        "support": sum(c.score for c in kept) / max(1, len(kept)),
        "qa_similarity": sum(c.qa_similarity for c in kept) / max(1, len(kept)),
        "reattached": float(any(c.reattached for c in kept)),
        "retrieval": retrieval,
    }


def log_odds(p: float | None) -> float:
    """log(p / (1 - p)) of a model's P("Yes"), bounded; 0 (even odds) when there is none."""
    p = 0.5 if p is None else min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


@dataclass(frozen=True)
class Evidence:
    """What one verdict looks at: the question and the candidate evidence sentences."""

    question: str
    sentences: Sequence[SourceSentence]
    claim: str = ""


@dataclass(frozen=True)
class Verdict:
    """P(the evidence answers the question) and why; the judge (:mod:`qa.judge`) decides."""

    score: float
    reasons: tuple[str, ...] = ()
    features: dict[str, float] = field(default_factory=dict)


# Signals read from the model's next-token log-probabilities: a server that gives none
# (``LLMClient.missing``) is judged by the model fitted without them.
LOGPROB_SIGNALS = frozenset(MODEL_SIGNALS)


@dataclass(frozen=True)
class AnswerabilityModel:
    """Logistic weights over the chosen ``features``, a threshold per caution level, and how
    they were fitted (``qa calibrate --from-signals``)."""

    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    thresholds: dict[str, float]  # caution level -> the P(right) below which it refuses
    provenance: str = ""
    # A refusal over the whole document gets a second look only when the draft's
    # P(refusal phrase) is below this (above 1: always; 0: never).
    second_look_below: float = 1.0
    # The lowest P(right) of each certainty band that the fit reached (band -> cut):
    # "sure" and "likely" answers were right at least CERTAINTY_RIGHT of the time on
    # calibration articles the fit never saw; a band it could not reach is absent.
    certainty: dict[str, float] = field(default_factory=dict)

    @property
    def costly(self) -> frozenset[str]:
        """The signals this model reads that cost a model request."""
        return COSTLY & frozenset(self.features)

    def threshold(self, caution: str) -> float:
        return self.thresholds[caution]

    def with_second_look(self, cut: float) -> AnswerabilityModel:
        return replace(self, second_look_below=cut)

    def certainty_of(self, p_right: float) -> Certainty:
        """The band of an answer shown with this P(right): the surest band it reaches."""
        for band in (Certainty.SURE, Certainty.LIKELY):
            if band.value in self.certainty and p_right >= self.certainty[band.value]:
                return band
        return Certainty.UNSURE

    @classmethod
    def from_dict(cls, raw: dict) -> AnswerabilityModel:
        features = tuple(raw["features"])
        if not set(features) <= set(SIGNALS) or len(features) != len(raw["weights"]):
            raise ValueError("it was fitted on signals this version does not compute")
        if set(raw["thresholds"]) != set(CAUTION_LEVELS):
            raise ValueError(f"it needs a threshold for each of {', '.join(CAUTION_LEVELS)}")
        return cls(
            features,
            tuple(float(w) for w in raw["weights"]),
            float(raw["bias"]),
            {k: float(v) for k, v in raw["thresholds"].items()},
            raw.get("provenance", ""),
            float(raw.get("second_look_below", 1.0)),
            {k: float(v) for k, v in raw.get("certainty", {}).items() if k in BANDS},
        )

    def to_dict(self) -> dict:
        return {
            "features": list(self.features),
            "weights": [round(w, 6) for w in self.weights],
            "bias": round(self.bias, 6),
            "thresholds": {k: round(v, 4) for k, v in self.thresholds.items()},
            "second_look_below": round(self.second_look_below, 4),
            "certainty": {k: round(v, 4) for k, v in self.certainty.items()},
            "provenance": self.provenance,
        }

    def probability(self, features: dict[str, float]) -> float:
        z = self.bias + sum(
            w * features[name] for w, name in zip(self.weights, self.features, strict=True)
        )
        return 1 / (1 + math.exp(-max(-30.0, min(30.0, z))))


@dataclass(frozen=True)
class JudgePolicy:
    """The model the judge decides with and, where it reads a costly check, a shortcut.

    The ``shortcut`` model reads only signals that come free with the draft; an answer it
    finds right with P ≥ ``shortcut_above[caution]`` is answered without the check (the
    fit found the full model answers those anyway).
    """

    model: AnswerabilityModel
    shortcut: AnswerabilityModel | None = None
    shortcut_above: dict[str, float] = field(default_factory=dict)

    def skips_check(self, free_signals: dict[str, float], caution: str) -> float | None:
        """The shortcut's P(right) when it is sure enough to skip the costly check, else None."""
        if self.shortcut is None or not self.model.costly:
            return None
        p = self.shortcut.probability(free_signals)
        return p if p >= self.shortcut_above.get(caution, 1.01) else None


@dataclass(frozen=True)
class JudgeModels:
    """The judge's fitted models and the report of how they were fitted.

    ``full`` reads any signal; ``text_only`` none that needs the model's log-probabilities,
    for a server that gives none (the judge never runs a model with a feature missing);
    ``free`` none that costs a model request: the shortcut past ``full``'s costly check.
    ``model`` is the model whose signals they were fitted on (:mod:`qa.judge_files` picks
    the judge of the model in use by it); None: fitted for no recorded model, never picked.
    """

    full: AnswerabilityModel
    text_only: AnswerabilityModel
    free: AnswerabilityModel | None = None
    shortcut_above: dict[str, float] = field(default_factory=dict)
    report: dict = field(default_factory=dict)
    model: ModelIdentity | None = None

    def for_server(self, has_logprobs: bool) -> JudgePolicy:
        if not has_logprobs:
            return JudgePolicy(self.text_only)
        return JudgePolicy(self.full, self.free, self.shortcut_above)

    @classmethod
    def load(cls, path: Path) -> JudgeModels:
        """A judge file; a missing or invalid one is a clear error, never a pass."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            free, model = raw.get("free"), raw.get("model")
            models = cls(
                AnswerabilityModel.from_dict(raw["full"]),
                AnswerabilityModel.from_dict(raw["text_only"]),
                AnswerabilityModel.from_dict(free) if free else None,
                {k: float(v) for k, v in raw.get("shortcut_above", {}).items()},
                raw.get("report", {}),
                ModelIdentity.from_dict(model) if model else None,
            )
        except FileNotFoundError:
            raise ModelIntegrityError(
                f"the judge's model {path} is missing; reinstall qa-chat or run "
                "`qa calibrate --from-signals`"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelIntegrityError(
                f"the judge's model {path} cannot be used ({exc}); reinstall qa-chat or run "
                "`qa calibrate --from-signals`"
            ) from None
        if LOGPROB_SIGNALS & set(models.text_only.features) or (
            models.free is not None and models.free.costly
        ):
            raise ModelIntegrityError(
                f"the judge's model {path}: a model reads signals it must not "
                "(log-probabilities without a server for them, or a costly check in the "
                "shortcut); run `qa calibrate --from-signals`"
            )
        return models

    def save(self, path: Path) -> None:
        payload = {
            "model": self.model.to_dict() if self.model else None,
            "full": self.full.to_dict(),
            "text_only": self.text_only.to_dict(),
            "free": self.free.to_dict() if self.free else None,
            "shortcut_above": {k: round(v, 4) for k, v in self.shortcut_above.items()},
            "report": self.report,
        }
        path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def question_names(question: str) -> set[str]:
    """Capitalised words after the first (names, places, titles), lower-cased, without 's."""
    words = _WORD.findall(question)[1:]
    return {
        w.lower().replace("’", "'").removesuffix("'s")
        for w in words
        if w[0].isupper() and w.lower() not in {"i"}
    }


def window_text(window: Sequence[SourceSentence]) -> str:
    """An evidence window as one line of text, as the model's probes read it."""
    return " ".join(" ".join(s.text.split()) for s in window)


class AnswerabilityChecker:
    """The lexical signals of evidence against a question, from corpus statistics."""

    def __init__(
        self, sentences: Sequence[SourceSentence], similarity: Callable[[str, str], float]
    ) -> None:
        self._similarity = similarity
        self._order = {id(s): i for i, s in enumerate(sentences)}
        self._sentences = list(sentences)
        frequency: dict[str, int] = {}
        for sentence in sentences:
            for word in sentence.words:
                frequency[word] = frequency.get(word, 0) + 1
        self._n = max(1, len(sentences))
        self._df = frequency

    @property
    def sentences(self) -> list[SourceSentence]:
        """Every sentence of the snapshot, in document order."""
        return self._sentences

    def idf(self, word: str) -> float:
        return math.log((self._n + 1) / (self._df.get(word, 0) + 1)) + 1

    def window(self, sentence: SourceSentence) -> tuple[SourceSentence, ...]:
        """The sentence with its neighbours in the same document (pronouns point there)."""
        index = self._order.get(id(sentence))
        if index is None:
            return (sentence,)
        around = self._sentences[max(0, index - 1) : index + 2]
        return tuple(s for s in around if s.passage.doc == sentence.passage.doc)

    def window_of(self, sentences: Sequence[SourceSentence]) -> tuple[SourceSentence, ...]:
        """The sentences with their neighbours, in order, each once."""
        return tuple(dict.fromkeys(w for s in dict.fromkeys(sentences) for w in self.window(s)))

    def features(self, evidence: Evidence) -> tuple[dict[str, float], tuple[SourceSentence, ...]]:
        """The lexical signals of the evidence window (the cited sentences and neighbours).

        The neighbours are in because a pronoun's referent is often one sentence back.
        """
        question = analyse(evidence.question)
        wanted = {w: self.idf(w) for w in question.words}
        names = question_names(evidence.question)
        window = self.window_of(evidence.sentences)
        if not window:
            empty = dict.fromkeys(LEXICAL_SIGNALS, 0.0)
            empty.update(missing_max_idf=1.0)
            return empty, ()
        text = window_text(window)
        words = frozenset().union(*(s.words for s in window))
        numbers = frozenset().union(*(s.numbers for s in window))
        if _STATES_TWO.search(text):  # "both missiles" states the question's "two missiles"
            numbers |= {2.0}
        missing = [w for w in wanted if w not in words]
        lowered = text.lower()
        features = {
            "coverage": coverage(wanted, words),
            "missing_max_idf": max((wanted[w] for w in missing), default=0.0)
            / math.log(self._n + 1),
            "missing_names": float(sum(name not in lowered for name in names)),
            "missing_numbers": float(len(question.numbers - numbers)),
            "negation_gap": float(
                bool(NEGATION.search(evidence.question)) and not NEGATION.search(text)
            ),
            "similarity": max(self._similarity(evidence.question, s.text) for s in window),
        }
        return features, window


def assess(
    model: AnswerabilityModel | None, features: dict[str, float], threshold: float = 0.5
) -> Verdict:
    """P(right) from the signals, with the reasons a refusal gives (1.0 with no model)."""
    if model is None:
        return Verdict(1.0, ("no answerability model",), features=features)
    score = model.probability(features)
    reasons = []
    if features.get("missing_names"):
        reasons.append("a name in the question is not in the evidence")
    if features.get("missing_numbers"):
        reasons.append("a figure or date in the question is not in the evidence")
    if features.get("negation_gap"):
        reasons.append("the question negates; the evidence does not")
    doubted = any(features.get(check, 0.0) < 0 for check in model.costly)  # its self-check: No
    if doubted or (score < threshold and not reasons):
        reasons.append("the model does not find the answer stated for this question")
    return Verdict(score, tuple(reasons), features=features)
