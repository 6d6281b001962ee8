"""The ``qa`` command: ingest, add, docs, remove, ask, chat, serve-model, eval, calibrate, bench.

Every subcommand takes the same configuration flags (they override ``QA_*`` environment
variables, which override the defaults in :class:`qa.config.Config`). Errors print one
line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from qa.config import CAUTION_LEVELS, SPECULATIVE_MODES, Config
from qa.errors import QAError

DISTRIBUTION = "qa-chat"
Handler = Callable[[argparse.Namespace, Config], int]

if TYPE_CHECKING:
    from rich.progress import TaskID

    from index.ingest import IngestReport, Progress


def _config_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("configuration")
    group.add_argument("--store", dest="store_dir", help="index directory (default .qa)")
    group.add_argument(
        "--chroma-url", help="a Chroma server holding the index instead (QA_CHROMA_URL)"
    )
    group.add_argument("--seeds", dest="seeds_dir", help="documents directory (default seeds)")
    group.add_argument("--model", help='"default" (1.5B), "fast" (0.5B) or a .gguf path')
    group.add_argument("--openai-base-url", help="use an OpenAI-compatible server instead")
    group.add_argument("--openai-model", help="model name on that server")
    group.add_argument(
        "--parallel", dest="n_parallel", type=int, help="local engine: answers decoded at once"
    )
    group.add_argument("--top-k", type=int, help="passages to retrieve")
    group.add_argument(
        "--speculative",
        choices=SPECULATIVE_MODES,
        help="local engine: draft tokens from the prompt (ngram) or not (off, default)",
    )
    group.add_argument(
        "--caution",
        choices=CAUTION_LEVELS,
        help="how readily a doubted answer is refused (default balanced; QA_CAUTION)",
    )


def _location(config: Config) -> str:
    """Where the index lives, as the user named it (a directory or a server URL)."""
    from index.stores import open_store

    return open_store(config).location


def config_from_args(args: argparse.Namespace) -> Config:
    names = (
        "store_dir",
        "chroma_url",
        "seeds_dir",
        "model",
        "openai_base_url",
        "openai_model",
        "n_parallel",
        "top_k",
        "caution",
        "speculative",
    )
    return Config.from_env(**{name: getattr(args, name, None) for name in names})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qa", description="Ask questions about your documents; get cited answers."
    )
    parser.add_argument("--version", action="version", version=f"qa {package_version()}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log every model request (tokens read, generated, drafted; QA_LOG_LEVEL=DEBUG)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    ingest = commands.add_parser(
        "ingest", help="index documents: the index mirrors PATHs (default: the documents folder)"
    )
    ingest.add_argument("path", nargs="*", help="files or folders (.txt .md .html .htm .pdf .docx)")
    ingest.add_argument("--rebuild", action="store_true", help="drop the index and rebuild it")
    _config_flags(ingest)

    add = commands.add_parser(
        "add", help="copy files into the documents folder and index them with the rest"
    )
    add.add_argument("files", nargs="+", help="documents to add")
    _config_flags(add)

    docs = commands.add_parser("docs", help="list the indexed documents")
    _config_flags(docs)

    remove = commands.add_parser("remove", help="remove a document from the folder and index")
    remove.add_argument("name", help="its name, as `qa docs` lists it")
    _config_flags(remove)

    ask = commands.add_parser("ask", help="answer one question")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print the full Answer as JSON")
    _config_flags(ask)

    chat = commands.add_parser("chat", help="open the web chat")
    chat.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    chat.add_argument("--port", type=int, default=7860)
    chat.add_argument("--share", action="store_true", help="create a public Gradio link")
    chat.add_argument(
        "--auth-file", type=Path, help="user:password lines; a login is required to use the chat"
    )
    chat.add_argument(
        "--no-auth",
        action="store_true",
        help="allow a non-local --host (or --share) without a login",
    )
    _config_flags(chat)

    serve = commands.add_parser(
        "serve-model",
        help="serve the model with llama.cpp's own server, for app replicas (--openai-base-url)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--api-key", help="clients must send it as a bearer token")
    serve.add_argument(
        "--no-auth", action="store_true", help="allow a non-local --host without --api-key"
    )
    _config_flags(serve)

    for register in _command_plugins():
        _COMMANDS.update(register(commands, _config_flags))
    return parser


def package_version() -> str:
    """The installed distribution's version (``qa --version``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown (not installed)"


