"""What titles and headings say about time: report facts from titles, periods of report parts."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.corpus import meta_from_file
from retrieval.document import ReportMeta
from retrieval.parse import parse_report
from retrieval.periods import PLAN, REVIEW, Period, chapter_periods, coverage, heading_period, report_periods
from retrieval.sources import read_report_text
from retrieval.titles import describe_title, region_key

GOV = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "gov-work-reports"
SEED = Path(__file__).resolve().parent.parent / "corpus" / "hengyang-2019-fazhi-zhengfu-report.txt"


@pytest.mark.parametrize(
    ("title", "year", "region", "kind"),
    [
        ("2023年南山区政府工作报告", 2023, "南山区", "政府工作报告"),
        ("2014年政府工作报告（在深圳市罗湖区第六届人民代表大会第三次会议上）", 2014, "罗湖区", "政府工作报告"),
        ("深圳市宝安区人民政府区长王立德在深圳市宝安区第七届人民代表大会第三次会议上作政府工作报告", None,
         "宝安区", "政府工作报告"),
        ("大鹏新区管委会2014年工作报告", 2014, "大鹏新区", "政府工作报告"),
        ("深圳市光明区人民政府关于2021年度法治政府建设情况的报告", 2021, "光明区", "法治政府建设情况报告"),
        ("衡阳市2019年度法治政府建设情况报告", 2019, "衡阳市", "法治政府建设情况报告"),
        ("国务院政府工作报告", None, "国务院", "政府工作报告"),
        ("广东省政府工作报告", None, "广东省", "政府工作报告"),
        ("优化营商环境条例（国务院令第722号）", None, "国务院", "条例"),
        ("福田区政府工作报告（2016）", 2016, "福田区", "政府工作报告"),
        ("二〇二二年平乐县政府工作报告", 2022, "平乐县", "政府工作报告"),
    ],
)
def test_title_facts(title, year, region, kind):
    facts = describe_title(title)
    assert (facts.year, facts.region, facts.kind) == (year, region, kind)


def test_title_date_and_file_year_fallback():
    assert describe_title("南山区政府工作报告（2021年10月17日）").date == "2021-10-17"
    assert describe_title("国务院政府工作报告", "国务院政府工作报告_2023年").year == 2023
    assert region_key("光明新区") == region_key("光明区") == "光明"


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("2019年工作回顾", Period(2019, REVIEW)),
        ("2020年工作安排", Period(2020, PLAN)),
        ("2020年工作思路和主要任务", Period(2020, PLAN)),
        ("2019年以来工作回顾", Period(2019, REVIEW)),
        ("关于2019年工作", Period(2019, REVIEW)),
        ("关于2020年工作", Period(2020, PLAN)),
        ("对今年政府工作的建议", Period(2020, PLAN)),
        ("过去一年工作回顾", Period(2019, REVIEW)),
        ("过去五年工作回顾", Period(2019, REVIEW, (2015, 2019))),
        ("“十三五”时期主要成绩及2019年工作回顾", Period(2019, REVIEW, (2015, 2019))),
        ("今后五年的目标任务", Period(2020, PLAN, (2020, 2024))),
        ("迎难而上、顽强拼搏，2019年经济社会发展取得新进步迈上新台阶", Period(2019, REVIEW)),
        ("坚定信心、团结奋斗，奋力实现2020年政府工作总体目标要求", Period(2020, PLAN)),
        ("名词解释", Period(None, None)),
    ],
)
def test_heading_periods_of_a_work_report_delivered_in_2020(heading, expected):
    assert heading_period(heading, 2019, 2020) == expected


def test_a_heading_that_says_nothing_is_decided_by_its_place():
    assert heading_period("把改革开放扎实推向纵深", 2014, 2015) is None


def _parse(path: Path, title: str | None = None) -> object:
    meta = meta_from_file(path)
    if title:
        meta = ReportMeta(meta.report_id, title, meta.file, **{**_facts(title)})
    return parse_report(read_report_text(path), meta)


def _facts(title: str) -> dict:
    f = describe_title(title)
    return {"year": f.year, "region": f.region, "kind": f.kind}


def test_work_report_periods_follow_its_chapters():
    report = _parse(GOV / "国务院政府工作报告_2015年.txt")
    chapters = chapter_periods(report, report.meta.kind, report.meta.year)
    assert chapters["1"] == Period(2014, REVIEW)  # 一、2014年工作回顾
    assert chapters["2"] == Period(2015, PLAN)  # 二、2015年工作总体部署
    # 三、把改革开放扎实推向纵深 names no year: after a plan chapter it plans too
    assert chapters["3"] == Period(2015, PLAN) and chapters["6"] == Period(2015, PLAN)
    assert chapters["0"] == Period(None, None)


def test_a_review_paragraph_inside_a_plan_chapter_keeps_its_own_period():
    report = _parse(GOV / "国务院政府工作报告_2016年.txt")
    periods = report_periods(report)
    military = next(p for p in report.paragraphs() if p.text.startswith("过去一年，国防和军队建设"))
    assert periods[military.start] == Period(2015, REVIEW)


def test_a_plan_paragraph_inside_a_review_chapter_plans_the_report_year(tmp_path):
    text = (
        "一、2022年工作回顾\n一年来，全年实现地区生产总值821亿元。\n"
        "今年经济社会发展主要预期目标是：地区生产总值增长6%。\n二、2023年工作安排\n（一）抓好项目。\n将新建学位。\n"
    )
    path = tmp_path / "某区2023年政府工作报告_2023.txt"
    path.write_text(text, encoding="utf-8")
    report = _parse(path)
    by_text = {p.text: report_periods(report)[p.start] for p in report.paragraphs()}
    assert by_text["一年来，全年实现地区生产总值821亿元。"] == Period(2022, REVIEW)
    assert by_text["今年经济社会发展主要预期目标是：地区生产总值增长6%。"] == Period(2023, PLAN)
    assert by_text["将新建学位。"] == Period(2023, PLAN)


def test_rule_of_law_report_reviews_its_year_and_plans_the_next():
    seed = parse_report(
        read_report_text(SEED),
        ReportMeta("hy", "衡阳市2019年度法治政府建设情况报告", SEED.name, year=2019, kind="法治政府建设情况报告"),
    )
    assert {p.kind for p in report_periods(seed).values()} == {REVIEW}
    assert coverage(report_periods(seed)).describe() == "回顾2019年"
    longhua = _parse(GOV / "深圳市龙华区2019年法治政府建设工作报告_2019.txt")
    chapters = chapter_periods(longhua, longhua.meta.kind, longhua.meta.year)
    # 一、积极统筹部署… says 部署 but is a review; 八、2020年法治政府建设工作计划 plans 2020
    assert chapters["1"] == Period(2019, REVIEW)
    assert chapters["8"] == Period(2020, PLAN)
    assert coverage(report_periods(longhua)).describe() == "回顾2019年 · 计划2020年"


def test_regulations_have_no_periods():
    path = GOV.parent / "regulations" / "law_zhengfu_xinxi_gongkai_2019.txt"
    report = parse_report(read_report_text(path), meta_from_file(path))
    assert report.meta.kind == "条例"
    assert set(report_periods(report).values()) == {Period(None, None)}


def test_every_dev_work_report_has_a_review_or_plan():
    """Over the shared work reports the dev sets use (held-out series excluded), each report that
    parses gets a plan for its own year; those with a review chapter review the year before."""
    for path in sorted(GOV.glob("*.txt")):
        if "盐田" in path.name or "龙岗" in path.name:
            continue
        meta = meta_from_file(path)
        report = parse_report(read_report_text(path), meta)
        if not any(s.level >= 1 for s in report.sections):
            continue  # the one saved web page without the report
        cov = coverage(report_periods(report))
        if meta.kind == "政府工作报告":
            assert meta.year in cov.plans, path.name
            assert not cov.reviews or max(cov.reviews) == meta.year - 1, path.name
