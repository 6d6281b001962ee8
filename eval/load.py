"""Load test: concurrent chat sessions against one or more running ``qa chat`` replicas.

    python -m eval.load --url http://127.0.0.1:7860/ [--url http://127.0.0.1:7861/ ...] \\
        [--sessions 8] [--questions-per-session 4] [--report reports/load.json]

Each session is one ``gradio_client.Client`` (one browser session) on one replica, the
sessions spread round-robin over the ``--url`` replicas. All sessions start together and
each asks the conversation in :mod:`eval.load_sessions`: a question, a follow-up that
needs that session's own history, another question, and an off-topic question. Session
``i`` plays ``SESSIONS[i % 8]``.

Every question gets one verdict:

- ``lost``: the call raised (timeout, connection error...), or the reply is empty or an
  error message (``qa-error``);
- ``mixed``: the follow-up was not read with this session's own history (the rewritten
  question, "read as: ...", does not name the session's subject): conversations got
  crossed, or the history was dropped;
- ``wrong``: an answer without any of the expected keywords, or an off-topic question
  that was answered instead of abstained (a quality problem, not a serving one);
- ``ok`` otherwise.

Prints a markdown table (per replica and overall: questions, lost/mixed/wrong, latency
p50/p95/max) and writes a JSON report. Nothing is asserted about timing: the exit code is
1 if any answer was lost or mixed, else 0 (wrong answers are reported, not failed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eval.load_sessions import (
    SESSIONS,
    Session,
    answer_part,
    chat,
    has_keyword,
    is_abstained,
    is_error,
    read_as,
)
from eval.metrics import percentile

DEFAULT_REPORT = Path("reports/load.json")
TURNS = ("first", "follow_up", "third", "off_topic")
VERDICTS = ("ok", "lost", "mixed", "wrong")
START_TIMEOUT = 120.0  # seconds all sessions wait for each other to connect before asking
SNIPPET = 300  # characters of each answer kept in the report

ClientFactory = Callable[[str], Any]


@dataclass
class Asked:
    """One question asked in one session, and what became of it."""

    session: int
    replica: str
    turn: str
    question: str
    seconds: float | None  # None when the call raised (no reply)
    verdict: str
    detail: str
    answer: str  # the answer part of the reply, cut to SNIPPET characters
    read_as: str


# --- pure logic ------------------------------------------------------------------------
def assign_replicas(urls: Sequence[str], sessions: int) -> list[str]:
    """The replica each session talks to: round-robin over ``urls``."""
    if not urls:
        raise ValueError("at least one replica URL is needed")
    return [urls[number % len(urls)] for number in range(sessions)]


def session_plan(number: int) -> Session:
    """The conversation session ``number`` plays (the SESSIONS list, repeated)."""
    return SESSIONS[number % len(SESSIONS)]


def classify(session: Session, turn: str, message: str | None) -> tuple[str, str]:
    """``(verdict, detail)`` for one reply; ``message`` is None when the call raised."""
    if message is None or is_error(message):
        return "lost", "no reply" if message is None else "error or empty reply"
    if turn == "off_topic":
        if not is_abstained(message):
            return "wrong", "off-topic question answered instead of abstained"
        return "ok", ""
    if turn == "follow_up" and session.subject not in read_as(message):
        return "mixed", f"follow-up read as {read_as(message)!r}, not about {session.subject!r}"
    keywords = {
        "first": session.first_keywords,
        "follow_up": session.follow_up_keywords,
        "third": session.third_keywords,
    }[turn]
    if not has_keyword(message, keywords):
        return "wrong", f"answer lacks any of {list(keywords)}"
    return "ok", ""


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p95 (nearest rank) and max of ``seconds``; all 0 for none."""
    return {
        "p50": percentile(seconds, 50),
        "p95": percentile(seconds, 95),
        "max": max(seconds, default=0.0),
    }


def _counts(asked: Sequence[Asked]) -> dict[str, Any]:
    counts: dict[str, Any] = {"questions": len(asked)}
    for verdict in VERDICTS:
        counts[verdict] = sum(a.verdict == verdict for a in asked)
    counts["latency_s"] = latency_summary([a.seconds for a in asked if a.seconds is not None])
    return counts


def summarize(
    asked: Sequence[Asked], urls: Sequence[str], sessions: int, wall: float
) -> dict[str, Any]:
    """The JSON report: totals, latency, verdict counts, per replica, and every problem."""
    replicas = assign_replicas(urls, sessions)
    per_replica = {}
    for url in dict.fromkeys(urls):
        mine = [a for a in asked if a.replica == url]
        per_replica[url] = {"sessions": replicas.count(url), **_counts(mine)}
    totals = _counts(asked)
    return {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "replicas": len(per_replica),
        "urls": list(per_replica),
        "sessions": sessions,
        **totals,
        "wall_s": round(wall, 3),
        "throughput_qps": round(len(asked) / wall, 4) if wall > 0 else 0.0,
        "per_replica": per_replica,
        "problems": [
            f"session {a.session} ({a.replica}) {a.turn} {a.question!r}: {a.verdict}: "
            f"{a.detail}; answer {a.answer!r}"
            for a in asked
            if a.verdict != "ok"
        ],
        "asked": [asdict(a) for a in asked],
    }


