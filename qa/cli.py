"""The ``qa`` command: ingest, ask, chat, eval, bench.

Every subcommand takes the same configuration flags (they override ``QA_*`` environment
variables, which override the defaults in :class:`qa.config.Config`). Errors print one
line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from qa.config import Config
from qa.errors import QAError


def _config_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("configuration")
    group.add_argument("--store", dest="store_dir", help="index directory (default .qa)")
    group.add_argument("--seeds", dest="seeds_dir", help="documents directory (default seeds)")
    group.add_argument("--model", help='"default" (1.5B), "fast" (0.5B) or a .gguf path')
    group.add_argument("--openai-base-url", help="use an OpenAI-compatible server instead")
    group.add_argument("--openai-model", help="model name on that server")
    group.add_argument("--top-k", type=int, help="passages to retrieve")


def config_from_args(args: argparse.Namespace) -> Config:
    names = ("store_dir", "seeds_dir", "model", "openai_base_url", "openai_model", "top_k")
    return Config.from_env(**{name: getattr(args, name, None) for name in names})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qa", description="Ask questions about your documents; get cited answers."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    ingest = commands.add_parser("ingest", help="index the documents (default: seeds/)")
    ingest.add_argument("path", nargs="?", help="a folder (or file) of .txt/.md documents")
    ingest.add_argument("--rebuild", action="store_true", help="drop the index and rebuild it")
    _config_flags(ingest)

    ask = commands.add_parser("ask", help="answer one question")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print the full Answer as JSON")
    _config_flags(ask)

    chat = commands.add_parser("chat", help="open the web chat")
    chat.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    chat.add_argument("--port", type=int, default=7860)
    chat.add_argument("--share", action="store_true", help="create a public Gradio link")
    _config_flags(chat)

    evaluate = commands.add_parser("eval", help="run the evaluation set and write a report")
    evaluate.add_argument("--baseline", action="store_true", help="also run the baseline")
    evaluate.add_argument("--report-dir", default="reports", help="where to write the report")
    evaluate.add_argument("--limit", type=int, help="only the first N questions")
    evaluate.add_argument("--check", action="store_true", help="fail below the thresholds")
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
    evaluate.add_argument("--seed", type=int, default=2026, help="squad2 sampling seed")
    evaluate.add_argument(
        "--distractors", action="store_true", help="squad2: add the 20 distractor articles"
    )
    evaluate.add_argument(
        "--baseline-sample",
        type=int,
        default=15,
        help="squad2: baseline questions per split (a stratified subset of the sample)",
    )
    _config_flags(evaluate)

    calibrate = commands.add_parser(
        "calibrate", help="fit the answerability model on the labelled calibration questions"
    )
    calibrate.add_argument(
        "--out",
        default=str(Path(__file__).with_name("answerability.json")),
        help="where to write it",
    )
    calibrate.add_argument(
        "--sample", type=int, default=150, help="SQuAD calibration questions (half unanswerable)"
    )
    calibrate.add_argument("--seed", type=int, default=2026, help="sampling seed")
    calibrate.add_argument(
        "--refit",
        action="store_true",
        help="fit again from the last run's reports/calibration-examples.json (no model run)",
    )
    _config_flags(calibrate)

    bench = commands.add_parser("bench", help="measure speed and memory")
    bench.add_argument("--report-dir", default="reports")
    bench.add_argument("--questions", type=int, default=20, help="questions for warm latency")
    _config_flags(bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        return _COMMANDS[args.command](args, config)
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def _ingest(args: argparse.Namespace, config: Config) -> int:
    from rich.progress import Progress

    from index.ingest import ingest

    with Progress(transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        report = ingest(
            Path(args.path) if args.path else None, config, rebuild=args.rebuild, progress=progress
        )
    print(f"ingested {report.summary()} into {config.store_dir}")
    return 0


def _ask(args: argparse.Namespace, config: Config) -> int:
    from qa.pipeline import ask

    answer = ask(args.question, config=config)
    if args.json:
        print(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
        return 0
    print(answer.text)
    if answer.rewritten_question:
        print(f"\n(read as: {answer.rewritten_question})")
    if answer.citations:
        print()
    for citation in answer.citations:
        quote = " ".join(citation.quote.split())
        print(f"[{citation.number}] {citation.doc}:{citation.start}-{citation.end}  “{quote}”")
    return 0


def _chat(args: argparse.Namespace, config: Config) -> int:
    from qa.ui import launch

    launch(config, host=args.host, port=args.port, share=args.share)
    return 0


def _eval(args: argparse.Namespace, config: Config) -> int:
    from eval.run import run_cli

    return run_cli(args, config)


def _bench(args: argparse.Namespace, config: Config) -> int:
    from eval.bench import run_bench

    return run_bench(args, config)


def _calibrate(args: argparse.Namespace, config: Config) -> int:
    from eval.calibrate import run_cli

    return run_cli(args, config)


_COMMANDS = {
    "ingest": _ingest,
    "ask": _ask,
    "chat": _chat,
    "eval": _eval,
    "calibrate": _calibrate,
    "bench": _bench,
}

if __name__ == "__main__":
    sys.exit(main())
