"""Does the cited evidence answer *this* question? A check of the question, not the answer.

The sentence-level support check (:mod:`qa.support`) asks whether an answer's words are
in its cited sentences. That passes a distractor: "Where did Kim and Putin meet in
2021?" -> "Vladivostok [1]" is word-for-word in a sentence about 2019. Questions that only
*seem* answerable are written exactly so: one detail of a real sentence swapped (a date,
a name, a negation, a relation). So this stage compares the *question* with the cited
evidence (the cited sentences and their neighbours):

- the model's own verdict: asked "does this passage state this answer to exactly this
  question?", the probability of "Yes" against "No" read from its logits (``self_check``;
  about 0.7 s, no generation);
- which names, figures and negations of the question the evidence lacks, and how much of
  the question's rare content (IDF-weighted over the indexed sentences) it holds.

A logistic model over those signals, fitted by ``qa calibrate`` on labelled questions
(the SQuAD 2.0 calibration split and our own set, never the test split) and stored in
``qa/answerability.json``, turns them into P(the answer is right). The judge refuses
below the calibrated threshold, and the same probability is ``Answer.confidence``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qa.support import SourceSentence, analyse, coverage
from qa.text import NEGATION

WEIGHTS_FILE = Path(__file__).with_name("answerability.json")
SIGNALS = (
    "self_check",  # log-odds of the model's "Yes" that the evidence states the answer
    "missing_numbers",  # figures and years of the question the window lacks
    "negation_gap",  # the question negates ("not", "never") and the window does not
    "missing_names",  # capitalised question words (names) the window lacks
    "coverage",  # IDF-weighted share of the question's content words in the evidence window
    "missing_max_idf",  # the rarest question word the window lacks (0 = none), / log N
    "similarity",  # cosine of the question and the window's best sentence
)
# The signals the fitted model uses. Measured on the SQuAD calibration split (AUC of each
# alone for "the answer is right"): self_check 0.68; the lexical ones 0.45-0.56, i.e.
# hardly better than chance there, so only the figure and negation gaps (the details the
# own set's swaps change) join the model's verdict; the rest only explain a refusal.
FEATURES = ("self_check", "missing_numbers", "negation_gap")
SelfCheck = Callable[[str, str, str], float | None]  # (passage, question, answer) -> P(yes)
_WORD = re.compile(r"[^\W\d_][\w'’-]*")


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
    window: tuple[SourceSentence, ...] = ()
    features: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class AnswerabilityModel:
    """Logistic weights over :data:`FEATURES`, the refusal threshold, and how they were fitted."""

    weights: tuple[float, ...]
    bias: float
    threshold: float
    provenance: str = ""

    @classmethod
    def load(cls, path: Path = WEIGHTS_FILE) -> AnswerabilityModel:
        raw = json.loads(path.read_text())
        if tuple(raw["features"]) != FEATURES:
            raise ValueError(f"{path} was fitted on other features; run `qa calibrate`")
        return cls(tuple(raw["weights"]), raw["bias"], raw["threshold"], raw.get("provenance", ""))

    def save(self, path: Path = WEIGHTS_FILE) -> None:
        payload = {
            "features": FEATURES,
            "weights": [round(w, 6) for w in self.weights],
            "bias": round(self.bias, 6),
            "threshold": round(self.threshold, 4),
            "provenance": self.provenance,
        }
        path.write_text(json.dumps(payload, indent=2) + "\n")

    def probability(self, features: dict[str, float]) -> float:
        z = self.bias + sum(
            w * features[name] for w, name in zip(self.weights, FEATURES, strict=True)
        )
        return 1 / (1 + math.exp(-max(-30.0, min(30.0, z))))


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
    """Scores evidence against a question using corpus statistics of the indexed sentences."""

    def __init__(
        self,
        sentences: Sequence[SourceSentence],
        similarity: Callable[[str, str], float],
        model: AnswerabilityModel | None,
        self_check: SelfCheck | None = None,
    ) -> None:
        self.model = model
        self.self_check = self_check
        self._similarity = similarity
        self._order = {id(s): i for i, s in enumerate(sentences)}
        self._sentences = list(sentences)
        frequency: dict[str, int] = {}
        for sentence in sentences:
            for word in sentence.words:
                frequency[word] = frequency.get(word, 0) + 1
        self._n = max(1, len(sentences))
        self._df = frequency

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
        """The signals of the evidence window that best covers the question.

        The window is the evidence sentences with their neighbours (a pronoun's referent
        is often one sentence back); the model's self-check reads that window, the
        question and the claim.
        """
        question = analyse(evidence.question)
        wanted = {w: self.idf(w) for w in question.words}
        names = question_names(evidence.question)
        window = self.window_of(evidence.sentences)
        if not window:
            empty = dict.fromkeys(SIGNALS, 0.0)
            empty.update(missing_max_idf=1.0, self_check=-5.0)
            return empty, ()
        text = window_text(window)
        words = frozenset().union(*(s.words for s in window))
        numbers = frozenset().union(*(s.numbers for s in window))
        missing = [w for w in wanted if w not in words]
        lowered = text.lower()
        p_yes = None
        if self.self_check is not None and evidence.claim:
            p_yes = self.self_check(text, evidence.question, evidence.claim)
        p_yes = 0.5 if p_yes is None else min(max(p_yes, 1e-4), 1 - 1e-4)
        features = {
            "self_check": math.log(p_yes / (1 - p_yes)),
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

    def assess(self, evidence: Evidence) -> Verdict:
        """P(right) for ``evidence`` with its reasons (1.0 when no model is fitted)."""
        features, window = self.features(evidence)
        if self.model is None:
            return Verdict(1.0, ("no answerability model",), window, features)
        score = self.model.probability(features)
        reasons = []
        if features["missing_names"]:
            reasons.append("a name in the question is not in the evidence")
        if features["missing_numbers"]:
            reasons.append("a figure or date in the question is not in the evidence")
        if features["negation_gap"]:
            reasons.append("the question negates; the evidence does not")
        if features["self_check"] < 0 or (score < self.model.threshold and not reasons):
            reasons.append("the model does not find the answer stated for this question")
        return Verdict(score, tuple(reasons), window, features)