def markdown_table(report: dict[str, Any]) -> str:
    """A short markdown summary: one row per replica and one for all of them."""
    header = "| replica | sessions | questions | lost | mixed | wrong | p50 s | p95 s | max s |"
    lines = [header, "|" + "---|" * (header.count("|") - 1)]

    def row(name: str, counts: dict[str, Any]) -> str:
        latency = counts["latency_s"]
        return (
            f"| {name} | {counts['sessions']} | {counts['questions']} | {counts['lost']} | "
            f"{counts['mixed']} | {counts['wrong']} | {latency['p50']:.1f} | "
            f"{latency['p95']:.1f} | {latency['max']:.1f} |"
        )

    for url, counts in report["per_replica"].items():
        lines.append(row(url, counts))
    if report["replicas"] > 1:
        lines.append(row("**all**", report))
    lines.append("")
    lines.append(
        f"{report['replicas']} replica(s), {report['sessions']} sessions, "
        f"{report['questions']} questions in {report['wall_s']:.1f} s = "
        f"{report['throughput_qps']:.2f} questions/s"
    )
    return "\n".join(lines)


def failed(report: dict[str, Any]) -> bool:
    """Whether the run failed: any answer lost or mixed (wrong answers do not fail it)."""
    return report["lost"] > 0 or report["mixed"] > 0


# --- running the sessions ----------------------------------------------------------------
def _gradio_client(url: str) -> Any:
    from gradio_client import Client

    return Client(url, verbose=False)


def _converse(
    number: int,
    url: str,
    questions: int,
    timeout: float,
    barrier: threading.Barrier,
    client_factory: ClientFactory,
) -> list[Asked]:
    session = session_plan(number)
    plan = list(zip(TURNS, session.questions(), strict=True))[:questions]
    try:
        client = client_factory(url)  # one client = one browser session = one history
    except Exception as exc:  # the replica is unreachable: every question is lost
        _wait(barrier)
        detail = f"could not connect: {type(exc).__name__}: {exc}"
        return [
            Asked(number, url, turn, question, None, "lost", detail, "", "")
            for turn, question in plan
        ]
    _wait(barrier)
    asked = []
    for turn, question in plan:
        started = time.perf_counter()
        try:
            message: str | None = chat(client, question, timeout)
            seconds: float | None = time.perf_counter() - started
            error = ""
        except Exception as exc:
            message, seconds, error = None, None, f"{type(exc).__name__}: {exc}"
        verdict, detail = classify(session, turn, message)
        if error:
            detail = f"{detail}: {error}"
        answer = answer_part(message or "") or (message or "")
        asked.append(
            Asked(
                number,
                url,
                turn,
                question,
                None if seconds is None else round(seconds, 3),
                verdict,
                detail,
                answer[:SNIPPET],
                read_as(message or ""),
            )
        )
    return asked


def _wait(barrier: threading.Barrier) -> None:
    with contextlib.suppress(threading.BrokenBarrierError):  # a slow connect: start anyway
        barrier.wait(timeout=START_TIMEOUT)


def run_load(
    urls: Sequence[str],
    sessions: int = len(SESSIONS),
    questions: int = len(TURNS),
    timeout: float = 600.0,
    client_factory: ClientFactory = _gradio_client,
) -> dict[str, Any]:
    """Run ``sessions`` concurrent conversations over ``urls``; the report (see summarize)."""
    replicas = assign_replicas(urls, sessions)
    barrier = threading.Barrier(sessions)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=sessions, thread_name_prefix="load-session") as pool:
        futures = [
            pool.submit(_converse, n, url, questions, timeout, barrier, client_factory)
            for n, url in enumerate(replicas)
        ]
        asked = [a for future in futures for a in future.result()]
    wall = time.perf_counter() - started
    return summarize(asked, urls, sessions, wall)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m eval.load",
        description="Concurrent chat sessions against running `qa chat` replicas.",
    )
    parser.add_argument(
        "--url",
        action="append",
        required=True,
        help="a running replica, e.g. http://127.0.0.1:7860/ (repeat for several)",
    )
    parser.add_argument("--sessions", type=_positive, default=len(SESSIONS))
    parser.add_argument(
        "--questions-per-session",
        type=int,
        choices=range(1, len(TURNS) + 1),
        default=len(TURNS),
        metavar="{1..4}",
        help="ask only the first N of: question, follow-up, question, off-topic (default 4)",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per question")
    parser.add_argument("--report", type=Path, default=DEFAULT_REPORT, help="JSON report path")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, client_factory: ClientFactory | None = None) -> int:
    """Run the load test from command-line arguments; the exit code (1: lost or mixed)."""
    args = parse_args(argv)
    report = run_load(
        args.url,
        args.sessions,
        args.questions_per_session,
        args.timeout,
        client_factory or _gradio_client,
    )
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(markdown_table(report))
    for problem in report["problems"]:
        print(f"- {problem}")
    print(f"report: {args.report}")
    return 1 if failed(report) else 0


if __name__ == "__main__":
    sys.exit(main())
