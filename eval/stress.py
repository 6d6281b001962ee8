"""Stress the index server's publication: racing writers, random kills, readers answering.

    python -m eval.stress [--rounds 200] [--writers 3] [--readers 2] [--kill 0.5]
                          [--chroma-url URL] [--report reports/stress.json]

Against a real ``chroma run`` (started here in a temporary folder unless ``--chroma-url``
names one), each round starts ``--writers`` real ``qa ingest`` processes at once, each
mirroring a folder of its own (the seed article, a document naming its writer, and one that
changes every round). With probability ``--kill`` one of them gets SIGKILL at a random
moment of its write. Meanwhile ``--readers`` threads ask the real pipeline (real engine,
real embedder) seed questions without pause. After every round the invariants of
``docs/scaling-out.md`` are checked:

- the newest manifest names a collection that exists, whose passages are exactly its
  documents' (ids unique, counts as recorded), and whose documents are one writer's folder;
- generation numbers never go back; when a writer succeeded the index is a successful
  writer's; a writer either succeeded, lost the race with the one-line message, or was
  killed — nothing else;
- what is left over (unpublished generations, orphan records) stays bounded.

A reader's answer fails when ``ask`` raises anything. Exit status 1 on any broken round or
failed answer; the report has rounds, seconds and every problem.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.server_store import ServerStore, record_owner
from qa.config import Config

QUESTIONS = (
    "Where were the missiles fired from?",
    "How far did the missiles fly?",
    "Who is the president of France?",
)
LOST = "another ingest published"


@dataclass
class Tally:
    """What a run saw; ``problems`` empty means every invariant held."""

    rounds: int = 0
    published: int = 0  # rounds whose index changed
    killed: int = 0
    lost_races: int = 0
    answers: int = 0
    failed_answers: int = 0
    most_leftovers: int = 0  # generations neither published nor replaced, after a round
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def chroma_server(folder: Path) -> Iterator[str]:
    """``chroma run`` on a free port over ``folder``; its URL until the block ends."""
    port = _free_port()
    chroma = Path(sys.executable).with_name("chroma")
    log = (folder / "chroma.log").open("wb")
    command = [str(chroma), "run", "--path", str(folder / "data"), "--port", str(port)]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/api/v2/heartbeat", timeout=2):
                    break
            except OSError as exc:
                if process.poll() is not None or time.monotonic() > deadline:
                    where = folder / "chroma.log"
                    raise RuntimeError(f"chroma run did not start; see {where}") from exc
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def writer_folders(base: Path, seeds: Path, writers: int) -> list[Path]:
    """One folder per writer: the seed article and a document naming the writer."""
    folders = []
    for number in range(writers):
        folder = base / f"writer-{number}"
        shutil.copytree(seeds, folder, dirs_exist_ok=True)
        (folder / f"writer-{number}.txt").write_text(
            f"Writer {number} keeps this folder.\n\nIts harbour is number {number + 10}."
        )
        folders.append(folder)
    return folders


def expected_docs(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*.txt")}


def _env() -> dict[str, str]:
    root = Path(__file__).resolve().parents[1]
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(root)}


def run_round(
    number: int,
    folders: Sequence[Path],
    env: dict[str, str],
    kill: float,
    rng: random.Random,
    tally: Tally,
) -> dict[Path, int]:
    """Start every writer at once, maybe SIGKILL one mid-write; their exit codes."""
    for folder in folders:  # a document that changes every round: something to embed
        (folder / "round.txt").write_text(f"Round {number} was written by {folder.name}.")
    url = env["QA_CHROMA_URL"]
    writers = {
        folder: subprocess.Popen(
            [sys.executable, "-m", "qa", "ingest", str(folder), "--chroma-url", url],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for folder in folders
    }
    if rng.random() < kill:
        victim = rng.choice(list(writers.values()))
        time.sleep(rng.uniform(0.3, 6.0))  # a qa ingest here takes ~4-8 s
        if victim.poll() is None:
            victim.send_signal(signal.SIGKILL)
    codes = {}
    for folder, writer in writers.items():
        _, err = writer.communicate(timeout=600)
        codes[folder] = writer.returncode
        if writer.returncode == -signal.SIGKILL:
            tally.killed += 1
        elif writer.returncode == 2 and LOST in err and err.count("\n") == 1:
            tally.lost_races += 1
        elif writer.returncode != 0:
            tally.problem(f"round {number}: {folder.name} exited {writer.returncode}: {err[-300:]}")
    return codes


def check_index(
    store: ServerStore,
    number: int,
    folders: Sequence[Path],
    codes: dict[Path, int],
    before: tuple[int, str],
    tally: Tally,
) -> tuple[int, str]:
    """The invariants after a round; the (generation, collection) now published."""
    manifest = store.read_manifest()
    if manifest is None:
        tally.problem(f"round {number}: no published manifest")
        return before
    now = (manifest.generation, manifest.collection)
    if now[0] < before[0]:
        tally.problem(f"round {number}: generation went back from {before[0]} to {now[0]}")
    succeeded = [f for f, code in codes.items() if code == 0]
    docs = set(manifest.docs)
    if succeeded and now == before:
        tally.problem(f"round {number}: {len(succeeded)} writer(s) succeeded, index unchanged")
    if now != before:
        tally.published += 1
        if not any(docs == expected_docs(f) for f in succeeded):
            tally.problem(f"round {number}: published {sorted(docs)}: no successful writer's")
    collection = store.lookup(manifest.collection)
    if collection is None:
        tally.problem(f"round {number}: published collection {manifest.collection} is missing")
        return now
    got = collection.get(include=["metadatas"])
    ids = got["ids"]
    owners = {m["doc"] for m in got["metadatas"]}
    recorded = sum(int(d["passages"]) for d in manifest.docs.values())
    if len(ids) != len(set(ids)) or len(ids) != recorded or owners != docs:
        tally.problem(
            f"round {number}: {len(ids)} passages ({len(set(ids))} unique, {recorded} "
            f"recorded) of {sorted(owners)} for manifest documents {sorted(docs)}"
        )
    readable = store.readable(manifest)
    names = {c.name for c in store.generations(store.family)}
    leftovers = names - readable
    tally.most_leftovers = max(tally.most_leftovers, len(leftovers))
    if len(leftovers) > len(folders):  # at most this round's unpublished writers
        tally.problem(f"round {number}: {len(leftovers)} leftover generations: {leftovers}")
    existing = set(store.collection_names())
    orphans = [i for i in store.record_ids() if (o := record_owner(i)) and o not in existing]
    if len(orphans) > 2 * len(folders) * 4:  # a killed writer's records, swept next publish
        tally.problem(f"round {number}: {len(orphans)} orphan bookkeeping records")
    return now


def reader(pipeline: Any, stop: threading.Event, tally: Tally, rng: random.Random) -> None:
    """Ask the real pipeline seed questions until ``stop``; count answers and failures."""
    try:
        while not stop.is_set():
            question = rng.choice(QUESTIONS)
            try:
                pipeline.ask(question)
                with tally.lock:
                    tally.answers += 1
            except Exception as exc:  # any error is a failed answer
                with tally.lock:
                    tally.failed_answers += 1
                tally.problem(f"reader: {question!r} failed: {type(exc).__name__}: {exc}")
    finally:
        pipeline.close()


def run_stress(
    config: Config,
    work: Path,
    *,
    rounds: int,
    writers: int = 3,
    readers: int = 2,
    kill: float = 0.5,
    seed: int = 0,
    verbose: bool = False,
) -> dict[str, Any]:
    """``rounds`` rounds against ``config.chroma_url``'s collection family
    ``config.collection``; readers answer with ``config``'s model. The report as a dict."""
    from qa.pipeline import build_pipeline

    rng = random.Random(seed)
    url = config.chroma_url
    store = ServerStore(url, config.collection, config.chroma_token)
    folders = writer_folders(work, Path(config.seeds_dir), writers)
    env = {**_env(), "QA_COLLECTION": config.collection, "QA_CHROMA_URL": url}
    first = subprocess.run(
        [sys.executable, "-m", "qa", "ingest", str(folders[0]), "--chroma-url", url],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if first.returncode != 0:
        raise RuntimeError(f"the first ingest failed: {first.stderr}")
    manifest = store.read_manifest()
    assert manifest is not None
    before = (manifest.generation, manifest.collection)
    tally, stop = Tally(), threading.Event()
    pipelines = [build_pipeline(config) for _ in range(readers)]  # ready before round 1
    threads = [
        threading.Thread(target=reader, args=(p, stop, tally, random.Random(seed + n)), daemon=True)
        for n, p in enumerate(pipelines)
    ]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    try:
        for number in range(1, rounds + 1):
            codes = run_round(number, folders, env, kill, rng, tally)
            before = check_index(store, number, folders, codes, before, tally)
            tally.rounds = number
            if verbose:
                print(
                    f"round {number}: generation {before[0]}, codes "
                    f"{sorted(codes.values())}, answers {tally.answers}, "
                    f"problems {len(tally.problems)}",
                    flush=True,
                )
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=600)
    report = {k: v for k, v in tally.__dict__.items() if k != "lock"}
    report.update(
        seconds=round(time.perf_counter() - started, 1),
        writers=writers,
        readers=readers,
        kill=kill,
    )
    return report


