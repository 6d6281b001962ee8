"""``qa calibrate``: choose and fit the judge's model from a signals file, in seconds.

The signals file (:mod:`eval.signals`, ``qa calibrate --collect``) holds every candidate
signal of every answered SQuAD 2.0 calibration-split question. From it, with
scikit-learn:

- **the signal table**: each signal's AUROC alone for "the answer is right" with a 95 %
  bootstrap interval (the interval says whether two signals can be told apart at all),
  and its cross-validated AUROC as a one-signal logistic model;
- **the choice**: signals join a logistic regression greedily, best first, while one
  raises the cross-validated AUROC by at least :data:`MIN_GAIN` (:data:`MIN_GAIN_COSTLY`
  for a signal that costs a model request); folds are whole articles
  (``LeaveOneGroupOut``), so a signal must generalise to an article it was not fitted on;
- **the honest figure**: the whole procedure (choice, fit, threshold) is repeated inside
  each outer fold and scored on the held-out article (nested cross-validation): that
  AUROC, not the one the choice was made on, is what the model file reports;
- **the operating points**: for each caution level a threshold on P(right), chosen on the
  cross-validated probabilities as the highest that still keeps the level's share of
  the right answers (:data:`CAUTION_KEEP`): a right answer refused is the harm a user
  feels most, so each level says how many of them it may cost, and the report says how
  many wrong answers it then stops on articles the fit never saw;
- **three models**: one over every signal; one without the signals that need the
  model's log-probabilities, for a server that gives none (never a model with a
  feature silently zeroed); and one without the checks that cost a model request, whose
  sure answers skip that check (:func:`shortcut_cuts`);
- **whether the check pays**, per caution level: where the full model, on unseen
  articles, neither lets through measurably fewer wrong answers than the free one at the
  same share of right ones kept nor ranks the answers measurably better, the check's
  seconds buy nothing and the free model decides every answer at that level
  (:func:`check_pays`);
- **whether the second look pays**: a refusal over the whole document is looked at
  again only if, on the whole-prompt rows, the looks add measurably more right answers
  than wrong ones to what the judge shows at the default caution
  (:func:`second_look_cut`);
- **the certainty bands** of each model: the lowest P(right) above which, on articles
  the fit never saw, at least :data:`~qa.types.CERTAINTY_RIGHT` of the answers were right
  (:func:`certainty_cuts`); a band no cut reaches is not offered.

The judge is the model's that answered the signals file (recorded beside it,
:func:`eval.signals.model_of`) and is written where :mod:`qa.judge_files` finds it for
that model. Everything is deterministic: ``qa calibrate --from-signals FILE`` reproduces
the shipped judge exactly, and the file names its data (path, SHA-256, rows) and its
cross-validated figures.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.special import expit
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import LeaveOneGroupOut

from eval.signals import (
    SIGNALS_DIR,
    WHOLE_PROMPT_SIGNALS,
    SignalRow,
    answered_by,
    model_of,
    read_rows,
    signals_file,
)
from qa.answerability import (
    CAUTION_LEVELS,
    COSTLY,
    LOGPROB_SIGNALS,
    SIGNALS,
    AnswerabilityModel,
    JudgeModels,
    log_odds,
)
from qa.config import DEFAULT_CAUTION, Config
from qa.judge_files import judge_path
from qa.types import CERTAINTY_RIGHT

MIN_GAIN = 0.01  # cross-validated AUROC a free signal must add to join the model
MIN_GAIN_COSTLY = 0.02  # ... and one that costs a model request (~0.6-3 s)
# Where the free model is this sure, the full model must answer too (see shortcut_cuts).
SHORTCUT_AGREES = 0.98
# The costly check pays at a caution level only if, on unseen articles, the full model lets
# through at least this much less of the wrong answers than the free one (its bootstrap
# interval wholly below zero) while keeping as many right ones, within RIGHT_TOLERANCE.
MIN_WRONG_REFUSED = 0.03
RIGHT_TOLERANCE = 0.02
# Share of the right answers each caution level keeps (a product choice: the rest of the
# threshold's work is refusing wrong answers, measured per level on unseen articles).
CAUTION_KEEP = {"low": 0.98, "balanced": 0.95, "high": 0.85}
# A certainty band is offered only where at least this many calibration answers are in it.
MIN_BAND = 30
BOOTSTRAP = 1000
SEED = 2026
C = 1.0  # the logistic regression's inverse L2 strength (on standardised signals)


@dataclass(frozen=True)
class Table:
    """The fit's data: the judged answers' signals, labels and articles."""

    names: tuple[str, ...]
    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray


def judged_table(rows: Sequence[SignalRow], names: Sequence[str]) -> Table:
    """The answers the judge's model decides on (``path == "checked"``), as arrays."""
    checked = [r for r in rows if r.path == "checked"]
    present = tuple(n for n in names if checked and all(n in r.signals for r in checked))
    x = np.array([[r.signals[n] for n in present] for r in checked], dtype=float)
    y = np.array([r.right for r in checked], dtype=int)
    groups = np.array([r.article for r in checked])
    return Table(present, x.reshape(len(checked), len(present)), y, groups)


