"""Collect the judge's candidate signals once, for every labelled calibration question.

Answering a question costs seconds on 2 cores; fitting the judge's model costs
milliseconds. So every candidate signal of every answer is computed once, by the real
pipeline with no fitted model (the same :class:`qa.judge.Judge` that serves, which then
reports all its signals as ``Answer.signals`` and lets every answer through), and
written as one JSON line per question to a versioned signals file under
``eval/signals/``. ``qa calibrate --from-signals FILE`` fits from that file in seconds;
a new candidate signal needs one more collection pass, not a re-run of everything.

Questions: the SQuAD 2.0 *calibration* split only (Normans, Packet switching, Force, and
the two calibration-only articles: 1,763 questions, about half unanswerable by design),
in one seeded order, so a collection stopped early is still a random sample of them. The
own question set that gates CI is never collected: it must stay a held-out check. The
file is appended to as questions are answered, and a run resumes where the last one
stopped (``--collect`` again).

Each row holds the question, its article (the group for cross-validation by article),
the gold answers, what the pipeline did (``path``: ``declined`` by the model,
``checked`` by the judge's model, or ``other`` for kinds it does not check), the answer
text, every signal, and the seconds it took; ``right`` is whether the answer contains a
gold answer (never, for an unanswerable question).

Rows are one model's: beside each file, ``<name>.model.json`` records the model that
answered them (:class:`~qa.model_identity.ModelIdentity`), and a collection by another
model into the same file is refused. Each model's rows go to a file of their own
(:func:`signals_file`), and ``qa calibrate`` writes the judge for that model.
"""

from __future__ import annotations

import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from qa.config import Config
from qa.judge_files import file_stem
from qa.llm import model_label
from qa.model_identity import ModelIdentity, identify

SIGNALS_DIR = Path(__file__).with_name("signals")
DEFAULT_SIGNALS = SIGNALS_DIR / "squad2-calibration.jsonl"
STORE = Path(".qa-squad2-calibration")  # the calibration corpus's own store
# Rows answered over corpora short enough to be the whole prompt (one piece of one
# calibration article each), where a refusal gets a second look: what fits when it pays.
WHOLE_PROMPT_SIGNALS = SIGNALS_DIR / "squad2-calibration-whole-prompt.jsonl"
WHOLE_PROMPT_STORES = Path(".qa-squad2-whole-prompt")


def signals_file(config: Config) -> Path:
    """The signals file of ``config``'s model: the bundled default model's is
    :data:`DEFAULT_SIGNALS`, any other's is named after it."""
    if config.model == "default" and not config.uses_openai_server:
        return DEFAULT_SIGNALS
    return SIGNALS_DIR / f"squad2-calibration-{file_stem(model_label(config))}.jsonl"


def _model_file(signals: Path) -> Path:
    return signals.with_suffix(".model.json")


def model_of(signals: Path) -> ModelIdentity | None:
    """The model whose answers ``signals`` holds, or None where none is recorded."""
    try:
        return ModelIdentity.from_dict(json.loads(_model_file(signals).read_text("utf-8")))
    except FileNotFoundError:
        return None


def answered_by(signals: Path) -> ModelIdentity:
    """The model whose answers ``signals`` holds; a file that does not say stops here."""
    model = model_of(signals)
    if model is None:
        raise SystemExit(
            f"{signals} does not say which model answered it ({_model_file(signals).name}): "
            "a judge is fitted for one model; collect with `qa calibrate --collect`"
        )
    return model


def record_model(signals: Path, identity: ModelIdentity) -> None:
    """Record that ``identity`` answers into ``signals``; refuse another model's rows."""
    known = model_of(signals)
    if known is not None and not known.matches(identity):
        raise SystemExit(
            f"{signals} holds answers of {known.name}, not of {identity.name}: collect into "
            "another file (--from-signals)"
        )
    if known is None:
        signals.parent.mkdir(parents=True, exist_ok=True)
        _model_file(signals).write_text(json.dumps(identity.to_dict(), indent=2) + "\n", "utf-8")


@dataclass(frozen=True)
class SignalRow:
    """One labelled question as the pipeline answered it, with every signal it reported."""

    id: str
    article: str
    question: str
    golds: tuple[str, ...]  # empty: unanswerable by design
    path: str  # "declined" (the model's own refusal), "checked" (judged), "other" kind
    answer: str
    right: bool
    signals: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    kind: str = "fact"
    # The cited spans (document, start, end), so a lexical signal changed later can be
    # recomputed from the file without answering again; and the seconds per stage.
    cited: tuple[tuple[str, int, int], ...] = ()
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def answerable(self) -> bool:
        return bool(self.golds)


