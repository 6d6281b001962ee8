"""Cleaning page clutter and chunking with exact offsets (pure logic, no models)."""

from pathlib import Path

from index.chunk import chunk_document, passage_id, split_sentences
from index.clean import clean_paragraphs, is_call_to_action

SEED = Path(__file__).parents[1] / "seeds" / "000_61f43937c72d7f92.txt"

OTHER_PAGE = """Share this article
Log in to comment
City council approves new park

The city council voted 7-2 on Monday to approve a new park, officials said.

Mayor Jane Doe called it "a big day." The park opens in May.

Sign up for our newsletter

Get the best stories in your inbox every morning.
Advertisement
"""


def test_seed_clutter_removed_and_caption_kept_once():
    text = SEED.read_text()
    kept = [p.text for p in clean_paragraphs(text)]
    joined = "\n".join(kept)
    assert "Subscribe" not in kept
    assert not any(p.startswith("Sign Up") or p.startswith("Sign up") for p in kept)
    assert joined.count("gestures while speaking to Russian Minister") == 1
    assert "(Russian Minister of Natural Resources and Ecology via Telegram)" in joined
    assert kept[-1].startswith("David Choi is based in South Korea")


def test_general_rules_work_on_another_page():
    kept = [p.text for p in clean_paragraphs(OTHER_PAGE)]
    assert "Share this article" not in kept
    assert "Log in to comment" not in kept
    assert "Sign up for our newsletter" not in kept
    assert "Advertisement" not in kept
    assert any("voted 7-2" in p for p in kept)
    assert is_call_to_action("Subscribe")
    assert not is_call_to_action("Subscribers to the plan said it failed.")


def test_offsets_point_into_the_original_file():
    text = SEED.read_text()
    passages = chunk_document("seed.txt", text, clean_paragraphs(text))
    assert 10 <= len(passages) <= 25
    for passage in passages:
        assert text[passage.start : passage.end] == passage.text
        for start, end in passage.sentences:
            assert passage.start <= start < end <= passage.end
    assert [p.position for p in passages] == list(range(len(passages)))


def test_sentence_split_respects_abbreviations():
    text = (
        "He met U.S. officials on Sept. 7 in Washington, D.C. on Monday. "
        "Then he left at 11 a.m. Friday."
    )
    sentences = [text[s:e] for s, e in split_sentences(text)]
    assert sentences == [
        "He met U.S. officials on Sept. 7 in Washington, D.C. on Monday.",
        "Then he left at 11 a.m. Friday.",
    ]


def test_passage_ids_are_deterministic_and_content_sensitive():
    assert passage_id("a", 0, 5, "hello") == passage_id("a", 0, 5, "hello")
    assert passage_id("a", 0, 5, "hello") != passage_id("a", 0, 5, "hellO")
    assert passage_id("a", 0, 5, "hello") != passage_id("b", 0, 5, "hello")


def test_long_paragraph_is_split_at_sentence_boundaries():
    paragraph = " ".join(f"Sentence number {i} is here." for i in range(40))
    passages = chunk_document("d", paragraph, clean_paragraphs(paragraph), max_chars=200)
    assert len(passages) > 1
    assert all(len(p.text) <= 200 for p in passages)
    assert all(p.text.endswith(".") for p in passages)
