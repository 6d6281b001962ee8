"""The language of questions, in one place: the words that open, mark and shape a
question, the kinds of request read from them, and the words that carry no content.

Every module that reads a question's wording (:mod:`qa.prepare`, :mod:`qa.support`,
:mod:`qa.calculate`, :mod:`qa.answerability`) takes its vocabulary from here, so a word
added to a list is added for all of them. These patterns only *shape* a question
(what is retrieved, the answer's form, which checks run); whether a question is
answered is the judge's decision. Number words live in :mod:`qa.text` (documents use
them too).

A reader asks for a fact, but also for a summary ("what is this about?"), a list ("who
is named?"), a yes/no, an explanation (why/how) or who wrote the piece. Requests phrased
as commands ("Summarize…", "List…", "Explain…") are questions, not instructions to the
system. The kind is read from the wording alone (no model call), so it costs nothing.
"""

from __future__ import annotations

import re
from enum import StrEnum

# --- question words -------------------------------------------------------------------
# "how" + one of these asks for a quantity or a measure, not a manner ("How far?" is
# not "How did…?").
QUANTITY = "many|much|long|far|often|old|soon|big|large|fast|high|tall"
CONNECTIVE = r"(?:(?:and|so|but|then|also|ok(?:ay)?|well)\W+)?"
PREPOSITION = r"(?:(?:in|on|at|by|for|from|to|since|until|of|with|about)\s+)?"
# A leading phrase before the question proper: "In the photo, whom…", "According to X, what…"
LEAD_PHRASE = (
    r"(?:(?:in|on|at|by|for|from|during|after|before|since|besides|according\s+to|apart\s+from|"
    r"other\s+than|aside\s+from|of|with|among|between|under)\b[^,?]{0,80},\s*)?"
)
WH = r"who|whom|whose|what|when|where|which|why|how"
AUXILIARY = (
    r"is|are|was|were|am|do|does|did|can|could|will|would|should|shall|may|might|must|has|have|"
    r"had|isn't|aren't|wasn't|weren't|don't|doesn't|didn't|can't|couldn't|won't|wouldn't|"
    r"hasn't|haven't|hadn't"
)
REQUEST = (
    r"list|name|summari[sz]e|sum\s+up|describe|explain|give|tell|compare|identify|enumerate|"
    r"outline|quote|show"
)
OPENS_AS_QUESTION = re.compile(
    rf"^\W*{CONNECTIVE}{LEAD_PHRASE}{PREPOSITION}(?:{WH}|{AUXILIARY}|{REQUEST})\b",
    re.IGNORECASE,
)
OPENS_YES_NO = re.compile(rf"^\W*{CONNECTIVE}{LEAD_PHRASE}(?:{AUXILIARY})\b", re.IGNORECASE)
ANY_WH = re.compile(rf"\b(?:{WH})\b", re.IGNORECASE)
# A question word, "how many/much/…" as one ("How far?" is not "How many…?").
QUESTION_WORD = rf"(how\s+(?:{QUANTITY})|{WH})\b"
QUESTION_WORDS = re.compile(rf"\b{QUESTION_WORD}", re.IGNORECASE)
# The follow-up's own question word ("what about …" asks the last question again: none).
ASKED_WORD = re.compile(
    rf"^\W*{CONNECTIVE}{LEAD_PHRASE}{PREPOSITION}{QUESTION_WORD}(?!\s+about\b)",
    re.IGNORECASE,
)

# Besides a word pointing back (qa.text.POINTS_BACK), words that continue a conversation.
CONTINUES = re.compile(r"\b(?:same|also|else|why not|and)\b", re.IGNORECASE)
# "What about Putin?", "How about Japan?": the previous question, asked of something new.
ASKS_AGAIN = re.compile(r"^\W*(?:what|how)\s+about\b", re.IGNORECASE)
# A short question names its own subject: a name after its first word, or "the/a/an" + noun.
NAMES_SOMETHING = re.compile(r"(?<=\s)[A-Z]\w|\b(?i:the|a|an)\s+\w")
# The question word a rewrite of a follow-up must keep.
OPENING_WH_WORD = re.compile(
    r"^\W*(when|where|why|who|whom|what|which|how\s+(?:many|much|long|far))\b", re.IGNORECASE
)
# A request for an answer phrased as a command: "(Can you) tell me what …".
INDIRECT = re.compile(
    r"^\W*(?:please\s+)?(?:(?:can|could|would)\s+you\s+)?(?:please\s+)?(?:tell|show)\s+me\s+"
    rf"(?=(?:{WH})\b)",
    re.IGNORECASE,
)
# "How many/much <noun>": what a question counts.
HOW_MANY_WHAT = re.compile(r"\bhow\s+(?:many|much)\s+(?:[a-z]\.)*\s*([^\W\d_]{2,})", re.IGNORECASE)


# --- kinds of request -----------------------------------------------------------------
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
_YES_NO = re.compile(rf"^\W*(?:{AUXILIARY})\s", re.IGNORECASE)
_EXPLANATION = re.compile(
    rf"^\W*(?:please\s+)?(?:explain|describe)\b|\bwhy\b|\bhow\s+(?!{QUANTITY})\w+",
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


# --- words without content ---------------------------------------------------------
STOPWORDS = frozenset(
    """
    a an the and or but if of to in on at by for from with without about into over under
    after before between during as is are was were be been being has have had do does
    did will would can could should may might must shall it its it's this that these
    those there their them they he she his her him we our you your i me my what which
    who whom whose when where why how than then so such not no yes also only just very
    more most less least some any each both either neither all other another same own
    too up down out off again further once here says said say according article text
    passage passages document states stated mentions mentioned notes noted
    """.split()
)  # fmt: skip


# --- arithmetic -------------------------------------------------------------------
# A total ("how many ... in total / combined / including / counting ..."), a difference
# ("how many more ...", "how much farther ...", "how many minutes apart", "how many years
# passed ...", "what is the difference ..."). "between", "since" or a bare "more" elsewhere
# in a question ask for no arithmetic ("How many has it fired since January?" asks for a
# stated figure).
NEEDS_CALCULATION = re.compile(
    r"\bhow\s+(?:many|much|long|far|old)\b.*?\b(?:in\s+total|total|combined|altogether|"
    r"in\s+all|including|counting|apart|difference|passed|elapsed)\b|"
    r"\bhow\s+(?:many|much)\s+(?:more|fewer|less)\b|"
    r"\bhow\s+(?:much|many\s+\w+|long|far)\s+(?:farther|further|longer|shorter|later|earlier|"
    r"older|younger|more|less|fewer)\b|"
    r"\bwhat\s+is\s+the\s+(?:total|sum|difference)\b",
    re.IGNORECASE,
)
