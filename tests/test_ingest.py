"""Ingestion into a real Chroma store with the real embedding model."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from index.ingest import ingest
from index.store import IN_PROGRESS, Manifest, open_collection, write_lock
from qa.config import Config
from qa.errors import (
    EmbeddingMismatchError,
    IndexBusyError,
    IndexCorruptError,
    IndexMissingError,
    SeedsNotFoundError,
)

ROOT = Path(__file__).parents[1]
SEED = ROOT / "seeds" / "000_61f43937c72d7f92.txt"

pytestmark = pytest.mark.slow


@pytest.fixture
def setup(tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(SEED, seeds / "article.txt")
    config = Config.from_env(seeds_dir=seeds, store_dir=tmp_path / "store")
    return seeds, config


def _ids(config):
    collection = open_collection(
        config.store_dir, config.collection, config.embed_model, create=False
    )
    return collection.get(include=["metadatas"])


def test_reingest_is_a_no_op_and_creates_no_duplicates(setup):
    _, config = setup
    first = ingest(config=config)
    assert first.files == 1 and first.added == first.passages > 10
    before = sorted(_ids(config)["ids"])
    second = ingest(config=config)
    assert (second.added, second.removed, second.unchanged) == (0, 0, first.passages)
    assert sorted(_ids(config)["ids"]) == before
    assert Manifest.read(config.store_dir).generation == 2


def test_edited_file_replaces_its_passages_and_deleted_file_is_removed(setup):
    seeds, config = setup
    (seeds / "note.md").write_text(
        "The harbor bridge closed for repairs on Monday, officials said.\n"
    )
    ingest(config=config)
    text = (seeds / "article.txt").read_text()
    before = ingest(config=config)
    assert before.unchanged == before.passages
    (seeds / "article.txt").write_text(text.replace("more than 400 miles", "about 300 miles"))
    report = ingest(config=config)
    # The edited passage and every later one (their offsets moved) are replaced, not added.
    assert report.added == report.removed > 0
    assert report.passages == before.passages
    collection = open_collection(
        config.store_dir, config.collection, config.embed_model, create=False
    )
    stored = collection.get(include=["documents"])
    assert len(stored["ids"]) == len(set(stored["ids"])) == report.passages
    joined = " ".join(stored["documents"])
    assert "about 300 miles" in joined and "more than 400 miles" not in joined
    (seeds / "note.md").unlink()
    report = ingest(config=config)
    assert report.removed == 1 and report.files == 1
    assert {m["doc"] for m in _ids(config)["metadatas"]} == {"article.txt"}


def test_binary_and_non_utf8_files_are_skipped_with_a_reason(setup):
    seeds, config = setup
    (seeds / "image.txt").write_bytes(b"\x89PNG\x00\x00binary")
    (seeds / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    report = ingest(config=config)
    assert report.files == 1
    assert any("binary" in s for s in report.skipped)
    assert any("UTF-8" in s for s in report.skipped)


def test_missing_or_empty_seeds_dir_is_a_clear_error(tmp_path):
    config = Config.from_env(seeds_dir=tmp_path / "nope", store_dir=tmp_path / "store")
    with pytest.raises(SeedsNotFoundError, match="does not exist"):
        ingest(config=config)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SeedsNotFoundError, match=r"no documents under .*\.txt, \.md, \.html"):
        ingest(tmp_path / "empty", config)


def test_missing_index_and_other_embedding_model_are_reported(setup):
    _, config = setup
    with pytest.raises(IndexMissingError, match="qa ingest"):
        open_collection(config.store_dir, config.collection, config.embed_model, create=False)
    ingest(config=config)
    with pytest.raises(EmbeddingMismatchError, match="--rebuild"):
        open_collection(config.store_dir, config.collection, "other-model", create=False)


def test_second_writer_is_refused_while_the_first_holds_the_lock(setup):
    _, config = setup
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from index.store import write_lock\n"
            "with write_lock(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(30)",
            str(config.store_dir),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with (
            pytest.raises(IndexBusyError, match="another process"),
            write_lock(config.store_dir, timeout=0.5),
        ):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_killed_ingest_is_detected_and_a_rerun_repairs_it(setup):
    _, config = setup
    ingest(config=config)
    # What a SIGKILL mid-ingest leaves behind: the marker with a pid that no longer runs.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (config.store_dir / IN_PROGRESS).write_text(str(dead.pid))
    with pytest.raises(IndexCorruptError, match="interrupted"):
        open_collection(config.store_dir, config.collection, config.embed_model, create=False)
    report = ingest(config=config)
    assert report.added == 0
    assert not (config.store_dir / IN_PROGRESS).exists()
    open_collection(config.store_dir, config.collection, config.embed_model, create=False)


def test_ingest_killed_for_real_midway_then_rerun_gives_a_clean_index(setup):
    seeds, config = setup
    for i in range(30):
        (seeds / f"extra{i}.txt").write_text(
            f"Report {i}. The depot {i} stored grain for the town.\n"
        )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "qa", "ingest", str(seeds), "--store", str(config.store_dir)],
        cwd=ROOT,
        env=env,
    )
    marker = config.store_dir / IN_PROGRESS
    for _ in range(600):
        if marker.exists():
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    report = ingest(config=config)
    documents = _ids(config)
    assert len(documents["ids"]) == len(set(documents["ids"])) == report.passages
    assert not marker.exists()
