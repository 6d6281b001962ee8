"""Yes/no answers take their first word from the evidence's reading (fast, no model)."""

from qa.polarity import agree, stated_polarity


def test_a_yes_contradicted_by_the_evidence_becomes_no_and_keeps_the_fact():
    agreed = agree("Yes, Kim arrived in Russia on Tuesday [1].", p_yes=0.15)
    assert agreed.changed and agreed.text == "No, Kim arrived in Russia on Tuesday [1]."


def test_an_agreeing_answer_is_left_alone():
    for text, p_yes in [("Yes, it flew 400 miles [1].", 0.9), ("No. It was Tass [1].", 0.2)]:
        agreed = agree(text, p_yes)
        assert not agreed.changed and agreed.text == text


def test_an_answer_without_a_polarity_word_gets_one():
    agreed = agree("the missiles flew more than 400 miles [1].", p_yes=0.8)
    assert agreed.text == "Yes. The missiles flew more than 400 miles [1]."
    assert stated_polarity(agreed.text) is True
    assert stated_polarity("Nobody knows [1].") is None  # "No" must be a word of its own
