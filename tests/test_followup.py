"""Follow-up rules: a chat message understood as a standalone question from the previous turn."""

from __future__ import annotations

import pytest

from retrieval.followup import (
    FRESH,
    MEASURE,
    MORE,
    PLACE,
    YEAR,
    Turn,
    needs_context,
    parts,
    remember,
    understand,
    with_place,
    with_year,
)

PLACES = [
    "南山区", "南山", "福田区", "福田", "深圳市", "深圳", "广东省", "广东", "衡阳市", "衡阳", "罗湖区", "罗湖",
    "坪山区", "坪山", "龙华区", "龙华", "光明区", "光明",
]


def after(previous: str, message: str):
    return understand(message, Turn(previous, previous), PLACES)


def test_question_parts():
    p = parts("2022年南山区地区生产总值是多少？", PLACES)
    assert (p.years, p.place, p.topic, p.tail) == ("2022年", "南山区", "地区生产总值", "是多少？")
    assert p.compose() == "2022年南山区地区生产总值是多少？"
    assert parts("去年深圳的GDP增长了多少", PLACES).years == "去年"


@pytest.mark.parametrize(
    ("message", "kind", "standalone"),
    [
        ("那2017年呢？", YEAR, "2017年南山区地区生产总值是多少？"),
        ("2021年的呢", YEAR, "2021年南山区地区生产总值是多少？"),
        ("二〇一九年呢", YEAR, "2019年南山区地区生产总值是多少？"),  # written out in digits
        ("去年呢", YEAR, "去年南山区地区生产总值是多少？"),
        ("福田区呢？", PLACE, "2022年福田区地区生产总值是多少？"),
        ("换成罗湖区", PLACE, "2022年罗湖区地区生产总值是多少？"),
        ("那深圳2018年呢", YEAR, "2018年深圳地区生产总值是多少？"),
        ("固定资产投资呢？", MEASURE, "2022年南山区固定资产投资是多少？"),
        ("增长了多少？", MEASURE, "2022年南山区地区生产总值增长了多少？"),
        ("具体怎么做的？", MORE, "2022年南山区地区生产总值是多少？"),
        ("详细说说", MORE, "2022年南山区地区生产总值是多少？"),
        ("还有呢", MORE, "2022年南山区地区生产总值是多少？"),
    ],
)
def test_follow_ups_of_a_figure_question(message, kind, standalone):
    understood = after("2022年南山区地区生产总值是多少？", message)
    assert (understood.kind, understood.standalone) == (kind, standalone)
    assert understood.rewritten


def test_a_short_measure_replaces_the_end_of_the_subject():
    assert after("学法考试通过率是多少", "那参考率呢？").standalone == "学法考试参考率是多少？"
    assert after("衡阳行政复议情况怎么样", "受理了多少件？").standalone == "衡阳行政复议受理了多少件？"
    understood = after("衡阳市行政复议一年收到多少申请", "受理了多少件？")
    assert understood.standalone == "衡阳市行政复议一年申请受理了多少件？"
    assert after("2019年衡阳调解了多少矛盾纠纷", "成功率呢？").standalone == "2019年衡阳调解矛盾纠纷成功率？"
    assert after("衡阳审批时间压缩了多少", "提速了多少？").kind == MEASURE


@pytest.mark.parametrize(
    "message",
    [
        "广东省2020年新增就业多少人？",  # its own place and measure
        "衡阳市政务中心集中办理了多少项服务事项？",
        "深圳2019年地铁通车里程是多少",
        "调解了多少矛盾纠纷",  # verb + 了 + how many + its own object
    ],
)
def test_complete_questions_start_fresh(message):
    understood = after("2022年南山区地区生产总值是多少？", message)
    assert understood.kind == FRESH and understood.standalone == message
    assert "南山" not in understood.standalone and "2022" not in understood.standalone


def test_a_bare_measure_is_asked_of_the_conversations_place_and_year():
    # a few characters + how many, no place of its own: the same place and year, a new measure
    understood = after("2023年南山区全社会研发投入占GDP比重是多少？", "有效发明专利多少件")
    assert (understood.kind, understood.standalone) == (MEASURE, "2023年南山区有效发明专利多少件？")
    # a conversation about plans stays about plans (a target is read from that year's own report)
    assert "计划" in after("2023年国务院报告里专项债计划发多少？", "赤字率定的多少").standalone
    # so is a short question of its own without a place (HQE: what the message lacks is carried over)
    assert after("2022年南山区地区生产总值是多少？", "学位增加了多少").standalone == "2022年南山区学位增加了多少？"
    assert after("2023年深圳地区生产总值增长目标是多少？", "目标定了多少").kind == MEASURE
    # a longer question without a place names a subject of its own and stands alone
    assert after("2022年南山区地区生产总值是多少？", "政府信息公开申请怎么提交").kind == FRESH


