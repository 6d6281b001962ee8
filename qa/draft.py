"""Draft: the model's answer for one attempt, streamed as it is written.

The drafter only talks to the model: it sends the prompt of an attempt
(:mod:`qa.context`), yields the text as it arrives, stops paying for a degenerate loop,
and returns the text the verifier must check. For a calculation attempt the answer is
prefilled with a lead-in that makes the model copy the figures first (it otherwise
repeats one of them as the answer), generation stops once a calculation is written out,
and what is checked is that calculation with its result recomputed
(:func:`qa.calculate.calculated_claim`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass

from qa.calculate import calculated_claim
from qa.context import Attempt
from qa.errors import LLMError, QAError
from qa.language import Kind
from qa.llm import LLMClient, Sampling, TokenLogprob
from qa.prompts import ABSTAIN_TEXT, CALCULATION_LEAD, answer_messages
from qa.types import Delta

_SENTENCE_END = re.compile(r"[.!?](?:\s*\[\d+\])*\s|\n")

# Lists and summaries are decoded with a repetition penalty, which moves greedy decoding
# on from an item already written; facts keep plain greedy decoding, where a penalty
# garbles copied figures (docs/design.md, "Behind the question path").
LIST_REPEAT_PENALTY = 1.1


@dataclass(frozen=True)
class Draft:
    """What the model wrote for one attempt, and what the judge reads of it."""

    text: str  # the part the verifier checks
    raw: str = ""  # exactly what the model wrote (the self-check continues after it)
    messages: tuple = ()  # the answering conversation; empty for a calculation (raw prompt)
    logprobs: tuple[TokenLogprob, ...] = ()  # of each generated token, where the server gives them


class DraftWriter:
    """Streams the model's text for an attempt; safe to share between threads.

    ``max_new_tokens`` bounds an answer; ``max_working_chars`` a calculation's working.
    """

    def __init__(self, llm: LLMClient, max_new_tokens: int, max_working_chars: int) -> None:
        self.llm = llm
        self.max_new_tokens = max_new_tokens
        self.max_working_chars = max_working_chars

    def run(self, attempt: Attempt, question: str, kind: Kind) -> Generator[Delta, None, Draft]:
        """Yield the model's text for ``attempt``; return the draft to verify and judge.

        A refusal is cut after the one sentence that may follow it (what the text does
        say): nothing reads what a model writes after that.
        """
        messages = answer_messages(attempt.context, question)
        if attempt.calculation:
            working = yield from self._calculate(self.llm.render(messages) + CALCULATION_LEAD)
            return Draft(calculated_claim(working) or "", working)
        text = ""
        logprobs: list[TokenLogprob] = []
        sampling = self.sampling(kind)
        stream = self._generate(lambda: self.llm.stream_chat(messages, sampling, logprobs))
        for delta in stream:
            text += delta
            yield Delta(delta)
            if looping(text) or declined_enough(text):
                break  # a degenerate loop ("Kim, Kim, Kim, ..."): stop paying for it
        stream.close()
        return Draft(text, text, tuple(messages), tuple(logprobs))

    def complete_line(self, messages: list) -> str:
        """The model's first line of output; generation stops as soon as it is complete."""
        text = ""
        stream = self._generate(lambda: self.llm.stream_chat(messages, self.sampling()))
        for delta in stream:
            text += delta
            if "\n" in text.lstrip():
                break
        stream.close()
        return text.strip().split("\n")[0]

    def sampling(self, kind: Kind | None = None) -> Sampling:
        """Greedy decoding; lists and summaries with a repetition penalty.

        Sent with each request, so concurrent answers never see each other's settings.
        """
        broad = kind in (Kind.LIST, Kind.SUMMARY)
        penalty = LIST_REPEAT_PENALTY if broad else 1.0
        return Sampling(max_tokens=self.max_new_tokens, repeat_penalty=penalty)

    def _calculate(self, prompt: str) -> Generator[Delta, None, str]:
        """The model's working for a total or difference: the figures, then the arithmetic."""
        text = ""
        stream = self._generate(lambda: self.llm.stream_prompt(prompt, self.sampling()))
        for delta in stream:
            text += delta
            yield Delta(delta)
            done = "\n" in text.rsplit("=", 1)[-1] and calculated_claim(text)
            if done or len(text) > self.max_working_chars:
                break
        stream.close()
        return text

    @staticmethod
    def _generate(start: Callable[[], Iterable[str]]) -> Iterator[str]:
        try:
            yield from start()
        except QAError:
            raise
        except Exception as exc:  # a bug below the client: still one readable line
            failure = f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}"
            raise LLMError(f"the language model failed: {failure}") from exc


def declined_enough(text: str) -> bool:
    """Has a refusal said what the text does say, in one sentence after the refusal?"""
    start = text.lstrip()
    if not start.startswith(ABSTAIN_TEXT):
        return False
    return bool(_SENTENCE_END.search(start[len(ABSTAIN_TEXT) :].lstrip()))


def looping(text: str, times: int = 3) -> bool:
    """Does ``text`` end with the same comma-separated item ``times`` times in a row?"""
    items = [i.strip().lower() for i in text.split(",")]
    tail = items[-times - 1 : -1]  # the last item may still be being written
    return len(tail) == times and len(set(tail)) == 1 and bool(tail[0])
