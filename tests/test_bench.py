"""``qa bench``'s workloads and tables (logic only: the real run is ``qa bench`` itself)."""

from __future__ import annotations

from collections import Counter

from eval.bench import (
    QUICK_QUESTIONS,
    answer_path,
    breakdown_table,
    pass_table,
    seed_workload,
    squad_test_workload,
)
from eval.dataset import TYPES, load_items
from eval.squad2 import SPLITS, doc_name
from qa.config import Config


def test_the_default_seed_workload_asks_every_kind_with_its_history():
    workload = seed_workload(Config(), per_kind=3)
    counts = Counter(workload.kinds)
    assert set(counts) == set(TYPES) and max(counts.values()) == 3
    by_question = {item.question: item for item in load_items()}
    for (question, history), kind in zip(workload.questions, workload.kinds, strict=True):
        assert by_question[question].type == kind
        assert history == list(by_question[question].history)
    assert any(history for question, history in workload.questions)  # follow-ups come along
    assert seed_workload(Config(), per_kind=3).questions == workload.questions  # seeded


def test_the_quick_workload_is_the_first_questions_of_the_set():
    workload = seed_workload(Config(), per_kind=None)
    first = load_items()[:QUICK_QUESTIONS]
    assert [q for q, _ in workload.questions] == [item.question for item in first]


def test_the_squad_workload_is_the_test_split_half_unanswerable(tmp_path):
    workload = squad_test_workload(tmp_path, questions=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(doc_name(t) for t in SPLITS["test"])
    assert Counter(workload.kinds) == {"has_answer": 5, "no_answer": 5}
    written = {p.name for p in tmp_path.iterdir()}
    assert workload.gold and all(q.split == "test" and q.doc in written for q in workload.gold)


def test_each_answer_path_is_named():
    assert answer_path(abstained=False, decision="answer", ran_model=True) == "answered"
    assert answer_path(abstained=False, decision="correct", ran_model=True) == "corrected"
    assert answer_path(abstained=True, decision="refuse", ran_model=True) == "refused"
    assert answer_path(True, "refuse", ran_model=False) == "refused before the model"


def _result(kind: str, path: str, seconds: float, stages: dict[str, float], **more) -> dict:
    return {
        "kind": kind,
        "path": path,
        "seconds": seconds,
        "first_token_s": None if path.endswith("model") else 0.5,
        "prompt_read": 20,
        "generated": 8,
        "stages": stages,
        "has_history": False,
        "asked_as": "fact",
        "self_checked": False,
    } | more


def test_the_tables_group_by_path_and_kind_and_share_the_time_by_pass():
    results = [
        _result("fact", "answered", 2.0, {"retrieve": 0.1, "draft": 1.5, "judge": 0.4}),
        _result(
            "fact",
            "answered",
            4.0,
            {"retrieve": 0.1, "draft": 1.0, "second_look": 2.0, "judge": 0.9},
            self_checked=True,
        ),
        _result("yes_no", "corrected", 3.0, {"draft": 1.0, "judge": 1.5}, asked_as="yes_no"),
        _result("multi_turn", "refused before the model", 1.0, {"prepare": 0.9}, has_history=True),
    ]
    by_path = breakdown_table(results, "path").splitlines()
    assert by_path[2].startswith("| answered | 2 | ")  # the larger group first
    assert by_path[4].startswith("| refused before the model | 1 | 1.0 | 1.0 | – |")
    assert "| multi_turn | 1 |" in breakdown_table(results, "kind")
    rows = {line.split(" | ")[0][2:]: line for line in pass_table(results).splitlines()[2:]}
    assert list(rows) == [  # passes nobody ran are left out
        "follow-up rewrite",
        "retrieve",
        "draft (with its verification)",
        "second look (with its verification)",
        "window self-check (judge)",
        "polarity check (judge)",
        "judge, no model pass",
    ]
    assert (
        rows["draft (with its verification)"]
        == "| draft (with its verification) | 3 | 1.00 | 1.50 | 35% |"
    )
    assert rows["second look (with its verification)"].endswith("| 1 | 2.00 | 2.00 | 20% |")
    assert rows["polarity check (judge)"].startswith("| polarity check (judge) | 1 | 1.50 |")
    assert rows["judge, no model pass"].startswith("| judge, no model pass | 1 | 0.40 |")


def test_every_engine_option_measured_is_one_the_engine_has():
    """``python -m eval.engine_options`` sets each option on llama.cpp's own parameters:
    a name the engine does not have would fail there, after minutes of loading."""
    import xllamacpp

    from eval.engine_options import OPTIONS

    for name, apply in OPTIONS.items():
        params = xllamacpp.CommonParams()
        before = (params.flash_attn_type, params.n_ubatch, params.cache_type_k,
                  params.no_extra_bufts, params.cpuparams.poll)  # fmt: skip
        apply(params)
        after = (params.flash_attn_type, params.n_ubatch, params.cache_type_k,
                 params.no_extra_bufts, params.cpuparams.poll)  # fmt: skip
        assert (after == before) == (name == "shipped"), name
