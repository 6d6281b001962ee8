"""The hand-written evaluation set: loading and checking it.

Each line of ``qa_set.jsonl`` is one item: ``id``, ``type``, ``question``, ``answers``
(all acceptable short answers; empty means the right behaviour is to abstain),
``evidence`` (exact quotes from the article), ``history`` (earlier turns for follow-ups).

Two kinds read ``answers`` differently (see :func:`eval.scoring.score_item`):

- ``summary`` and ``list`` (:data:`MULTI_FACT_TYPES`): every entry is a required fact,
  its acceptable phrasings separated by ``" | "`` ("Vladimir Putin | Putin").
- ``yes_no``: every entry is one acceptable answer whose first word is "Yes" or "No"
  and whose rest is the fact the answer must contain ("No, Tuesday").
"""

from __future__ import annotations

import json
import random
import re
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
    "summary",
    "list",
    "yes_no",
    "why_how",
    "authorship",
    "plausible_unanswerable",
)
MULTI_FACT_TYPES = frozenset({"summary", "list"})
ABSTAIN_TYPES = frozenset(
    {"unanswerable_on_topic", "unanswerable_off_topic", "plausible_unanswerable"}
)
_POLARITY = re.compile(r"(?:yes|no)\b", re.IGNORECASE)


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


def per_type_sample(items: list[EvalItem], per_type: int, seed: int) -> list[EvalItem]:
    """A seeded sample of at most ``per_type`` items of each question type, in set order
    (the same items for the same seed, whatever else the caller does)."""
    rng = random.Random(seed)
    chosen: set[str] = set()
    for type_name in dict.fromkeys(item.type for item in items):
        ids = [item.id for item in items if item.type == type_name]
        chosen.update(rng.sample(ids, min(per_type, len(ids))))
    return [item for item in items if item.id in chosen]


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
        problems.extend(f"{item.id}: {p}" for p in _shape_problems(item))
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


def _shape_problems(item: EvalItem) -> list[str]:
    """What is wrong with ``answers`` for the item's type (empty when nothing is)."""
    if item.type in ABSTAIN_TYPES and item.answers:
        return ["an unanswerable item has answers"]
    if item.type in MULTI_FACT_TYPES and len(item.answers) < 2:
        return [f"a {item.type} item needs at least two required facts"]
    if item.type == "yes_no" and not (item.answers and all(map(_POLARITY.match, item.answers))):
        return ["a yes_no item needs answers, each starting with Yes or No"]
    return []


def read_documents(seeds_dir: Path) -> dict[str, str]:
    """Document name (as the ingester names it) -> raw text."""
    return {
        p.relative_to(seeds_dir).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(seeds_dir.rglob("*"))
        if p.is_file() and p.suffix.lower() in {".txt", ".md"}
    }
