"""``qa calibrate``: choose and fit the judge's model from labelled questions on disk.

Labelled data: a seeded sample of the SQuAD 2.0 *calibration* split (the three
calibration articles and the two more articles shipped for calibration only; half of it
unanswerable by design) and the answerable / unanswerable items of our own set. Never
the test split.

Each question is answered by the real pipeline with no fitted model; for every answer of
a checked kind (a fact, a why/how) every candidate signal is computed exactly as at run
time (by the same :class:`qa.judge.Judge`, which with no fitted model reports its signals
as ``Answer.signals`` and lets the answer through), and the label is whether the answer
is right (a gold answer contained; for an unanswerable question, never). Then:

- each signal's 5-fold cross-validated AUROC for "the answer is right" is measured alone;
- signals join the model greedily, best first, while one raises the cross-validated
  AUROC by at least :data:`MIN_GAIN` (a signal that costs a model request must earn
  :data:`MIN_GAIN_COSTLY`): nothing rides along that does not pay;
- a logistic regression (L2, Newton's method) over the chosen signals gives P(right);
  the refusal threshold maximises "answerable: right" + "unanswerable: refused" on the
  cross-validated probabilities, keeping at least :data:`MIN_KEPT` of the right answers;
- the second-look cut: among refusals over the whole document that got a second look,
  the P(refusal phrase) below which a look is taken, keeping :data:`MIN_RESCUED` of the
  looks that turned a refusal into a right answer with as few looks as possible.

The result (signals, weights, thresholds, how it was fitted, the signal table) goes to
``qa/answerability.json``, committed; the table is printed.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from qa.answerability import COSTLY, SIGNALS, AnswerabilityModel
from qa.config import Config

EXAMPLES = Path("reports") / "calibration-examples.json"  # every feature row, for inspection
MIN_KEPT = 0.95  # see the README: keep 95 % of the right answers
MIN_GAIN = 0.005  # cross-validated AUROC a free signal must add to join the model
MIN_GAIN_COSTLY = 0.02  # ... and one that costs a model request (~0.6 s)
MIN_RESCUED = 0.8  # share of the rescuing second looks the cut must keep
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
    seconds: float = 0.0


@dataclass(frozen=True)
class Labelled:
    question: str
    golds: tuple[str, ...]  # empty: unanswerable


def collect(
    config: Config, questions: Sequence[Labelled], source: str, looks: list[Example]
) -> tuple[list[Example], int]:
    """Answer each question with no fitted model; the signals of every checked answer.

    Returns the examples and how many unanswerable questions the model itself declined
    (those need no check, but count for the system-level threshold); appends to
    ``looks`` every refusal that was (or would have been) followed by a second look.
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
        seconds = answer.timings.get("total", 0.0)
        claim = strip_markers(answer.text)
        right = not answer.abstained and bool(best(contains, claim, item.golds))
        if answer.abstained:
            declined += not item.golds
            if "refusal_probability" in answer.signals:  # for the second-look cut
                looks.append(Example(source, item.question, bool(item.golds), False,
                                     answer.signals, seconds))  # fmt: skip
            continue
        if "looked_again_after" in answer.signals:
            looks.append(
                Example(source, item.question, bool(item.golds), right, answer.signals, seconds)
            )
        if "self_check" not in answer.signals:  # a kind the judge's model does not judge
            continue
        examples.append(
            Example(source, item.question, bool(item.golds), right, answer.signals, seconds)
        )
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
    """AUROC of scores ``p`` for labels ``y`` (:func:`eval.metrics.confidence_auroc`)."""
    from eval.metrics import confidence_auroc

    value = confidence_auroc([float(v) for v in p], [bool(v) for v in y])
    return float("nan") if value is None else value


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

    chosen = sample(load_corpus(more=True).questions, "calibration", size, seed)
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
    from index.ingest import ingest

    # Its own store: the suite's six articles plus the two calibration-only ones.
    base = Path(".qa-squad2-calibration")
    suite = config.replace(seeds_dir=base / "docs", store_dir=base / "store")
    write_documents(load_corpus(more=True).documents, suite.seeds_dir)
    ingest(suite.seeds_dir, suite)
    sets = [
        ("squad2-calibration", suite, squad_questions(size, seed)),
        ("own set", config, own_questions()),
    ]
    examples: list[Example] = []
    looks: list[Example] = []
    answerable = declined = 0
    for source, source_config, questions in sets:
        found, refused = collect(source_config, questions, source, looks)
        examples += found
        declined += refused
        answerable += sum(bool(q.golds) for q in questions)
    EXAMPLES.parent.mkdir(parents=True, exist_ok=True)
    payload = {"answerable": answerable, "declined": declined, "size": size, "seed": seed}
    payload["examples"] = [asdict(e) for e in examples]
    payload["looks"] = [asdict(e) for e in looks]
    EXAMPLES.write_text(json.dumps(payload, indent=1))
    return Collected(examples, looks, answerable, declined)


