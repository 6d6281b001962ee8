"""The hand-written evaluation set: loading and checking it.

Each line of ``qa_set.jsonl`` is one item: ``id``, ``type``, ``question``, ``answers``
(all acceptable short answers; empty means the right behaviour is to abstain),
``evidence`` (exact quotes from the article), ``history`` (earlier turns for follow-ups).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SET = Path(__file__).with_name("qa_set.jsonl")
TYPES = (
    "fact",
    "paraphrase",
    "multi_hop",
    "unanswerable_on_topic",
    "unanswerable_off_topic",
    "false_premise",
    "injection",
    "multi_turn",
)


@dataclass(frozen=True)
class EvalItem:
    """One question with its gold answers and the article quotes that support them."""

    id: str
    type: str
    question: str
    answers: tuple[str, ...]
    evidence: tuple[str, ...]
    history: tuple[tuple[str, str], ...] = ()
    note: str = ""

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


@dataclass(frozen=True)
class EvidenceSpan:
    doc: str
    start: int
    end: int


@dataclass
class EvalSet:
    items: list[EvalItem]
    spans: dict[str, list[EvidenceSpan]] = field(default_factory=dict)


def load_items(path: Path = DEFAULT_SET) -> list[EvalItem]:
    """Parse the JSONL file (blank lines allowed)."""
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not valid JSON ({exc})") from exc
        items.append(
            EvalItem(
                id=raw["id"],
                type=raw["type"],
                question=raw["question"],
                answers=tuple(raw.get("answers", [])),
                evidence=tuple(raw.get("evidence", [])),
                history=tuple((t["question"], t["answer"]) for t in raw.get("history", [])),
                note=raw.get("note", ""),
            )
        )
    return items


def locate_evidence(items: list[EvalItem], documents: dict[str, str]) -> EvalSet:
    """Find every evidence quote in the documents; raise if one does not occur verbatim."""
    problems: list[str] = []
    spans: dict[str, list[EvidenceSpan]] = {}
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            problems.append(f"{item.id}: duplicate id")
        seen.add(item.id)
        if item.type not in TYPES:
            problems.append(f"{item.id}: unknown type {item.type!r}")
        if item.answerable and not item.evidence:
            problems.append(f"{item.id}: answerable but has no evidence")
        found = []
        for quote in item.evidence:
            hits = [
                EvidenceSpan(doc, text.find(quote), text.find(quote) + len(quote))
                for doc, text in documents.items()
                if quote in text
            ]
            if not hits:
                problems.append(f"{item.id}: evidence not in any document: {quote[:60]!r}")
            found.extend(hits[:1])
        spans[item.id] = found
    if problems:
        raise ValueError("evaluation set problems:\n  " + "\n  ".join(problems))
    return EvalSet(items, spans)


def read_documents(seeds_dir: Path) -> dict[str, str]:
    """Document name (as the ingester names it) -> raw text."""
    return {
        p.relative_to(seeds_dir).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(seeds_dir.rglob("*"))
        if p.is_file() and p.suffix.lower() in {".txt", ".md"}
    }
