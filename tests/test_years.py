"""Years in questions (explicit, ranges, relative to today, across years, plan or fact) and the pure
rules that choose the year an answer comes from."""

from __future__ import annotations

from datetime import date

import pytest

from retrieval.answer import citation, report_label
from retrieval.periods import PLAN, REVIEW
from retrieval.time_select import (
    Candidate,
    coverage_note,
    keep_timeline_years,
    kind_mismatch_note,
    latest_year,
    nearest_years,
    newest_at_most,
    other_years,
    uncovered_note,
    year_pool,
)
from retrieval.years import parse_today, question_time, replace_relative

TODAY = date(2026, 12, 2)


@pytest.mark.parametrize(
    ("question", "years", "timeline"),
    [
        ("2022年南山区地区生产总值是多少？", (2022,), False),
        ("二〇二二年深圳GDP", (2022,), False),
        ("2022的GDP是多少", (2022,), False),
        ("2017年和2022年深圳GDP分别是多少", (2017, 2022), True),
        ("2019—2021年新增了多少学位", (2019, 2020, 2021), True),
        ("2019年至2021年的财政收入", (2019, 2020, 2021), True),
        ("2019到2021年", (2019, 2020, 2021), True),
        ("去年南山的GDP增长了多少？", (2025,), False),
        ("前年呢", (2024,), False),
        ("明年将新建多少学位", (2027,), False),
        ("南山区历年地区生产总值", (), True),
        ("这几年学位增加了多少", (), True),
        ("近五年GDP有什么变化", (), True),
        ("新增1900万元投资", (), False),
        ("提前年度报告", (), False),
        ("过去年份", (), False),
    ],
)
def test_years_in_questions(question, years, timeline):
    when = question_time(question, TODAY)
    assert when.years == years
    assert when.timeline is timeline


def test_relative_years_follow_today_and_last_n():
    assert question_time("今年的目标", date(2024, 5, 10)).relative == (("今年", 2024),)
    assert question_time("近三年", TODAY).last_n == 3
    assert question_time("2023年的GDP", TODAY, year=2019).years == (2019,)  # --year wins


@pytest.mark.parametrize(
    ("question", "intent"),
    [
        ("2023年深圳GDP增长目标是多少", PLAN),
        ("明年计划新建多少学位", PLAN),
        ("今年将新增多少公园", PLAN),
        ("龙华下一步打算怎么做", PLAN),
        ("2022年深圳GDP是多少", REVIEW),
        ("去年调解了多少纠纷", REVIEW),
        ("将近一半的企业", REVIEW),
    ],
)
def test_intent(question, intent):
    assert question_time(question, TODAY).intent == intent


def test_replace_relative_and_parse_today():
    assert replace_relative("去年和今年调解了多少", {"去年": 2019, "今年": 2019}) == "2019年和2019年调解了多少"
    assert parse_today("2024-05-10") == date(2024, 5, 10)
    assert parse_today(None) is None
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_today("10/05/2024")


def _c(pid, strength, year, kind=REVIEW, series=0):
    return Candidate(pid, strength, year, kind, series, strength)


def test_latest_year_among_strong_candidates_of_the_series():
    cands = [
        _c(1, 1.50, 2019),
        _c(2, 1.40, 2024),  # strong, newest of the series, right kind
        _c(3, 1.45, 2025, PLAN),  # a plan: the question asks what was done
        _c(4, 1.49, 2025, REVIEW, series=1),  # another series
        _c(5, 1.00, 2023),  # too weak to count
    ]
    pool, kind = year_pool(cands, series=0, intent=REVIEW)
    assert kind == REVIEW and latest_year(pool) == 2024
    assert other_years(pool, [2024]) == (2019,)
    # no candidate of the kind asked for: any kind counts
    pool, kind = year_pool([_c(1, 1.0, 2020, PLAN), _c(2, 0.9, 2021, PLAN)], 0, REVIEW)
    assert kind is None and latest_year(pool) == 2021


def test_nearest_and_newest_years():
    covered = {2013, 2014, 2015, 2020}
    assert nearest_years(covered, 2012) == (2013, 2014, 2015)
    assert nearest_years(covered, 2018, n=2) == (2015, 2020)
    assert newest_at_most(covered, 2025) == 2020
    assert newest_at_most(covered, 2010) == 2013
    assert newest_at_most(set(), 2010) is None


def test_notes_and_labels():
    label = report_label("2025年南山区政府工作报告", 2025)
    assert coverage_note(label, 2024, REVIEW) == "收录的最新报告为《2025年南山区政府工作报告》，回顾2024年"
    assert report_label("国务院政府工作报告", 2023) == "《国务院政府工作报告》（2023年）"
    assert citation("国务院政府工作报告", "一、", "2022年工作回顾", 2023) == (
        "《国务院政府工作报告》（2023年）一、 2022年工作回顾"
    )
    assert citation("衡阳市2019年度法治政府建设情况报告", "七、(一)", "推行多元化解机制", 2019) == (
        "《衡阳市2019年度法治政府建设情况报告》七、(一) 推行多元化解机制"
    )
    assert uncovered_note(2012, (2013, 2014)) == "收录的报告未涉及2012年（有内容的最近年份：2013年、2014年）"
    assert kind_mismatch_note(2025, REVIEW, PLAN) == "收录的报告尚未回顾2025年，以下为2025年的计划"
    assert kind_mismatch_note(2025, REVIEW, REVIEW) is None


def test_timeline_keeps_years_near_the_strongest():
    strengths = {2019: 1.50, 2020: 1.45, 2021: 1.10}
    assert keep_timeline_years(strengths, explicit=False) == [2019, 2020]
    assert keep_timeline_years(strengths, explicit=True) == [2019, 2020, 2021]
    assert keep_timeline_years({}, explicit=False) == []
