"""The bot's message texts and keyboards (pure functions), checked against Telegram's rules as the
fake server enforces them: valid HTML, at most 4096 characters, callback_data at most 64 bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_telegram import ApiError, parse_html, utf16_len, visible_text
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.telegram import messages as tm
from retrieval.answer import Answer, Hit, citation
from retrieval.corpus import load_corpus
from retrieval.document import ReportMeta

REPO = Path(__file__).resolve().parent.parent

TITLE = "衡阳市2019年度法治政府建设情况报告"


def make_hit(rank: int, text: str, highlight: str, section_id: str = "7.1", label: str = "七、(一)") -> Hit:
    start = text.index(highlight)
    return Hit(
        rank=rank,
        score=1.0 / rank,
        report_id="hengyang-2019-fazhi",
        report_title=TITLE,
        report_date="2020-03-17",
        section_id=section_id,
        section_label=label,
        section_title="推行多元化解机制",
        citation=citation(TITLE, label, "推行多元化解机制"),
        text=text,
        highlight=highlight,
        highlight_start=start,
        highlight_end=start + len(highlight),
    )


def buttons(markup) -> list[tuple[str, str]]:
    return [(b.text, b.callback_data) for row in markup.inline_keyboard for b in row]


@pytest.fixture(scope="module")
def seed_report():
    return load_corpus([REPO / "corpus"])[0]


def test_answer_bolds_the_answer_sentence_inside_the_passage_and_cites_the_section():
    text = "全市成立调解庭5700个。2019年,全市共调解矛盾纠纷17076件,调解成功率99%。全面落实律师信访值班制度。"
    hit = make_hit(1, text, "2019年,全市共调解矛盾纠纷17076件,调解成功率99%。")
    other = make_hit(2, "办理政府诉讼案件152件。", "办理政府诉讼案件152件。", "7.3", "七、(三)")
    html_text = tm.render_answer(Answer("2019年调解了多少纠纷", True, [hit, other]))
    assert "<b>2019年,全市共调解矛盾纠纷17076件,调解成功率99%。</b>" in html_text
    assert "全市成立调解庭5700个。" in html_text  # the passage around it is shown too
    assert "《衡阳市2019年度法治政府建设情况报告》七、(一) 推行多元化解机制" in html_text
    assert "2. 《衡阳市2019年度法治政府建设情况报告》七、(三)" in html_text
    parse_html(html_text)  # Telegram accepts it


def test_answer_escapes_markup_in_question_and_passages():
    text = "比较 a<b && c>d 的情况。<script>alert(1)</script>结束。"
    hit = make_hit(1, text, "<script>alert(1)</script>结束。")
    html_text = tm.render_answer(Answer("x < y & <b>z</b>?", True, [hit]))
    shown = parse_html(html_text)  # raises on a stray < or &
    assert "x < y & <b>z</b>?" in shown
    assert "<script>alert(1)</script>结束。" in shown
    assert "<b>&lt;script&gt;alert(1)&lt;/script&gt;结束。</b>" in html_text


def test_long_passage_is_trimmed_around_the_highlight():
    text = "前文。" * 600 + "答案就在这里。" + "后文。" * 600
    hit = make_hit(1, text, "答案就在这里。")
    html_text = tm.render_answer(Answer("问题", True, [hit]))
    assert "<b>答案就在这里。</b>" in html_text
    assert utf16_len(html_text) < 1200
    assert "…" in html_text


def test_highlight_offsets_that_do_not_match_fall_back_to_finding_the_sentence():
    text = "第一句。第二句是答案。第三句。"
    hit = make_hit(1, text, "第二句是答案。")
    broken = Hit(**{**hit.__dict__, "highlight_start": 0, "highlight_end": 3})
    assert "<b>第二句是答案。</b>" in tm.render_answer(Answer("q", True, [broken]))


def test_later_pages_continue_the_numbering():
    hits = [make_hit(i, f"段落{i}。", f"段落{i}。") for i in range(4, 7)]
    html_text = tm.render_answer(Answer("q", True, hits), page=1, page_size=3)
    assert "📄 4. 出处" in html_text and "\n5. " in html_text and "\n6. " in html_text
    assert "第 2 页" in html_text


@pytest.mark.parametrize(
    "action",
    [
        tm.MorePage(123456789012, 99),
        tm.Vote(42, True),
        tm.Vote(42, False),
        tm.FullSection(tm.report_key("a-very-long-report-id-" * 10), "12.3.4.5"),
        tm.Browse(tm.report_key("r"), ""),
        tm.Browse(tm.report_key("r"), "7"),
        tm.ReportsPage(3),
        tm.Example(2),
        tm.Noop(),
    ],
)
def test_callback_data_round_trips_within_64_bytes(action):
    data = tm.encode_callback(action)
    assert 1 <= len(data.encode("utf-8")) <= tm.CALLBACK_DATA_LIMIT
    assert tm.decode_callback(data) == action


@pytest.mark.parametrize(
    "data", [None, "", "m:1", "m:x:1", "v:1:x", "f:nothex!:7.1", "old-button-format", "m:1:1:1"]
)
def test_unknown_callback_data_decodes_to_none(data):
    assert tm.decode_callback(data) is None


def test_callback_data_over_64_bytes_is_refused():
    with pytest.raises(ValueError):
        tm.encode_callback(tm.FullSection("abcdef12", ".".join(["1234"] * 14)))


def test_keyboard_offers_full_text_more_and_votes_then_shows_the_recorded_vote():
    hit = make_hit(1, "答案。", "答案。")
    markup = tm.answer_keyboard(row=7, page=0, top=hit, has_more=True)
    labels = [label for label, _ in buttons(markup)]
    assert labels == ["📄 全文", "更多结果 ▶", "👍 有帮助", "👎 没帮助"]
    voted = tm.with_vote_recorded(markup, row=7, vote=-1)
    assert [label for label, _ in buttons(voted)][:2] == ["📄 全文", "更多结果 ▶"]
    assert "👎" in buttons(voted)[-1][0] and "已记录" in buttons(voted)[-1][0]
    assert not any(isinstance(tm.decode_callback(d), tm.Vote) for _, d in buttons(voted))


def test_second_page_has_a_previous_button_and_no_more_when_exhausted():
    hit = make_hit(4, "答案。", "答案。")
    labels = [label for label, _ in buttons(tm.answer_keyboard(7, 1, hit, has_more=False))]
    assert labels[:2] == ["◀ 上一页", "📄 全文"] and "更多结果 ▶" not in labels


def test_not_covered_offers_distinct_nearest_sections():
    hits = [
        make_hit(1, "甲。", "甲。", "7.1", "七、(一)"),
        make_hit(2, "乙。", "乙。", "7.1", "七、(一)"),
        make_hit(3, "丙。", "丙。", "3.2", "三、(二)"),
    ]
    answer = Answer("火星移民计划的预算是多少", False, hits)
    text = tm.render_not_covered(answer)
    assert tm.NOT_COVERED in parse_html(text)
    actions = [tm.decode_callback(d) for _, d in buttons(tm.not_covered_keyboard(hits))]
    assert [a.section_id for a in actions] == ["7.1", "3.2"]


def test_an_english_question_gets_english_labels_and_the_passage_as_published():
    text = "2019年,全市共调解矛盾纠纷17076件,调解成功率99%。"
    other = "办理政府诉讼案件152件。"
    hits = [make_hit(1, text, text), make_hit(2, other, other, "7.3", "七、(三)")]
    answer = Answer("How many disputes were mediated?", True, hits, lang="en")
    html_text = tm.render_answer(answer)
    assert "Source: <b>《衡阳市2019年度法治政府建设情况报告》七、(一) 推行多元化解机制</b>" in html_text
    assert "Other passages:" in html_text and "出处" not in html_text and "<b>" + text + "</b>" in html_text
    markup = tm.answer_keyboard(7, 0, hits[0], True, other_years=[2018], lang="en")
    assert [label for label, _ in buttons(markup)] == [
        "📄 Full section", "More results ▶", "📅 2018", "👍 Helpful", "👎 Not helpful",
    ]
    voted = tm.with_vote_recorded(markup, row=7, vote=1)
    assert buttons(voted)[-1][0].startswith("Recorded: 👍")  # the vote answers in the language shown
    refused = tm.render_not_covered(Answer("What is the weather tomorrow?", False, hits, lang="en"))
    assert "The reports do not cover this." in parse_html(refused) and tm.NOT_COVERED not in refused
    assert tm.render_answer(Answer("2019年调解了多少纠纷", True, hits)).count("出处：") == 1  # Chinese unchanged


def _check_parts(parts: list[str]) -> str:
    shown = []
    for part in parts:
        assert utf16_len(part) <= tm.PART_LIMIT
        shown.append(visible_text(part, "HTML"))  # raises if Telegram would reject it
    return "\n".join(shown)


def test_long_section_is_split_into_numbered_parts_below_the_limit(seed_report):
    meta = seed_report.meta
    section = seed_report.section("7")
    # a long chapter: the seed's chapter 7 repeated, with characters that need escaping
    long_text = "".join(p.text for p in section.all_paragraphs()) * 8 + " 注：a<b & c>d。"
    blocks = [
        ("(一)推行多元化解机制", True),
        (long_text, False),
        ("(二)严守安全底线", True),
        ("短段。", False),
    ]
    parts = tm.split_parts(tm.section_header(meta, section), blocks)
    assert len(parts) >= 3
    for i, part in enumerate(parts, start=1):
        assert f"（{i}/{len(parts)}）" in part
    shown = _check_parts(parts)
    assert "注：a<b & c>d。" in shown and "短段。" in shown


def test_section_parts_of_a_real_section_keep_subheadings_in_bold(seed_report):
    parts = tm.render_section_parts(seed_report.meta, seed_report.section("7"))
    assert len(parts) == 1
    assert "<b>(一) 推行多元化解机制</b>" in parts[0]
    assert "17076" in parts[0]
    _check_parts(parts)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(alphabet=st.sampled_from("衡阳调解纠纷。；！\n <>&ab1😀"), min_size=0, max_size=3000),
            st.booleans(),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_split_parts_never_breaks_html_nor_the_limit_and_loses_no_text(blocks):
    parts = tm.split_parts("📄 <b>《报告》七、</b>", blocks, limit=1000)
    shown = _check_parts(parts) if any(t.strip() for t, _ in blocks) else ""
    squashed = "".join(shown.split())
    original = "".join("".join(t.split()) for t, _ in blocks)
    pos = 0
    for ch in original:  # every character survives, in order
        pos = squashed.index(ch, pos) + 1


def test_html_to_plain_is_the_visible_text():
    html_text = "❓ a &lt; b<blockquote>x <b>y &amp; z</b></blockquote>"
    assert tm.html_to_plain(html_text) == parse_html(html_text)


def test_fake_server_rejects_what_telegram_rejects():
    for bad in ["a < b", "<b>x", "<b>x</i>", "<br>", "a & b", "<span>x</span>", ""]:
        with pytest.raises(ApiError):
            visible_text(bad, "HTML")
    with pytest.raises(ApiError):
        visible_text("😀" * 2049, None)  # 4098 UTF-16 units
    visible_text("字" * 4096, None)


def test_browse_views_have_back_buttons(seed_report):
    meta = seed_report.meta
    top_text, top = tm.browse_view(meta, seed_report.sections, None, multi_report=False)
    assert "衡阳市2019年度法治政府建设情况报告" in top_text
    actions = [tm.decode_callback(d) for _, d in buttons(top)]
    assert [a.section_id for a in actions][:3] == ["0", "1", "2"]
    _, chapter = tm.browse_view(meta, seed_report.sections, seed_report.section("7"), multi_report=False)
    labels = [label for label, _ in buttons(chapter)]
    assert labels[0].startswith("七、(一)") and labels[-1] == "⬅ 返回上一级"
    assert tm.decode_callback(buttons(chapter)[-1][1]) == tm.Browse(tm.report_key(meta.report_id), "")


def test_reports_list_pages():
    metas = [ReportMeta(report_id=f"r{i}", title=f"报告{i}", file=f"r{i}.txt") for i in range(20)]
    text, markup = tm.reports_view(metas, 1)
    assert "第 2/3 页" in text
    labels = [label for label, _ in buttons(markup)]
    assert labels[0] == "报告8" and "◀ 上一页" in labels and "下一页 ▶" in labels


def test_about_lists_titles_dates_and_sources(seed_report):
    parts = tm.about_parts([seed_report.meta])
    shown = _check_parts(parts)
    assert "衡阳市2019年度法治政府建设情况报告" in shown
    assert "2020-03-17" in shown and "hengyang.gov.cn" in shown


def test_inline_articles_one_per_hit_titled_by_citation_or_a_no_results_article():
    hits = [make_hit(i, f"段落{i}。", f"段落{i}。") for i in range(1, 8)]
    articles = tm.inline_articles(Answer("q", True, hits), "k")
    assert len(articles) == 5
    assert articles[0].title.startswith("《衡阳市2019年度法治政府建设情况报告》")
    assert len({a.id for a in articles}) == 5
    for a in articles:
        visible_text(a.input_message_content.message_text, "HTML")
    none = tm.inline_articles(Answer("火星", False, hits), "k")
    assert len(none) == 1 and none[0].title == "没有找到相关内容"


def test_a_follow_up_with_nothing_to_follow_gets_the_note_not_the_not_covered_line():
    from retrieval.followup import INCOMPLETE, context_note

    answer = Answer("那2017年呢？", False, note=context_note(), understood_as="那2017年呢？", followup=INCOMPLETE)
    text = visible_text(tm.render_not_covered(answer), "HTML")
    assert "请把问题说完整" in text and tm.NOT_COVERED not in text and "那2017年呢？" in text