def _command_plugins() -> list[Callable[..., dict[str, Handler]]]:
    """Commands other packages add (``qa.commands`` entry points: eval, bench, calibrate).

    The evaluation lives above the answering side and registers its commands here, so
    ``qa`` never imports ``eval``; without it installed, those commands are simply absent.
    """
    from importlib.metadata import entry_points

    return [point.load() for point in entry_points(group="qa.commands")]


def _configure_logging(verbose: bool, level: str) -> None:
    """``--verbose`` (or ``QA_LOG_LEVEL``) switches on the request log on stderr.

    Only this project's loggers get the handler: libraries that set their own loggers to
    DEBUG (bm25s does) stay as quiet as they were.
    """
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    for name in ("qa", "index", "eval"):
        logger = logging.getLogger(name)
        logger.setLevel("DEBUG" if verbose else level.upper())
        if not logger.handlers:
            logger.addHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        _configure_logging(args.verbose, config.log_level)
        shown = config.model_dump(exclude={"openai_api_key", "chroma_token"})  # no secrets
        logging.getLogger("qa.cli").debug("qa %s, settings: %s", package_version(), shown)
        return _COMMANDS[args.command](args, config)
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def _with_progress(work: Callable[[Progress], IngestReport]) -> IngestReport:
    from rich.progress import Progress as Bar

    with Bar(transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        return work(progress)


def _ingest(args: argparse.Namespace, config: Config) -> int:
    from index.ingest import ingest

    paths = [Path(p) for p in args.path] or None
    report = _with_progress(
        lambda progress: ingest(paths, config, rebuild=args.rebuild, progress=progress)
    )
    print(f"ingested {report.summary()} into {_location(config)}")
    return 0


def _add(args: argparse.Namespace, config: Config) -> int:
    from index.corpus import add_files

    files = [Path(f) for f in args.files]
    report = _with_progress(lambda progress: add_files(files, config, progress=progress))
    print(f"ingested {report.summary()} into {_location(config)}")
    return 0


def _docs(args: argparse.Namespace, config: Config) -> int:
    from index.corpus import list_documents

    documents = list_documents(config)
    if not documents:
        print(f"no index at {_location(config)}; run `qa ingest`")
        return 1
    for doc in documents:
        pages = f", {doc.pages} pages" if doc.pages else ""
        print(f"{doc.name}\t{doc.passages} passages{pages}\t{doc.path}")
    return 0


def _remove(args: argparse.Namespace, config: Config) -> int:
    from index.corpus import remove_document

    report = remove_document(args.name, config)
    print(f"removed {args.name}; index now {report.summary()}")
    return 0


def _ask(args: argparse.Namespace, config: Config) -> int:
    from qa.pipeline import ask

    answer = ask(args.question, config=config)
    if args.json:
        print(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
        return 0
    print(answer.text)
    if answer.certainty is not None:
        print(f"\n({answer.certainty.label})")
    if answer.rewritten_question:
        print(f"\n(read as: {answer.rewritten_question})")
    if answer.citations:
        print()
    for citation in answer.citations:
        quote = " ".join(citation.quote.split())
        where = f"{citation.source}:{citation.start}-{citation.end}"
        print(f"[{citation.number}] {where}  “{quote}”")
    return 0


def _chat(args: argparse.Namespace, config: Config) -> int:
    from qa.chat_auth import read_auth_file
    from qa.ui import launch

    auth = read_auth_file(args.auth_file) if args.auth_file else None
    launch(
        config,
        host=args.host,
        port=args.port,
        share=args.share,
        auth=auth,
        allow_no_auth=args.no_auth,
    )
    return 0


def _serve_model(args: argparse.Namespace, config: Config) -> int:
    from qa.engine import serve_model

    serve_model(
        config,
        host=args.host,
        port=args.port,
        api_key=args.api_key or "",
        allow_no_auth=args.no_auth,
    )
    return 0


_COMMANDS = {
    "ingest": _ingest,
    "add": _add,
    "docs": _docs,
    "remove": _remove,
    "ask": _ask,
    "chat": _chat,
    "serve-model": _serve_model,
}

if __name__ == "__main__":
    sys.exit(main())