def broken(report: dict[str, Any]) -> bool:
    """Did any invariant fail, or any answer?"""
    return bool(report["problems"]) or report["failed_answers"] > 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m eval.stress", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--writers", type=int, default=3)
    parser.add_argument("--readers", type=int, default=2, help="threads asking the pipeline")
    parser.add_argument("--kill", type=float, default=0.5, help="chance a round kills a writer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--reader-budget", type=int, default=1500, help="readers' context characters"
    )
    parser.add_argument("--seeds", default=str(Config.from_env().seeds_dir))
    parser.add_argument("--chroma-url", default="", help="a running server (else one is started)")
    parser.add_argument("--report", default="reports/stress.json")
    parser.add_argument("-v", "--verbose", action="store_true", help="a line per round")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    options = dict(
        rounds=args.rounds,
        writers=args.writers,
        readers=args.readers,
        kill=args.kill,
        seed=args.seed,
        verbose=args.verbose,
    )
    with tempfile.TemporaryDirectory(prefix="qa-stress-") as tmp:
        work = Path(tmp)
        # Three writers and the readers share the cores: a request may wait minutes here
        # without anything being wrong with the index, which is what this run is about.
        # Readers choose evidence per question (a budget below the corpus): their prompt
        # prefix then stays the same across generations instead of being read anew after
        # every round's publish; how they open, read and re-open the index is the same.
        config = Config.from_env(
            seeds_dir=Path(args.seeds),
            store_dir=work / "unused",
            request_timeout_s=600.0,
            context_char_budget=args.reader_budget,
        )
        if args.chroma_url:
            report = run_stress(config.replace(chroma_url=args.chroma_url), work, **options)
        else:
            with chroma_server(work) as url:
                report = run_stress(config.replace(chroma_url=url), work, **options)
    path = Path(args.report)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "problems"}))
    for problem in report["problems"][:20]:
        print("problem:", problem)
    verdict = "BROKEN" if broken(report) else "every invariant held"
    print(
        f"{report['rounds']} rounds in {report['seconds']} s: {verdict}; "
        f"{report['answers']} answers, {report['failed_answers']} failed"
    )
    return 1 if broken(report) else 0


if __name__ == "__main__":
    sys.exit(main())
