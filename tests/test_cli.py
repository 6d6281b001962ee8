"""The ``qa`` command as a user runs it: real subprocesses, exit codes, messages."""

import os
import re
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


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("QA_TOP_K", "abc", "QA_TOP_K='abc' is not a whole number"),
        ("QA_SECOND_LOOK", "ture", "QA_SECOND_LOOK='ture' is not true or false"),
        ("QA_CAUTION", "extreme", "QA_CAUTION='extreme' is not one of low, balanced, high"),
        ("QA_SPECULATIVE", "maybe", "QA_SPECULATIVE='maybe' is not one of off, ngram"),
        ("QA_LOG_LEVEL", "loud", "QA_LOG_LEVEL='LOUD' is not one of DEBUG, INFO"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(variable, value, says, tmp_path, monkeypatch):
    monkeypatch.setenv(variable, value)
    result = qa("ask", "hi", "--store", tmp_path / "store")
    assert result.returncode == 2 and result.stderr.startswith(f"error: {says}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_version_names_the_package():
    from qa.cli import package_version

    result = qa("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"qa {package_version()}"
    assert re.fullmatch(r"\d+\.\d+\.\d+", package_version()), package_version()


def test_verbose_logs_at_debug(tmp_path):
    """``-v`` switches the request log on; without it the same command logs nothing."""
    quiet = qa("docs", "--store", tmp_path / "store")
    loud = qa("-v", "docs", "--store", tmp_path / "store")
    assert quiet.returncode == loud.returncode, loud.stderr
    assert " DEBUG " not in quiet.stderr
    assert " DEBUG " in loud.stderr and "settings: {'seeds_dir'" in loud.stderr, loud.stderr
    assert "openai_api_key" not in loud.stderr and "chroma_token" not in loud.stderr


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
    from index.store import Manifest

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(SEED, seeds / SEED.name)
    store = tmp_path / "store"
    first = qa("ingest", seeds, "--store", store)
    assert first.returncode == 0, first.stderr
    found = re.search(r"1 file\(s\), (\d+) passages", first.stdout)
    assert found, first.stdout
    n = int(found.group(1))  # the article's passages, as the manifest records them too
    assert n >= 1 and Manifest.read(store).docs[SEED.name]["passages"] == n
    assert f"1 file(s), {n} passages: {n} added, 0 removed, 0 unchanged" in first.stdout
    again = qa("ingest", seeds, "--store", store)
    assert f"1 file(s), {n} passages: 0 added, 0 removed, {n} unchanged" in again.stdout

    answer = qa("ask", "How far did the missiles fly?", "--store", store, "--seeds", seeds)
    assert answer.returncode == 0, answer.stderr
    assert "400 miles" in answer.stdout
    assert "[1] 000_61f43937c72d7f92.txt:" in answer.stdout

    # One word of one passage changed (same length: no other passage moves) and a new
    # one-passage document: exactly those are embedded, the stale passage is removed.
    article = seeds / SEED.name
    text = article.read_text()
    assert text.count("armored train") == 1
    article.write_text(text.replace("armored train", "armored plane"))
    (seeds / "harbor.txt").write_text("The Millbrook harbor will be dredged next spring.\n")
    changed = qa("ingest", seeds, "--store", store)
    assert changed.returncode == 0, changed.stderr
    expected = f"2 file(s), {n + 1} passages: 2 added, 1 removed, {n - 1} unchanged"
    assert expected in changed.stdout, changed.stdout

    (store / "chroma.sqlite3").write_bytes(b"this is not a database" * 100)
    broken = qa("ask", "How far did the missiles fly?", "--store", store, "--seeds", seeds)
    assert broken.returncode == 2
    assert "qa ingest --rebuild" in broken.stderr
    assert "Traceback" not in broken.stderr
    rebuilt = qa("ingest", seeds, "--store", store, "--rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    expected = f"2 file(s), {n + 1} passages: {n + 1} added, 0 removed, 0 unchanged"
    assert expected in rebuilt.stdout, rebuilt.stdout
