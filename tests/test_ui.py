"""The web chat, end to end: the real app (real models, a real Chroma store) served by
Gradio in a subprocess, driven through ``gradio_client`` and a headless Chromium.

One server is started for the module with a fresh store, so its first start also
indexes the seeds.
"""

from __future__ import annotations

import re
import threading
import time

import pytest
from served_app import ROOT, Served, answer_part, chat, client_for, start_app

SCREENSHOT = ROOT / "test-output" / "ui-answer.png"
START_TIMEOUT = 240  # seconds: the first start indexes the seeds and loads the models
ANSWER_TIMEOUT = 180  # seconds per answer, generous for a busy 2-core machine

pytestmark = pytest.mark.slow


# --- the server ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Served:
    served = start_app(tmp_path_factory.mktemp("ui"), START_TIMEOUT)
    try:
        yield served
    finally:
        served.stop()


def _chat(client, question: str) -> str:
    """The chat endpoint's final message (answer + sources as HTML, or an error)."""
    return chat(client, question, ANSWER_TIMEOUT)


# --- startup ---------------------------------------------------------------------------
def test_startup_shows_progress(server):
    log = server.log()
    assert "Indexing seeds…" in log  # fresh store: the seeds were indexed first
    assert "Loading models…" in log
    assert "Ready:" in log
    assert log.index("Indexing seeds…") < log.index("Loading models…") < log.index("Ready:")


# --- gradio_client -----------------------------------------------------------------------
def test_client_chat_returns_cited_answer(server):
    result = _chat(client_for(server), "Where were the missiles fired from?")
    assert "Sunan" in answer_part(result), result
    assert "[1]" in answer_part(result), result
    assert 'class="qa-source"' in result and 'class="qa-highlight"' in result, result
    assert "qa-error" not in result


def test_client_empty_or_too_long_question_is_a_readable_error(server):
    client = client_for(server)
    for question in ["", "   \n\t  "]:
        result = _chat(client, question)
        assert "qa-error" in result, result
        assert "the question is empty" in result, result
        assert "Traceback" not in result
    result = _chat(client, "x" * 2001)
    assert "qa-error" in result and "the limit is 2,000" in result, result
    # The server is still up and answering.
    assert server.process.poll() is None
    result = _chat(client, "Where were the missiles fired from?")
    assert "Sunan" in answer_part(result), result


def test_client_follow_up_uses_the_conversation(server):
    client = client_for(server)  # one client = one session = one conversation
    first = _chat(client, "Who is Lloyd Austin?")
    assert "qa-error" not in first and "qa-abstained" not in first, first
    follow_up = _chat(client, "Who did he meet on Sept. 7?")
    read_as = re.search(r"read as: “(.*?)”", follow_up)
    assert read_as and "Austin" in read_as.group(1), follow_up  # "he" resolved from history


def test_client_ask_endpoint_returns_the_typed_answer(server):
    from gradio_client.exceptions import AppError

    client = client_for(server)
    result = client.submit("How far did the missiles fly?", api_name="/ask").result(
        timeout=ANSWER_TIMEOUT
    )
    assert isinstance(result, dict), result
    assert not result["abstained"]
    assert "400" in result["text"] and "[1]" in result["text"], result
    assert any("400 miles" in c["quote"] for c in result["citations"]), result
    assert result["certainty"] in ("likely", "unsure") and result["confidence"] is not None
    with pytest.raises(AppError, match="the question is empty"):
        client.submit("  ", api_name="/ask").result(timeout=ANSWER_TIMEOUT)


def test_concurrent_requests_are_answered_each_with_its_own_answer(server):
    questions = {
        "Where were the missiles fired from?": "Sunan",
        "How far did the missiles fly?": "400",
    }
    results: dict[str, str] = {}

    def run(question: str) -> None:
        results[question] = _chat(client_for(server), question)

    threads = [threading.Thread(target=run, args=(q,)) for q in questions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=2 * ANSWER_TIMEOUT)
    for question, expected in questions.items():
        assert expected in answer_part(results[question]), results.get(question)
    assert server.process.poll() is None


