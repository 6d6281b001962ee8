"""Managing the corpus from the command line: add files, list them, remove one.

Real subprocesses, a real Chroma store and the real embedding model (no LLM).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from documents import SEED, docx_file, pdf_file, seed_paragraphs
from test_cli import qa

from index.store import Manifest

pytestmark = pytest.mark.slow


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "documents"
    folder.mkdir()
    shutil.copy(SEED, folder / "korea.txt")
    elsewhere = tmp_path / "downloads"
    elsewhere.mkdir()
    docx_file(elsewhere / "harbor.docx", ["The harbor bridge closed for repairs on Monday."])
    pdf_file(elsewhere / "report.pdf", seed_paragraphs(), per_page=4)
    (elsewhere / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    flags = ["--seeds", folder, "--store", tmp_path / "store"]
    return folder, elsewhere, flags


def tmp_store(flags: list) -> Path:
    return Path(flags[flags.index("--store") + 1])


def test_add_list_and_remove_documents(corpus):
    folder, elsewhere, flags = corpus
    first = qa("ingest", *flags)
    assert first.returncode == 0, first.stderr

    added = qa(
        "add", elsewhere / "harbor.docx", elsewhere / "report.pdf", elsewhere / "photo.jpg", *flags
    )
    assert added.returncode == 0, added.stderr
    assert "3 file(s)" in added.stdout and "photo.jpg (unsupported file type .jpg" in added.stdout
    assert (folder / "harbor.docx").exists() and (folder / "report.pdf").exists()
    assert not (folder / "photo.jpg").exists()
    # Documents are read in the order they were added (prompts list them so).
    assert Manifest.read(tmp_store(flags)).added() == {
        "korea.txt": 1, "harbor.docx": 2, "report.pdf": 2
    }  # fmt: skip

    listed = qa("docs", *flags)
    assert listed.returncode == 0, listed.stderr
    lines = {line.split("\t")[0]: line for line in listed.stdout.splitlines()}
    assert set(lines) == {"korea.txt", "harbor.docx", "report.pdf"}
    assert "pages" in lines["report.pdf"] and "pages" not in lines["korea.txt"]

    removed = qa("remove", "harbor.docx", *flags)
    assert removed.returncode == 0, removed.stderr
    assert not (folder / "harbor.docx").exists()
    assert (elsewhere / "harbor.docx").exists()  # the user's own copy is never touched
    listed = qa("docs", *flags)
    assert "harbor.docx" not in listed.stdout and "report.pdf" in listed.stdout
    assert Manifest.read(tmp_store(flags)).added() == {"korea.txt": 1, "report.pdf": 2}

    unknown = qa("remove", "nothing.txt", *flags)
    assert unknown.returncode == 2 and "no indexed document named 'nothing.txt'" in unknown.stderr


def test_ingest_mirrors_files_and_folders_given_together(corpus, tmp_path):
    folder, elsewhere, flags = corpus
    result = qa("ingest", folder, elsewhere / "report.pdf", *flags)
    assert result.returncode == 0, result.stderr
    assert "2 file(s)" in result.stdout
    listed = qa("docs", *flags)
    assert {line.split("\t")[0] for line in listed.stdout.splitlines()} == {
        "korea.txt",
        "report.pdf",
    }
