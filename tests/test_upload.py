"""Adding and removing documents in the chat, in a real browser, with the real models.

The app serves a copy of the seed folder; the test drops a Word file and a saved web page
onto the page's upload area in headless Chromium, waits for the indexing to finish, asks
a question only the Word file answers, then removes the file and asks again. The app's
model is the session's engine (conftest).
"""

from __future__ import annotations

import re
import shutil

import pytest
from documents import SEED, docx_file, news_page
from served_app import Served, start_app

START_TIMEOUT = 240
ANSWER_TIMEOUT = 180
FINAL = "#qa-chatbot .qa-answer:not(.qa-streaming)"

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    base = tmp_path_factory.mktemp("upload")
    seeds = base / "documents"
    seeds.mkdir()
    shutil.copy(SEED, seeds / SEED.name)
    uploads = base / "to-upload"
    uploads.mkdir()
    docx_file(
        uploads / "harbor.docx",
        [
            "Harbor Bridge Repairs",
            "The harbor bridge in Port Ellis closed for repairs on Monday, officials said.",
            "The repairs will cost 12 million dollars and last until March, the city council "
            "announced.",
        ],
    )
    (uploads / "garden.html").write_text(
        news_page(
            [
                "The Port Ellis botanical garden opened a new greenhouse on Saturday.",
                "The greenhouse holds 300 species of orchids, the garden's director said.",
            ],
            "New greenhouse opens in Port Ellis",
            "Garden Desk",
        ),
        encoding="utf-8",
    )
    return base, seeds, uploads


@pytest.fixture(scope="module")
def server(workspace, engine_flags):
    base, seeds, _ = workspace
    served = start_app(base, START_TIMEOUT, seeds=seeds, extra=engine_flags)
    try:
        yield served
    finally:
        served.stop()


def _ask(page, question: str) -> None:
    before = page.locator(FINAL).count()
    box = page.locator("#qa-input textarea")
    box.fill(question)
    box.press("Enter")
    page.wait_for_function(
        f"document.querySelectorAll({FINAL!r}).length > {before}", timeout=ANSWER_TIMEOUT * 1000
    )


def test_upload_in_the_browser_then_ask_then_remove(chromium, server: Served, workspace):
    from playwright.sync_api import expect

    _, seeds, uploads = workspace
    context = chromium.new_context(viewport={"width": 1200, "height": 1400})
    page = context.new_page()
    try:
        page.goto(server.url)
        page.locator("#qa-input textarea").wait_for(timeout=60_000)
        page.locator("#qa-documents").get_by_text("Add or remove documents").click()
        files = [str(uploads / "harbor.docx"), str(uploads / "garden.html")]
        page.locator("#qa-upload input[type=file]").set_input_files(files)

        status = page.locator("#qa-documents-status")
        expect(status).to_contain_text("Indexed", timeout=180_000)
        header = page.locator("#qa-header")
        expect(header).to_contain_text("harbor.docx")
        expect(header).to_contain_text("garden.html")
        expect(header).to_contain_text(SEED.name)
        assert (seeds / "harbor.docx").exists()  # copied into the folder the CLI indexes

        _ask(page, "How much will the harbor bridge repairs cost?")
        answer = page.locator(FINAL).last
        expect(answer).to_contain_text("12 million")
        expect(answer).not_to_have_class(re.compile("qa-abstained|qa-error"))
        source = page.locator("#qa-chatbot .qa-source").last
        expect(source.locator(".qa-source-doc")).to_have_text("harbor.docx")
        expect(source.locator("mark.qa-highlight")).to_contain_text("12 million dollars")

        page.locator("#qa-remove-choice input").fill("harbor.docx")
        page.get_by_role("option", name="harbor.docx").click()
        page.locator("#qa-remove").click()
        expect(status).to_contain_text("Removed harbor.docx", timeout=120_000)
        expect(header).not_to_contain_text("harbor.docx")
        assert not (seeds / "harbor.docx").exists()

        _ask(page, "How much will the harbor bridge repairs cost?")
        answer = page.locator(FINAL).last
        expect(answer).to_have_class(re.compile("qa-abstained"))
        expect(answer).not_to_contain_text("12 million")
    except AssertionError as exc:  # what the app said is the first thing to read
        raise AssertionError(f"{exc}\n--- app log ---\n{server.log()[-4000:]}") from exc
    finally:
        context.close()


def test_an_upload_over_the_size_limit_is_refused_with_a_message(server: Served, workspace):
    import httpx

    from index.extract import MAX_FILE_BYTES

    base, seeds, _ = workspace
    big = base / "huge.txt"
    with big.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1024)  # sparse: one byte over the limit and a bit
    with big.open("rb") as handle:
        response = httpx.post(
            f"{server.url}gradio_api/upload",
            files={"files": ("huge.txt", handle, "text/plain")},
            timeout=120,
        )
    assert response.status_code == 413, response.text
    assert "size" in response.text.lower()
    assert not (seeds / "huge.txt").exists()
    assert server.process.poll() is None
