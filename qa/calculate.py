"""Answers that must be computed: a total or a difference of figures in the documents.

A small model asked "how much farther ...?" may answer with one of the stated figures,
not the difference; asked to first copy the figures it needs, it more often writes the
right arithmetic, though not always the right result (docs/design.md). So for such
questions the model lists the
figures and writes the calculation; the result is recomputed here, and the verifier then
checks every operand against the cited sentences (see :func:`qa.support.shown_calculation`).
The answer shows its working: "890 miles - 425 miles = 465 miles [1][2]."
"""

from __future__ import annotations

import ast
import operator
import re

from qa.language import NEEDS_CALCULATION
from qa.text import number_value

_NUMBER = r"\d[\d,]*(?:\.\d+)?"
_OPERATOR = r"[-+*/×−]"
# "890 miles - 425 miles = 465 miles": operands (each with an optional unit word), then
# "=", then the model's result and its unit.
_EXPRESSION = re.compile(
    rf"(?P<left>{_NUMBER}(?:[ \t]+[^\W\d_]+)?"
    rf"(?:[ \t]*{_OPERATOR}[ \t]*{_NUMBER}(?:[ \t]+[^\W\d_]+)?)+)"
    rf"\s*=\s*(?P<result>{_NUMBER})(?P<unit>(?:[ \t]+[^\W\d_]+){{0,2}})"
)
_OPERATIONS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def needs_calculation(question: str) -> bool:
    """Does ``question`` ask for a total or a difference rather than a stated figure?"""
    return bool(NEEDS_CALCULATION.search(question))


def evaluate(left: str) -> float | None:
    """The value of ``left`` ("890 miles - 425 miles"), ignoring unit words; None if invalid."""
    expression = re.sub(r"[^\W\d_]+", " ", left).replace("×", "*").replace("−", "-")
    expression = expression.replace(",", "")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
        return _evaluate(tree.body)
    except (SyntaxError, ValueError, ZeroDivisionError):
        return None


def _evaluate(node: ast.expr) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATIONS:
        return _OPERATIONS[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    raise ValueError("not plain arithmetic")


def format_number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}".rstrip("0")


def calculated_claim(text: str) -> str | None:
    """The last calculation in the model's working, as a claim with a recomputed result.

    "So, 400 miles - 220 miles = 190 miles." becomes "400 miles - 220 miles = 180 miles."
    None when the working holds no calculation.
    """
    matches = list(_EXPRESSION.finditer(text))
    if not matches:
        return None
    match = matches[-1]
    value = evaluate(match.group("left"))
    if value is None or value <= 0:
        return None  # "4 years - 4 years = 0 years" computes nothing the question asked
    unit = (match.group("unit") or "").strip()
    claim = f"{match.group('left').strip()} = {format_number(value)}"
    return f"{claim} {unit}".strip() + "."


def shown_calculation(claim: str) -> float | None:
    """The result of a correct calculation written out in ``claim``, else None.

    A result the claim computes from its own operands needs no source of its own (only
    the operands do); a wrong result ("19 + 1 = 21") earns nothing.
    """
    for match in _EXPRESSION.finditer(claim):
        value = evaluate(match.group("left"))
        if value is not None and abs(value - (number_value(match.group("result")) or 0.0)) < 1e-9:
            return value
    return None