def read_rows(path: Path) -> list[SignalRow]:
    """Every row of a signals file (a missing file has none)."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            raw["golds"] = tuple(raw["golds"])
            raw["cited"] = tuple(tuple(c) for c in raw.get("cited", ()))
            rows.append(SignalRow(**raw))
    return rows


def calibration_questions(seed: int) -> list:
    """Every calibration-split SQuAD question, in one seeded order."""
    from eval.squad2 import load_corpus

    questions = [q for q in load_corpus(more=True).questions if q.split == "calibration"]
    random.Random(seed).shuffle(questions)
    return questions


def row_of(question, answer) -> SignalRow:
    """What one answer tells the fit (``question`` is a :class:`eval.squad2.SquadQuestion`)."""
    from eval.metrics import best, contains
    from qa.text import strip_markers

    claim = strip_markers(answer.text)
    right = not answer.abstained and bool(best(contains, claim, question.answers))
    # Collecting, the judge refuses nothing itself: a refusal is the model's own.
    if answer.abstained:
        path = "declined"
    elif "similarity" in answer.signals:  # the judge computed its signals: a checked kind
        path = "checked"
    else:
        path = "other"
    return SignalRow(
        question.id,
        question.doc.removesuffix(".txt"),
        question.question,
        tuple(question.answers),
        path,
        answer.text,
        right,
        {k: round(float(v), 5) for k, v in answer.signals.items()},
        round(answer.timings.get("total", 0.0), 3),
        answer.kind,
        tuple((c.doc, c.start, c.end) for c in answer.citations),
        {k: round(v, 3) for k, v in answer.timings.items()},
    )


def answer_into(
    out: Path,
    pipeline,
    questions: list,
    workers: int,
    deadline: float | None,
    article: str | None = None,
) -> int:
    """Answer ``questions`` (``workers`` at once) until ``deadline`` and append a row each
    to ``out`` (``article`` overrides the rows' group); how many were added. A question
    the model or the index failed is left out with a line, so the next run retries it.
    A progress bar shows the rows done of all and the time left."""
    from rich.progress import MofNCompleteColumn, Progress

    from qa.errors import QAError

    lock = threading.Lock()
    added = 0

    def one(question) -> None:
        nonlocal added
        if deadline is not None and time.monotonic() > deadline:
            return
        try:
            answer = pipeline.ask(question.question)
        except QAError as exc:
            bar.console.print(f"{question.id}: not answered ({exc}); a later --collect retries it")
            bar.advance(task)
            return
        row = row_of(question, answer)
        row = replace(row, article=article) if article else row
        with lock, out.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(asdict(row), ensure_ascii=False) + "\n")
            added += 1
            bar.advance(task)

    with Progress(*Progress.get_default_columns(), MofNCompleteColumn()) as bar:
        task = bar.add_task(out.name, total=len(questions))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for _ in pool.map(one, questions):
                pass
    return added


def collect(
    config: Config, out: Path, limit: int | None, seed: int, workers: int, minutes: float | None
) -> int:
    """Answer the questions not yet in ``out`` and append their rows; how many were added."""
    from eval.squad2 import load_corpus, write_documents
    from index.ingest import ingest
    from qa.pipeline import get_pipeline

    suite = config.replace(seeds_dir=STORE / "docs", store_dir=STORE / "store", answerability=False)
    write_documents(load_corpus(more=True).documents, suite.seeds_dir)
    ingest(suite.seeds_dir, suite)
    done = {row.id for row in read_rows(out)}
    todo = [q for q in calibration_questions(seed) if q.id not in done]
    if limit is not None:
        todo = todo[: max(0, limit - len(done))]
    pipeline = get_pipeline(suite)
    record_model(out, identify(pipeline.llm))
    out.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + minutes * 60 if minutes else None
    print(f"{len(done)} rows already in {out}; answering {len(todo)} more", flush=True)
    return answer_into(out, pipeline, todo, workers, deadline)


def collect_whole_prompt(
    config: Config, out: Path, limit: int | None, seed: int, workers: int, minutes: float | None
) -> int:
    """Answer calibration questions over corpora of one piece each (the whole piece is the
    prompt, as on a short document a user brings), piece by piece in a seeded order, and
    append their rows to ``out`` (resumes; ``article`` is the piece's article, the group
    for cross-validation). One engine serves every piece; each piece's prompt is read
    once. A piece whose passages do not fit the prompt budget is skipped with a line."""
    from eval.squad2 import load_corpus, whole_prompt_pieces
    from qa.engine import start_local_engine
    from qa.models import LOCAL_MODEL_NAME

    budget = int(config.context_char_budget * 0.9)  # passages add a little to the text
    pieces = whole_prompt_pieces(load_corpus(more=True), "calibration", budget)
    random.Random(seed).shuffle(pieces)
    done = {row.id for row in read_rows(out)}
    engine = None if config.uses_openai_server else start_local_engine(config)
    served = config.replace(answerability=False)
    if engine is not None:
        served = served.replace(openai_base_url=f"{engine.url}/v1", openai_model=LOCAL_MODEL_NAME)
    deadline = time.monotonic() + minutes * 60 if minutes else None
    out.parent.mkdir(parents=True, exist_ok=True)
    added = 0
    try:
        for piece in pieces:
            todo = [q for q in piece.questions if q.id not in done]
            if limit is not None:
                todo = todo[: max(0, limit - len(done) - added)]
            if todo and (deadline is None or time.monotonic() < deadline):
                added += _answer_piece(served, piece, todo, out, workers, deadline)
                print(f"{piece.name}: {len(done) + added} rows in {out}", flush=True)
    finally:
        if engine is not None:
            engine.close()
    return added


def _answer_piece(
    config: Config, piece, todo: list, out: Path, workers: int, deadline: float | None
) -> int:
    """Index ``piece`` as a corpus of its own and append a row per question; how many."""
    from eval.squad2 import write_documents
    from index.ingest import ingest
    from qa.context import whole_corpus_fits
    from qa.pipeline import build_pipeline

    where = WHOLE_PROMPT_STORES / piece.name.removesuffix(".txt")
    suite = config.replace(seeds_dir=where / "docs", store_dir=where / "store")
    write_documents({piece.name: piece.text}, suite.seeds_dir)
    ingest(suite.seeds_dir, suite)
    pipeline = build_pipeline(suite)
    try:
        record_model(out, identify(pipeline.llm))
        if not whole_corpus_fits(pipeline.index.passages, suite.context_char_budget):
            print(f"{piece.name}: its passages exceed the prompt budget; skipped")
            return 0
        return answer_into(out, pipeline, todo, workers, deadline, article=piece.article)
    finally:
        pipeline.close()
