"""Question normalisation: what a citizen types must end up looking like report text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from retrieval.normalize import (
    COLLOQUIAL_TO_OFFICIAL,
    fold_for_match,
    normalize_question,
    resolve_relative_years,
)


def test_traditional_question_becomes_simplified():
    assert normalize_question("衡陽市調解了多少矛盾糾紛？") == "衡阳市调解了多少矛盾纠纷？"


def test_full_width_digits_letters_and_percent_become_ascii():
    assert normalize_question("參考率是９９．１７％嗎") == "参考率是99.17%吗"
    assert fold_for_match("ＧＤＰ增長") == "GDP增长"


def test_chinese_punctuation_is_kept():
    text = "《衡阳市2019年度法治政府建设情况报告》里“三项制度”、法律顾问，怎么说？"
    assert fold_for_match(text) == text


def test_relative_years_follow_the_report_year():
    assert normalize_question("去年调解了多少纠纷", report_year=2019, expand_synonyms=False) == (
        "2018年调解了多少纠纷"
    )
    assert resolve_relative_years("今年和前年、大前年、明年", 2019) == "2019年和2017年、2016年、2020年"


def test_relative_years_untouched_without_a_year_or_inside_other_words():
    assert normalize_question("去年调解了多少纠纷", expand_synonyms=False) == "去年调解了多少纠纷"
    assert resolve_relative_years("提前年度报告 文明年", 2019) == "提前年度报告 文明年"


def test_colloquial_terms_are_expanded_keeping_the_original_words():
    expanded = normalize_question("告政府打官司难不难")
    assert expanded.startswith("告政府打官司难不难")
    assert "行政诉讼" in expanded and "诉讼" in expanded
    assert normalize_question("上访有人管吗").endswith("信访")


def test_expansion_can_be_switched_off():
    assert normalize_question("告政府打官司难不难", expand_synonyms=False) == "告政府打官司难不难"


def test_expansion_does_not_repeat_terms_already_asked():
    question = "投诉和信访有什么区别"
    assert normalize_question(question) == question


def test_every_table_entry_expands_to_something_new():
    for colloquial, officials in COLLOQUIAL_TO_OFFICIAL:
        assert officials and all(official != colloquial for official in officials)
        assert normalize_question(colloquial) != colloquial, colloquial


def test_control_zero_width_and_bidi_marks_are_stripped():
    pasted = "\ufeff法律\u200b顾问\u202e有\u200f几名\x00？\r\n\t"
    assert normalize_question(pasted) == "法律顾问有几名？"


def test_whitespace_and_repeated_punctuation_collapse():
    assert normalize_question("  法律顾问　 有几名？？？  ") == "法律顾问 有几名？"


def test_empty_and_blank_questions_give_empty():
    assert normalize_question("") == ""
    assert normalize_question(" \u3000\u200b\n") == ""


def test_english_question_passes_through():
    assert normalize_question("How many  disputes were mediated?") == "How many disputes were mediated?"


def test_fold_for_match_does_not_expand_synonyms():
    assert fold_for_match("打官司") == "打官司"


@given(st.text(max_size=200))
def test_fold_for_match_keeps_length_so_offsets_stay_valid(text):
    assert len(fold_for_match(text)) == len(text)


@given(st.text(max_size=200))
def test_normalize_is_idempotent_without_expansion(text):
    once = normalize_question(text, expand_synonyms=False)
    assert normalize_question(once, expand_synonyms=False) == once
