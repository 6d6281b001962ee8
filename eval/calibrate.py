"""``qa calibrate``: fit the answerability model from labelled questions on disk.

Labelled data: a seeded sample of the SQuAD 2.0 *calibration* split (half of it
unanswerable by design) and the answerable / unanswerable items of our own set. Never
the test split.

Each question is answered by the real pipeline with the check turned off; for every
answer of a checked kind (a fact, a why/how) the check's features are computed exactly as
at run time (by the same :class:`qa.judge.Judge`, which with no fitted model reports its
signals as ``Answer.signals`` and lets the answer through), and the label
is whether the answer is right (a gold answer contained; for an unanswerable question,
never). A logistic regression (L2, Newton's method: no extra dependency) maps the features
to P(right); the refusal threshold is the one that maximises the mean of "answerable:
right" and "unanswerable: refused" on 5-fold cross-validated probabilities. The result
(weights, threshold, how it was fitted) goes to ``qa/answerability.json``, committed.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from qa.answerability import FEATURES, AnswerabilityModel
from qa.config import Config

EXAMPLES = Path("reports") / "calibration-examples.json"  # every feature row, for inspection
MIN_KEPT = 0.95  # see the README: keep 95 % of the right answers
OWN_ANSWERABLE = {"fact", "paraphrase", "multi_hop", "why_how"}
OWN_UNANSWERABLE = {"unanswerable_on_topic", "plausible_unanswerable"}


@dataclass(frozen=True)
class Example:
    """One answered question: its check features, and whether it needed refusing."""

    source: str
    question: str
    answerable: bool
    right: bool
    features: dict[str, float]


@dataclass(frozen=True)
class Labelled:
    question: str
    golds: tuple[str, ...]  # empty: unanswerable


def collect(config: Config, questions: Sequence[Labelled], source: str) -> tuple[list, int]:
    """Answer each question with the check off; features of every checked answer.

    Returns the examples and how many questions the model itself declined (those need no
    check, but count for the system-level threshold).
    """
    from rich.progress import track

    from eval.metrics import best, contains
    from qa.pipeline import get_pipeline
    from qa.text import strip_markers

    # No fitted model: the judge computes its signals exactly as when serving (the same
    # qa.judge.Judge, on the cited sentences) and lets every answer through.
    pipeline = get_pipeline(config.replace(answerability=False))
    examples, declined = [], 0
    for item in track(questions, description=source):
        answer = pipeline.ask(item.question)
        if answer.abstained:
            declined += not item.golds
            continue
        if not answer.signals:  # a kind the answerability model does not judge
            continue
        claim = strip_markers(answer.text)
        right = bool(item.golds) and bool(best(contains, claim, item.golds))
        examples.append(Example(source, item.question, bool(item.golds), right, answer.signals))
    return examples, declined


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0) -> tuple[np.ndarray, float]:
    """Weights and bias on the raw features (fitted standardised, L2 on the weights)."""
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    penalty = np.diag([l2] * (z.shape[1] - 1) + [0.0])
    for _ in range(50):
        p = 1 / (1 + np.exp(-np.clip(z @ w, -30, 30)))
        gradient = z.T @ (p - y) + penalty @ w
        hessian = (z * (p * (1 - p))[:, None]).T @ z + penalty
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    weights = w[:-1] / scale
    return weights, float(w[-1] - weights @ mean)


def predict(x: np.ndarray, weights: np.ndarray, bias: float) -> np.ndarray:
    return 1 / (1 + np.exp(-np.clip(x @ weights + bias, -30, 30)))


def cross_validated(x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    order = np.random.default_rng(seed).permutation(len(y))
    out = np.zeros(len(y))
    for k in range(folds):
        test = order[k::folds]
        train = np.setdiff1d(order, test)
        weights, bias = fit_logistic(x[train], y[train])
        out[test] = predict(x[test], weights, bias)
    return out


def auc(p: np.ndarray, y: np.ndarray) -> float:
    pos, neg = p[y == 1], p[y == 0]
    if not len(pos) or not len(neg):
        return float("nan")
    return float((pos[:, None] > neg[None, :]).mean() + (pos[:, None] == neg[None, :]).mean() / 2)


def system_score(
    p: np.ndarray, examples: Sequence[Example], threshold: float, answerable: int, declined: int
) -> tuple[float, float]:
    """("answerable: right", "unanswerable: refused") if answers below ``threshold`` are refused.

    ``answerable`` counts every answerable question asked; ``declined`` the unanswerable
    ones the model itself declined (right without a check).
    """
    kept = p >= threshold
    right = sum(k and e.right for k, e in zip(kept, examples, strict=True))
    unanswerable = [(k, e) for k, e in zip(kept, examples, strict=True) if not e.answerable]
    refused = declined + sum(not k for k, _ in unanswerable)
    return right / max(1, answerable), refused / max(1, declined + len(unanswerable))


def squad_questions(size: int, seed: int) -> list[Labelled]:
    from eval.squad2 import load_corpus, sample

    chosen = sample(load_corpus().questions, "calibration", size, seed)
    return [Labelled(q.question, q.answers) for q in chosen]


def own_questions() -> list[Labelled]:
    from eval.dataset import load_items

    return [
        Labelled(item.question, item.answers)
        for item in load_items()
        if item.type in OWN_ANSWERABLE | OWN_UNANSWERABLE and not item.history
    ]


def answer_all(config: Config, size: int, seed: int) -> tuple[list[Example], int, int]:
    """Run the labelled questions; save and return the examples and the two counts."""
    from eval.squad2 import load_corpus, write_documents
    from eval.squad2_run import suite_config
    from index.ingest import ingest

    suite = suite_config(config, distractors=False)
    write_documents(load_corpus().documents, suite.seeds_dir)
    ingest(suite.seeds_dir, suite)
    sets = [
        ("squad2-calibration", suite, squad_questions(size, seed)),
        ("own set", config, own_questions()),
    ]
    examples: list[Example] = []
    answerable = declined = 0
    for source, source_config, questions in sets:
        found, refused = collect(source_config, questions, source)
        examples += found
        declined += refused
        answerable += sum(bool(q.golds) for q in questions)
    EXAMPLES.parent.mkdir(parents=True, exist_ok=True)
    payload = {"answerable": answerable, "declined": declined, "size": size, "seed": seed}
    payload["examples"] = [asdict(e) for e in examples]
    EXAMPLES.write_text(json.dumps(payload, indent=1))
    return examples, answerable, declined


def saved_examples() -> tuple[list[Example], int, int]:
    """The examples of the last run (``--refit`` fits again without answering again)."""
    payload = json.loads(EXAMPLES.read_text())
    examples = [Example(**e) for e in payload["examples"]]
    return examples, payload["answerable"], payload["declined"]


def calibrate(
    config: Config, out: Path, size: int, seed: int, refit: bool = False
) -> AnswerabilityModel:
    started = time.perf_counter()
    examples, answerable, declined = saved_examples() if refit else answer_all(config, size, seed)
    x = np.array([[e.features[f] for f in FEATURES] for e in examples])
    y = np.array([float(e.right) for e in examples])
    held_out = cross_validated(x, y)
    # The threshold maximises "answerable: right" + "unanswerable: refused", among those
    # that keep at least MIN_KEPT of the answers that were right without the check: the
    # symmetric SQuAD objective alone would refuse most answers, since the signals only
    # separate so well.
    unchecked, _ = system_score(held_out, examples, 0.0, answerable, declined)
    grid = [
        t
        for t in np.linspace(0.05, 0.95, 91)
        if system_score(held_out, examples, t, answerable, declined)[0] >= MIN_KEPT * unchecked
    ]
    threshold = float(
        max(grid, key=lambda t: sum(system_score(held_out, examples, t, answerable, declined)))
    )
    right, refused = system_score(held_out, examples, threshold, answerable, declined)
    weights, bias = fit_logistic(x, y)
    summary = (
        f"fitted by `qa calibrate --sample {size} --seed {seed}` on {len(examples)} checked "
        f"answers (SQuAD 2.0 calibration split and own set); 5-fold cross-validated AUC "
        f"{auc(held_out, y):.3f}; at threshold {threshold:.2f}: answerable right {right:.2f}, "
        f"unanswerable refused {refused:.2f}"
    )
    model = AnswerabilityModel(tuple(float(w) for w in weights), bias, threshold, summary)
    model.save(out)
    for name, weight in zip(FEATURES, weights, strict=True):
        print(f"  {name:16s} {weight:+.3f}")
    print(f"{summary}; {time.perf_counter() - started:.0f} s; wrote {out}")
    return model


def run_cli(args: argparse.Namespace, config: Config) -> int:
    calibrate(config, Path(args.out), args.sample, args.seed, refit=args.refit)
    return 0
