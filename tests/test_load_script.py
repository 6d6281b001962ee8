"""The load-test script's own logic (eval.load), without models or a server: verdicts from
chat messages, latency percentiles, round-robin replicas, the report and the exit code.

The chat messages are made by the app's own renderers (qa.chat_html), from typed answers, so a
change of the app's markup that the script cannot read fails here."""

from __future__ import annotations

import json
import re
from concurrent.futures import Future

import pytest

from eval import load
from eval.load_sessions import OFF_TOPIC, SESSIONS, answer_part, read_as
from qa import Answer, Citation, Passage
from qa.chat_html import answer_text, render_answer, render_error
from qa.types import Certainty

AUSTIN = SESSIONS[0]  # Lloyd Austin; the follow-up must be read as about "Austin"
SOURCE = (
    "Defense Secretary Lloyd Austin, South Korean Defense Minister Lee Jong-sup and Japanese "
    "Defense Minister Yasukazu Hamada agreed on Sept. 7 to expedite sharing of missile-warning "
    "data."
)
PASSAGE = Passage(
    id="p1", doc="seed.txt", start=0, end=len(SOURCE), text=SOURCE, sentences=((0, len(SOURCE)),)
)


def message(answer: str, *, abstained: bool = False, rewritten: str = "") -> str:
    """The final chat message the app sends for an answer: rendered by qa.chat_html, the cited
    passage (which names the Defense Secretary and Lee Jong-sup) among its sources."""
    citations = [] if abstained else [Citation(1, "p1", "seed.txt", 0, 17, SOURCE[:17])]
    typed = Answer(
        question="?",
        text=answer,
        citations=citations,
        abstained=abstained,
        passages=[PASSAGE],
        timings={"total": 2.0},
        rewritten_question=rewritten or None,
    )
    return render_answer(typed)


def error_message(text: str) -> str:
    return render_error(text)


def _text(html_part: str) -> str:
    return re.sub(r"<[^>]+>", "", html_part)


# --- parsing ---------------------------------------------------------------------------
def test_answer_part_and_read_as():
    msg = message("He met Lee Jong-sup [1].", rewritten="Who did Lloyd Austin's aide meet?")
    assert "Sources (1)" in msg and SOURCE[:17] in msg  # the sources are in the message...
    assert _text(answer_part(msg)) == "He met Lee Jong-sup [1]."  # ...but not in its answer
    assert read_as(msg) == "Who did Lloyd Austin's aide meet?"  # HTML entities undone
    assert "Not in the document" in _text(answer_part(message("Nope.", abstained=True)))
    assert answer_part("no html at all") == "" and read_as("no html") == ""


# --- verdicts --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("turn", "msg", "verdict"),
    [
        ("first", message("Lloyd Austin is the U.S. Defense Secretary [1]."), "ok"),
        ("first", message("He is a general [1]."), "wrong"),
        ("first", error_message("the model failed"), "lost"),
        ("first", "", "lost"),
        ("first", "   \n", "lost"),
        ("first", None, "lost"),  # the call raised
        (
            "follow_up",
            message("He met Lee Jong-sup [1].", rewritten="Who did Lloyd Austin meet on Sept. 7?"),
            "ok",
        ),
        (  # read with another session's history: crossed conversations
            "follow_up",
            message("He met Putin [1].", rewritten="Who did Kim Jong Un meet on Sept. 7?"),
            "mixed",
        ),
        ("follow_up", message("He met Lee Jong-sup [1]."), "mixed"),  # history dropped
        (  # read right, answered badly: a quality problem, not a serving one
            "follow_up",
            message("Nobody [1].", rewritten="Who did Lloyd Austin meet on Sept. 7?"),
            "wrong",
        ),
        ("third", message("They were ballistic missiles [1]."), "ok"),
        ("third", message("Cruise missiles [1]."), "wrong"),
        ("off_topic", message("The documents do not say.", abstained=True), "ok"),
        ("off_topic", message("Emmanuel Macron [1]."), "wrong"),
        ("off_topic", error_message("qa-abstained? no: an error"), "lost"),
    ],
)
def test_classify(turn, msg, verdict):
    assert load.classify(AUSTIN, turn, msg)[0] == verdict


def test_keywords_are_looked_for_in_the_answer_not_in_the_sources():
    msg = message("He is a general [1].")
    assert "Defense Secretary" in msg  # in the highlighted source, not in the answer
    assert load.classify(AUSTIN, "first", msg)[0] == "wrong"


# --- numbers ---------------------------------------------------------------------------
def test_latency_summary_is_nearest_rank():
    assert load.latency_summary([]) == {"p50": 0.0, "p95": 0.0, "max": 0.0}
    assert load.latency_summary([3.0]) == {"p50": 3.0, "p95": 3.0, "max": 3.0}
    seconds = [float(s) for s in range(1, 21)]  # 1..20, shuffled order must not matter
    summary = load.latency_summary(seconds[::-1])
    assert summary == {"p50": 10.0, "p95": 19.0, "max": 20.0}
    assert load.latency_summary([1.0, 2.0, 3.0, 100.0])["p95"] == 100.0


