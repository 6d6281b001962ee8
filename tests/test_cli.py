"""The ``qa`` command as a user runs it: real subprocesses, exit codes, messages."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SEED = ROOT / "seeds" / "000_61f43937c72d7f92.txt"


def qa(*args, cwd=ROOT, timeout=600):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "qa", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("question", ["", "   ", "x" * 2001])
def test_bad_questions_exit_2_with_one_line(question, tmp_path):
    result = qa("ask", question, "--store", tmp_path / "store")
    assert result.returncode == 2
    assert result.stderr.startswith("error: the question")
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_documents_dir_is_reported(tmp_path):
    result = qa("ingest", tmp_path / "nowhere", "--store", tmp_path / "store")
    assert result.returncode == 2
    assert "does not exist" in result.stderr


def test_a_file_that_is_not_a_model_is_refused(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_text("not a model")
    result = qa("ask", "Who is Jung Pak?", "--store", tmp_path / "store", "--model", fake)
    assert result.returncode == 2
    assert "not a GGUF" in result.stderr


@pytest.mark.slow
def test_ingest_then_ask_then_a_corrupt_store(tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(SEED, seeds / SEED.name)
    store = tmp_path / "store"
    first = qa("ingest", seeds, "--store", store)
    assert first.returncode == 0, first.stderr
    assert "15 added" in first.stdout or "added" in first.stdout
    again = qa("ingest", seeds, "--store", store)
    assert " 0 added, 0 removed" in again.stdout

    answer = qa("ask", "How far did the missiles fly?", "--store", store, "--seeds", seeds)
    assert answer.returncode == 0, answer.stderr
    assert "400 miles" in answer.stdout
    assert "[1] 000_61f43937c72d7f92.txt:" in answer.stdout

    (store / "chroma.sqlite3").write_bytes(b"this is not a database" * 100)
    broken = qa("ask", "How far did the missiles fly?", "--store", store, "--seeds", seeds)
    assert broken.returncode == 2
    assert "qa ingest --rebuild" in broken.stderr
    assert "Traceback" not in broken.stderr
    rebuilt = qa("ingest", seeds, "--store", store, "--rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
