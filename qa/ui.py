"""The web chat: streaming answers with numbered, highlighted sources (Gradio).

``qa chat`` calls :func:`launch`; :func:`build_app` returns the ``gr.Blocks`` for tests or
for mounting elsewhere. The page shows which documents are indexed and which model
answers, a chat whose answers stream token by token and are then replaced by the
verified answer, and under each answer its sources: the passage each ``[n]`` points at,
with the exact supporting span highlighted.

Concurrency: the model is llama.cpp's server, which decodes several answers in one
batch over its slots. Every event that answers (typing a question, clicking an example,
retrying, and the ``/chat`` and ``/ask`` API endpoints) shares one Gradio queue
(:data:`CONCURRENCY_ID`) whose concurrency is the server's slot count: that many people
are answered at once, anyone beyond waits in line (the browser shows the queue
position). Adding and removing documents has a queue of its own (one at a time); the
pipeline swaps in the new index between answers.

Team use: ``launch(..., auth=[(user, password), ...])`` puts Gradio's login in front of
the page and the API; :func:`launch` refuses a non-local ``host`` without it unless
``allow_no_auth`` says so. Uploads larger than the ingester's limit are refused by
Gradio with a message before they are stored.

API (``gradio_client``): ``Client(url).predict("Where were the missiles fired from?",
api_name="/chat")`` returns the final chat message as a string: the verified answer with
its inline ``[n]`` markers, followed by the sources as HTML (or a readable error message).
Calls made with the same ``Client`` share one conversation, so follow-ups work.
``Client(url).predict(question, api_name="/ask")`` returns the typed answer as JSON (a
dict with ``text``, ``citations``, ``abstained``, ``timings``, ...; no history); an
invalid question raises ``gradio_client.exceptions.AppError`` with the reason.

Safety: every piece of document text, question text and model output is passed through
:func:`html.escape` before it is put into HTML, and the user's own messages are escaped
before the chatbot displays them, so ``<script>`` or ``<img onerror=...>`` typed into a
question or written in a document shows up as text and never runs.
"""

from __future__ import annotations

import html
import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from qa.chat_auth import Credentials, check_exposure
from qa.chat_html import (
    CERTAINTY_HELP,
    CSS,
    answer_text,
    example_questions,
    render_answer,
    render_error,
    render_header,
    render_streaming,
)
from qa.config import Config
from qa.errors import QAError
from qa.types import Answer, Delta
from qa.user_input import content_text

if TYPE_CHECKING:
    from qa.pipeline import Pipeline

log = logging.getLogger(__name__)

API_NAME = "chat"
"""The chat endpoint's name: ``Client(url).predict(question, api_name="/chat")``."""

CONCURRENCY_ID = "qa-answer"
"""Every event that answers shares this Gradio queue (concurrency = the model's slots)."""

DOCUMENTS_ID = "qa-documents"
"""Uploads and removals share this queue, one at a time."""


def make_document_actions(pipeline: Pipeline) -> tuple[Any, Any]:
    """The upload and remove handlers: change the documents folder, re-index, reload.

    Both return the new header, a one-line status and the documents to choose from. They
    run one at a time (:data:`DOCUMENTS_ID`); answers being written finish on the index
    they started with (the pipeline swaps snapshots between answers).
    """
    from index.corpus import add_files, remove_document

    def after(report_line: str) -> tuple[str, str, Any]:
        pipeline.refresh(wait=False)  # the model reads the new documents meanwhile
        docs = pipeline.index.docs
        header = render_header(docs, pipeline.model_name, pipeline.judged_by)
        return header, report_line, gr.update(choices=list(docs), value=None)

    def add(
        files: list[str] | None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (how Gradio injects a progress bar)
    ) -> tuple[Any, ...]:
        """Add the uploaded files to the documents folder and index them."""
        if not files:
            return gr.update(), "", gr.update(), None

        def report(stage: str, done: int, total: int) -> None:
            progress((done, total), desc=f"{stage} {done}/{total}")

        try:
            result = add_files([Path(f) for f in files], pipeline.config, progress=report)
        except QAError as exc:
            return gr.update(), f"Not added: {exc}", gr.update(), None
        return (*after(f"Indexed {result.summary()}"), None)

    def remove(name: str | None) -> tuple[Any, ...]:
        """Remove the chosen document from the documents folder and the index."""
        if not name:
            return gr.update(), "Choose a document to remove.", gr.update()
        try:
            result = remove_document(name, pipeline.config)
        except QAError as exc:
            return gr.update(), f"Not removed: {exc}", gr.update()
        return after(f"Removed {name}; index now {result.summary()}")

    return add, remove