def test_sessions_are_spread_round_robin_and_reuse_the_conversations():
    assert load.assign_replicas(["a", "b"], 5) == ["a", "b", "a", "b", "a"]
    assert load.assign_replicas(["a"], 3) == ["a", "a", "a"]
    with pytest.raises(ValueError):
        load.assign_replicas([], 2)
    assert load.session_plan(0) is SESSIONS[0]
    assert load.session_plan(len(SESSIONS) + 1) is SESSIONS[1]
    assert SESSIONS[0].questions()[-1] == OFF_TOPIC


# --- a whole run against fake replicas ---------------------------------------------------
class FakeJob:
    def __init__(self, value: object):
        self.future: Future = Future()
        if isinstance(value, BaseException):
            self.future.set_exception(value)
        else:
            self.future.set_result(value)

    def result(self, timeout: float | None = None) -> object:
        return self.future.result(timeout)


class FakeClient:
    """Answers each session's questions right; ``cross`` sessions get another's history."""

    def __init__(self, url: str, cross: bool = False, fail: str = ""):
        self.url, self.cross, self.fail, self.asked = url, cross, fail, []

    def submit(self, question: str, api_name: str) -> FakeJob:
        assert api_name == "/chat"
        self.asked.append(question)
        if question == self.fail:
            return FakeJob(TimeoutError("no answer in time"))
        if question == OFF_TOPIC:
            return FakeJob(message("The documents do not say.", abstained=True))
        session = next(s for s in SESSIONS if question in (s.first, s.follow_up, s.third))
        if question == session.first:
            return FakeJob(message(f"{session.first_keywords[0]} [1]."))
        if question == session.third:
            return FakeJob(message(f"{session.third_keywords[0]} [1]."))
        subject = "Somebody Else" if self.cross else session.subject
        return FakeJob(
            message(f"{session.follow_up_keywords[0]} [1].", rewritten=f"{subject}: {question}")
        )


def test_a_clean_run_reports_per_replica_and_exits_0(tmp_path, capsys):
    clients: list[FakeClient] = []

    def factory(url: str) -> FakeClient:
        clients.append(FakeClient(url))
        return clients[-1]

    path = tmp_path / "out" / "load.json"
    code = load.main(["--url", "http://a/", "--url", "http://b/", "--sessions", "3",
                      "--report", str(path)], client_factory=factory)  # fmt: skip
    assert code == 0
    report = json.loads(path.read_text())
    assert report["replicas"] == 2 and report["sessions"] == 3 and report["questions"] == 12
    assert (report["lost"], report["mixed"], report["wrong"], report["ok"]) == (0, 0, 0, 12)
    assert report["per_replica"]["http://a/"]["sessions"] == 2
    assert report["per_replica"]["http://b/"]["questions"] == 4
    assert report["throughput_qps"] > 0 and report["latency_s"]["max"] >= 0
    assert not report["problems"]
    assert sorted(len(c.asked) for c in clients) == [4, 4, 4]
    assert {c.asked[0] for c in clients} == {s.first for s in SESSIONS[:3]}
    out = capsys.readouterr().out
    assert "| replica | sessions | questions | lost | mixed | wrong |" in out
    assert "| **all** | 3 | 12 | 0 | 0 | 0 |" in out


def test_lost_and_mixed_answers_fail_the_run_wrong_ones_do_not():
    def crossing(url: str) -> FakeClient:
        return FakeClient(url, cross=url == "http://x/", fail=SESSIONS[1].third)

    report = load.run_load(["http://x/", "http://y/"], sessions=2, client_factory=crossing)
    assert (report["lost"], report["mixed"], report["wrong"]) == (1, 1, 0)
    assert report["per_replica"]["http://x/"]["mixed"] == 1
    assert report["per_replica"]["http://y/"]["lost"] == 1
    assert load.failed(report) and len(report["problems"]) == 2
    lost = next(a for a in report["asked"] if a["verdict"] == "lost")
    assert lost["seconds"] is None and "TimeoutError" in lost["detail"]

    wrong_only = dict(report, lost=0, mixed=0, wrong=3)
    assert not load.failed(wrong_only)


def test_an_unreachable_replica_loses_every_question_of_its_sessions():
    def factory(url: str) -> FakeClient:
        if url == "http://down/":
            raise ConnectionError("refused")
        return FakeClient(url)

    report = load.run_load(["http://up/", "http://down/"], sessions=2, client_factory=factory)
    assert report["per_replica"]["http://down/"]["lost"] == 4
    assert report["per_replica"]["http://up/"]["ok"] == 4
    assert load.failed(report)


def test_fewer_questions_per_session():
    report = load.run_load(["http://a/"], sessions=2, questions=2, client_factory=FakeClient)
    assert report["questions"] == 4 and report["ok"] == 4
    assert {a["turn"] for a in report["asked"]} == {"first", "follow_up"}


def test_the_certainty_badge_is_shown_beside_the_answer_but_never_read_back_as_its_text():
    for band in Certainty:
        typed = Answer(question="?", text="Sunan [1].", certainty=band)
        shown = render_answer(typed)
        assert f"qa-certainty-{band.value}" in shown and band.label in shown
        assert answer_text(shown) == "Sunan [1]."  # what a follow-up's history carries
    assert "qa-certainty" not in render_answer(Answer(question="?", text="No.", abstained=True))
