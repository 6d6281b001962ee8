"""The evaluation's commands, registered with the ``qa`` CLI: ``eval``, ``calibrate``, ``bench``.

``qa`` finds :func:`register` through the ``qa.commands`` entry point (pyproject.toml),
so the answering side never imports the evaluation that measures it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from qa.cli import Handler
from qa.config import Config


def register(
    commands: Any, config_flags: Callable[[argparse.ArgumentParser], None]
) -> dict[str, Handler]:
    """Add the evaluation's sub-commands to ``commands``; return their handlers by name."""
    evaluate = commands.add_parser("eval", help="run the evaluation set and write a report")
    evaluate.add_argument("--baseline", action="store_true", help="also run the baseline")
    evaluate.add_argument("--report-dir", default="reports", help="where to write the report")
    evaluate.add_argument("--limit", type=int, help="only the first N questions")
    evaluate.add_argument("--check", action="store_true", help="fail below the thresholds")
    evaluate.add_argument(
        "--gated-only",
        action="store_true",
        help="own set: only the question types eval/thresholds.toml gates (CI's run)",
    )
    evaluate.add_argument(
        "--suite",
        choices=("seed", "squad2", "all"),
        default="seed",
        help="seed: our own question set (default); squad2: the SQuAD 2.0 articles; all: both",
    )
    evaluate.add_argument(
        "--split",
        choices=("calibration", "test", "both"),
        default="both",
        help="squad2 split(s) to run (default both)",
    )
    evaluate.add_argument(
        "--sample", type=int, default=100, help="squad2 questions per split, half unanswerable"
    )
    evaluate.add_argument("--all", action="store_true", help="squad2: every question")
    evaluate.add_argument("--seed", type=int, default=2026, help="sampling seed")
    evaluate.add_argument(
        "--distractors", action="store_true", help="squad2: add the 20 distractor articles"
    )
    evaluate.add_argument(
        "--baseline-sample",
        type=int,
        help="baseline questions per question type (own set; default all) or per split "
        "(squad2; default 15), a seeded subset of what ours answers",
    )
    config_flags(evaluate)

    calibrate = commands.add_parser(
        "calibrate",
        help="choose and fit the judge's model from the signals file (seconds); "
        "--collect answers more calibration questions first",
    )
    calibrate.add_argument(
        "--from-signals",
        help="the signals file to fit from and --collect into (default: the model's own, "
        "eval/signals/squad2-calibration[-<model>].jsonl)",
    )
    calibrate.add_argument(
        "--out",
        help="where to write the judge (default: qa/judges/ for a bundled model, else the "
        "model cache's judges/ folder, where the pipeline looks for it)",
    )
    calibrate.add_argument(
        "--collect",
        action="store_true",
        help="first answer the calibration questions not yet in the file (resumes), then fit",
    )
    calibrate.add_argument(
        "--whole-prompt",
        action="store_true",
        help="--collect: answer over short corpora read whole (one piece of an article "
        "each; eval/signals/squad2-calibration-whole-prompt.jsonl), where a refusal gets "
        "a second look: the data that fits when one pays",
    )
    calibrate.add_argument("--limit", type=int, help="--collect: stop at this many rows")
    calibrate.add_argument("--minutes", type=float, help="--collect: stop after this long")
    calibrate.add_argument("--workers", type=int, default=2, help="--collect: answers at once")
    calibrate.add_argument("--seed", type=int, default=2026, help="--collect: question order")
    config_flags(calibrate)

    bench = commands.add_parser(
        "bench",
        help="measure speed and memory on what users ask: every kind of question on the "
        "seed, and the SQuAD test split's articles with answerable and unanswerable ones",
    )
    bench.add_argument("--report-dir", default="reports")
    bench.add_argument(
        "--per-kind", type=int, default=3, help="seed questions of each kind (default 3)"
    )
    bench.add_argument(
        "--squad",
        type=int,
        default=20,
        help="SQuAD test-split questions, half unanswerable (0: the seed alone)",
    )
    bench.add_argument(
        "--quick",
        action="store_true",
        help="only the seed's first 12 questions (all answered: a floor, not a typical wait)",
    )
    bench.add_argument("--corpus", help="also measure this folder (with --corpus-questions)")
    bench.add_argument("--corpus-questions", help="a file of questions, one per line")
    bench.add_argument(
        "--compare-speculative",
        metavar="MODES",
        type=lambda text: [mode.strip() for mode in text.split(",") if mode.strip()],
        help="also run the seed's warm questions with each of these drafting modes "
        '(comma-separated, e.g. "off,ngram") and print them side by side',
    )
    config_flags(bench)
    return {"eval": _eval, "calibrate": _calibrate, "bench": _bench}


def _eval(args: argparse.Namespace, config: Config) -> int:
    from eval.run import run_cli

    return run_cli(args, config)


def _bench(args: argparse.Namespace, config: Config) -> int:
    from eval.bench import run_bench

    return run_bench(args, config)


def _calibrate(args: argparse.Namespace, config: Config) -> int:
    from eval.calibrate import run_cli

    return run_cli(args, config)