# --- conversation history ---------------------------------------------------------------
def history_for_pipeline(history: Sequence[Any] | None) -> list[tuple[str, str]]:
    """Gradio's chat history as (question, answer) pairs, the shape
    :func:`qa.user_input.normalise_history` takes.

    User messages were HTML-escaped for display and are unescaped again; assistant
    messages lose their sources and markup; failed turns are left out.
    """
    turns: list[tuple[str, str]] = []
    pending: str | None = None
    for message in history or []:
        if isinstance(message, dict):
            role, content = message.get("role"), message.get("content")
        else:
            role, content = getattr(message, "role", None), getattr(message, "content", None)
        text = content_text(content)
        if role == "user":
            pending = html.unescape(text).strip() or None
        elif role == "assistant" and pending is not None:
            answer = answer_text(text)
            if answer:
                turns.append((pending, answer))
            pending = None
    return turns


# --- answering -------------------------------------------------------------------------
_DONE = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _stream_on_own_thread(
    pipeline: Pipeline, message: str, history: list[tuple[str, str]]
) -> Iterator[Delta | Answer]:
    """``pipeline.ask_stream`` run start to finish on a thread of its own.

    The answer keeps being generated (and its read share of the index released) on one
    thread whatever Gradio's workers do; when the browser stops or leaves, the consumer
    sets ``stop`` and generation ends at the next piece instead of running on.
    """
    items: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()

    def work() -> None:
        stream = pipeline.ask_stream(message, history)
        try:
            for item in stream:
                items.put(item)
                if stop.is_set():
                    break
        except BaseException as exc:  # handed to the consumer, which reports it
            items.put(_Failed(exc))
        finally:
            stream.close()
            items.put(_DONE)

    threading.Thread(target=work, name="qa-answer", daemon=True).start()
    try:
        while (item := items.get()) is not _DONE:
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()


def make_respond(pipeline: Pipeline):
    """The ChatInterface function: stream deltas, then the verified answer with sources."""

    def respond(message: str, history: list[dict[str, Any]]) -> Iterator[str]:
        """Answer a question about the indexed documents, streaming; the last message is
        the verified answer with inline [n] markers followed by its sources (HTML)."""
        raw = ""
        try:
            turns = history_for_pipeline(history)
            for item in _stream_on_own_thread(pipeline, message, turns):
                if isinstance(item, Delta):
                    raw += item.text
                    yield render_streaming(raw)
                elif isinstance(item, Answer):
                    yield render_answer(item, pipeline.index.passages)
        except QAError as exc:
            yield render_error(str(exc))
        except Exception as exc:
            log.exception("answering %r failed", message)
            yield render_error(
                f"something went wrong ({type(exc).__name__}: {exc}). "
                "Try again or rephrase the question."
            )

    return respond


def make_ask(pipeline: Pipeline):
    """The ``/ask`` API endpoint: one question in, the typed answer out as JSON."""

    def ask(question: str) -> dict[str, Any]:
        """Answer one question (no history). Returns the Answer as a dict: "text" with
        inline [n] markers, "citations" (number, doc, start, end, quote), "abstained"."""
        answer = None
        try:
            for item in _stream_on_own_thread(pipeline, question, []):
                if isinstance(item, Answer):
                    answer = item
        except QAError as exc:
            raise gr.Error(str(exc)) from exc
        except Exception as exc:
            log.exception("answering %r failed", question)
            raise gr.Error(f"something went wrong ({type(exc).__name__}: {exc})") from exc
        if answer is None:
            raise gr.Error("the pipeline returned no answer")
        result = answer.to_dict()
        result.pop("passages", None)  # large; the citations carry the quoted spans
        return result

    return ask


class _ChatInterface(gr.ChatInterface):
    """ChatInterface that escapes the user's own messages before they are displayed.

    The chatbot renders message text as Markdown with HTML allowed (sanitised, but an
    ``<img src=x>`` would still become an image). Escaping once, when the message is
    appended, shows exactly what was typed; the function still receives the raw text.
    """

    def _message_as_message_dict(self, message: Any, role: Any) -> Any:
        messages = super()._message_as_message_dict(message, role)
        if role == "user":
            for item in messages:
                if isinstance(item.get("content"), str):
                    item["content"] = html.escape(item["content"], quote=False)
        return messages


def _share_one_queue(app: gr.Blocks, fn: Any, limit: int) -> None:
    """Put every event that runs ``fn`` (UI submit, examples, retry, API) in one queue."""
    for block_fn in app.fns.values():
        if getattr(block_fn.fn, "__wrapped__", None) is fn:
            block_fn.concurrency_limit = limit
            block_fn.concurrency_id = CONCURRENCY_ID


