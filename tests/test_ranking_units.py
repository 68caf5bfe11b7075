"""Pure ranking pieces: scope detection, fusion, answer-sentence choice, the refusal rule, input checks."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.document import ReportMeta
from retrieval.errors import InputError
from retrieval.highlight import asks_for_number, choose_sentence
from retrieval.rank import fuse
from retrieval.refusal import RefusalFeatures, is_chinese, is_covered
from retrieval.retriever import MAX_QUESTION_CHARS, validate_question
from retrieval.scope import detect_scope, report_places

HENGYANG = ReportMeta(
    "hy", "衡阳市2019年度法治政府建设情况报告", "hy.txt", issuer="衡阳市人民政府", year=2019, region="衡阳市"
)
LONGHUA19 = ReportMeta("lh19", "深圳市龙华区2019年法治政府建设工作报告", "lh.txt", year=2019, region="龙华区")
LONGHUA20 = ReportMeta("lh20", "2020年龙华区政府工作报告", "lh20.txt", year=2020, region="龙华区")
NANSHAN = ReportMeta("ns", "2018年南山区政府工作报告", "ns.txt", year=2018)


def test_report_places_with_and_without_suffix():
    assert {"衡阳市", "衡阳"} <= report_places(HENGYANG)
    assert {"龙华区", "龙华", "深圳市"} <= report_places(LONGHUA19)


def test_a_title_naming_the_government_and_its_head_yields_only_places():
    baoan = ReportMeta("ba", "深圳市宝安区人民政府区长王立德在深圳市宝安区第七届人民代表大会第一次会议上作政府工作报告",
                       "ba.txt", year=2021, region="宝安区")
    assert report_places(baoan) == {"宝安区", "宝安", "深圳市", "深圳"}
    # a question about 市人民政府 is not thereby about 宝安区
    assert detect_scope("市人民政府出台了多少规范性文件", [baoan, HENGYANG]).report_ids is None


def test_scope_is_the_named_place_and_leaves_years_to_the_time_rules():
    metas = [HENGYANG, LONGHUA19, LONGHUA20, NANSHAN]
    assert detect_scope("衡阳调解了多少纠纷", metas).report_ids == ("hy",)
    assert set(detect_scope("龙华区2020年的工作", metas).report_ids) == {"lh19", "lh20"}
    assert set(detect_scope("龙华区的行政复议", metas).report_ids) == {"lh19", "lh20"}
    unscoped = detect_scope("行政复议收到多少申请", metas)
    assert unscoped.report_ids is None and unscoped.years == ()


def test_scope_prefers_reports_about_the_place_over_titles_that_mention_it():
    city = ReportMeta("sz23", "深圳市政府工作报告", "sz.txt", year=2023, region="深圳市")
    district = ReportMeta("ba23", "深圳市宝安区人民政府区长…作政府工作报告", "ba.txt", year=2023, region="宝安区")
    province = ReportMeta("gd23", "广东省政府工作报告", "gd.txt", year=2023, region="广东省")
    metas = [city, district, province]
    assert detect_scope("深圳2022年GDP是多少", metas).report_ids == ("sz23",)
    assert detect_scope("深圳市宝安区的学位", metas).report_ids == ("ba23",)
    assert detect_scope("宝安新增多少学位", metas).report_ids == ("ba23",)


def test_fuse_hybrid_mixes_both_legs_and_single_modes_follow_their_leg():
    ids = np.array([10, 11, 12])
    dense = np.array([0.90, 0.82, 0.86])  # min-max: 1.0, 0.0, 0.5
    lexical = np.array([0.0, 9.0, 3.0])  # / best: 0.0, 1.0, 0.33
    assert list(fuse(ids, dense, lexical, mode="dense").ids) == [10, 12, 11]
    assert list(fuse(ids, dense, lexical, mode="lexical").ids) == [11, 12, 10]
    lexical_heavy = fuse(ids, dense, lexical, mode="hybrid", dense_weight=0.3)
    assert list(lexical_heavy.ids) == [11, 12, 10]  # 0.7 > 0.15+0.23 > 0.3
    dense_heavy = fuse(ids, dense, lexical, mode="hybrid", dense_weight=0.8)
    assert list(dense_heavy.ids) == [10, 12, 11]  # 0.8 > 0.4+0.07 > 0.2


def test_number_question_highlights_the_sentence_with_the_number():
    sentences = ["全面推行网格化排查预警模式。", "2019年,全市共调解矛盾纠纷17076件,调解成功率99%。"]
    toks = [list(s) for s in sentences]
    choice = choose_sentence(
        sentences,
        question="调解了多少件纠纷",
        query_tokens=list("调解纠纷"),
        sentence_tokens=toks,
        idf=lambda t: 1.0,
    )
    assert choice.index == 1
    assert asks_for_number("How many disputes were mediated?")
    assert not asks_for_number("衡阳怎样推行多元化解机制")


def test_dense_similarity_decides_when_words_do_not_match():
    sentences = ["甲句。", "乙句。", "丙句。"]
    choice = choose_sentence(
        sentences,
        question="which one",
        query_tokens=[],
        sentence_tokens=[[], [], []],
        idf=lambda t: 1.0,
        dense_sims=np.array([0.80, 0.86, 0.81]),
    )
    assert choice.index == 1


def test_year_conflict_is_never_covered():
    f = RefusalFeatures(dense=0.99, coverage=1.0, chinese=True, year_conflict=True)
    assert not is_covered(f, "hybrid")


def test_is_chinese():
    assert is_chinese("衡阳调解了多少纠纷")
    assert is_chinese("政府 lawsuit 赢了几个?")
    assert not is_chinese("How many disputes were mediated in Hengyang?")


@pytest.mark.parametrize(
    "bad, message",
    [
        ("", "empty"),
        ("   \n\t ", "empty"),
        ("问" * (MAX_QUESTION_CHARS + 1), "too long"),
        ("\x00\x01\x02\x03\x04\x05\x06\x07", "not readable"),
        ("？？！！。。", "no words"),
        (b"bytes".decode() and 5, "must be text"),
    ],
)
def test_bad_questions_get_a_clear_error(bad, message):
    with pytest.raises(InputError, match=message):
        validate_question(bad)


def test_good_question_is_stripped():
    assert validate_question("  衡阳调解了多少纠纷？ \n") == "衡阳调解了多少纠纷？"


def test_multiline_question_is_text():
    assert validate_question("调解\n\n纠纷\r\n多少\t件") == "调解\n\n纠纷\r\n多少\t件"


def test_year_ranges_are_not_year_mentions():
    from retrieval.scope import mentions_year

    assert mentions_year("2020年区政府将进一步落实", 2020)
    assert not mentions_year("《法治政府建设实施纲要(2015—2020年)》", 2020)
    assert not mentions_year("12020年", 2020)


def test_places_named_in_a_question():
    from retrieval.scope import question_places

    assert question_places("长沙2019年调解纠纷的成功率是多少") == ("长沙",)
    assert set(question_places("衡阳东到长沙南的高铁票多少钱")) == {"衡阳", "长沙"}
    assert question_places("调解了多少矛盾纠纷") == ()


def test_place_conflict_is_never_covered():
    f = RefusalFeatures(dense=0.99, coverage=1.0, chinese=True, year_conflict=False, place_conflict=True)
    assert not is_covered(f, "hybrid")


def test_shipped_gazetteer_is_what_jiebas_dictionary_gives():
    from retrieval.scope import gazetteer, places_from_jieba, question_places

    assert gazetteer() == places_from_jieba()  # else: scripts/make_gazetteer.py after a jieba upgrade
    assert question_places("长沙市2019年调解了多少纠纷") == ("长沙市",)


def test_english_gloss_weights_let_the_asked_term_pick_the_sentence():
    # "face recognition" → 刷脸 (twice: the glossary's first term), "business" → 营商环境 (once):
    # counted by tokens, the three bigrams of 营商环境 would outweigh 刷脸's one.
    from retrieval.highlight import gloss_token_weights
    from retrieval.lexical import tokenize

    sentences = ["营造一流法治化营商环境。", "推行“刷脸办事”。"]
    gloss_text = "龙华 刷脸 刷脸 营商环境"
    weights = gloss_token_weights(gloss_text.split(), tokenize, {"龙华"})
    q_tokens = tokenize("刷脸 刷脸 营商环境")
    kwargs = dict(question="can I use face recognition for business?", query_tokens=q_tokens,
                  sentence_tokens=[tokenize(s) for s in sentences], idf=lambda t: 1.0)
    assert choose_sentence(sentences, **kwargs).index == 0  # every token alike
    assert choose_sentence(sentences, **kwargs, token_weights=weights).index == 1