def _logistic() -> LogisticRegression:
    # Newton-Cholesky: the exact L2 fit, and the fastest for a few signals (~2 ms).
    return LogisticRegression(C=C, solver="newton-cholesky", max_iter=100)


def fit_raw(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Logistic weights and bias on the raw signals (fitted on standardised ones).

    With no signal at all, the bias alone: the log-odds of the share of right answers.
    """
    if x.shape[1] == 0:
        return np.zeros(0), log_odds(float(y.mean()))
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = _logistic().fit((x - mean) / scale, y)
    weights = model.coef_[0] / scale
    return weights, float(model.intercept_[0] - weights @ mean)


def predict(x: np.ndarray, weights: np.ndarray, bias: float) -> np.ndarray:
    """P(right) of each row of ``x`` under a fitted logistic model."""
    return expit(x @ weights + bias)


def out_of_fold(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """P(right) of each answer from a model fitted without its article."""
    out = np.zeros(len(y))
    for train, test in LeaveOneGroupOut().split(x, y, groups):
        if len(set(y[train])) < 2:
            out[test] = y[train].mean()
            continue
        weights, bias = fit_raw(x[train], y[train])
        out[test] = predict(x[test], weights, bias)
    return out


def auroc(scores: np.ndarray, y: np.ndarray) -> float:
    """AUROC of ``scores`` for labels ``y`` (``roc_auc_score``'s value, ties counted half).

    Computed from ranks (the Mann-Whitney statistic) so that thousands of calls in the
    greedy choice and the bootstrap take milliseconds; works along the last axis.
    """
    y = np.asarray(y, dtype=bool)
    positives, negatives = y.sum(axis=-1), (~y).sum(axis=-1)
    ranks = rankdata(scores, axis=-1)
    rank_sum = np.where(y, ranks, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
    return float(value) if np.ndim(value) == 0 else value


def bootstrap_interval(scores: np.ndarray, y: np.ndarray, seed: int = SEED) -> tuple[float, float]:
    """The 95 % percentile bootstrap interval of the AUROC of ``scores``."""
    pick = np.random.default_rng(seed).integers(0, len(y), (BOOTSTRAP, len(y)))
    values = auroc(scores[pick], y[pick])
    low, high = np.nanpercentile(values, [2.5, 97.5])
    return float(low), float(high)


def signal_table(table: Table) -> list[dict]:
    """Each signal alone: raw AUROC (oriented) with its interval, and grouped-CV AUROC."""
    lines = []
    for i, name in enumerate(table.names):
        column = table.x[:, i]
        raw = auroc(column, table.y)
        sign = 1.0 if raw >= 0.5 else -1.0
        low, high = bootstrap_interval(sign * column, table.y)
        cv = auroc(out_of_fold(table.x[:, [i]], table.y, table.groups), table.y)
        lines.append(
            {
                "signal": name,
                "auroc": round(max(raw, 1 - raw), 3),
                "interval": [round(low, 3), round(high, 3)],
                "direction": "higher is right" if sign > 0 else "lower is right",
                "cv_auroc": round(cv, 3),
                "costly": name in COSTLY,
            }
        )
    return sorted(lines, key=lambda line: -line["cv_auroc"])


def choose(x: np.ndarray, y: np.ndarray, groups: np.ndarray, names: Sequence[str]) -> list[int]:
    """Greedy forward choice on cross-validated AUROC; a signal must pay to join."""
    chosen: list[int] = []
    score = 0.5
    while len(chosen) < len(names):
        trials = {
            i: auroc(out_of_fold(x[:, [*chosen, i]], y, groups), y)
            for i in range(len(names))
            if i not in chosen
        }
        paying = {
            i: a
            for i, a in trials.items()
            if a - score >= (MIN_GAIN_COSTLY if names[i] in COSTLY else MIN_GAIN)
        }
        if not paying:
            break
        best = max(paying, key=paying.__getitem__)
        chosen.append(best)
        score = paying[best]
    return chosen


def best_threshold(p: np.ndarray, y: np.ndarray, keep: float) -> float:
    """The highest cut on P(right) (to 0.01) that keeps ``keep`` of the right answers."""
    right = np.sort(p[y == 1])
    if not len(right):
        return 0.0
    cut = right[int(np.floor((1 - keep) * len(right)))]  # at or below it: the refused share
    return float(np.floor(cut * 100) / 100)


@dataclass(frozen=True)
class Fitted:
    """One model, and its honest (nested, by article) figures."""

    model: AnswerabilityModel
    cv_auroc: float  # of the chosen signals, on the folds they were chosen on
    nested_auroc: float  # of the whole procedure, on articles it never saw
    nested_kept: dict[str, dict[str, float]]  # per caution: right/wrong answers kept
    held_out: np.ndarray  # each judged answer's P(right) from a fit without its article
    nested_answers: dict[str, np.ndarray]  # per caution: answered, by a fit without its article
    nested_p: np.ndarray  # each answer's P(right) from the whole procedure without its article


def kept_shares(answers: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(right kept, wrong kept) along the last axis: the answered share of each label."""
    right, wrong = y == 1, y == 0
    return np.stack(
        [
            (answers & right).sum(axis=-1) / np.maximum(1, right.sum(axis=-1)),
            (answers & wrong).sum(axis=-1) / np.maximum(1, wrong.sum(axis=-1)),
        ],
        axis=-1,
    )


def fit_model(table: Table, allowed: Sequence[str], label: str, provenance: str) -> Fitted:
    """Choose, fit and threshold a model over the ``allowed`` signals of ``table``."""
    columns = [i for i, n in enumerate(table.names) if n in allowed]
    names = [table.names[i] for i in columns]
    x, y, groups = table.x[:, columns], table.y, table.groups
    # The whole procedure, inside each outer fold: what it does on an unseen article.
    nested = np.zeros(len(y))
    nested_cut = {level: np.zeros(len(y), dtype=bool) for level in CAUTION_LEVELS}
    for train, test in LeaveOneGroupOut().split(x, y, groups):
        picked = choose(x[train], y[train], groups[train], names)
        inner = out_of_fold(x[train][:, picked], y[train], groups[train])
        weights, bias = fit_raw(x[train][:, picked], y[train])
        nested[test] = predict(x[test][:, picked], weights, bias)
        for level in CAUTION_LEVELS:
            cut = best_threshold(inner, y[train], CAUTION_KEEP[level]) if picked else 0.0
            nested_cut[level][test] = nested[test] >= cut
    picked = choose(x, y, groups, names)  # none may pay: then no signal, no refusal
    held_out = out_of_fold(x[:, picked], y, groups)
    weights, bias = fit_raw(x[:, picked], y)
    thresholds = {
        level: best_threshold(held_out, y, CAUTION_KEEP[level]) if picked else 0.0
        for level in CAUTION_LEVELS
    }
    kept = {}
    for level in CAUTION_LEVELS:
        right_kept, wrong_kept = kept_shares(nested_cut[level], y).round(3).tolist()
        kept[level] = {"right_kept": right_kept, "wrong_kept": wrong_kept}
    model = AnswerabilityModel(
        tuple(names[i] for i in picked),
        tuple(round(float(w), 6) for w in weights),
        round(bias, 6),
        thresholds,
        f"{label}: {provenance}",
    )
    return Fitted(
        model,
        round(auroc(held_out, y), 3),
        round(auroc(nested, y), 3),
        kept,
        held_out,
        nested_cut,
        nested,
    )


def check_pays(full: Fitted, free: Fitted, y: np.ndarray) -> tuple[dict[str, bool], str]:
    """Per caution level, whether the full model's costly check earns its seconds.

    Both models are compared on the same answers, as they did on articles they never saw
    (paired bootstrap). The check pays where either holds:

    - its decisions: the full model lets through at least :data:`MIN_WRONG_REFUSED` less
      of the wrong answers at the level (the interval of that difference wholly below
      zero) and keeps the right ones within :data:`RIGHT_TOLERANCE`;
    - its ranking: the full model's nested AUROC is higher by at least
      :data:`MIN_GAIN_COSTLY`, the interval wholly above zero. A better ranking is what
      carries a threshold fitted on these articles to documents of another kind, where
      equal decisions here can still differ (docs/calibration.md).
    """
    if not full.model.costly:
        return {level: False for level in CAUTION_LEVELS}, "no costly check"
    pays, lines = {}, []
    pick = np.random.default_rng(SEED).integers(0, len(y), (BOOTSTRAP, len(y)))
    ranking = auroc(full.nested_p[pick], y[pick]) - auroc(free.nested_p[pick], y[pick])
    rank_low, rank_high = np.nanpercentile(ranking, [2.5, 97.5])
    rank_gain = full.nested_auroc - free.nested_auroc
    ranks_better = bool(rank_gain >= MIN_GAIN_COSTLY and rank_low > 0)
    lines.append(
        f"ranking: nested AUROC {full.nested_auroc:.3f} with it, {free.nested_auroc:.3f} "
        f"without, difference 95% [{rank_low:+.3f}, {rank_high:+.3f}]"
        + (" (pays at every level)" if ranks_better else "")
    )
    for level in CAUTION_LEVELS:
        with_check, without = full.nested_answers[level], free.nested_answers[level]
        (right_with, wrong_with), (right_without, wrong_without) = (
            kept_shares(with_check, y),
            kept_shares(without, y),
        )
        gaps = kept_shares(with_check[pick], y[pick]) - kept_shares(without[pick], y[pick])
        low, high = np.nanpercentile(gaps[:, 1], [2.5, 97.5])
        decides_better = bool(
            wrong_without - wrong_with >= MIN_WRONG_REFUSED
            and high < 0
            and right_with >= right_without - RIGHT_TOLERANCE
        )
        pays[level] = ranks_better or decides_better
        lines.append(
            f"{level}: {'pays' if pays[level] else 'does not pay'} (wrong answers kept "
            f"{wrong_with:.3f} with it, {wrong_without:.3f} without, difference 95% "
            f"[{low:+.3f}, {high:+.3f}]; right kept {right_with:.3f} / {right_without:.3f})"
        )
    return pays, "; ".join(lines)


def shortcut_cuts(
    full: Fitted, free: Fitted, pays: dict[str, bool]
) -> tuple[dict[str, float], str]:
    """Per caution level, the free model's P(right) above which the costly check is skipped.

    The full model reads a check that costs a model request (seconds); the free model
    reads only what comes with the draft. Where the free model is sure enough, the full
    model would answer anyway: the cut is the lowest at which, on cross-validated
    predictions, the full model answers at least :data:`SHORTCUT_AGREES` of the answers
    above it. No cut (1.01) where none qualifies or the full model has no costly check;
    0.0 (every check skipped: the free model decides) where the check does not pay.
    """
    cuts, lines = {}, []
    for level in CAUTION_LEVELS:
        cuts[level] = 1.01
        if not full.model.costly:
            continue
        if not pays[level]:
            cuts[level] = 0.0
            lines.append(f"{level}: never read (it does not pay)")
            continue
        answers = full.held_out >= full.model.thresholds[level]
        for cut in np.unique(np.round(free.held_out, 2))[::-1]:
            above = free.held_out >= cut
            if not above.any():
                continue
            if answers[above].mean() < SHORTCUT_AGREES:
                break
            cuts[level] = float(cut)
        skipped = float((free.held_out >= cuts[level]).mean())
        lines.append(f"{level}: above {cuts[level]:.2f}, {skipped:.0%} of checks skipped")
    return cuts, "; ".join(lines) or "no costly check: nothing to skip"


def second_look_cut(
    rows: Sequence[SignalRow], judge: AnswerabilityModel, caution: str
) -> tuple[float, str]:
    """Whether a refusal over the whole document pays for a second look: the
    ``second_look_below`` cut (1.01: always look, 0.0: never) and a line on why.

    Each row that took a look (``timings["second_look"]``) is scored by what the judge
    (``judge`` at ``caution``) then shows: +1 a right answer, -1 a wrong one (an answer to
    an unanswerable question, or a wrong answer where the refusal would have stood), 0 a
    refusal. The look is kept only if the mean score's 95 % bootstrap interval lies wholly
    above zero: it must add measurably more right answers than wrong ones to pay for its
    seconds. Without any look in the rows the data cannot say, and it stays on.
    """
    looks = [r for r in rows if r.timings.get("second_look")]
    if not looks:
        return 1.01, f"{len(rows)} rows, no second look among them: always look"
    scores = np.array([_shown_score(r, judge, caution) for r in looks], dtype=float)
    low, high = mean_interval(scores)
    seconds = float(np.median([r.timings["second_look"] for r in looks]))
    right, wrong = int((scores > 0).sum()), int((scores < 0).sum())
    pays = low > 0
    return (1.01 if pays else 0.0), (
        f"{len(looks)} second looks of {len(rows)} whole-prompt answers (p50 {seconds:.1f} s): "
        f"at {caution}, {right} gave a right answer shown, {wrong} a wrong one, "
        f"{len(looks) - right - wrong} a refusal; mean per look {scores.mean():+.3f}, "
        f"95 % [{low:+.3f}, {high:+.3f}]: " + ("always look" if pays else "never look")
    )


def _shown_score(row: SignalRow, judge: AnswerabilityModel, caution: str) -> int:
    """+1 a right answer the judge shows, -1 a wrong one, 0 a refusal (the model's or the
    judge's). Kinds the judge does not check are shown as they are."""
    if row.path == "declined" or not row.answer:
        return 0
    if row.path == "checked":
        features = {name: row.signals[name] for name in judge.features}  # never read as 0
        if judge.probability(features) < judge.threshold(caution):
            return 0
    return 1 if row.right else -1


def second_look_from(
    rows: Sequence[SignalRow],
    whole_prompt: Path | None,
    judge: AnswerabilityModel,
    caution: str,
) -> tuple[float, str]:
    """:func:`second_look_cut` of the rows in ``whole_prompt`` (answered over corpora read
    whole, where a second look is taken: ``--collect --whole-prompt``) where that file has
    any; else (or with None: no such rows of this model) of ``rows``."""
    whole = read_rows(whole_prompt) if whole_prompt is not None else []
    if not whole:
        return second_look_cut(rows, judge, caution)
    cut, line = second_look_cut(whole, judge, caution)
    return cut, f"{line} ({whole_prompt.name})"


def certainty_cuts(p: np.ndarray, y: np.ndarray) -> tuple[dict[str, float], dict]:
    """Each band's cut on P(right) and what it held on articles the fit never saw.

    ``p`` is each judged answer's P(right) from the whole procedure fitted without its
    article (nested), ``y`` whether it was right. A band's cut is the lowest (to 0.01)
    above which at least :data:`~qa.types.CERTAINTY_RIGHT` of the answers were right,
    with at least :data:`MIN_BAND` answers above it; a band no cut reaches is left out.
    """
    cuts: dict[str, float] = {}
    report: dict[str, dict] = {}
    for band, share in CERTAINTY_RIGHT.items():
        report[band.value] = {"reached": False, "wanted_right": share}
        for cut in np.round(np.arange(0.0, 1.0, 0.01), 2):
            above = p >= cut
            if above.sum() < MIN_BAND:
                break
            if y[above].mean() >= share:
                cuts[band.value] = float(cut)
                report[band.value] = {
                    "cut": float(cut),
                    "right": round(float(y[above].mean()), 3),
                    "interval": [round(v, 3) for v in mean_interval(y[above])],
                    "answers": int(above.sum()),
                    "of_judged": round(float(above.mean()), 3),
                }
                break
    return cuts, report


def caution_table(rows: Sequence[SignalRow], fitted: Fitted) -> dict[str, dict]:
    """Per caution level, in a user's terms, as on articles the fit never saw.

    Each question is shown what the whole procedure fitted without its article decided
    (``fitted.nested_answers``; the model's own refusals stay refusals, kinds the judge
    does not rate are shown as they are). Per level: of the answers shown, the share
    right; of the answerable questions, the share that got a right answer; of the
    unanswerable ones, the share refused — each with a 95 % bootstrap interval over
    questions. (The shortcut past the costly check is not modelled: it answers only where
    the full model would, by its fit.)
    """
    checked = iter(range(sum(r.path == "checked" for r in rows)))
    where = [next(checked) if r.path == "checked" else -1 for r in rows]
    right = np.array([r.right for r in rows])
    answerable = np.array([r.answerable for r in rows])
    other = np.array([r.path == "other" and bool(r.answer) for r in rows])
    pick = np.random.default_rng(SEED).integers(0, len(rows), (BOOTSTRAP, len(rows)))
    table = {}
    for level in CAUTION_LEVELS:
        decided = fitted.nested_answers[level]
        shown = other | np.array([i >= 0 and bool(decided[i]) for i in where])
        figures = {
            "shown_right": (shown & right, shown),
            "answerable_right": (shown & right & answerable, answerable),
            "unanswerable_refused": (~shown & ~answerable, ~answerable),
        }
        table[level] = {}
        for name, (hits, base) in figures.items():
            boot = hits[pick].sum(axis=1) / np.maximum(1, base[pick].sum(axis=1))
            low, high = np.percentile(boot, [2.5, 97.5])
            table[level][name] = [
                round(float(hits.sum() / max(1, base.sum())), 3),
                round(float(low), 3),
                round(float(high), 3),
            ]
    return table


def mean_interval(values: np.ndarray) -> tuple[float, float]:
    """The 95 % percentile bootstrap interval of the mean of ``values`` (a share, for 0/1)."""
    pick = np.random.default_rng(SEED).integers(0, len(values), (BOOTSTRAP, len(values)))
    low, high = np.percentile(values[pick].mean(axis=1), [2.5, 97.5])
    return float(low), float(high)


def calibrate(signals: Path, out: Path, whole_prompt: Path = WHOLE_PROMPT_SIGNALS) -> JudgeModels:
    """Fit the models from ``signals`` (the second-look cut from ``whole_prompt``'s rows
    where that file has any) and write them to ``out``; print the signal table."""
    started = time.perf_counter()
    rows = read_rows(signals)
    if not rows:
        raise SystemExit(f"{signals} holds no rows: run `qa calibrate --collect` first")
    model = answered_by(signals)
    whole = model_of(whole_prompt)  # another model's looks say nothing about this one
    looked = whole_prompt if whole is not None and whole.matches(model) else None
    table = judged_table(rows, SIGNALS)
    digest = hashlib.sha256(signals.read_bytes()).hexdigest()[:16]
    articles = sorted(set(table.groups.tolist()))
    shipped = signals.resolve().parent == SIGNALS_DIR.resolve()
    named = f"eval/signals/{signals.name}" if shipped else signals.name  # same in any checkout
    data = (
        f"`qa calibrate --from-signals {named}` (sha256 {digest}…): {len(rows)} "
        f"SQuAD 2.0 calibration-split questions ({sum(r.answerable for r in rows)} "
        f"answerable), {len(table.y)} judged answers ({int(table.y.sum())} right) over "
        f"{len(articles)} articles ({', '.join(articles)}); folds by article"
    )
    lines = signal_table(table)
    full = fit_model(table, table.names, "all signals", data)
    text_only = fit_model(
        table, [n for n in table.names if n not in LOGPROB_SIGNALS], "no log-probabilities", data
    )
    free = fit_model(table, [n for n in table.names if n not in COSTLY], "no model request", data)
    pays, check = check_pays(full, free, table.y)
    shortcut_above, shortcut = shortcut_cuts(full, free, pays)
    cut, looks = second_look_from(rows, looked, full.model, DEFAULT_CAUTION)
    bands = {
        name: certainty_cuts(fitted.nested_p, table.y)
        for name, fitted in (("full", full), ("text_only", text_only), ("free", free))
    }
    models = JudgeModels(
        full=replace(full.model.with_second_look(cut), certainty=bands["full"][0]),
        text_only=replace(text_only.model.with_second_look(cut), certainty=bands["text_only"][0]),
        free=replace(free.model.with_second_look(cut), certainty=bands["free"][0]),
        shortcut_above=shortcut_above,
        model=model,
        report={
            "data": data,
            "certainty": {name: report for name, (_, report) in bands.items()},
            "caution_table": caution_table(rows, full),
            "signal_table": lines,
            "second_look": looks,
            "shortcut": shortcut,
            "check_pays": check,
            "caution_keeps": CAUTION_KEEP,
            **{
                name: {
                    "cv_auroc": fitted.cv_auroc,
                    "nested_auroc": fitted.nested_auroc,
                    "nested_by_caution": fitted.nested_kept,
                }
                for name, fitted in (("full", full), ("text_only", text_only), ("free", free))
            },
        },
    )
    models.save(out)
    print(f"{'signal':20s} AUROC  95% interval   CV AUROC  {'(costly)':8s}")
    for line in lines:
        low, high = line["interval"]
        costly = "costly" if line["costly"] else ""
        print(
            f"  {line['signal']:18s} {line['auroc']:.3f}  [{low:.3f}, {high:.3f}]  "
            f"{line['cv_auroc']:.3f}     {costly}"
        )
    for name, fitted in (("full", full), ("text_only", text_only), ("free", free)):
        model = fitted.model
        weights = ", ".join(
            f"{n} {w:+.3f}" for n, w in zip(model.features, model.weights, strict=True)
        )
        print(
            f"{name}: {weights}; CV AUROC {fitted.cv_auroc:.3f}, nested {fitted.nested_auroc:.3f}; "
            f"thresholds {model.thresholds}; on unseen articles {fitted.nested_kept}"
        )
    print(f"certainty bands (cut, right on unseen articles): {bands['full'][1]}")
    print(f"caution levels ([share, 95 % interval]): {models.report['caution_table']}")
    print(f"shortcut: {shortcut}")
    print(f"costly check: {check}")
    print(f"{looks}; {time.perf_counter() - started:.1f} s; wrote {out}")
    return models


def run_cli(args: argparse.Namespace, config: Config) -> int:
    from eval.signals import collect, collect_whole_prompt

    signals = Path(args.from_signals) if args.from_signals else signals_file(config)
    minutes = args.minutes if args.minutes else None
    if args.collect and args.whole_prompt:
        collect_whole_prompt(
            config, WHOLE_PROMPT_SIGNALS, args.limit, args.seed, args.workers, minutes
        )
    elif args.collect:
        collect(config, signals, args.limit, args.seed, args.workers, minutes)
    calibrate(signals, Path(args.out) if args.out else judge_path(config, answered_by(signals)))
    return 0
