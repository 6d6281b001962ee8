"""Speculative decoding with the real engine: it changes the speed, never the answer.

Greedy verification keeps exactly the tokens the model would have written one at a
time, so the same prompts must give the same text with drafting on and off, and the
server must report that it drafted (``draft_n``) for the answer's usage.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.config import Config
from qa.engine import EngineSettings, LocalEngine
from qa.llm import LLMClient, Sampling, metered

pytestmark = pytest.mark.slow

QUESTIONS = [
    "How far did the missiles fly?",
    "Where were the missiles fired from?",
    "Quote the sentence that says how far the missiles flew.",
]


def _answers(seed_text: str, speculative: str) -> tuple[list[str], int, int]:
    config = Config.from_env(speculative=speculative, n_parallel=1)
    engine = LocalEngine(EngineSettings.from_config(config))
    client = LLMClient(f"{engine.url}/v1", remote=False)
    try:
        texts = []
        with metered() as usage:
            for question in QUESTIONS:
                messages = [
                    {"role": "system", "content": "Answer from the article, in one sentence."},
                    {"role": "user", "content": f"{seed_text}\n\nQuestion: {question}"},
                ]
                texts.append("".join(client.stream_chat(messages, Sampling(max_tokens=60))))
        return texts, usage.drafted, usage.accepted
    finally:
        client.close()
        engine.close()


SEED = Path(__file__).parents[1] / "seeds" / "000_61f43937c72d7f92.txt"


def test_drafting_from_the_prompt_keeps_the_answers():
    seed_text = SEED.read_text(encoding="utf-8")[:1500]  # the missiles' paragraphs
    plain, drafted_off, _ = _answers(seed_text, "off")
    speculated, drafted, accepted = _answers(seed_text, "ngram")
    assert drafted_off == 0
    assert drafted > 0 and 0 < accepted <= drafted, (drafted, accepted)
    assert speculated == plain
