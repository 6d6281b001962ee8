"""The SQuAD 2.0 suite: whole Wikipedia articles and crowd-written questions, half unanswerable.

Each article becomes one document (its paragraphs joined by blank lines, named after its
title); the six articles (plus, with ``distractors``, twenty more without questions) are
ingested into one corpus in the suite's own store, and every question goes through the
same ``ask()`` users call. Three articles are the *calibration* split (tuning may look at
them), three the *test* split (nothing is tuned on them); both are always reported.

The data (CC BY-SA 4.0, attribution in ``eval/data/squad2/README.md``) is read as shipped.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from pathlib import Path
from statistics import mean
from typing import Any

from eval.dataset import EvalItem, EvidenceSpan
from eval.metrics import (
    best,
    confidence_auroc,
    contains,
    mean_present,
    percentile,
    retrieval_rank,
    top_share_right,
)
from eval.squad_metric import score
from eval.systems import Prediction
from qa.text import strip_markers

DATA_DIR = Path(__file__).with_name("data") / "squad2"
ARTICLES = DATA_DIR / "squad2-dev-6-articles.json"
DISTRACTORS = DATA_DIR / "squad2-distractors-20-articles-noanswers.json"
# Two more articles with their questions, for calibration only (``qa calibrate``): the
# suite's report keeps the six articles, so its figures stay comparable.
MORE_ARTICLES = DATA_DIR / "squad2-dev-2-more-articles.json"
MORE_TITLES = ("European_Union_law", "Islamism")
SPLITS: dict[str, tuple[str, ...]] = {
    "calibration": ("Normans", "Packet_switching", "Force", *MORE_TITLES),
    "test": ("Computational_complexity_theory", "1973_oil_crisis", "Scottish_Parliament"),
}
PARAGRAPH_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class SquadQuestion:
    """One SQuAD question, with the offsets of its paragraph and gold answers in its document."""

    id: str
    split: str
    doc: str
    question: str
    answers: tuple[str, ...]  # empty: unanswerable by design
    answer_spans: tuple[EvidenceSpan, ...]
    paragraph: EvidenceSpan
    plausible: tuple[str, ...] = ()  # the distractor an unanswerable question invites

    @property
    def answerable(self) -> bool:
        return bool(self.answers)

    def as_item(self) -> EvalItem:
        kind = "has_answer" if self.answerable else "no_answer"
        return EvalItem(self.id, kind, self.question, self.answers, ())


@dataclass(frozen=True)
class Corpus:
    """Document name -> text, and every question of the six articles."""

    documents: dict[str, str]
    questions: list[SquadQuestion]


def doc_name(title: str) -> str:
    return f"{title}.txt"


def load_corpus(distractors: bool = False, more: bool = False) -> Corpus:
    """Build the documents (exact text that gets ingested) and locate every gold answer.

    ``more`` adds the two calibration-only articles and their questions.
    """
    documents: dict[str, str] = {}
    questions: list[SquadQuestion] = []
    split_of = {title: split for split, titles in SPLITS.items() for title in titles}
    articles = json.loads(ARTICLES.read_text(encoding="utf-8"))["data"]
    if more:
        articles += json.loads(MORE_ARTICLES.read_text(encoding="utf-8"))["data"]
    for article in articles:
        title, doc, offset = article["title"], doc_name(article["title"]), 0
        parts = []
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            span = EvidenceSpan(doc, offset, offset + len(context))
            for qa in paragraph["qas"]:
                answers = tuple(a["text"] for a in qa["answers"])
                spans = tuple(
                    EvidenceSpan(
                        doc, offset + a["answer_start"], offset + a["answer_start"] + len(a["text"])
                    )
                    for a in qa["answers"]
                )
                plausible = tuple(a["text"] for a in qa.get("plausible_answers", []))
                questions.append(
                    SquadQuestion(
                        qa["id"],
                        split_of[title],
                        doc,
                        qa["question"],
                        answers,
                        spans,
                        span,
                        plausible,
                    )
                )
            parts.append(context)
            offset += len(context) + len(PARAGRAPH_SEPARATOR)
        documents[doc] = PARAGRAPH_SEPARATOR.join(parts)
    if distractors:
        for article in json.loads(DISTRACTORS.read_text(encoding="utf-8"))["data"]:
            text = PARAGRAPH_SEPARATOR.join(p["context"] for p in article["paragraphs"])
            documents[doc_name(article["title"])] = text
    return Corpus(documents, questions)


@dataclass(frozen=True)
class Piece:
    """Consecutive paragraphs of one article, short enough to be the whole prompt, and
    their questions (offsets in the piece's own text, ``doc`` its file name)."""

    name: str
    article: str
    text: str
    questions: tuple[SquadQuestion, ...]


def whole_prompt_pieces(corpus: Corpus, split: str, max_chars: int) -> list[Piece]:
    """Each ``split`` article cut, in order, into pieces of whole paragraphs of at most
    ``max_chars`` characters, each with the questions of its paragraphs. A corpus of one
    piece is read whole by the model, so a refusal there can get a second look (which a
    corpus answered from retrieved evidence never takes). A paragraph longer than
    ``max_chars`` is left out with its questions."""
    titles = {doc_name(title): title for title in SPLITS[split]}
    pieces: list[Piece] = []
    for doc, title in titles.items():
        text = corpus.documents[doc]
        questions = [q for q in corpus.questions if q.doc == doc]
        spans, start = [], 0
        for paragraph in text.split(PARAGRAPH_SEPARATOR):
            spans.append((start, start + len(paragraph)))
            start += len(paragraph) + len(PARAGRAPH_SEPARATOR)
        groups: list[list[tuple[int, int]]] = [[]]
        for span in spans:
            if groups[-1] and span[1] - groups[-1][0][0] > max_chars:
                groups.append([])
            groups[-1].append(span)
        kept = [g for g in groups if g and g[-1][1] - g[0][0] <= max_chars]
        pieces += [_piece(title, n, text, g, questions) for n, g in enumerate(kept)]
    return pieces


def _piece(
    title: str, number: int, text: str, group: list[tuple[int, int]], questions: list
) -> Piece:
    start, end = group[0][0], group[-1][1]
    name = f"{title}-{number:03d}.txt"

    def moved(span: EvidenceSpan) -> EvidenceSpan:
        return EvidenceSpan(name, span.start - start, span.end - start)

    inside = tuple(
        replace(
            q,
            doc=name,
            paragraph=moved(q.paragraph),
            answer_spans=tuple(moved(a) for a in q.answer_spans),
        )
        for q in questions
        if start <= q.paragraph.start and q.paragraph.end <= end
    )
    return Piece(name, title, text[start:end], inside)


def write_documents(documents: dict[str, str], directory: Path) -> None:
    """Write the corpus as ``.txt`` files (only what changed, so re-ingesting is a no-op)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in documents.items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    for stale in set(p.name for p in directory.glob("*.txt")) - set(documents):
        (directory / stale).unlink()


def sample(
    questions: list[SquadQuestion], split: str, size: int | None, seed: int
) -> list[SquadQuestion]:
    """A seeded sample of ``split``, half answerable, half not (all of it when ``size`` is None)."""
    pool = sorted((q for q in questions if q.split == split), key=lambda q: q.id)
    if size is None or size >= len(pool):
        return pool
    rng = random.Random(f"{seed}:{split}")
    has = [q for q in pool if q.answerable]
    none = [q for q in pool if not q.answerable]
    chosen = rng.sample(has, min(len(has), (size + 1) // 2))
    chosen += rng.sample(none, min(len(none), size - len(chosen)))
    return sorted(chosen, key=lambda q: q.id)


def answer_span_text(text: str) -> str:
    """Our answer as a SQuAD prediction: the text without citation markers."""
    return strip_markers(text)


@dataclass
class SquadResult:
    """One question's outcome under the official metric and our own."""

    id: str
    split: str
    doc: str
    question: str
    answerable: bool
    gold: list[str]
    plausible: list[str]
    prediction: str
    abstained: bool
    exact: int
    f1: float
    contained: float
    citation_has_gold: bool | None
    cited_chars: float | None
    quotes: list[str]
    retrieval_rank: int | None
    seconds: float
    confidence: float | None = None
    raw: str = ""
    certainty: str | None = None


def score_question(question: SquadQuestion, pred: Prediction) -> SquadResult:
    """Score one prediction; an abstention is the empty prediction of the official script."""
    text = "" if pred.abstained else answer_span_text(pred.text)
    exact, f1 = score(question.answers, text)
    cited = [s for s in pred.citations if s[0] == question.doc]
    return SquadResult(
        id=question.id,
        split=question.split,
        doc=question.doc,
        question=question.question,
        answerable=question.answerable,
        gold=list(question.answers),
        plausible=list(question.plausible),
        prediction=pred.text,
        abstained=pred.abstained,
        exact=exact,
        f1=f1,
        contained=best(contains, text, question.answers) if text else 0.0,
        citation_has_gold=(
            any(s[1] <= g.start and g.end <= s[2] for s in cited for g in question.answer_spans)
            if question.answerable and not pred.abstained
            else None
        ),
        cited_chars=mean(e - s for _, s, e in pred.citations) if pred.citations else None,
        quotes=pred.quotes,
        retrieval_rank=retrieval_rank(pred.retrieved, [question.paragraph]),
        seconds=pred.seconds,
        confidence=pred.confidence,
        raw=pred.raw,
        certainty=pred.certainty,
    )


def answers_rated(
    results: list[SquadResult], rating: str = "confidence"
) -> tuple[list[Any], list[bool]]:
    """The ``rating`` ("confidence" or "certainty") and rightness of every answer given
    (refusals left out), as :func:`eval.scoring.answers_rated` for the own set.

    Right means the answer contains a gold answer, so an answer to an unanswerable
    question is wrong.
    """
    answers = [r for r in results if not r.abstained]
    return [getattr(r, rating) for r in answers], [
        r.answerable and r.contained > 0 for r in answers
    ]


def summarize(results: list[SquadResult]) -> dict[str, Any]:
    """The official HasAns/NoAns/overall figures plus our own, as fractions (0-1)."""
    has = [r for r in results if r.answerable]
    none = [r for r in results if not r.answerable]
    confidences, right = answers_rated(results)
    return {
        "n": len(results),
        "has_ans_n": len(has),
        "no_ans_n": len(none),
        "exact": mean_present([float(r.exact) for r in results]),
        "f1": mean_present([r.f1 for r in results]),
        "has_ans_exact": mean_present([float(r.exact) for r in has]),
        "has_ans_f1": mean_present([r.f1 for r in has]),
        "no_ans_accuracy": mean_present([float(r.abstained) for r in none]),
        "has_ans_contains": mean_present([r.contained for r in has]),
        "false_abstention_rate": mean_present([float(r.abstained) for r in has]),
        # Of the answers given (not refused), the share that is right: a gold answer
        # contained; an answer to an unanswerable question is never right.
        "answers_right": mean_present(
            [float(r.answerable and r.contained > 0) for r in results if not r.abstained]
        ),
        "citation_has_gold": mean_present(
            [float(r.citation_has_gold) for r in has if r.citation_has_gold is not None]
        ),
        "mean_cited_chars": mean_present([r.cited_chars for r in results]),
        "retrieval_hit": mean_present([float(r.retrieval_rank is not None) for r in results]),
        "latency_p50": percentile([r.seconds for r in results], 50),
        "latency_p95": percentile([r.seconds for r in results], 95),
        "confidence_auroc": confidence_auroc(confidences, right),
        "top_half_right": top_share_right(confidences, right, 50)[1],
        "confidence_n": sum(c is not None for c in confidences),
    }


def summarize_by_split(results: list[SquadResult]) -> dict[str, dict[str, Any]]:
    table = {s: summarize([r for r in results if r.split == s]) for s in SPLITS}
    return {s: row for s, row in table.items() if row["n"]}
