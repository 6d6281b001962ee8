"""``qa eval --suite squad2``: ingest the SQuAD corpus, ask its questions, report, gate.

The corpus lives in its own directory (``.qa-squad2/`` or, with distractors,
``.qa-squad2-26/``): the documents as ``.txt`` files and the store, so the suite never
touches the user's index. Ours answers the seeded sample of each split; the baseline a
smaller stratified subset of it, and ours is also summarised on exactly that subset so
the two columns compare like with like.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from eval.gate import check_thresholds
from eval.metrics import (
    certainty_table,
    reliability,
    reliability_table,
    right_by_certainty,
    risk_coverage_table,
)
from eval.report import fmt, report_tail
from eval.squad2 import (
    MORE_TITLES,
    SPLITS,
    SquadQuestion,
    SquadResult,
    answers_rated,
    load_corpus,
    sample,
    score_question,
    summarize,
    summarize_by_split,
    write_documents,
)
from eval.systems import System, baseline, ours
from qa.config import Config

DEFAULT_SEED = 2026
SQUAD2_BASELINE_SAMPLE = 15  # baseline questions per split unless --baseline-sample says
ROWS = [
    ("n", "questions"),
    ("has_ans_exact", "HasAns EM"),
    ("has_ans_f1", "HasAns F1"),
    ("no_ans_accuracy", "NoAns accuracy"),
    ("exact", "overall EM"),
    ("f1", "overall F1"),
    ("has_ans_contains", "HasAns answer contains gold"),
    ("false_abstention_rate", "false abstention"),
    ("answers_right", "answers given that are right"),
    ("citation_has_gold", "citation contains gold"),
    ("mean_cited_chars", "mean cited chars"),
    ("retrieval_hit", "retrieval hit@k (gold paragraph)"),
    ("latency_p50", "p50 s"),
    ("latency_p95", "p95 s"),
    ("confidence_auroc", "confidence AUROC"),
    ("top_half_right", "right among most confident half"),
]


def suite_config(config: Config, distractors: bool) -> Config:
    base = Path(".qa-squad2-26" if distractors else ".qa-squad2")
    return config.replace(seeds_dir=base / "docs", store_dir=base / "store")


def run_questions(name: str, system: System, questions: list[SquadQuestion]) -> list[SquadResult]:
    from rich.progress import Progress

    results = []
    with Progress() as bar:
        task = bar.add_task(name, total=len(questions))
        for question in questions:
            results.append(score_question(question, system(question.as_item())))
            bar.advance(task)
    return results


def evaluate_squad2(
    config: Config,
    *,
    splits: tuple[str, ...] = tuple(SPLITS),
    size: int | None = 100,
    seed: int = DEFAULT_SEED,
    distractors: bool = False,
    baseline_size: int | None = None,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the suite; return everything the report and the gate need."""
    from index.ingest import ingest

    corpus = load_corpus(distractors)
    suite = suite_config(config, distractors)
    write_documents(corpus.documents, suite.seeds_dir)
    started = time.perf_counter()
    report = ingest(suite.seeds_dir, suite)
    ingest_s = time.perf_counter() - started
    progress(f"squad2 corpus: {len(corpus.documents)} documents; ingested {report.summary()}")
    chosen = [q for split in splits for q in sample(corpus.questions, split, size, seed)]
    progress(f"squad2 sample: {len(chosen)} questions, seed {seed}, splits {', '.join(splits)}")
    results: dict[str, list[SquadResult]] = {}
    if baseline_size:  # first: a failure there must not cost the longer run of ours
        subset = [q for split in splits for q in sample(chosen, split, baseline_size, seed)]
        results["baseline"] = run_questions(
            "baseline (squad2)", baseline(suite, corpus.documents), subset
        )
    results["ours"] = run_questions("ours (squad2)", ours(suite), chosen)
    tables = {"ours": summarize_by_split(results["ours"])}
    tables["ours"]["all"] = summarize(results["ours"])
    if baseline_size:
        ids = {r.id for r in results["baseline"]}
        mine = [r for r in results["ours"] if r.id in ids]
        tables["ours, baseline subset"] = {**summarize_by_split(mine), "all": summarize(mine)}
        tables["baseline"] = {
            **summarize_by_split(results["baseline"]),
            "all": summarize(results["baseline"]),
        }
    return {
        "seed": seed,
        "sample_per_split": size,
        "distractors": distractors,
        "documents": len(corpus.documents),
        "ingest_seconds": ingest_s,
        "ingest": report.summary(),
        "tables": tables,
        "results": results,
    }


