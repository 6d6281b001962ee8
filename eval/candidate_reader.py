"""Experiment (issue 34): a reader that compares instead of writing.

For each question the answering prompt is the one today's reader drafts from (same
retrieval, same evidence, same rules). Instead of letting the model write, two requests
continue that prompt under a grammar:

1. the best *span*: the model decodes greedily, constrained to a contiguous run of up to
   ``MAX_WORDS`` words copied from the evidence (first letter optionally capitalised),
   followed by the citation bracket " [" that ends every answer of the rules;
2. the refusal the rules prescribe, forced word for word.

Each request returns the raw (pre-grammar) log-probability of every token it wrote, so
the span's likelihood and the refusal's are the model's own. The confidence is their
log-odds. Today's reader answers the same question right after (``pipeline.ask``); one
row per question goes to a JSON-lines file (resumable); ``--analyse`` prints the table.

    python -m eval.candidate_reader --limit 520 --out reports/candidate-reader.jsonl
    python -m eval.candidate_reader --analyse reports/candidate-reader.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from qa.config import Config
from qa.prompts import ABSTAIN_TEXT, answer_messages

MAX_WORDS = 6
EDGE = "\"'“”‘’()[],.;:!?"


def spans(text: str, max_words: int = MAX_WORDS) -> set[tuple[str, ...]]:
    """Every run of 1..max_words whitespace-separated words of ``text``, punctuation
    stripped from the run's two ends (inner punctuation stays)."""
    words = text.split()
    found: set[tuple[str, ...]] = set()
    for start in range(len(words)):
        for end in range(start + 1, min(start + max_words, len(words)) + 1):
            run = list(words[start:end])
            run[0] = run[0].lstrip(EDGE)
            run[-1] = run[-1].rstrip(EDGE)
            if all(run):
                found.add(tuple(run))
    return found


def _literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def span_grammar(candidates: set[tuple[str, ...]]) -> str:
    """A GBNF grammar: one candidate (a word trie, so shared starts are one branch), then " ["."""
    trie: dict = {}
    for words in candidates:
        for first in {words[0], words[0][:1].upper() + words[0][1:]}:
            node = trie
            for word in (first, *words[1:]):
                node = node.setdefault(word, {})
            node[None] = {}  # may end here
    rules: list[str] = []

    def rule(node: dict, lead: str) -> str:
        name = f"n{len(rules)}"
        rules.append("")
        options = ['""'] if None in node else []
        for word, child in sorted((w, c) for w, c in node.items() if w is not None):
            options.append(f"{_literal(lead + word)} {rule(child, ' ')}")
        rules[int(name[1:])] = f"{name} ::= " + (" | ".join(options) or '""')
        return name

    top = rule(trie, "")
    return f'root ::= {top} " ["\n' + "\n".join(rules)


def forced(llm, prompt: str, grammar: str, limit: int) -> tuple[str, list[float], dict]:
    """Greedy continuation of ``prompt`` under ``grammar``: its text, each token's raw
    log-probability, and the server's timings."""
    body = {
        "prompt": prompt,
        "n_predict": limit,
        "n_probs": 1,
        "temperature": 0.0,
        "top_k": 1,
        "grammar": grammar,
        "cache_prompt": True,
    }
    result = llm._post("/completion", body)
    probs = result.get("completion_probabilities") or []
    return str(result.get("content", "")), [float(p["logprob"]) for p in probs], result.get("timings", {})


