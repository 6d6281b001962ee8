"""Write the evaluation report: per-question JSON, a Markdown summary and a PNG chart."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eval.metrics import (
    certainty_table,
    reliability,
    reliability_table,
    right_by_certainty,
    risk_coverage_table,
)
from eval.scoring import ItemResult, answers_rated, as_dicts

HEADLINE = [
    ("answerable_correct", "answerable: correct"),
    ("unanswerable_abstained", "unanswerable: abstained"),
    ("false_abstention_rate", "false abstention"),
    ("exact_match", "exact match"),
    ("f1", "token F1"),
    ("citation_recall", "citations cover evidence"),
    ("citation_precision", "citation precision"),
    ("mean_cited_span_chars", "mean cited span (chars)"),
    ("retrieval_hit_rate", "retrieval hit rate"),
    ("retrieval_mrr", "retrieval MRR"),
    ("latency_p50", "p50 seconds"),
    ("latency_p95", "p95 seconds"),
    ("first_token_p50", "first token p50 s"),
    ("confidence_auroc", "confidence AUROC"),
    ("top_half_right", "right among most confident half"),
]
PER_TYPE = [
    ("n", "n"),
    ("correct", "correct"),
    ("false_abstention_rate", "false abst."),
    ("citation_recall", "cit. recall"),
    ("citation_precision", "cit. precision"),
    ("mean_cited_span_chars", "span chars"),
    ("latency_p50", "p50 s"),
]


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}"


def summary_table(tables: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    systems = list(tables)
    lines = ["| metric | " + " | ".join(systems) + " |", "|---" * (len(systems) + 1) + "|"]
    for key, label in HEADLINE:
        lines.append(
            f"| {label} | " + " | ".join(fmt(tables[s]["all"][key]) for s in systems) + " |"
        )
    return "\n".join(lines)


def per_type_table(tables: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """One row per question type; with several systems a cell reads "ours / baseline"."""
    systems = list(tables)
    header = ["type", *(label for _, label in PER_TYPE)]
    lines = [
        "| " + " | ".join(header) + " |",
        "|---" * len(header) + "|",
    ]
    for type_name in tables[systems[0]]:
        cells = [type_name]
        for key, _ in PER_TYPE:
            values = [fmt(tables[s].get(type_name, {}).get(key)) for s in systems]
            cells.append(values[0] if key == "n" else " / ".join(values))
        lines.append("| " + " | ".join(cells) + " |")
    if len(systems) > 1:
        lines.append(f"\nCells read {' / '.join(systems)}.")
    return "\n".join(lines)


def write_chart(tables: Mapping[str, Mapping[str, Mapping[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(tables)
    types = list(tables[systems[0]])
    width = 0.8 / len(systems)
    fig, ax = plt.subplots(figsize=(11, 4.5))
    for i, system in enumerate(systems):
        values = [tables[system].get(t, {}).get("correct") or 0.0 for t in types]
        ax.bar([x + i * width for x in range(len(types))], values, width, label=system)
    ax.set_xticks([x + width * (len(systems) - 1) / 2 for x in range(len(types))])
    ax.set_xticklabels(types, rotation=25, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share correct (answer right or abstained rightly)")
    ax.set_title("Correct by question type")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report_tail(failures: list[str], misses: list[str]) -> list[str]:
    """The closing sections of a report: the threshold check, then every miss."""
    return [
        "## Threshold check",
        "",
        *(f"- FAIL {f}" for f in failures),
        *(["- all thresholds met"] if not failures else []),
        "",
        f"## Questions ours got wrong ({len(misses)})",
        "",
        *misses,
    ]


def write_report(
    report_dir: Path,
    tables: Mapping[str, Mapping[str, Mapping[str, Any]]],
    results: Mapping[str, list[ItemResult]],
    failures: list[str],
) -> Path:
    """Write ``results.json``, ``report.md`` and ``correct_by_type.png``; return the .md path."""
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "results.json").write_text(
        json.dumps(
            {"summary": tables, "items": {s: as_dicts(r) for s, r in results.items()}},
            indent=2,
            ensure_ascii=False,
        )
    )
    write_chart(tables, report_dir / "correct_by_type.png")
    wrong = [r for r in results.get("ours", []) if not r.correct]
    lines = [
        "# Evaluation report",
        "",
        "## Summary",
        "",
        summary_table(tables),
        "",
        "## By question type",
        "",
        per_type_table(tables),
        "",
        "![correct by type](correct_by_type.png)",
        "",
        "## Confidence (ours): reliability",
        "",
        "Each answer's stated confidence beside how often such answers were right "
        "(a refusal is right on an unanswerable question).",
        "",
        reliability_table(
            *reliability(
                [r.confidence for r in results.get("ours", [])],
                [r.correct for r in results.get("ours", [])],
            )
        ),
        "",
        "## Confidence (ours): ranking",
        "",
        "Answers only (refusals left out; an answer to an unanswerable question is wrong), "
        "most confident first: the share right if only the most confident are kept.",
        "",
        risk_coverage_table(*answers_rated(results.get("ours", []))),
        "",
        "## Certainty bands (ours)",
        "",
        "Each answer given by the band shown beside it (an answer to an unanswerable "
        "question is wrong).",
        "",
        certainty_table(
            right_by_certainty(*answers_rated(results.get("ours", []), "certainty")),
            sum(not r.abstained for r in results.get("ours", [])),
        ),
        "",
        *report_tail(failures, [f"- `{r.id}` {r.question} → {r.prediction}" for r in wrong]),
    ]
    path = report_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
