"""The chat's HTML: the answer with its certainty, numbered and highlighted sources, the
header, the streaming draft and errors; and the way back from a message to its text.

Every piece of document text, question text and model output is passed through
:func:`html.escape` before it is put into HTML.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Sequence

from qa.text import MARKER, marker_numbers
from qa.types import CERTAINTY_RIGHT, Answer, Certainty, Citation, Passage

CHECKING_LABEL = "Draft, checking it against the documents…"
"""Shown on the streaming draft: it is not the answer until the checks have run."""

ABSTAINED_LABEL = "Not in the document"

# Everything after this marker in an assistant message is presentation (sources, timings):
# it is cut off before the conversation is handed back to the pipeline as history.
SOURCES_MARKER = '<div class="qa-sources"'
_TAG = re.compile(r"<[^>]*>")
_BADGE = re.compile(r'<span class="qa-badge[^"]*"[^>]*>.*?</span>', re.DOTALL)

CSS = """
#qa-header { padding: 0.4rem 0.2rem; font-size: 0.92rem; }
#qa-header .qa-docs { margin: 0.2rem 0 0 1.2rem; padding: 0; }
.qa-answer.qa-abstained { border-left: 4px solid #d97706; padding-left: 0.6rem; }
.qa-badge { display: inline-block; font-size: 0.78rem; font-weight: 600; padding: 0 0.45rem;
  margin-right: 0.4rem; border-radius: 0.6rem; background: #fef3c7; color: #92400e; }
.qa-cite { font-weight: 600; text-decoration: none; }
.qa-sources { margin-top: 0.6rem; font-size: 0.9rem; }
.qa-source { margin: 0.3rem 0; }
.qa-source summary { cursor: pointer; }
.qa-passage { margin: 0.2rem 0 0.2rem 1rem; opacity: 0.9; }
mark.qa-highlight { background: #fde68a; color: inherit; padding: 0 0.1rem; }
.qa-error { color: #b91c1c; }
.qa-meta { font-size: 0.78rem; opacity: 0.7; margin-top: 0.3rem; }
.qa-checking { font-size: 0.78rem; font-weight: 600; color: #6b7280; margin-bottom: 0.2rem; }
.qa-draft { color: #6b7280; font-style: italic; }
.qa-certainty-sure { background: #dcfce7; color: #166534; }
.qa-certainty-likely { background: #dbeafe; color: #1e40af; }
#qa-certainty-help { font-size: 0.8rem; opacity: 0.8; }
"""
# Beside each answer, how sure it is (qa.types.Certainty): colour by band.
_CERTAINTY_STYLE = {
    Certainty.SURE: "background:#dcfce7;color:#166534",
    Certainty.LIKELY: "background:#dbeafe;color:#1e40af",
    Certainty.UNSURE: "background:#fef3c7;color:#92400e",
    Certainty.UNCHECKED: "background:#fef3c7;color:#92400e",
}
CERTAINTY_HELP = (
    f"**How sure:** *sure* — at least {CERTAINTY_RIGHT[Certainty.SURE]:.0%} of such answers "
    f"were right on articles the judge never saw; *likely* — at least "
    f"{CERTAINTY_RIGHT[Certainty.LIKELY]:.0%}; *unsure* — read the quoted sentence before "
    "you rely on it; *unchecked* — nothing rated it (a summary, a list, a yes/no, or a model "
    "with no judge fitted for it). The model, not the judge, writes the answers: the README "
    "gives each model's measured share right per band."
)


# --- rendering ------------------------------------------------------------------------
def _text(value: str) -> str:
    """Escape ``value`` for HTML and keep it on one line (a blank line would end the HTML
    block in the chatbot's Markdown renderer)."""
    return html.escape(value, quote=False).replace("\r", "").replace("\n", "<br>")


def _inline_text(value: str) -> str:
    """Escape ``value`` for HTML on one line (runs of whitespace become one space)."""
    return html.escape(re.sub(r"\s+", " ", value), quote=False)


def render_streaming(raw: str) -> str:
    """The model's draft while it writes, marked as unverified.

    The draft is greyed and labelled "checking": the checked answer (or a refusal, when
    the checks reject it) replaces it in place, so nothing shown as an answer is ever
    taken back. Holding every word until the judge decides would make the user wait for
    the whole answer instead of its first token (docs/performance.md).
    """
    return (
        f'<div class="qa-answer qa-streaming"><div class="qa-checking">{CHECKING_LABEL}</div>'
        f'<span class="qa-draft">{_text(raw) or "…"}</span></div>'
    )


def example_questions(docs: Sequence[str]) -> list[str]:
    """Questions offered under the chat, made from the indexed documents' own names.

    They name what the user dropped in ("Summarize lease.pdf."), so a contract is never
    offered questions about another corpus; no documents, no examples.
    """
    questions = [f"Summarize {doc}." for doc in docs[:2]]
    if docs:
        questions.append(f"What are the key dates and figures in {docs[0]}?")
    return questions


def render_error(message: str) -> str:
    """A readable error in place of an answer."""
    return (
        '<div class="qa-answer qa-error" style="color:#b91c1c">'
        f"<strong>Sorry, I could not answer that.</strong> {_text(message)}</div>"
    )


def _answer_html(answer: Answer, uid: str) -> str:
    numbers = {c.number for c in answer.citations}

    def link(match: re.Match[str]) -> str:
        first = marker_numbers(match.group(0))[0]
        marker = html.escape(match.group(0))
        if first not in numbers:
            return f'<span class="qa-cite">{marker}</span>'
        return f'<a class="qa-cite" href="#qa-src-{uid}-{first}">{marker}</a>'

    pieces, last = [], 0
    for match in MARKER.finditer(answer.text):
        pieces.append(_text(answer.text[last : match.start()]))
        pieces.append(link(match))
        last = match.end()
    pieces.append(_text(answer.text[last:]))
    body = "".join(pieces)
    if answer.abstained:
        return (
            '<div class="qa-answer qa-abstained" '
            'style="border-left:4px solid #d97706;padding-left:0.6rem">'
            '<span class="qa-badge" style="font-weight:600;color:#92400e">'
            f"{ABSTAINED_LABEL}</span> {body}</div>"
        )
    badge = ""
    if answer.certainty is not None:
        badge = (
            f'<span class="qa-badge qa-certainty qa-certainty-{answer.certainty.value}" '
            f'style="{_CERTAINTY_STYLE[answer.certainty]}">{answer.certainty.label}</span> '
        )
    return f'<div class="qa-answer">{badge}{body}</div>'


def _find_passage(citation: Citation, passages: Sequence[Passage]) -> Passage | None:
    return next((p for p in passages if p.id == citation.passage_id), None)


def _source_html(citation: Citation, passage: Passage | None, uid: str) -> str:
    where = f"characters {citation.start}–{citation.end}"
    if passage is not None and passage.start <= citation.start <= citation.end <= passage.end:
        rel_start, rel_end = citation.start - passage.start, citation.end - passage.start
        before = _inline_text(passage.text[:rel_start])
        cited = _inline_text(passage.text[rel_start:rel_end])
        after = _inline_text(passage.text[rel_end:])
    else:  # the passage is gone from the index: show what was quoted
        before, cited, after = "", _inline_text(citation.quote), ""
    return (
        f'<details class="qa-source" id="qa-src-{uid}-{citation.number}" open>'
        f'<summary><span class="qa-source-number">[{citation.number}]</span> '
        f'<span class="qa-source-doc">{html.escape(citation.source)}</span> '
        f'<span class="qa-source-where" style="opacity:0.7">({where})</span></summary>'
        f'<div class="qa-passage">{before}<mark class="qa-highlight" '
        f'style="background:#fde68a">{cited}</mark>{after}</div></details>'
    )


def render_answer(answer: Answer, index_passages: Sequence[Passage] = ()) -> str:
    """The final message: the verified answer, then its numbered, highlighted sources.

    Passages are looked up by id in ``answer.passages`` first, then in ``index_passages``.
    """
    uid = uuid.uuid4().hex[:8]
    parts = [_answer_html(answer, uid), "\n\n", f'{SOURCES_MARKER} id="qa-sources-{uid}">']
    if answer.citations:
        sources = [
            _source_html(
                c, _find_passage(c, answer.passages) or _find_passage(c, index_passages), uid
            )
            for c in answer.citations
        ]
        parts.append(
            f'<details class="qa-source-list" open><summary>Sources ({len(sources)})</summary>'
            + "".join(sources)
            + "</details>"
        )
    meta = []
    if answer.confidence is not None and not answer.abstained:
        meta.append(f"P(right) {answer.confidence:.2f}")
    if answer.rewritten_question:
        meta.append(f"read as: “{html.escape(answer.rewritten_question)}”")
    if "total" in answer.timings:
        meta.append(f"{answer.timings['total']:.1f} s")
    if answer.model:
        meta.append(html.escape(answer.model))
    if meta:
        parts.append(f'<div class="qa-meta">{" · ".join(meta)}</div>')
    parts.append("</div>")
    return "".join(parts)


def render_header(docs: dict[str, int], model_name: str, judged_by: str = "") -> str:
    """Which documents are indexed (and how many passages each), which model answers and
    which judge rates its answers (``Pipeline.judged_by``)."""
    items = "".join(
        f'<li class="qa-doc"><span class="qa-doc-name">{html.escape(name)}</span> '
        f'<span class="qa-doc-count">({count} passage{"s" if count != 1 else ""})</span></li>'
        for name, count in docs.items()
    )
    return (
        '<div class="qa-header-body">'
        "<strong>Ask your documents.</strong> Answers come only from the indexed documents; "
        "every claim cites its source, and a question the documents cannot answer is "
        f"marked “{ABSTAINED_LABEL}”."
        f'<div>Indexed documents ({len(docs)}):</div><ul class="qa-docs">{items}</ul>'
        f'<div>Model: <span class="qa-model">{html.escape(model_name)}</span>'
        + (f' · <span class="qa-judge">{html.escape(judged_by)}</span>' if judged_by else "")
        + "</div></div>"
    )


def answer_text(message: str) -> str | None:
    """The plain answer inside an assistant message, or ``None`` if it holds no answer
    (an error, or a reply that was stopped while streaming)."""
    if "qa-error" in message or "qa-streaming" in message:
        return None
    answer = _BADGE.sub("", message.split(SOURCES_MARKER, 1)[0])
    return " ".join(html.unescape(_TAG.sub("", answer)).split()) or None