# --- app -----------------------------------------------------------------------------
def prepare(config: Config) -> Pipeline:
    """Build the index from the seeds if there is none, then load the models."""
    from index.stores import open_store

    store = open_store(config)
    try:
        missing = store.read_manifest() is None
    except QAError:
        missing = False  # unreadable: the pipeline reports it with what to do
    if missing:
        from index.ingest import ingest

        print(f"Indexing seeds… ({config.seeds_dir} → {store.location})", flush=True)
        report = ingest(config.seeds_dir, config)
        print(f"Indexed {report.summary()}", flush=True)
    print("Loading models…", flush=True)
    from qa.pipeline import get_pipeline

    pipeline = get_pipeline(config)
    docs = ", ".join(f"{name} ({count} passages)" for name, count in pipeline.index.docs.items())
    print(f"Ready: {docs}; model {pipeline.model_name}", flush=True)
    return pipeline


def build_app(config: Config) -> gr.Blocks:
    """The chat app for ``config`` (indexes the seeds and loads the models first).

    The chat endpoint is ``/chat`` (and ``/ask`` for JSON); both share one queue whose
    concurrency is the model server's slot count.
    Pass ``css=CSS`` to ``launch()`` for the intended look (:func:`launch` does).
    """
    return _build(prepare(config))


def _build(pipeline: Pipeline) -> gr.Blocks:
    from index.extract import SUPPORTED_SUFFIXES

    respond = make_respond(pipeline)
    add, remove = make_document_actions(pipeline)
    slots = answer_concurrency(pipeline)
    with gr.Blocks(title="Ask your documents", fill_height=True) as app:
        header = gr.HTML(
            render_header(pipeline.index.docs, pipeline.model_name, pipeline.judged_by),
            elem_id="qa-header",
        )
        with gr.Accordion("Add or remove documents", open=False, elem_id="qa-documents"):
            upload = gr.File(
                label=f"Drop documents here ({' '.join(SUPPORTED_SUFFIXES)})",
                file_count="multiple",
                file_types=list(SUPPORTED_SUFFIXES),
                elem_id="qa-upload",
            )
            with gr.Row():
                chosen = gr.Dropdown(
                    choices=list(pipeline.index.docs),
                    label="Document",
                    elem_id="qa-remove-choice",
                    scale=4,
                )
                remove_button = gr.Button("Remove", elem_id="qa-remove", scale=1)
            status = gr.Markdown(elem_id="qa-documents-status")
        _ChatInterface(
            fn=respond,
            chatbot=gr.Chatbot(
                elem_id="qa-chatbot",
                label="Chat",
                scale=1,
                height=560,
                sanitize_html=True,
                placeholder="Ask a question about your documents.",
            ),
            textbox=gr.Textbox(
                elem_id="qa-input",
                placeholder="Ask a question about your documents…",
                show_label=False,
                scale=7,
                autofocus=True,
                submit_btn=True,
                stop_btn=True,
            ),
            examples=example_questions(list(pipeline.index.docs)) or None,
            title=None,
            api_name=API_NAME,
            api_description=respond.__doc__,
            concurrency_limit=slots,
            fill_height=True,
            flagging_mode="never",
        )
        gr.Markdown(CERTAINTY_HELP, elem_id="qa-certainty-help")
        gr.api(
            make_ask(pipeline),
            api_name="ask",
            concurrency_limit=slots,
            concurrency_id=CONCURRENCY_ID,
        )
        upload.upload(
            add,
            inputs=upload,
            outputs=[header, status, chosen, upload],
            api_name="add_documents",
            concurrency_limit=1,
            concurrency_id=DOCUMENTS_ID,
        )
        remove_button.click(
            remove,
            inputs=chosen,
            outputs=[header, status, chosen],
            api_name="remove_document",
            concurrency_limit=1,
            concurrency_id=DOCUMENTS_ID,
        )
    _share_one_queue(app, respond, slots)
    return app


def answer_concurrency(pipeline: Pipeline) -> int:
    """How many answers the chat generates at once: the model server's slots."""
    return max(1, pipeline.llm.slots)


def launch(
    config: Config,
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    auth: Credentials | None = None,
    allow_no_auth: bool = False,
) -> None:
    """Serve the chat on ``host:port`` (localhost unless asked) until interrupted."""
    from index.extract import MAX_FILE_BYTES

    check_exposure(host, auth, allow_no_auth, share)
    app = build_app(config)
    app.queue(default_concurrency_limit=1)
    print(f"Open http://{host}:{port} in a browser (Ctrl+C to stop).", flush=True)
    app.launch(
        server_name=host,
        server_port=port,
        share=share,
        css=CSS,
        footer_links=["api"],
        show_error=False,
        auth=auth or None,
        max_file_size=MAX_FILE_BYTES,
    )