# --- the browser ----------------------------------------------------------------------------
FINAL = "#qa-chatbot .qa-sources, #qa-chatbot .qa-error"
WATCH_STREAMING = """() => {
  window.__qaSawStreaming = false;
  new MutationObserver(() => {
    if (document.querySelector('#qa-chatbot .qa-streaming')) window.__qaSawStreaming = true;
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture
def page(chromium, server):
    context = chromium.new_context(viewport={"width": 1200, "height": 1100})
    page = context.new_page()
    page.dialogs = []  # any alert() would land here
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(server.url)
    page.locator("#qa-input textarea").wait_for(timeout=60_000)
    yield page
    context.close()


def _ask_in_browser(page, question: str) -> None:
    box = page.locator("#qa-input textarea")
    box.fill(question)
    box.press("Enter")
    page.locator(FINAL).first.wait_for(timeout=ANSWER_TIMEOUT * 1000)


@pytest.mark.browser
def test_browser_streams_a_cited_answer_with_highlighted_source(page):
    from playwright.sync_api import expect

    header = page.locator("#qa-header")
    expect(header).to_contain_text("000_61f43937c72d7f92.txt")
    expect(header).to_contain_text("20 passages")
    expect(header).to_contain_text("Qwen2.5-Coder")
    expect(header).to_contain_text("judge fitted for Qwen2.5-Coder-1.5B")
    page.evaluate(WATCH_STREAMING)

    _ask_in_browser(page, "How far did the missiles fly?")

    answer = page.locator("#qa-chatbot .qa-answer").last
    expect(answer).to_contain_text("[1]")
    expect(answer).not_to_have_class(re.compile("qa-abstained|qa-error|qa-streaming"))
    highlight = page.locator("#qa-chatbot .qa-source mark.qa-highlight", has_text="400 miles")
    expect(highlight.first).to_be_visible()
    # How sure it is stands beside the answer, in words the help under the chat explains.
    expect(answer.locator(".qa-certainty")).to_have_text(re.compile(r"^(likely|unsure — read)"))
    expect(page.locator("#qa-certainty-help")).to_contain_text("How sure")
    assert page.evaluate("window.__qaSawStreaming"), "the answer was not streamed"

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # [1] links to its source, and the source is a clickable (collapsible) <details>.
    href = answer.locator("a.qa-cite").first.get_attribute("href")
    assert href and href.startswith("#qa-src-")
    source = page.locator(f"details.qa-source[id='{href[1:]}']")
    expect(source).to_have_attribute("open", "")
    source.locator("summary").click()
    expect(source).not_to_have_attribute("open", "")
    assert not page.dialogs


# Every state the question's answer (the chat's next .qa-answer) passes through, as shown.
RECORD_STATES = """before => {
  window.__qaStates = [];
  const note = () => {
    const answer = document.querySelectorAll('#qa-chatbot .qa-answer')[before];
    if (!answer) return;
    const state = {streaming: answer.classList.contains('qa-streaming'), text: answer.innerText};
    const previous = window.__qaStates[window.__qaStates.length - 1];
    if (!previous || previous.text !== state.text || previous.streaming !== state.streaming)
      window.__qaStates.push(state);
  };
  if (window.__qaObserver) window.__qaObserver.disconnect();  // the last question's
  window.__qaObserver = new MutationObserver(note);
  window.__qaObserver.observe(document.body,
    {subtree: true, childList: true, characterData: true, attributes: true});
}"""
ANSWERED = """before => document.querySelectorAll('#qa-chatbot .qa-answer').length > before
  && !document.querySelector('#qa-chatbot .qa-streaming')"""


@pytest.mark.browser
def test_browser_never_takes_back_an_answer_it_showed(page):
    """The draft streams visibly as unchecked; what replaces it is final and stays."""
    from qa.chat_html import CHECKING_LABEL

    # A fact, and a question the article only seems to answer (its draft may be refused).
    for question in ["How far did the missiles fly?", "How fast did the missiles fly?"]:
        before = page.locator("#qa-chatbot .qa-answer").count()
        page.evaluate(RECORD_STATES, before)
        box = page.locator("#qa-input textarea")
        box.fill(question)
        box.press("Enter")
        page.wait_for_function(ANSWERED, arg=before, timeout=ANSWER_TIMEOUT * 1000)
        page.wait_for_timeout(1500)  # anything that would still replace the final answer
        states = page.evaluate("window.__qaStates")
        shown = "\n".join(map(str, states))
        drafts = [s for s in states if s["streaming"]]
        assert drafts, f"{question}: no draft was streamed: {shown}"
        assert all(CHECKING_LABEL in s["text"] for s in drafts), shown
        first_final = next(i for i, s in enumerate(states) if not s["streaming"])
        finals = states[first_final:]
        assert all(not s["streaming"] for s in finals), shown
        assert len({s["text"] for s in finals}) == 1, f"a final answer changed: {shown}"
        assert CHECKING_LABEL not in finals[-1]["text"]


@pytest.mark.browser
def test_browser_offers_examples_about_the_indexed_documents(page):
    from playwright.sync_api import expect

    chat = page.locator("#qa-chatbot")
    expect(chat).to_contain_text("Summarize 000_61f43937c72d7f92.txt.")
    assert "missile" not in chat.inner_text().lower()
    expect(page.locator("#qa-input textarea")).to_have_attribute(
        "placeholder", re.compile("your documents")
    )


@pytest.mark.browser
def test_browser_unanswerable_question_looks_different(page):
    from playwright.sync_api import expect

    _ask_in_browser(page, "Who is the president of France?")

    abstained = page.locator("#qa-chatbot .qa-answer.qa-abstained")
    expect(abstained).to_be_visible()
    expect(abstained).to_contain_text("Not in the document")
    border = abstained.evaluate("el => getComputedStyle(el).borderLeftWidth")
    assert border != "0px"


@pytest.mark.browser
def test_browser_html_in_a_question_is_shown_as_text(page):
    from playwright.sync_api import expect

    question = (
        "<img src=x onerror=alert(1)> <script>alert(2)</script> Where were the missiles fired from?"
    )
    _ask_in_browser(page, question)

    chat = page.locator("#qa-chatbot")
    expect(chat).to_contain_text("<img src=x onerror=alert(1)>")  # shown literally
    expect(chat).to_contain_text("<script>alert(2)</script>")
    assert page.locator("img[src='x']").count() == 0
    assert chat.locator("img").count() == 0
    assert chat.locator("script").count() == 0
    time.sleep(1)  # an onerror handler would fire right away
    assert not page.dialogs