def split_table(tables: Mapping[str, Mapping[str, Mapping[str, Any]]], split: str) -> str:
    """One split: a row per metric, a column per system."""
    systems = [s for s in tables if split in tables[s]]
    lines = ["| metric | " + " | ".join(systems) + " |", "|---" * (len(systems) + 1) + "|"]
    for key, label in ROWS:
        cells = [fmt(tables[s][split].get(key)) for s in systems]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_chart(tables: Mapping[str, Mapping[str, Mapping[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [
        ("has_ans_contains", "HasAns contains"),
        ("no_ans_accuracy", "NoAns acc."),
        ("f1", "overall F1"),
        ("citation_has_gold", "cit. has gold"),
    ]
    columns = [(s, split) for s in tables for split in tables[s] if split != "all"]
    width = 0.8 / max(1, len(columns))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for i, (system, split) in enumerate(columns):
        values = [tables[system][split].get(k) or 0.0 for k, _ in keys]
        ax.bar([x + i * width for x in range(len(keys))], values, width, label=f"{system}: {split}")
    ax.set_xticks([x + width * (len(columns) - 1) / 2 for x in range(len(keys))])
    ax.set_xticklabels([label for _, label in keys])
    ax.set_ylim(0, 1.05)
    ax.set_title("SQuAD 2.0 suite, by split")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _failure_line(r: SquadResult) -> str:
    gold = (
        " | ".join(dict.fromkeys(r.gold)) or f"(unanswerable; plausible: {' | '.join(r.plausible)})"
    )
    quote = " ".join(" ".join(q.split()) for q in r.quotes)[:300]
    return f"- `{r.split}` {r.question} — gold: {gold} — ours: {r.prediction} — cited: “{quote}”"


def write_squad2_report(run: Mapping[str, Any], report_dir: Path, failures: list[str]) -> Path:
    """``squad2.json``, ``squad2.md`` and ``squad2.png`` in ``report_dir``; return the .md path."""
    report_dir.mkdir(parents=True, exist_ok=True)
    tables = run["tables"]
    payload = {k: v for k, v in run.items() if k != "results"}
    payload["items"] = {s: [asdict(r) for r in rs] for s, rs in run["results"].items()}
    (report_dir / "squad2.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False))
    write_chart(tables, report_dir / "squad2.png")
    wrong = [
        r
        for r in run["results"]["ours"]
        if (r.answerable and not r.contained) or (not r.answerable and not r.abstained)
    ]
    splits = [s for s in SPLITS if s in tables["ours"]]
    splits += ["all"] if len(splits) > 1 else []
    lines = [
        "# SQuAD 2.0 suite",
        "",
        f"{run['documents']} documents ({'with' if run['distractors'] else 'no'} distractors), "
        f"sample of {run['sample_per_split'] or 'all'} questions per split, seed {run['seed']}. "
        "Calibration: "
        + ", ".join(t for t in SPLITS["calibration"] if t not in MORE_TITLES)
        + "; test: "
        + ", ".join(SPLITS["test"])
        + ". Data: SQuAD 2.0 (Rajpurkar, Jia and Liang, 2018), CC BY-SA 4.0.",
        "",
    ]
    for split in splits:
        lines += [f"## {split}", "", split_table(tables, split), ""]
    mine = run["results"]["ours"]
    right = [r.contained > 0 if r.answerable else r.abstained for r in mine]
    for split in [s for s in SPLITS if s in tables["ours"]]:
        rows, ece = reliability(
            [r.confidence for r in mine if r.split == split],
            [ok for r, ok in zip(mine, right, strict=True) if r.split == split],
        )
        lines += [
            f"## Confidence (ours), {split}: reliability",
            "",
            reliability_table(rows, ece),
            "",
            f"## Confidence (ours), {split}: ranking",
            "",
            "Answers only (refusals left out; an answer to an unanswerable question is "
            "wrong), most confident first: the share right if only the most confident are kept.",
            "",
            risk_coverage_table(*answers_rated([r for r in mine if r.split == split])),
            "",
            f"## Certainty bands (ours), {split}",
            "",
            certainty_table(
                right_by_certainty(
                    *answers_rated([r for r in mine if r.split == split], "certainty")
                ),
                sum(r.split == split and not r.abstained for r in mine),
            ),
            "",
        ]
    lines += [
        "![squad2 by split](squad2.png)",
        "",
        *report_tail(failures, [_failure_line(r) for r in wrong]),
    ]
    path = report_dir / "squad2.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_squad2_cli(args: argparse.Namespace, config: Config) -> list[str]:
    """Run the suite from ``qa eval`` flags, print its tables; return threshold failures."""
    splits = tuple(SPLITS) if args.split == "both" else (args.split,)
    started = time.perf_counter()
    run = evaluate_squad2(
        config,
        splits=splits,
        size=None if args.all else args.sample,
        seed=args.seed,
        distractors=args.distractors,
        baseline_size=(args.baseline_sample or SQUAD2_BASELINE_SAMPLE) if args.baseline else None,
    )
    run["wall_seconds"] = time.perf_counter() - started
    failures = check_thresholds(run["tables"]["ours"]["all"], suite="squad2")
    path = write_squad2_report(run, Path(args.report_dir), failures)
    shown = [s for s in SPLITS if s in run["tables"]["ours"]]
    for split in shown + (["all"] if len(shown) > 1 else []):
        print(f"\nsquad2 — {split}\n{split_table(run['tables'], split)}")
    print(f"\nsquad2 seed {run['seed']}, wall {run['wall_seconds']:.0f} s; report: {path}")
    return failures
