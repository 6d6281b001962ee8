"""What kind of request a question is: it decides retrieval, the answer's shape and the checks.

A reader asks for a fact, but also for a summary ("what is this about?"), a list ("who is
named?"), a yes/no, an explanation (why/how) or who wrote the piece. Requests phrased as
commands ("Summarize…", "List…", "Explain…") are questions, not instructions to the
system. The kind is read from the wording alone (no model call), so it costs nothing.
"""

from __future__ import annotations

import re
from enum import StrEnum


class Kind(StrEnum):
    FACT = "fact"
    SUMMARY = "summary"
    LIST = "list"
    YES_NO = "yes_no"
    EXPLANATION = "why_how"
    AUTHORSHIP = "authorship"


_SUMMARY = re.compile(
    r"^\W*(?:please\s+)?(?:summari[sz]e|sum\s+up|give\s+(?:me\s+)?(?:a\s+)?(?:summary|overview|"
    r"gist)|outline)\b|\b(?:summary|overview|gist|tl;?dr|main\s+points?|key\s+points?)\b|"
    r"\bwhat\s+(?:is|are)\s+(?:this|the|these)\s+(?:article|document|text|story|piece|page|"
    r"report|documents|articles)\s+about\b|\bwhat\s+(?:does|do)\s+(?:this|the|these)\s+"
    r"(?:article|document|text|story|report|documents)\s+(?:say|cover|describe)\s*\??$",
    re.IGNORECASE,
)
_LIST = re.compile(
    r"^\W*(?:please\s+)?(?:list|name|enumerate)\b|\b(?:name|list)\s+(?:all|every|each|the)\b|"
    r"\b(?:which|what)\s+\w+(?:\s+\w+)?\s+(?:are|were|is)\s+(?:named|mentioned|listed|cited|quoted)"
    r"\b|\bwho\s+(?:is|are|was|were)\s+(?:named|mentioned|quoted|cited)\b",
    re.IGNORECASE,
)
_YES_NO = re.compile(
    r"^\W*(?:is|are|was|were|do|does|did|has|have|had|can|could|will|would|should|shall|may|"
    r"might|must|isn't|aren't|wasn't|weren't|doesn't|didn't|hasn't|haven't)\s",
    re.IGNORECASE,
)
_EXPLANATION = re.compile(
    r"^\W*(?:please\s+)?(?:explain|describe)\b|\bwhy\b|"
    r"\bhow\s+(?!many|much|far|long|old|often|big|large|fast|high|tall|soon)\w+",
    re.IGNORECASE,
)
_AUTHORSHIP = re.compile(
    r"\bwho\s+(?:wrote|authored|reported|penned)\b|\b(?:author|byline|dateline|written\s+by|"
    r"reporter|journalist|publication|publisher)\b",
    re.IGNORECASE,
)


def classify(question: str) -> Kind:
    """The kind of ``question`` (FACT when nothing more specific matches)."""
    if _SUMMARY.search(question):
        return Kind.SUMMARY
    if _AUTHORSHIP.search(question):
        return Kind.AUTHORSHIP
    if _LIST.search(question):
        return Kind.LIST
    if _YES_NO.search(question):
        return Kind.YES_NO
    if _EXPLANATION.search(question):
        return Kind.EXPLANATION
    return Kind.FACT


# Kinds whose answer is one fact from one place: the answerability check applies. A
# summary or a list draws on many sentences, a yes/no is answered by "no" with the fact
# that shows it, and a byline is rarely phrased like the question.
CHECKED_KINDS = frozenset({Kind.FACT, Kind.EXPLANATION})

# Kinds that draw on the documents as a whole ("what is this about?", "who is named?",
# "who wrote this?"): their wording is far from any one passage, so the off-topic
# similarity floor does not apply to them.
BROAD_KINDS = frozenset({Kind.SUMMARY, Kind.LIST, Kind.AUTHORSHIP})