@dataclass(frozen=True)
class Collected:
    """What one calibration run answered: checked answers, second looks, and counts."""

    examples: list[Example]
    looks: list[Example]  # refusals over the whole document (a second look was taken)
    answerable: int  # answerable questions asked
    declined: int  # unanswerable questions the model itself declined


def saved_examples() -> Collected:
    """The examples of the last run (``--refit`` fits again without answering again)."""
    payload = json.loads(EXAMPLES.read_text())
    return Collected(
        [Example(**e) for e in payload["examples"]],
        [Example(**e) for e in payload.get("looks", [])],
        payload["answerable"],
        payload["declined"],
    )


def signal_table(x: np.ndarray, y: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Each signal's 5-fold cross-validated AUROC alone for "the answer is right"."""
    return {name: auc(cross_validated(x[:, [i]], y), y) for i, name in enumerate(names)}


def choose_signals(x: np.ndarray, y: np.ndarray, names: Sequence[str]) -> list[str]:
    """Greedy forward selection on cross-validated AUROC; a signal must pay to join."""
    chosen: list[int] = []
    score = 0.5
    while len(chosen) < len(names):
        trials = {
            i: auc(cross_validated(x[:, [*chosen, i]], y), y)
            for i in range(len(names))
            if i not in chosen
        }
        best_i = max(trials, key=trials.__getitem__)
        gain = trials[best_i] - score
        if gain < (MIN_GAIN_COSTLY if names[best_i] in COSTLY else MIN_GAIN):
            cheaper = {i: a for i, a in trials.items() if names[i] not in COSTLY}
            if not cheaper or max(cheaper.values()) - score < MIN_GAIN:
                break
            best_i = max(cheaper, key=cheaper.__getitem__)
            gain = trials[best_i] - score
        chosen.append(best_i)
        score = trials[best_i]
    return [names[i] for i in chosen]


def second_look_cut(looks: Sequence[Example]) -> tuple[float, str]:
    """The P(refusal phrase) below which a second look is taken, and a line on why.

    A look "rescues" when it turned a refusal into a right answer. The cut keeps at
    least :data:`MIN_RESCUED` of the rescues with the fewest looks.
    """
    p = [
        e.features.get("looked_again_after", e.features.get("refusal_probability", 1.0))
        for e in looks
    ]
    rescued = [e.right for e in looks]
    total = sum(rescued)
    if not looks or not total:
        return 0.0, f"{len(looks)} second looks, none rescued a right answer: never look"
    cuts = [*sorted(set(p)), 1.01]
    for cut in cuts:
        kept = sum(r for q, r in zip(p, rescued, strict=True) if q < cut)
        if kept >= MIN_RESCUED * total:
            looked = sum(q < cut for q in p)
            return float(cut), (
                f"second look below P(refusal) {cut:.3f}: {looked} of {len(looks)} looks, "
                f"{kept} of {total} rescues kept"
            )
    return 1.01, "always look"


def calibrate(
    config: Config, out: Path, size: int, seed: int, refit: bool = False
) -> AnswerabilityModel:
    started = time.perf_counter()
    run = saved_examples() if refit else answer_all(config, size, seed)
    examples, answerable, declined = run.examples, run.answerable, run.declined
    names = [n for n in SIGNALS if all(n in e.features for e in examples)]
    x_all = np.array([[e.features[f] for f in names] for e in examples])
    y = np.array([float(e.right) for e in examples])
    alone = signal_table(x_all, y, names)
    chosen = choose_signals(x_all, y, names)
    x = x_all[:, [names.index(n) for n in chosen]]
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
    cut, looks_line = second_look_cut(run.looks)
    table = ", ".join(f"{n} {a:.3f}" for n, a in sorted(alone.items(), key=lambda kv: -kv[1]))
    summary = (
        f"fitted by `qa calibrate --sample {size} --seed {seed}` on {len(examples)} checked "
        f"answers (SQuAD 2.0 calibration split and own set); signals chosen: "
        f"{', '.join(chosen)}; 5-fold cross-validated AUROC {auc(held_out, y):.3f} "
        f"(each alone: {table}); at threshold {threshold:.2f}: answerable right "
        f"{right:.2f}, unanswerable refused {refused:.2f}; {looks_line}"
    )
    model = AnswerabilityModel(
        tuple(chosen), tuple(float(w) for w in weights), bias, threshold, summary, cut
    )
    model.save(out)
    print("signal             AUROC alone   weight")
    for name in names:
        weight = f"{weights[chosen.index(name)]:+.3f}" if name in chosen else "  –"
        print(f"  {name:18s} {alone[name]:.3f}        {weight}")
    print(f"{summary}; {time.perf_counter() - started:.0f} s; wrote {out}")
    return model


def run_cli(args: argparse.Namespace, config: Config) -> int:
    calibrate(config, Path(args.out), args.sample, args.seed, refit=args.refit)
    return 0
