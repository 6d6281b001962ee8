"""Follow one question from ``Pipeline.ask`` to its ``Answer`` and count the path.

The path is the sequence of ``qa/`` modules the answer runs in, read from the interpreter's
call and return events, down to ``--depth`` calls below ``Pipeline._answer`` (deeper
helpers are inside their caller's stop). Consecutive events in one module are one stop;
a *return* is a stop in a module the path had already left. Also prints each ``qa/``
module's size in lines. Run it before and after a refactor, on the same question:

    python -m eval.question_path --depth 2 "How far did the missiles fly?"
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

QA = Path(__file__).resolve().parent.parent / "qa"


@dataclass(frozen=True)
class PathCount:
    stops: list[str]

    @property
    def files(self) -> int:
        return len(set(self.stops))

    @property
    def returns(self) -> int:
        return sum(1 for i, name in enumerate(self.stops) if name in self.stops[:i])

    def entered(self) -> Counter:
        return Counter(self.stops)


def follow(run: Any, depth: int) -> PathCount:
    """The modules ``run()`` passes through, up to ``depth`` calls below ``_answer``."""
    stops: list[str] = []
    stack: list[str] = []  # the qa module of each qa frame below _answer
    started = False

    def module(frame: FrameType) -> str | None:
        path = Path(frame.f_code.co_filename)
        return path.name if path.parent == QA else None

    def note(name: str) -> None:
        if not stops or stops[-1] != name:
            stops.append(name)

    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        nonlocal started
        if event not in ("call", "return"):
            return
        name = module(frame)
        if name is None:
            return
        if event == "call":
            if frame.f_code.co_name == "_answer" and name == "pipeline.py":
                started = True
            if not started:
                return
            stack.append(name)
            if len(stack) <= depth + 1:
                note(name)
        else:
            if not started or not stack:
                return
            stack.pop()
            if stack and len(stack) <= depth + 1:
                note(stack[-1])
            if frame.f_code.co_name == "_answer" and name == "pipeline.py":
                started = False

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return PathCount(stops)


def module_sizes() -> dict[str, int]:
    return {
        p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in sorted(QA.glob("*.py"))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question")
    parser.add_argument("--depth", type=int, default=2)
    args = parser.parse_args()
    from qa.config import Config
    from qa.pipeline import get_pipeline

    pipeline = get_pipeline(Config())
    pipeline.ask(args.question)  # warm: the first answer also loads lazily
    answer = None

    def ask() -> None:
        nonlocal answer
        answer = pipeline.ask(args.question)

    count = follow(ask, args.depth)
    print(f"answer: {answer.text if answer else None!r}")
    print(f"stops {len(count.stops)}, files {count.files}, returns {count.returns}")
    print("path: " + " > ".join(n.removesuffix(".py") for n in count.stops))
    entered = ", ".join(f"{n} {c}" for n, c in count.entered().most_common() if c > 1)
    print(f"entered more than once: {entered}")
    sizes = module_sizes()
    print(
        f"qa/ modules: {len(sizes)}, lines {sum(sizes.values())}, largest: "
        + ", ".join(f"{n} {s}" for n, s in sorted(sizes.items(), key=lambda x: -x[1])[:6])
    )


if __name__ == "__main__":
    main()
