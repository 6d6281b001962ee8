"""Speed and memory of the question answering on this machine (``qa bench``).

What users ask, not only the easy questions. By default two workloads:

- **seed**: the seed folder with a seeded sample of our own set, ``--per-kind`` questions
  of every kind (facts, paraphrases, unanswerable on and off topic, false premises,
  injections, follow-ups, summaries, lists, yes/no, why/how, bylines, questions the
  article only seems to answer), each with its history;
- **squad2 test**: the SQuAD 2.0 test split's articles as one corpus, with a seeded
  sample of their questions, half answerable and half unanswerable by design, and the
  retrieval hit@k of each question's gold paragraph.

``--quick`` measures only the seed with the first 12 questions of our set (all answered:
a floor, not what users wait for). ``--corpus DIR --corpus-questions FILE`` adds any
folder. Each workload runs in this order, so that at most one model process runs at a
time:

1. ``qa ingest`` into a fresh temporary store (a subprocess, wall time), then the same
   command again, which has nothing to do (wall time, and the ``in N s`` the command
   prints itself, which leaves out Python's start-up and imports);
2. the cold start: a fresh ``qa ask`` subprocess, from process start to the first line of
   its answer on stdout, against that store. It runs twice: the first run may compute
   and cache the model's prompt state ("first-ever start"), the second is the typical
   cold start. Peak resident memory comes from ``os.wait4`` for that child;
3. the warm pipeline in this process: one warm-up question, then the workload's
   questions: per-question latency, time to the first streamed
   :class:`~qa.types.Delta`, seconds per pass, fresh prompt tokens read and tokens
   generated, decode speed, and this process's peak resident memory; broken down by the
   path each answer took (answered, refused, corrected) and by question kind.

Each figure is compared with its target and marked PASS or MISS. Missing a target is a
finding, not a failure: the command exits 0. ``bench.json`` in the report directory holds
every raw number. ``python -m eval.bench`` is the same as ``qa bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eval.dataset import load_items, per_type_sample
from eval.metrics import percentile
from qa.answerability import COSTLY
from qa.config import Config
from qa.errors import QAError

COLD_QUESTION = "How far did the missiles fly?"
QUICK_QUESTIONS = 12  # --quick: the first questions of our set, all answered
BENCH_SEED = 2026
# Seconds per stage and per pass, as the pipeline's stopwatch names them (Answer.timings).
STAGES = ("prepare", "retrieve", "calculation", "draft", "second_look", "judge")
_REPORTED_SECONDS = re.compile(r" in ([0-9.]+) s\b")
_KIB_PER_GB = 1024 * 1024  # ru_maxrss is in KiB on Linux

TOKENS_PER_SECOND_DEFINITION = (
    "decode speed: tokens of the raw model answer (the model's own tokenizer, no BOS) "
    "after the first one, divided by the time from the first streamed token to the end "
    "of generation (timings total - verify - first_token, i.e. generate minus its "
    "time-to-first-token part); answers that did not run the model (early abstentions) "
    "or produced a single token are left out; 'all' = sum of tokens / sum of times"
)
FIRST_TOKEN_DEFINITION = (
    "time to first token: from calling ask_stream to the first Delta it yields "
    "(includes follow-up rewriting and retrieval; an early abstention yields its text "
    "without running the model)"
)


@dataclass
class Row:
    """One line of the result table."""

    metric: str
    value: float | None
    unit: str
    target: float | None = None  # an upper bound; None = reported only

    @property
    def verdict(self) -> str:
        if self.target is None or self.value is None:
            return "–"
        return "PASS" if self.value <= self.target else "MISS"


@dataclass
class Workload:
    """A corpus to measure: its documents, its questions, and where its store goes."""

    name: str
    docs: Path
    questions: list[tuple[str, list[tuple[str, str]]]]  # (question, history)
    kinds: list[str]  # per question: its type in our set, or has_answer / no_answer
    cold_question: str
    gold: list[Any] | None = None  # SquadQuestion per question, for retrieval hit@k


@dataclass
class Run:
    """One timed subprocess."""

    command: list[str]
    returncode: int
    seconds: float  # start to the first stdout line (or to exit when it printed nothing)
    exit_seconds: float
    peak_rss_kib: int
    stdout: str
    stderr: str


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",  # the answer line must reach the pipe when it is printed
    }


def run_timed(args: Sequence[str]) -> Run:
    """Run ``python -m qa ARGS``; time it to its first stdout line and to its exit."""
    command = [sys.executable, "-m", "qa", *args]
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=errors, env=_env(), text=True
        )
        assert process.stdout is not None
        first_line = process.stdout.readline()
        first = time.perf_counter() - started
        rest = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        exited = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        process.stdout.close()
        errors.seek(0)
        stderr = errors.read().decode("utf-8", errors="replace")
    return Run(
        command=command,
        returncode=process.returncode,
        seconds=first if first_line else exited,
        exit_seconds=exited,
        peak_rss_kib=usage.ru_maxrss,
        stdout=first_line + rest,
        stderr=stderr,
    )


def _config_args(config: Config, store: Path, docs: Path) -> list[str]:
    args = ["--store", str(store), "--seeds", str(docs.resolve())]
    args += ["--model", config.model]
    if config.openai_base_url:
        args += ["--openai-base-url", config.openai_base_url]
        args += ["--openai-model", config.openai_model]
    return args


def _reported_seconds(stdout: str) -> float | None:
    match = _REPORTED_SECONDS.search(stdout)
    return float(match.group(1)) if match else None


def _prefix_states(config: Config) -> set[str]:
    from qa.engine import slot_dir

    return {p.name for p in slot_dir(config).glob("prefix-*.bin")}


def _checked(run: Run, what: str) -> Run:
    if run.returncode != 0:
        print(f"warning: {what} exited with {run.returncode}: {run.stderr.strip()[-500:]}")
    return run


def bench_ingest(docs: Path, store: Path) -> dict[str, Any]:
    """Ingest ``docs`` into a fresh store, then again (nothing to do)."""
    where = [str(docs.resolve()), "--store", str(store)]
    fresh = _checked(run_timed(["ingest", *where]), "ingest")
    again = _checked(run_timed(["ingest", *where]), "re-ingest")
    return {
        "fresh": asdict(fresh),
        "noop": asdict(again),
        "fresh_reported_s": _reported_seconds(fresh.stdout),
        "noop_reported_s": _reported_seconds(again.stdout),
        "summary": fresh.stdout.strip().splitlines()[-1:] or [""],
    }


def bench_cold_start(config: Config, workload: Workload, store: Path) -> dict[str, Any]:
    """Two fresh ``qa ask`` processes against the built index at ``store``."""
    before = _prefix_states(config)
    ask = ["ask", workload.cold_question, *_config_args(config, store, workload.docs)]
    first = _checked(run_timed(ask), "first cold start")
    computed = bool(_prefix_states(config) - before)
    second = _checked(run_timed(ask), "cold start")
    return {
        "question": workload.cold_question,
        "store": str(store),
        "first_computed_prefix_state": computed,
        "first": asdict(first),
        "second": asdict(second),
    }


def bench_warm(config: Config, workload: Workload) -> dict[str, Any]:
    """Latency, time to first token and decode speed of the in-process pipeline."""
    from qa.pipeline import build_pipeline
    from qa.types import Answer, Delta

    started = time.perf_counter()
    pipeline = build_pipeline(config)
    load_s = time.perf_counter() - started

    def count_tokens(text: str) -> int | None:
        return pipeline.llm.count_tokens(text) if pipeline.llm.llama_cpp else None

    def one(question: str, history: list[tuple[str, str]], kind: str) -> dict[str, Any]:
        first: float | None = None
        answer: Answer | None = None
        t0 = time.perf_counter()
        for item in pipeline.ask_stream(question, history):
            if isinstance(item, Delta) and first is None:
                first = time.perf_counter() - t0
            elif isinstance(item, Answer):
                answer = item
        seconds = time.perf_counter() - t0
        assert answer is not None
        timings = answer.timings
        ran_model = "generate" in timings
        tokens = count_tokens(answer.raw_text) if ran_model else None
        decode_s = None
        if ran_model and "first_token" in timings:
            decode_s = timings["total"] - timings.get("verify", 0.0) - timings["first_token"]
        usage = answer.engine
        return {
            "question": question,
            "kind": kind,
            "path": answer_path(answer.abstained, answer.decision, ran_model),
            "stages": {stage: timings[stage] for stage in STAGES if stage in timings},
            "has_history": bool(history),
            "asked_as": answer.kind,
            "self_checked": bool(COSTLY & set(answer.signals)),
            "seconds": seconds,
            "first_token_s": first,
            "generate_s": timings.get("generate"),
            "judge_s": timings.get("judge"),
            "prompt_read": usage.prompt_read,
            "generated": usage.generated,
            "drafted": usage.drafted,
            "accepted": usage.accepted,
            "requests": usage.requests,
            "tokens": tokens,
            "decode_s": decode_s,
            "abstained": answer.abstained,
            "ran_model": ran_model,
            "text": answer.text,
            "retrieved": [(p.doc, p.start, p.end) for p in answer.passages],
        }

    warmup = one(workload.cold_question, [], "warm-up")
    results = [
        one(question, history, kind)
        for (question, history), kind in zip(workload.questions, workload.kinds, strict=True)
    ]
    hits = None
    if workload.gold:
        from eval.metrics import retrieval_rank

        hits = [
            retrieval_rank(r["retrieved"], [q.paragraph]) is not None
            for r, q in zip(results, workload.gold, strict=True)
        ]
    pss_kib = proportional_set_size_kib()
    pipeline.close()  # the next workload starts an engine of its own
    rates = [r for r in results if (r["tokens"] or 0) > 1 and (r["decode_s"] or 0) > 0]
    decode_tokens = sum(r["tokens"] - 1 for r in rates)
    decode_time = sum(r["decode_s"] for r in rates)
    drafted = sum(r["drafted"] for r in results)
    return {
        "speculative": config.speculative,
        "acceptance": sum(r["accepted"] for r in results) / drafted if drafted else None,
        "prompt_read": [r["prompt_read"] for r in results],
        "generated": [r["generated"] for r in results],
        "generate_s": [r["generate_s"] for r in results if r["generate_s"] is not None],
        "judge_s": [r["judge_s"] for r in results if r["judge_s"] is not None],
        "pipeline_load_s": load_s,
        "prefix_state": pipeline.prefix_state,
        "model": pipeline.model_name,
        "warmup": warmup,
        "questions": results,
        "latency_s": [r["seconds"] for r in results],
        "first_token_s": [r["first_token_s"] for r in results if r["first_token_s"] is not None],
        "tokens_per_s": decode_tokens / decode_time if decode_time else None,
        "tokens_per_s_per_question": [(r["tokens"] - 1) / r["decode_s"] for r in rates],
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "pss_kib": pss_kib,
        "retrieval_hit": sum(hits) / len(hits) if hits else None,
    }


def proportional_set_size_kib() -> int | None:
    """This process's memory with shared pages counted once (Linux ``Pss``), in KiB.

    RSS counts a file mapped twice twice: the answering context and the Yes/No probe's
    context map the same GGUF, which the OS keeps in memory once.
    """
    try:
        for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def answer_path(abstained: bool, decision: str, ran_model: bool) -> str:
    """The way an answer went: answered, corrected (a yes/no turned to what the cited
    text says), refused after the model read the question, or refused before it."""
    if abstained:
        return "refused" if ran_model else "refused before the model"
    return "corrected" if decision == "correct" else "answered"


def breakdown_table(questions: Sequence[dict[str, Any]], key: str) -> str:
    """Latency, first token and tokens per group of questions (by ``path`` or ``kind``)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for result in questions:
        groups.setdefault(result[key], []).append(result)
    lines = [
        f"| {key} | n | p50 s | p95 s | first token p50 s | fresh prompt tokens p50 "
        "| generated tokens p50 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, group in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        first = [r["first_token_s"] for r in group if r["first_token_s"] is not None]
        cells = [
            percentile([r["seconds"] for r in group], 50),
            percentile([r["seconds"] for r in group], 95),
            percentile(first, 50) if first else None,
            percentile([r["prompt_read"] for r in group], 50),
            percentile([r["generated"] for r in group], 50),
        ]
        shown = " | ".join("–" if c is None else f"{c:.1f}" for c in cells)
        lines.append(f"| {name} | {len(group)} | {shown} |")
    return "\n".join(lines)


def pass_table(questions: Sequence[dict[str, Any]]) -> str:
    """Where the seconds go: each pass over the questions that ran it, its p50/p95 and
    its share of all the workload's time (what a pass that does not pay would save)."""
    total = sum(r["seconds"] for r in questions) or 1.0
    lines = [
        "| pass | questions | p50 s | p95 s | share of all time |",
        "|---|---|---|---|---|",
    ]
    for name, spent in pass_seconds(questions).items():
        if not spent:
            continue
        lines.append(
            f"| {name} | {len(spent)} | {percentile(spent, 50):.2f} | "
            f"{percentile(spent, 95):.2f} | {sum(spent) / total:.0%} |"
        )
    return "\n".join(lines)


def pass_seconds(questions: Sequence[dict[str, Any]]) -> dict[str, list[float]]:
    """Seconds of each pass, per question that ran it. A follow-up's "prepare" is its
    rewrite; the judge's seconds are a self-check where a costly signal was read, the
    polarity check for a yes/no, else the judge's own arithmetic."""

    def stage(name: str, where=lambda r: True) -> list[float]:
        return [r["stages"][name] for r in questions if name in r["stages"] and where(r)]

    def judged(r: dict[str, Any]) -> str:
        return (
            "self-check" if r["self_checked"] else "polarity" if r["asked_as"] == "yes_no" else ""
        )

    return {
        "follow-up rewrite": stage("prepare", lambda r: r["has_history"]),
        "retrieve": stage("retrieve"),
        "calculation attempt": stage("calculation"),
        "draft (with its verification)": stage("draft"),
        "second look (with its verification)": stage("second_look"),
        "window self-check (judge)": stage("judge", lambda r: judged(r) == "self-check"),
        "polarity check (judge)": stage("judge", lambda r: judged(r) == "polarity"),
        "judge, no model pass": stage("judge", lambda r: judged(r) == ""),
    }


def summarize(ingest: dict[str, Any], cold: dict[str, Any], warm: dict[str, Any]) -> list[Row]:
    """One workload's table rows, with targets where the project has one."""
    latency, first_token = warm["latency_s"], warm["first_token_s"]
    gb = _KIB_PER_GB
    return [
        Row("warm latency p50", percentile(latency, 50), "s", 2.5),
        Row("warm latency p95", percentile(latency, 95), "s", 5.0),
        Row("time to first token p50", percentile(first_token, 50), "s", 1.5),
        Row("time to first token p95", percentile(first_token, 95), "s"),
        Row("model answer (generation) p50", percentile(warm["generate_s"], 50), "s"),
        Row("judge p50", percentile(warm["judge_s"], 50), "s"),
        Row("judge p95", percentile(warm["judge_s"], 95), "s"),
        Row("fresh prompt tokens read per question p50", percentile(warm["prompt_read"], 50), ""),
        Row("tokens generated per question p50", percentile(warm["generated"], 50), ""),
        Row("decode speed", warm["tokens_per_s"], "tokens/s"),
        Row("drafted tokens accepted", warm["acceptance"], ""),
        Row("retrieval hit@k (gold paragraph)", warm["retrieval_hit"], ""),
        Row("cold start (2nd fresh `qa ask`)", cold["second"]["seconds"], "s", 6.0),
        Row("first-ever start (1st fresh `qa ask`)", cold["first"]["seconds"], "s"),
        Row("ingest from scratch (wall)", ingest["fresh"]["exit_seconds"], "s", 180.0),
        Row("ingest from scratch (as printed)", ingest["fresh_reported_s"], "s"),
        Row("no-op re-ingest (wall)", ingest["noop"]["exit_seconds"], "s", 2.0),
        Row("peak RSS, warm in-process run", warm["peak_rss_kib"] / gb, "GiB", 3.0),
        Row("peak RSS, cold-start process", cold["second"]["peak_rss_kib"] / gb, "GiB", 3.0),
        Row("memory (PSS) after the warm run", (warm["pss_kib"] or 0) / gb or None, "GiB"),
    ]


def speculation_table(modes: dict[str, dict[str, Any]]) -> str:
    """The seed's warm figures per speculative-decoding mode, one row each (same questions).

    Greedy verification keeps the model's own tokens, so the modes may differ in speed
    only; "same answers" counts the questions whose raw answer matches the first mode's.
    """
    first = next(iter(modes.values()))["questions"]
    lines = [
        "| speculative | p50 s | p95 s | mean s | generation p50 s | decode tokens/s "
        "| drafted accepted | same answers |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mode, warm in modes.items():
        latency = warm["latency_s"]
        same = sum(a["text"] == b["text"] for a, b in zip(first, warm["questions"], strict=True))
        cells = [
            percentile(latency, 50),
            percentile(latency, 95),
            sum(latency) / len(latency),
            percentile(warm["generate_s"], 50),
            warm["tokens_per_s"],
            warm["acceptance"],
        ]
        shown = " | ".join("–" if c is None else f"{c:.2f}" for c in cells)
        lines.append(f"| {mode} | {shown} | {same}/{len(first)} |")
    return "\n".join(lines)


def format_table(columns: dict[str, Sequence[Row]]) -> str:
    """A Markdown table: metric, then each workload's measurement and PASS/MISS, target."""
    names = list(columns)
    head = "| metric | " + " | ".join(names) + " | target |"
    lines = [head, "|---" * (len(names) + 2) + "|"]
    for i, first in enumerate(columns[names[0]]):
        cells = []
        for name in names:
            row = columns[name][i]
            if row.value is None:
                cells.append("–")
            else:
                mark = "" if row.verdict == "–" else f" {row.verdict}"
                cells.append(f"{row.value:.2f} {row.unit}".rstrip() + mark)
        target = "–" if first.target is None else f"≤ {first.target:g} {first.unit}"
        lines.append(f"| {first.metric} | " + " | ".join(cells) + f" | {target} |")
    return "\n".join(lines)


def seed_workload(config: Config, per_kind: int | None, seed: int = BENCH_SEED) -> Workload:
    """The seed folder with ``per_kind`` questions of every kind in our set (seeded), or
    with the first :data:`QUICK_QUESTIONS` when ``per_kind`` is None (``--quick``)."""
    items = load_items()
    chosen = items[:QUICK_QUESTIONS] if per_kind is None else per_type_sample(items, per_kind, seed)
    return Workload(
        "seed" if per_kind is None else "seed, every kind",
        Path(config.seeds_dir),
        [(item.question, list(item.history)) for item in chosen],
        [item.type for item in chosen],
        COLD_QUESTION,
    )


def squad_test_workload(docs: Path, questions: int, seed: int = BENCH_SEED) -> Workload:
    """The SQuAD 2.0 test split's articles, written to ``docs``, with a seeded sample of
    their questions: half answerable, half unanswerable by design."""
    from eval.squad2 import SPLITS, doc_name, load_corpus, sample, write_documents

    loaded = load_corpus()
    titles = {doc_name(title) for title in SPLITS["test"]}
    write_documents({n: t for n, t in loaded.documents.items() if n in titles}, docs)
    gold = sample(loaded.questions, "test", questions, seed)
    return Workload(
        f"squad2 test ({len(titles)} articles)",
        docs,
        [(q.question, []) for q in gold],
        ["has_answer" if q.answerable else "no_answer" for q in gold],
        gold[0].question,
        gold,
    )


def folder_workload(corpus: str, questions_file: str | None) -> Workload:
    """Any folder, with a file of questions (one per line)."""
    if not questions_file:
        raise QAError("--corpus DIR needs --corpus-questions FILE (one question per line)")
    lines = Path(questions_file).read_text(encoding="utf-8").splitlines()
    asked = [line.strip() for line in lines if line.strip()]
    if not asked:
        raise QAError(f"no questions in {questions_file}")
    name = Path(corpus).name
    return Workload(name, Path(corpus), [(q, []) for q in asked], [name] * len(asked), asked[0])


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }


def run_bench(args: argparse.Namespace, config: Config) -> int:
    """Measure, print the table and write ``bench.json``; 0 even when a target is missed."""
    report_dir = Path(args.report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    machine = _machine()
    for mode in args.compare_speculative or []:
        config.replace(speculative=mode)  # a mode that does not exist fails here, not later
    print(f"benchmarking {config.model!r} on {machine['cpus']} CPU(s)…", flush=True)
    results: dict[str, dict[str, Any]] = {}
    modes: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="qa-bench-") as scratch:
        workloads = [seed_workload(config, None if args.quick else args.per_kind)]
        if not args.quick and args.squad > 0:  # --squad 0: the seed's mix alone
            workloads.append(squad_test_workload(Path(scratch) / "squad2-test", args.squad))
        if args.corpus:
            workloads.append(folder_workload(args.corpus, args.corpus_questions))
        stores = [Path(scratch) / f"store-{n}" for n in range(len(workloads))]
        for workload, store in zip(workloads, stores, strict=True):
            print(f"[{workload.name}] ingest (fresh store, then no-op)…", flush=True)
            ingest = bench_ingest(workload.docs, store)
            print(f"[{workload.name}] cold start (two fresh `qa ask` processes)…", flush=True)
            cold = bench_cold_start(config, workload, store)
            print(
                f"[{workload.name}] warm pipeline ({len(workload.questions)} questions "
                "after one warm-up)…",
                flush=True,
            )
            warm_config = config.replace(store_dir=store, seeds_dir=workload.docs)
            warm = bench_warm(warm_config, workload)
            results[workload.name] = {"ingest": ingest, "cold_start": cold, "warm": warm}
        for mode in args.compare_speculative or []:  # the same seed questions, each drafting mode
            print(f"[seed] warm pipeline, speculative {mode!r}…", flush=True)
            seed = workloads[0]
            modes[mode] = bench_warm(
                config.replace(store_dir=stores[0], seeds_dir=seed.docs, speculative=mode), seed
            )
    machine["load_average_after"] = os.getloadavg()

    columns = {
        name: summarize(r["ingest"], r["cold_start"], r["warm"]) for name, r in results.items()
    }
    print()
    print(format_table(columns))
    print()
    for name, r in results.items():
        print(f"[{name}] by path\n\n{breakdown_table(r['warm']['questions'], 'path')}\n")
        print(f"[{name}] by kind\n\n{breakdown_table(r['warm']['questions'], 'kind')}\n")
        print(f"[{name}] where the seconds go\n\n{pass_table(r['warm']['questions'])}\n")
    if modes:
        print(speculation_table(modes))
        print()
    for name, r in results.items():
        print(
            f"[{name}] {r['ingest']['summary'][0]}; model {r['warm']['model']}; "
            f"speculative {r['warm']['speculative']!r}"
        )
    print(f"- {FIRST_TOKEN_DEFINITION}")
    print(f"- {TOKENS_PER_SECOND_DEFINITION}")
    print("- cold start: process start to the first line of the answer on stdout")
    print("- peak RSS: ru_maxrss (this process, so far; the cold-start child via os.wait4)")
    print("- PSS: /proc/self/smaps_rollup after the warm run (shared pages counted once)")
    print(
        f"- load average (1/5/15 min) before {_loads(machine['load_average'])}, after "
        f"{_loads(machine['load_average_after'])}: other work may share these CPUs"
    )

    path = report_dir / "bench.json"
    payload = {
        "machine": machine,
        "config": {k: str(v) for k, v in config.model_dump().items()},
        "definitions": {
            "first_token": FIRST_TOKEN_DEFINITION,
            "tokens_per_s": TOKENS_PER_SECOND_DEFINITION,
        },
        "workloads": {
            name: {
                "rows": [{**asdict(row), "result": row.verdict} for row in columns[name]],
                **result,
            }
            for name, result in results.items()
        },
        "speculative_modes": modes,
    }
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str))
    print(f"\nbench: {path}")
    return 0


def _loads(values: Sequence[float]) -> str:
    return " / ".join(f"{v:.1f}" for v in values)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m eval.bench``: ``qa bench`` with the same flags (--report-dir,
    --questions, --store, --seeds, --model, ...) and the same one-line errors."""
    from qa.cli import main as qa_main

    return qa_main(["bench", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