def run(config: Config, out: Path, limit: int, seed: int) -> None:
    from eval.metrics import best, contains
    from eval.signals import STORE, calibration_questions, read_rows
    from eval.squad2 import load_corpus, write_documents
    from index.ingest import ingest
    from qa.context import plan_context
    from qa.pipeline import get_pipeline
    from qa.prepare import prepare
    from qa.text import strip_markers

    suite = config.replace(seeds_dir=STORE / "docs", store_dir=STORE / "store")
    write_documents(load_corpus(more=True).documents, suite.seeds_dir)
    ingest(suite.seeds_dir, suite)
    seen = set()
    for signals in Path("eval/signals").glob("*.jsonl"):
        seen |= {row.id for row in read_rows(signals)}
    done = {json.loads(line)["id"] for line in out.read_text().splitlines()} if out.exists() else set()
    todo = [q for q in calibration_questions(seed + 1) if q.id not in seen][:limit]
    todo = [q for q in todo if q.id not in done]
    pipeline = get_pipeline(suite)
    llm = pipeline.llm
    print(f"{len(done)} done, {len(todo)} to go", flush=True)
    for number, question in enumerate(todo, 1):
        started = time.perf_counter()
        with pipeline.indexes.reading() as snapshot:
            prepared = prepare(question.question, [], pipeline._rewriter(snapshot))
            retrieved = pipeline._retrieve(snapshot, prepared)
            plan = plan_context(
                prepared, retrieved, snapshot.passages, pipeline.similarity, config,
                can_calculate=False,
            )  # fmt: skip
        context = plan.attempts[0].context
        prompt = llm.render(answer_messages(context, prepared.standalone))
        candidates = set().union(*(spans(p.text) for p in context)) if context else set()
        grammar = span_grammar(candidates) if candidates else 'root ::= " ["'
        span_text, span_lp, span_t = forced(llm, prompt, grammar, 24)
        refusal_text, refusal_lp, refusal_t = forced(llm, prompt, f"root ::= {_literal(ABSTAIN_TEXT)}", 16)
        candidate_seconds = time.perf_counter() - started
        # Today's reader reads the same prompt, now cached: its seconds are taken as
        # measured plus the candidate reader's read of that prompt (prompt_ms).
        answer = pipeline.ask(question.question)
        span = span_text.removesuffix(" [").strip()
        claim = strip_markers(answer.text)
        row = {
            "id": question.id,
            "article": question.doc.removesuffix(".txt"),
            "golds": list(question.answers),
            "span": span,
            "span_logprob": sum(span_lp),
            "span_tokens": len(span_lp),
            "refusal_logprob": sum(refusal_lp),
            "span_right": bool(best(contains, span, question.answers)),
            "candidates": len(candidates),
            "candidate_seconds": round(candidate_seconds, 3),
            "candidate_prompt_tokens": span_t.get("prompt_n"),
            "candidate_prompt_ms": span_t.get("prompt_ms"),
            "span_ms": span_t.get("predicted_ms"),
            "refusal_ms": refusal_t.get("predicted_ms"),
            "today_text": answer.text,
            "today_abstained": answer.abstained,
            "today_decision": answer.decision,
            "today_confidence": answer.confidence,
            "today_right": (not answer.abstained) and bool(best(contains, claim, question.answers)),
            "today_kind": answer.kind,
            "today_seconds": answer.timings.get("total"),
            "today_prompt_read": answer.engine.prompt_read,
            "today_prompt_ms": answer.engine.prompt_ms,
            "today_first_token": answer.timings.get("first_token"),
            "today_signals": answer.signals,
            "today_raw": answer.raw_text,
            "today_draft_right": bool(best(contains, strip_markers(answer.raw_text), question.answers))
            and not answer.raw_text.lstrip().startswith(ABSTAIN_TEXT),
        }
        with out.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(
            f"{len(done) + number}: cand {candidate_seconds:.1f}s today {row['today_seconds']:.1f}s "
            f"span={span!r} right={row['span_right']} today_right={row['today_right']}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("reports/candidate-reader.jsonl"))
    parser.add_argument("--limit", type=int, default=520)
    parser.add_argument("--seed", type=int, default=34)
    parser.add_argument("--analyse", type=Path)
    args = parser.parse_args()
    if args.analyse:
        print(json.dumps(analyse(args.analyse), indent=1))
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    run(Config(), args.out, args.limit, args.seed)



def analyse(path: Path, seed: int = 34, draws: int = 2000) -> dict:
    """The side-by-side table: both readers on the same questions, 95 % bootstrap intervals
    over questions (the candidate reader's refusal cut is cross-fitted by article so that
    its NoAns matches today's)."""
    import numpy as np

    from eval.calibrate import auroc

    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    n = len(rows)
    answerable = np.array([bool(r["golds"]) for r in rows])
    screened = np.array([r["today_first_token"] is None and r["today_abstained"] for r in rows])
    # Today's reader.
    t_abst = np.array([r["today_abstained"] for r in rows])
    t_right = np.array([r["today_right"] for r in rows])
    prompt_s = np.array([(r["candidate_prompt_ms"] or 0) / 1000 for r in rows])
    t_secs = np.array([r["today_seconds"] for r in rows]) + np.where(screened, 0, prompt_s)
    t_score = np.array([_today_p_right(r) for r in rows], dtype=float)  # nan: not judged
    t_draft_right = np.array([r["today_draft_right"] for r in rows])
    # The candidate reader (the judge's screen refuses the same questions before either reads).
    c_score = np.array([r["span_logprob"] - r["refusal_logprob"] for r in rows])
    c_right_span = np.array([r["span_right"] for r in rows])
    c_secs = np.where(screened, t_secs, [r["candidate_seconds"] for r in rows])
    articles = np.array([r["article"] for r in rows])
    target = float(t_abst[~answerable].mean())
    cut = np.empty(n)
    for article in set(articles):
        other = (articles != article) & ~answerable & ~screened
        # the cut under which the other articles' unanswerable questions are refused as
        # often as today's reader refuses them (screened ones are refused by both)
        share = (target * (~answerable & (articles != article)).sum() - (screened & other).sum())
        share = share / max(1, other.sum())
        cut[articles == article] = np.quantile(c_score[other], min(1.0, max(0.0, share)))
    c_abst = screened | (c_score < cut)
    c_right = ~c_abst & c_right_span
    c_abst0 = screened | (c_score < 0)
    c_right0 = ~c_abst0 & c_right_span
    judged = ~np.isnan(t_score)
    rng = np.random.default_rng(seed)

    def stat(fn) -> tuple[float, float, float]:
        value = fn(np.arange(n))
        boots = [fn(rng.integers(0, n, n)) for _ in range(draws)]
        lo, hi = np.nanpercentile(boots, [2.5, 97.5])
        return round(float(value), 3), round(float(lo), 3), round(float(hi), 3)

    def has(right):
        return lambda i: right[i][answerable[i]].mean()

    def noans(abst):
        return lambda i: abst[i][~answerable[i]].mean()

    def precision(right, abst):
        return lambda i: right[i][~abst[i]].mean()

    def roc(score, label, mask):
        return lambda i: auroc(score[i][mask[i]], label[i][mask[i]].astype(int))

    table = {
        "n": n,
        "answerable": int(answerable.sum()),
        "screened": int(screened.sum()),
        "today": {
            "hasans_right": stat(has(t_right)),
            "noans_refused": stat(noans(t_abst)),
            "answers_right": stat(precision(t_right, t_abst)),
            "auroc_judged_drafts": stat(roc(t_score, t_draft_right, judged)),
            "judged_drafts": int(judged.sum()),
            "p50_s": round(float(np.median(t_secs)), 2),
            "p95_s": round(float(np.percentile(t_secs, 95)), 2),
        },
        "candidate_matched_noans": {
            "hasans_right": stat(has(c_right)),
            "noans_refused": stat(noans(c_abst)),
            "answers_right": stat(precision(c_right, c_abst)),
            "auroc_all": stat(roc(c_score, c_right_span, ~screened)),
            "auroc_on_todays_judged": stat(roc(c_score, c_right_span, judged)),
            "p50_s": round(float(np.median(c_secs)), 2),
            "p95_s": round(float(np.percentile(c_secs, 95)), 2),
        },
        "candidate_cut_0": {
            "hasans_right": stat(has(c_right0)),
            "noans_refused": stat(noans(c_abst0)),
        },
        "difference": {
            "hasans_right": stat(lambda i: has(c_right)(i) - has(t_right)(i)),
            "noans_refused": stat(lambda i: noans(c_abst)(i) - noans(t_abst)(i)),
            "p50_s": round(float(np.median(c_secs - t_secs)), 2),
        },
        "span_contains_gold_answerable": stat(has(c_right_span)),
    }
    # Ranking at equal coverage: of all (unscreened) questions, the share of the answers
    # right among each reader's most confident x % (today: its judged drafts only).
    def top_share(score, right, x):
        def fn(i):
            order = np.argsort(-np.nan_to_num(score[i], nan=-np.inf), kind="stable")
            k = max(1, int(round(x * len(i))))
            return right[i][order[:k]].mean()

        return fn

    table["right_among_most_confident"] = {
        f"{int(x * 100)}%": {
            "today": stat(top_share(t_score, t_draft_right, x)),
            "candidate": stat(top_share(c_score, c_right_span, x)),
        }
        for x in (0.1, 0.2, 0.3, 0.4)
    }
    # The comparison's score as one more signal for today's judge: out of fold by article.
    from eval.calibrate import out_of_fold

    p = np.clip(t_score[judged], 1e-4, 1 - 1e-4)
    x = np.column_stack([np.log(p / (1 - p)), c_score[judged]])
    y = t_draft_right[judged].astype(int)
    combined = out_of_fold(x, y, articles[judged])
    alone = out_of_fold(x[:, :1], y, articles[judged])
    idx = np.arange(len(y))

    def pair(i):
        return auroc(combined[i], y[i]) - auroc(alone[i], y[i])

    table["as_a_judge_signal"] = {
        "auroc_comparison_score_alone": stat_on(c_score[judged], y, rng, draws),
        "auroc_judge_refit_out_of_fold": stat_on(alone, y, rng, draws),
        "auroc_judge_plus_comparison_out_of_fold": stat_on(combined, y, rng, draws),
        "difference": _boot(pair, idx, rng, draws),
    }
    return table


def stat_on(score, y, rng, draws) -> tuple[float, float, float]:
    from eval.calibrate import auroc

    return _boot(lambda i: auroc(score[i], y[i]), __import__("numpy").arange(len(y)), rng, draws)


def _boot(fn, idx, rng, draws) -> tuple[float, float, float]:
    import numpy as np

    n = len(idx)
    boots = [fn(rng.integers(0, n, n)) for _ in range(draws)]
    lo, hi = np.nanpercentile(boots, [2.5, 97.5])
    return round(float(fn(idx)), 3), round(float(lo), 3), round(float(hi), 3)


def _today_p_right(row: dict) -> float:
    """Today's judge's P(the draft's answer is right), where it judged one; else nan."""
    judged = "similarity" in row["today_signals"] and row["today_confidence"] is not None
    if not judged or row["today_raw"].lstrip().startswith(ABSTAIN_TEXT):
        return float("nan")
    if row["today_decision"] == "refuse":
        return 1 - row["today_confidence"]
    return row["today_confidence"]


if __name__ == "__main__":
    main()
