"""Speed and memory of the question answering on this machine (``qa bench``).

Measures, in this order, so that at most one model process runs at a time:

1. ``qa ingest`` of the seeds into a fresh temporary store (a subprocess, wall time), then
   the same command again, which has nothing to do (wall time, and the ``in N s`` the
   command prints itself, which leaves out Python's start-up and imports);
2. the cold start: a fresh ``qa ask`` subprocess, from process start to the first line of
   its answer on stdout, with the index already built. It runs twice: the first run may
   compute and cache the model's prompt state ("first-ever start"), the second is the
   typical cold start. Peak resident memory comes from ``os.wait4`` for that child;
3. the warm pipeline in this process (``get_pipeline(config).ask_stream``): one warm-up
   question, then the first N evaluation questions with their histories: per-question
   latency, time to the first streamed :class:`~qa.types.Delta`, decode speed, and this
   process's peak resident memory.

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

from eval.dataset import load_items
from eval.metrics import percentile
from qa.config import Config

COLD_QUESTION = "How far did the missiles fly?"
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


def _config_args(config: Config, store: Path) -> list[str]:
    args = ["--store", str(store), "--seeds", str(config.seeds_dir.resolve())]
    args += ["--model", config.model]
    if config.openai_base_url:
        args += ["--openai-base-url", config.openai_base_url]
        args += ["--openai-model", config.openai_model]
    return args


def _reported_seconds(stdout: str) -> float | None:
    match = _REPORTED_SECONDS.search(stdout)
    return float(match.group(1)) if match else None


def _prefix_states(config: Config) -> set[str]:
    return {p.name for p in config.model_cache_dir.glob("prefix-*.state")}


def _checked(run: Run, what: str) -> Run:
    if run.returncode != 0:
        print(f"warning: {what} exited with {run.returncode}: {run.stderr.strip()[-500:]}")
    return run


def bench_ingest(config: Config, scratch: Path) -> dict[str, Any]:
    """Ingest the seeds into a fresh store, then again (nothing to do)."""
    seeds = str(config.seeds_dir.resolve())
    store = ["--store", str(scratch / "store")]
    fresh = _checked(run_timed(["ingest", seeds, *store]), "ingest")
    again = _checked(run_timed(["ingest", seeds, *store]), "re-ingest")
    return {
        "fresh": asdict(fresh),
        "noop": asdict(again),
        "fresh_reported_s": _reported_seconds(fresh.stdout),
        "noop_reported_s": _reported_seconds(again.stdout),
    }


def bench_cold_start(config: Config) -> dict[str, Any]:
    """Two fresh ``qa ask`` processes against the built index at ``config.store_dir``."""
    store = config.store_dir.resolve()
    built_here = False
    if not (store / "manifest.json").exists():
        seeds = str(config.seeds_dir.resolve())
        _checked(run_timed(["ingest", seeds, "--store", str(store)]), "ingest")
        built_here = True
    before = _prefix_states(config)
    ask = ["ask", COLD_QUESTION, *_config_args(config, store)]
    first = _checked(run_timed(ask), "first cold start")
    computed = bool(_prefix_states(config) - before)
    second = _checked(run_timed(ask), "cold start")
    return {
        "question": COLD_QUESTION,
        "store": str(store),
        "index_built_by_bench": built_here,
        "first_computed_prefix_state": computed,
        "first": asdict(first),
        "second": asdict(second),
    }


def bench_warm(config: Config, questions: int) -> dict[str, Any]:
    """Latency, time to first token and decode speed of the in-process pipeline."""
    from qa.pipeline import get_pipeline
    from qa.types import Answer, Delta

    started = time.perf_counter()
    pipeline = get_pipeline(config)
    load_s = time.perf_counter() - started
    model = getattr(pipeline.llm, "_model", None)

    def count_tokens(text: str) -> int | None:
        if model is None or not hasattr(model, "tokenize"):
            return None
        return len(model.tokenize(text.encode("utf-8"), add_bos=False))

    def one(question: str, history: list[tuple[str, str]]) -> dict[str, Any]:
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
        return {
            "question": question,
            "seconds": seconds,
            "first_token_s": first,
            "tokens": tokens,
            "decode_s": decode_s,
            "abstained": answer.abstained,
            "ran_model": ran_model,
            "text": answer.text,
        }

    warmup = one("Where were the missiles fired from?", [])
    items = load_items()[:questions]
    results = [one(item.question, list(item.history)) for item in items]
    rates = [r for r in results if (r["tokens"] or 0) > 1 and (r["decode_s"] or 0) > 0]
    decode_tokens = sum(r["tokens"] - 1 for r in rates)
    decode_time = sum(r["decode_s"] for r in rates)
    return {
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
    }


def summarize(ingest: dict[str, Any], cold: dict[str, Any], warm: dict[str, Any]) -> list[Row]:
    """The table rows, with targets where the project has one."""
    latency, first_token = warm["latency_s"], warm["first_token_s"]
    gb = _KIB_PER_GB
    return [
        Row("warm latency p50", percentile(latency, 50), "s", 2.0),
        Row("warm latency p95", percentile(latency, 95), "s", 5.0),
        Row("time to first token p50", percentile(first_token, 50), "s", 1.0),
        Row("time to first token p95", percentile(first_token, 95), "s"),
        Row("decode speed", warm["tokens_per_s"], "tokens/s"),
        Row("cold start (2nd fresh `qa ask`)", cold["second"]["seconds"], "s", 15.0),
        Row("first-ever start (1st fresh `qa ask`)", cold["first"]["seconds"], "s"),
        Row("ingest from scratch (wall)", ingest["fresh"]["exit_seconds"], "s"),
        Row("ingest from scratch (as printed)", ingest["fresh_reported_s"], "s"),
        Row("no-op re-ingest (wall)", ingest["noop"]["exit_seconds"], "s", 2.0),
        Row("no-op re-ingest (as printed)", ingest["noop_reported_s"], "s", 2.0),
        Row("peak RSS, warm in-process run", warm["peak_rss_kib"] / gb, "GiB", 3.0),
        Row("peak RSS, cold-start process", cold["second"]["peak_rss_kib"] / gb, "GiB", 3.0),
    ]


def format_table(rows: Sequence[Row]) -> str:
    """A Markdown table: metric, measured, target, PASS/MISS."""
    lines = ["| metric | measured | target | result |", "|---|---|---|---|"]
    for row in rows:
        value = "–" if row.value is None else f"{row.value:.2f} {row.unit}"
        target = "–" if row.target is None else f"≤ {row.target:g} {row.unit}"
        lines.append(f"| {row.metric} | {value} | {target} | {row.verdict} |")
    return "\n".join(lines)


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
    print(f"benchmarking {config.model!r} on {machine['cpus']} CPU(s)…", flush=True)
    with tempfile.TemporaryDirectory(prefix="qa-bench-") as scratch:
        print("ingest (fresh store, then no-op)…", flush=True)
        ingest = bench_ingest(config, Path(scratch))
    print("cold start (two fresh `qa ask` processes)…", flush=True)
    cold = bench_cold_start(config)
    print(f"warm pipeline ({args.questions} questions after one warm-up)…", flush=True)
    warm = bench_warm(config, args.questions)
    machine["load_average_after"] = os.getloadavg()

    rows = summarize(ingest, cold, warm)
    print()
    print(format_table(rows))
    print()
    print(
        f"model: {warm['model']}; first-ever start computed the prompt state: "
        f"{cold['first_computed_prefix_state']} (else it was cached already)"
    )
    print(f"- {FIRST_TOKEN_DEFINITION}")
    print(f"- {TOKENS_PER_SECOND_DEFINITION}")
    print("- cold start: process start to the first line of the answer on stdout")
    print("- peak RSS: ru_maxrss (this process; the cold-start child via os.wait4)")
    print(
        f"- load average (1/5/15 min) before {_loads(machine['load_average'])}, after "
        f"{_loads(machine['load_average_after'])}: other work may share these CPUs"
    )

    path = report_dir / "bench.json"
    payload = {
        "machine": machine,
        "config": {k: str(v) for k, v in asdict(config).items()},
        "rows": [{**asdict(row), "result": row.verdict} for row in rows],
        "definitions": {
            "first_token": FIRST_TOKEN_DEFINITION,
            "tokens_per_s": TOKENS_PER_SECOND_DEFINITION,
        },
        "ingest": ingest,
        "cold_start": cold,
        "warm": warm,
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