@pytest.mark.parametrize(
    ("message", "kind", "standalone"),
    [
        ("2024年的数字呢", YEAR, "2024年深圳全社会研发投入是多少？"),
        ("2017年的数据有吗", YEAR, "2017年深圳全社会研发投入是多少？"),
        ("全省的情况呢", PLACE, "2021年广东省全社会研发投入是多少？"),  # the province 深圳 lies in
        ("再多说一点", MORE, "2021年深圳全社会研发投入是多少？"),
    ],
)
def test_generic_words_add_no_measure(message, kind, standalone):
    understood = after("2021年深圳全社会研发投入是多少？", message)
    assert (understood.kind, understood.standalone) == (kind, standalone)


def test_a_short_measure_keeps_the_object_of_a_how_many_question():
    understood = after("深圳去年新增了多少家国家高新技术企业？", "总数多少")
    assert (understood.kind, understood.standalone) == (MEASURE, "去年深圳国家高新技术企业总数多少？")


def test_switching_the_year_in_passing():
    understood = after("深圳2021年港口集装箱吞吐量多少万标箱？", "换2024年看看")
    assert understood.standalone == "2024年深圳港口集装箱吞吐量多少万标箱？"
    assert "换届选举" in after("2022年南山区地区生产总值是多少？", "换届选举什么时候").standalone  # 换届: no opener


def test_demonstratives_attributes_and_actuals():
    assert after("2023年坪山专精特新小巨人企业总数多少家？", "坪山那边多少").kind == PLACE  # 那边: no measure
    assert after("2022年罗湖金融业增加值是多少？", "2020年那会儿呢").standalone == "2020年罗湖金融业增加值是多少？"
    # an attribute (增速, 总额, 人均 …) is of the subject; a noun of its own replaces it
    assert after("2022年罗湖金融业增加值是多少？", "增速多少").standalone == "2022年罗湖金融业增加值增速多少？"
    # a place with a bare predicate asks the same of that place (龙华定了多少: its target too)
    understood = after("2022年光明区计划新增多少公里碧道？", "龙华定了多少")
    assert understood.kind == MEASURE and understood.standalone.startswith("2022年龙华")
    assert "碧道" in understood.standalone and "计划" in understood.standalone
    # asking what was achieved drops the plan the conversation was about
    assert "计划" not in after("今年龙华计划新增多少公里碧道？", "那去年实际修了多少").standalone


@pytest.mark.parametrize("message", ["还有别的措施吗", "其他的呢", "然后呢", "展开讲讲", "麻烦详细介绍一下", "下一页",
                                     "还有啥别的举措没", "能不能再展开讲讲", "具体措施有哪些", "后续呢"])
def test_asking_for_more_pages(message):
    assert after("2022年南山区地区生产总值是多少？", message).kind == MORE


@pytest.mark.parametrize("message", ["还有多少家企业没搬", "其他区呢", "具体说说2020年", "还有哪些学校扩建了"])
def test_asking_for_more_is_not_a_question_of_its_own(message):
    assert after("2022年南山区地区生产总值是多少？", message).kind != MORE


@pytest.mark.parametrize(("message", "kind"), [("查一下2020年的", YEAR), ("2020年这个呢", YEAR), ("问问福田区", PLACE)])
def test_chat_fillers_add_nothing(message, kind):
    understood = after("2022年南山区地区生产总值是多少？", message)
    assert understood.kind == kind and understood.standalone.endswith("地区生产总值是多少？")


@pytest.mark.parametrize("message", ["在福田呢", "换个地方，福田区", "福田区是多少", "福田区又是多少", "福田怎么样了"])
def test_a_place_with_only_question_words_is_a_place_follow_up(message):
    understood = after("2022年南山区地区生产总值是多少？", message)
    assert understood.kind == PLACE
    assert understood.standalone.startswith("2022年福田") and understood.standalone.endswith("地区生产总值是多少？")


@pytest.mark.parametrize("message", ["二〇二〇年的嘞", "往前推到2020年呢"])
def test_particles_and_ways_of_moving_in_time_add_nothing(message):
    assert after("2022年南山区地区生产总值是多少？", message).standalone == "2020年南山区地区生产总值是多少？"


def test_a_number_in_a_short_measure_counts_as_one_word():
    understood = after("2021年福田区市级总部企业有多少家？", "本土世界500强有几家")
    assert (understood.kind, understood.standalone) == (MEASURE, "2021年福田区本土世界500强有几家？")


def test_whole_city_after_a_district_is_its_city():
    assert after("2022年南山区地区生产总值是多少？", "全市呢").standalone == "2022年深圳市地区生产总值是多少？"
    # no known parent (衡阳 lies in 湖南省, which no report here is about): left as written, not guessed
    assert "全省" in after("2019年衡阳调解了多少矛盾纠纷", "全省的情况呢").standalone


@pytest.mark.parametrize(("message", "needs"), [
    ("那2017年呢？", True), ("龙华区呢", True), ("换成南山区", True), ("增长了多少？", True), ("还有呢", True),
    ("2017年深圳GDP是多少", False), ("固定资产投资呢？", False), ("南山区", False), ("2019年", False),
])
def test_a_follow_up_asked_first_needs_context(message, needs):
    assert needs_context(message, PLACES) is needs


def test_first_message_and_messages_that_say_nothing_are_fresh():
    assert understand("那2017年呢？", None, PLACES).kind == FRESH
    assert after("南山区GDP是多少", "呢？").kind == FRESH


def test_asked_back_place_and_year_buttons_rewrite_the_standalone():
    assert with_place("学位增加了多少", "南山区", PLACES) == "南山区学位增加了多少"
    assert with_place("2022年深圳GDP是多少", "福田区", PLACES) == "2022年福田区GDP是多少"
    assert with_year("罗湖区地区生产总值是多少？", 2017, PLACES) == "2017年罗湖区地区生产总值是多少？"


def test_memory_keeps_the_last_turns_and_round_trips():
    turns: list[Turn] = []
    for n in range(7):
        turns = remember(turns, Turn(f"q{n}", f"q{n}", years=(2020 + n,), places=("南山区",), hits=("r#1",)))
    assert [t.question for t in turns] == ["q2", "q3", "q4", "q5", "q6"]
    assert Turn.from_dict(turns[-1].to_dict()) == turns[-1]


@pytest.mark.parametrize(("message", "year"), [("前一年呢", 2021), ("再往前一年", 2021), ("往后一年呢", 2023),
                                              ("再往前推两年", 2020), ("18年的", 2018), ("那19年呢", 2019)])
def test_years_counted_from_the_conversations_year(message, year):
    understood = after("2022年南山区地区生产总值是多少？", message)
    assert understood.kind == YEAR and understood.standalone == f"{year}年南山区地区生产总值是多少？"


def test_a_two_digit_number_in_a_question_of_its_own_is_not_a_year():
    assert "2018" not in after("2022年南山区地区生产总值是多少？", "连续18年增长的是什么").standalone
    assert "2021" not in after("2022年南山区地区生产总值是多少？", "提前一年完成了吗").standalone


@pytest.mark.parametrize("message", ["换福田看看", "那换福田区"])
def test_switching_to_a_place_with_a_bare_huan(message):
    understood = after("2022年南山区地区生产总值是多少？", message)
    assert understood.kind == PLACE and understood.standalone.startswith("2022年福田")


@pytest.mark.parametrize(("message", "standalone"), [
    ("和2021年比呢", "2022年和2021年南山区地区生产总值是多少？"),
    ("跟二〇二〇年相比", "2022年和2020年南山区地区生产总值是多少？"),
    ("这几年呢", "这几年南山区地区生产总值是多少？"),
    ("近三年的数据", "近三年南山区地区生产总值是多少？"),
])
def test_comparing_with_a_year_and_asking_over_years(message, standalone):
    understood = after("2022年南山区地区生产总值是多少？", message)
    assert (understood.kind, understood.standalone) == (YEAR, standalone)


def test_rank_and_long_measure_names_keep_the_conversations_subject_place_and_year():
    assert after("2022年南山区地区生产总值是多少？", "排第几").standalone == "2022年南山区地区生产总值排第几？"
    assert after("2022年南山区地区生产总值是多少？", "社会消费品零售总额多少").standalone == (
        "2022年南山区社会消费品零售总额多少？")
    assert after("2022年南山区地区生产总值是多少？", "那会儿的财政收入").standalone.startswith("2022年南山区财政收入")


@pytest.mark.parametrize("message", ["看下福田", "福田区的话", "福田区同期呢", "福田区对应的数字", "到了福田呢"])
def test_more_ways_of_naming_only_a_place(message):
    understood = after("2022年南山区地区生产总值是多少？", message)
    assert understood.kind == PLACE and understood.standalone.startswith("2022年福田")


def test_the_nation_alone_is_the_national_report_but_not_inside_a_measure():
    assert after("2022年南山区地区生产总值是多少？", "国家层面呢").standalone == "2022年全国地区生产总值是多少？"
    assert "全国" not in after("2022年南山区地区生产总值是多少？", "国家高新技术企业呢").standalone
