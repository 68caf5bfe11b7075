"""The Telegram bot's behaviour over real HTTP against the fake Bot API server, fast.

The real `Application` (PTB v22, AIORateLimiter, concurrent updates) polls `FakeTelegram`.
Retrieval here is `KeywordRetriever`, a small stand-in over the real parsed seed report, so these
tests exercise the bot (limits, faults, buttons, groups, restarts) in seconds; the answers of the
real retriever are checked in test_telegram_e2e.py.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from bot_harness import FAST, ask, replies, running_bot
from fake_telegram import TEST_TOKEN, FakeUser, RunningApp, parse_html
from telegram.error import BadRequest, NetworkError

from bot.question_log import QuestionLog
from bot.telegram import messages as tm
from bot.telegram.app import build_application
from bot.telegram.flow import ChatRateLimiter
from bot.telegram.redaction import RedactingFilter, redact
from bot.telegram.settings import BotConfigError, BotOptions, config_from_env
from retrieval.answer import Answer, Hit, citation
from retrieval.corpus import load_corpus
from retrieval.document import Report, ReportMeta, Section
from retrieval.errors import InputError

REPO = Path(__file__).resolve().parent.parent


def _bigrams(text: str) -> set[str]:
    s = "".join(ch for ch in text if ch.isalnum())
    return {s[i : i + 2] for i in range(len(s) - 1)}


class KeywordRetriever:
    """Stand-in for Retriever: ranks the seed report's paragraphs by shared character bigrams.

    `slow_word`: questions containing it take `slow_seconds` (to test concurrency).
    """

    def __init__(self, slow_word: str = "慢", slow_seconds: float = 3.0):
        self._reports = {r.meta.report_id: r for r in load_corpus([REPO / "corpus"])}
        self._paragraphs = [(r, p) for r in self._reports.values() for p in r.paragraphs()]
        self.slow_word = slow_word
        self.slow_seconds = slow_seconds
        self.slow_started = threading.Event()
        self.slow_done = threading.Event()
        self.asked: list[str] = []

    @property
    def reports(self) -> list[ReportMeta]:
        return [r.meta for r in self._reports.values()]

    def report(self, report_id: str) -> Report:
        if report_id not in self._reports:
            raise InputError(f"unknown report {report_id!r}")
        return self._reports[report_id]

    def section(self, report_id: str, section_id: str) -> Section:
        found = self.report(report_id).section(section_id)
        if found is None:
            raise InputError(f"unknown section {section_id!r}")
        return found

    def ask(
        self,
        question: str,
        top_k: int = 3,
        reports: Sequence[str] | None = None,
        mode: str = "hybrid",
        offset: int = 0,
    ) -> Answer:
        self.asked.append(question)
        if self.slow_word in question:
            self.slow_started.set()
            time.sleep(self.slow_seconds)
            self.slow_done.set()
        q = _bigrams(question)
        ranked = sorted(self._paragraphs, key=lambda rp: -len(q & _bigrams(rp[1].text)))
        answered = bool(ranked) and len(q & _bigrams(ranked[0][1].text)) >= 4
        hits = []
        for rank, (report, para) in enumerate(ranked[offset : offset + top_k], start=offset + 1):
            best = max(para.sentences, key=lambda s: len(q & _bigrams(s.text)))
            sec = report.section(para.section_id)
            start = best.start - para.start
            hits.append(
                Hit(
                    rank=rank,
                    score=float(len(q & _bigrams(para.text))),
                    report_id=report.meta.report_id,
                    report_title=report.meta.title,
                    report_date=report.meta.date,
                    section_id=sec.section_id,
                    section_label=sec.label,
                    section_title=sec.title,
                    citation=citation(report.meta.title, sec.label, sec.title),
                    text=para.text,
                    highlight=best.text,
                    highlight_start=start,
                    highlight_end=start + len(best.text),
                )
            )
        return Answer(question=question, answered=answered, hits=hits, normalized_question=question.strip())


@pytest.fixture(scope="module")
def retriever() -> KeywordRetriever:
    return KeywordRetriever()


# ------------------------------------------------------------------ start, commands, help


def test_start_greets_in_chinese_with_three_tappable_examples_and_sets_zh_en_commands(tg, retriever, tmp_path):
    with running_bot(tg, retriever, tmp_path):
        reply = ask(tg, "/start")
        assert "您好" in reply.result["text"]
        examples = [b["text"] for row in reply.params["reply_markup"]["inline_keyboard"] for b in row]
        assert len(examples) == 3
        mark = tg.mark()
        tg.press(reply.result, examples[0][:6])
        answer = tg.wait_for("sendMessage", after=mark)
        assert "17076" in answer.result["text"]
    for language in ("", "zh", "en"):
        names = [c["command"] for c in tg.commands(language)]
        assert names == ["start", "help", "sections", "about", "ask", "report", "reset", "lang"]
    assert tg.commands("en")[0]["description"].startswith("Start")


def test_start_and_help_in_english_for_an_english_user_and_after_lang_en(tg, retriever, tmp_path):
    with running_bot(tg, retriever, tmp_path):
        english = tg.private_chat(2001)
        user = FakeUser(2001, first_name="Alex", language_code="en-GB")
        assert ask(tg, "/start", english, user=user).result["text"].startswith("Hello! I answer questions")
        help_en = ask(tg, "/help", english, user=user).result["text"]
        assert "How to use" in help_en and "/lang en | zh | auto" in help_en and "使用方法" not in help_en
        ask(tg, "/lang zh", english, user=user)  # the chat's choice wins over the user's language
        assert "您好" in ask(tg, "/start", english, user=user).result["text"]
        chinese = tg.private_chat(2002)
        ask(tg, "/lang en", chinese)  # a Chinese-language user who chose English
        assert "How to use" in ask(tg, "/help", chinese).result["text"]


def test_help_and_about(tg, retriever, tmp_path):
    with running_bot(tg, retriever, tmp_path):
        assert "/sections" in ask(tg, "/help").result["text"]
        about = ask(tg, "/about").result["text"]
        assert "衡阳市2019年度法治政府建设情况报告" in about and "2020-03-17" in about
        assert "hengyang.gov.cn" in about


def test_deep_link_opens_a_section_and_a_bad_one_says_so(tg, retriever, tmp_path):
    with running_bot(tg, retriever, tmp_path):
        section = ask(tg, "/start sec_7_1")
        assert section.result["text"].startswith("📄 《衡阳市2019年度法治政府建设情况报告》七、(一) 推行多元化解机制")
        assert "17076" in section.result["text"]
        assert "没有找到这个章节" in ask(tg, "/start sec_99_1").result["text"]


def test_sections_browse_down_to_text_and_back(tg, retriever, tmp_path):
    with running_bot(tg, retriever, tmp_path):
        menu = ask(tg, "/sections")
        for label, expect in (
            ("七、", "七、(一) 推行多元化解机制"),
            ("(一)", "17076"),
            ("返回", "请选择小节"),
        ):
            mark = tg.mark()
            tg.press(menu.result, label)
            tg.wait_for("editMessageText", after=mark)
            now = tg.message(menu)
            labels = [b["text"] for row in now["reply_markup"]["inline_keyboard"] for b in row]
            assert expect in now["text"] or any(expect in label for label in labels)
        mark = tg.mark()
        tg.press(menu.result, "返回上一级")
        tg.wait_for("editMessageText", after=mark)
        assert "请选择章节" in tg.message(menu)["text"]


# ------------------------------------------------------------------ questions and buttons


def test_question_gets_one_reply_after_a_typing_indicator(tg, retriever, tmp_path):
    with running_bot(tg, retriever, tmp_path):
        mark = tg.mark()
        reply = ask(tg, "2019年衡阳调解了多少矛盾纠纷？")
        typing = tg.wait_for("sendChatAction", after=mark)
        assert typing.params["action"] == "typing" and typing.seq < reply.seq
        assert reply.params["parse_mode"] == "HTML"
        assert "<b>2019年,全市共调解矛盾纠纷17076件,调解成功率99%。</b>" in tg.html(reply)
        time.sleep(0.5)
        assert len(replies(tg, mark)) == 1


def test_typing_indicator_only_for_an_answer_that_takes_noticeable_time(tg, tmp_path):
    options = BotOptions(request_timeout=10.0, send_retry_delay=0.2, typing_interval=0.5, typing_delay=0.3)
    slow = KeywordRetriever(slow_seconds=1.2)
    with running_bot(tg, slow, tmp_path, options):
        mark = tg.mark()
        fast = ask(tg, "2019年衡阳调解了多少矛盾纠纷？")
        time.sleep(0.6)
        assert tg.calls_of("sendChatAction", mark) == []  # answered before an indicator was due
        assert "17076" in tg.html(fast)
        mark = tg.mark()
        reply = ask(tg, "慢慢说，2019年衡阳调解了多少矛盾纠纷？")
        typing = tg.calls_of("sendChatAction", mark)
        assert typing and typing[0].params["action"] == "typing" and typing[0].seq < reply.seq


def test_more_results_edits_in_place_and_votes_are_recorded(tg, retriever, tmp_path):
    with running_bot(tg, retriever, tmp_path) as bot:
        log = bot.log
        reply = ask(tg, "2019年衡阳调解了多少矛盾纠纷？")
        first = tg.html(reply)
        mark = tg.mark()
        tg.press(reply.result, "更多结果")
        tg.wait_for("editMessageText", after=mark)
        second = tg.html(reply)
        assert second != first and "📄 4. 出处" in second and "第 2 页" in second
        mark = tg.mark()
        tg.press(reply.result, "👎")
        tg.wait_for("editMessageReplyMarkup", after=mark)
        labels = [b["text"] for row in tg.message(reply)["reply_markup"]["inline_keyboard"] for b in row]
        assert "👍 有帮助" not in labels and any("已记录：👎" in label for label in labels)
        assert "◀ 上一页" in labels  # paging buttons stay
        (row,) = log.rows()
        assert row.vote == -1 and row.question == "2019年衡阳调解了多少矛盾纠纷？"
        assert len(replies(tg, 0)) == 1  # paging and voting sent no new messages


def test_buttons_still_work_after_a_restart_and_unknown_ones_say_expired(tg, retriever, tmp_path):
    with running_bot(tg, retriever, tmp_path):
        reply = ask(tg, "2019年衡阳调解了多少矛盾纠纷？")
    with running_bot(tg, retriever, tmp_path) as bot:  # a new process would see the same state
        log = bot.log
        mark = tg.mark()
        tg.press(reply.result, "更多结果")
        tg.wait_for("editMessageText", after=mark)
        mark = tg.mark()
        tg.press(reply.result, "👍")
        tg.wait_for("editMessageReplyMarkup", after=mark)
        assert log.rows()[0].vote == 1
        for stale in ("m:999999:1", "v:999999:u", "f:00000000:7.1", "legacy:button"):
            mark = tg.mark()
            tg.press_data(tg.message(reply), stale)
            answered = tg.wait_for("answerCallbackQuery", after=mark)
            assert answered.params["text"] == tm.EXPIRED and answered.params["show_alert"] is True


def test_full_text_button_sends_the_section(tg, retriever, tmp_path):
    with running_bot(tg, retriever, tmp_path):
        reply = ask(tg, "2019年衡阳调解了多少矛盾纠纷？")
        mark = tg.mark()
        tg.press(reply.result, "全文")
        full = tg.wait_for("sendMessage", after=mark)
        assert full.result["text"].startswith("📄 《衡阳市2019年度法治政府建设情况报告》七、(一)")


def test_not_covered_question_offers_nearest_sections(tg, retriever, tmp_path):
    with running_bot(tg, retriever, tmp_path) as bot:
        log = bot.log
        reply = ask(tg, "火星移民计划的预算")
        assert tm.NOT_COVERED in reply.result["text"]
        actions = [
            tm.decode_callback(b["callback_data"])
            for row in reply.params["reply_markup"]["inline_keyboard"]
            for b in row
        ]
        assert any(isinstance(a, tm.FullSection) for a in actions)
        assert log.rows()[0].answered is False


def test_length_cap_and_rate_limit_are_polite_and_nothing_is_asked(tg, retriever, tmp_path):
    options = BotOptions(request_timeout=2.0, questions_per_window=2, rate_window_seconds=60)
    with running_bot(tg, retriever, tmp_path, options) as bot:
        log = bot.log
        asked_before = len(retriever.asked)
        too_long = ask(tg, "问" * 1001)
        assert "问题太长了（1001 字）" in too_long.result["text"]
        ask(tg, "调解纠纷")
        ask(tg, "行政复议")
        limited = ask(tg, "行政执法")
        assert "提问太频繁" in limited.result["text"]
        other_chat = ask(tg, "行政执法", chat=tg.private_chat(2002))  # other chats are not affected
        assert "提问太频繁" not in other_chat.result["text"]
        assert len(retriever.asked) - asked_before == 3
        assert len(log.rows()) == 3


def test_question_the_retriever_refuses_gets_its_reason_politely(tg, retriever, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise InputError("the question has no words in it")

    monkeypatch.setattr(retriever, "ask", refuse)
    with running_bot(tg, retriever, tmp_path) as bot:
        log = bot.log
        reply = ask(tg, "？？？")
        assert reply.result["text"] == "这个问题无法处理（the question has no words in it），请用文字重新描述您的问题。"
        assert log.rows() == []


def test_stickers_get_a_short_explanation(tg, retriever, tmp_path):
    with running_bot(tg, retriever, tmp_path):
        mark = tg.mark()
        tg.send_sticker(tg.private_chat())
        reply = tg.wait_for("sendMessage", after=mark)
        assert "只能回答文字问题" in reply.result["text"]


def test_slow_question_does_not_block_other_chats_and_one_chat_stays_in_order(tg, tmp_path):
    retriever = KeywordRetriever(slow_seconds=3.0)
    alice, bob = tg.private_chat(3001), tg.private_chat(3002)
    with running_bot(tg, retriever, tmp_path):
        mark = tg.mark()
        tg.send_text("慢慢地问：调解了多少矛盾纠纷", alice)  # takes 3 s in the retriever
        tg.send_text("行政复议办理了多少件", alice)  # fast, but must come after alice's first
        assert retriever.slow_started.wait(10)
        tg.send_text("调解了多少矛盾纠纷", bob)
        tg.wait_for("sendMessage", lambda c: c.params["chat_id"] == bob.id, after=mark)
        assert not retriever.slow_done.is_set()  # bob was answered while alice's question ran
        first = tg.wait_for("sendMessage", lambda c: "慢慢地问" in c.params["text"], after=mark)
        second = tg.wait_for("sendMessage", lambda c: "行政复议办理" in c.params["text"], after=mark)
        assert first.seq < second.seq  # alice's answers come in the order she asked


# ------------------------------------------------------------------ groups and inline mode


def test_group_answers_only_when_addressed_and_keeps_the_forum_thread(tg, retriever, tmp_path):
    group = tg.group_chat()
    with running_bot(tg, retriever, tmp_path):
        mark = tg.mark()
        tg.send_text("大家觉得调解工作怎么样", group, thread_id=5)
        mentioned = ask(tg, "@reportqa_test_bot 2019年衡阳调解了多少矛盾纠纷", chat=group, thread_id=5)
        assert "17076" in mentioned.result["text"]
        assert mentioned.params["message_thread_id"] == 5
        assert mentioned.params["reply_parameters"]["message_id"]  # quotes the asker
        assert "@reportqa_test_bot" not in mentioned.result["text"].split("\n")[0]
        replied = ask(tg, "那行政复议呢", chat=group, reply_to=mentioned.result, thread_id=5)
        assert "行政复议" in replied.result["text"]
        via_command = ask(tg, "/ask@reportqa_test_bot 行政复议办理了多少件", chat=group)
        assert "❓ 行政复议办理了多少件" in via_command.result["text"]
        empty = ask(tg, "/ask", chat=group)
        assert "/ask" in empty.result["text"]
        assert len(replies(tg, mark)) == 4  # the unaddressed message got nothing


def test_inline_query_returns_up_to_five_cited_articles_or_one_no_results_article(tg, retriever, tmp_path):
    with running_bot(tg, retriever, tmp_path):
        mark = tg.mark()
        tg.inline_query("2019年衡阳调解了多少矛盾纠纷")
        answered = tg.wait_for("answerInlineQuery", after=mark)
        results = answered.params["results"]
        assert 1 <= len(results) <= 5
        assert results[0]["title"] == "《衡阳市2019年度法治政府建设情况报告》七、(一) 推行多元化解机制"
        assert "17076" in parse_html(results[0]["input_message_content"]["message_text"])
        mark = tg.mark()
        tg.inline_query("火星移民")
        (only,) = tg.wait_for("answerInlineQuery", after=mark).params["results"]
        assert only["title"] == "没有找到相关内容"


# ------------------------------------------------------------------ faults


def test_html_rejected_by_telegram_is_resent_as_plain_text(tg, retriever, tmp_path):
    with running_bot(tg, retriever, tmp_path):
        tg.inject("sendMessage", 400, description="Bad Request: can't parse entities: Unsupported start tag")
        mark = tg.mark()
        reply = ask(tg, "2019年衡阳调解了多少矛盾纠纷？")
        assert "parse_mode" not in reply.params
        assert "17076" in reply.result["text"] and "<b>" not in reply.result["text"]
        assert len(replies(tg, mark)) == 1


def test_429_is_retried_after_retry_after(tg, retriever, tmp_path):
    with running_bot(tg, retriever, tmp_path):
        tg.inject("sendMessage", 429, retry_after=1)
        mark = tg.mark()
        started = time.monotonic()
        reply = ask(tg, "2019年衡阳调解了多少矛盾纠纷？")
        assert time.monotonic() - started >= 1.0
        assert "17076" in reply.result["text"]
        statuses = [c.status for c in tg.calls_of("sendMessage", mark)]
        assert statuses == [429, 200]


def test_502_is_retried_and_a_second_failure_does_not_kill_the_bot(tg, retriever, tmp_path, caplog):
    with running_bot(tg, retriever, tmp_path):
        tg.inject("sendMessage", 502)
        mark = tg.mark()
        assert "17076" in ask(tg, "2019年衡阳调解了多少矛盾纠纷？").result["text"]
        assert [c.status for c in tg.calls_of("sendMessage", mark)] == [502, 200]
        tg.inject("sendMessage", 500, times=2)
        mark = tg.mark()
        tg.send_text("行政复议办理了多少件", tg.private_chat())
        failed = tg.wait_for("sendMessage", after=mark, ok=False)
        tg.wait_for("sendMessage", after=failed.seq, ok=False)  # the one retry, then it gives up
        time.sleep(0.3)
        assert "行政复议" in ask(tg, "行政复议办理了多少件").result["text"]  # still alive


@pytest.mark.slow  # ~12 s of deliberate timeouts
def test_timeouts_and_getupdates_failures_do_not_kill_the_bot_nor_duplicate_answers(tg, retriever, tmp_path, caplog):
    options = BotOptions(request_timeout=2.0, send_retry_delay=0.2, typing_interval=0.5, typing_delay=0.0)
    with running_bot(tg, retriever, tmp_path, options):
        tg.inject("sendMessage", delay=4.0)  # Telegram got it, but the answer comes after the timeout
        mark = tg.mark()
        update = tg.send_text("2019年衡阳调解了多少矛盾纠纷？", tg.private_chat())
        tg.wait_for("sendMessage", after=mark)
        tg.wait_confirmed(update)
        tg.inject("getUpdates", 502)
        tg.inject("getUpdates", 429, retry_after=1)
        tg.inject("getUpdates", delay=5.0)  # past read timeout = request + poll timeout
        time.sleep(1.5)
        assert "行政复议" in ask(tg, "行政复议办理了多少件").result["text"]
        time.sleep(0.5)
        texts = [c.params["text"] for c in replies(tg, mark)]
        assert sum("17076" in t for t in texts) == 1  # the timed-out send was not repeated
        assert tg.delivered(update) == 1
    errors = [r.getMessage() for r in caplog.records if r.name == "reportqa.telegram" and r.levelname == "WARNING"]
    assert any("Telegram API error TimedOut" in m for m in errors), errors  # one line from the error handler


# ------------------------------------------------------------------ configuration and logging


def test_config_requires_a_well_formed_token_and_never_echoes_it():
    with pytest.raises(BotConfigError, match="TELEGRAM_BOT_TOKEN is not set"):
        config_from_env({})
    secret = "123456:short-secret"
    with pytest.raises(BotConfigError) as err:
        config_from_env({"TELEGRAM_BOT_TOKEN": secret})
    assert "malformed" in str(err.value) and "short-secret" not in str(err.value)
    with pytest.raises(BotConfigError, match="TELEGRAM_API_BASE_URL"):
        config_from_env({"TELEGRAM_BOT_TOKEN": TEST_TOKEN, "TELEGRAM_API_BASE_URL": "ftp://x"})
    with pytest.raises(BotConfigError, match="TELEGRAM_PROXY"):
        config_from_env({"TELEGRAM_BOT_TOKEN": TEST_TOKEN, "TELEGRAM_PROXY": "host:8080"})
    config = config_from_env({"TELEGRAM_BOT_TOKEN": TEST_TOKEN, "TELEGRAM_PROXY": "http://10.0.0.1:3128"})
    assert config.base_url == "https://api.telegram.org/bot" and config.proxy == "http://10.0.0.1:3128"
    assert TEST_TOKEN not in repr(config)


def test_socks_proxy_without_the_socks_extra_is_a_clear_error():
    env = {"TELEGRAM_BOT_TOKEN": TEST_TOKEN, "TELEGRAM_PROXY": "socks5://10.0.0.1:1080"}
    if importlib.util.find_spec("socksio") is None:
        with pytest.raises(BotConfigError, match=r"python-telegram-bot\[socks\]"):
            config_from_env(env)
    else:
        assert config_from_env(env).proxy == "socks5://10.0.0.1:1080"


def test_requests_go_through_telegram_proxy(tg, retriever, tmp_path, monkeypatch):
    """With TELEGRAM_PROXY set, the bot reaches an unreachable API host through the proxy
    (the fake server doubles as an HTTP proxy)."""
    monkeypatch.delenv("NO_PROXY")
    env = {
        "TELEGRAM_BOT_TOKEN": tg.token,
        "TELEGRAM_API_BASE_URL": "http://api.telegram.invalid/bot",
        "TELEGRAM_PROXY": f"http://127.0.0.1:{tg.port}",
    }
    log = QuestionLog.open(tmp_path)
    try:
        with RunningApp(build_application(config_from_env(env), retriever, log, FAST)):
            assert "/sections" in ask(tg, "/help").result["text"]
    finally:
        log.close()
    assert tg.proxied_requests >= 3  # getMe, deleteWebhook, getUpdates, sendMessage …


def test_log_records_are_redacted_and_api_errors_are_one_line():
    record = logging.LogRecord(
        "httpx",
        logging.INFO,
        __file__,
        1,
        "HTTP Request: POST %s",
        (f"https://x/bot{TEST_TOKEN}/getMe",),
        None,
    )
    RedactingFilter(TEST_TOKEN).filter(record)
    assert TEST_TOKEN not in record.getMessage() and "bot<token>/getMe" in record.getMessage()
    try:
        raise NetworkError(f"httpx.ConnectError: https://x/bot{TEST_TOKEN}/getUpdates")
    except NetworkError as exc:
        err = logging.LogRecord(
            "telegram.ext.Updater", logging.ERROR, __file__, 1, "polling", (), (type(exc), exc, None)
        )
    RedactingFilter(TEST_TOKEN).filter(err)
    assert err.exc_info is None and TEST_TOKEN not in err.getMessage() and "NetworkError" in err.getMessage()
    try:
        raise ValueError(f"bug with {TEST_TOKEN}")
    except ValueError as exc:
        bug = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", (), (type(exc), exc, exc.__traceback__))
    RedactingFilter(TEST_TOKEN).filter(bug)
    assert "Traceback" in bug.exc_text and TEST_TOKEN not in bug.exc_text
    assert redact("The token `123456789:AAFakeTokenForOfflineTests_0123456789` was rejected") == (
        "The token `<token>` was rejected"
    )
    assert isinstance(BadRequest("x"), NetworkError)  # why send retries exclude BadRequest explicitly


def test_chat_rate_limiter_window():
    now = [0.0]
    limiter = ChatRateLimiter(2, 60, clock=lambda: now[0])
    assert limiter.check(1) == 0 and limiter.check(1) == 0
    assert limiter.check(1) == pytest.approx(60)
    assert limiter.check(2) == 0
    now[0] = 61
    assert limiter.check(1) == 0


# ------------------------------------------------------------------ the bot as a process (run_bot)

_PROCESS_SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
import bot.telegram.app as app_module
from retrieval.config import Settings
from test_telegram_bot import KeywordRetriever
import os, time
def fake_open(cls, settings=None, **kw):
    time.sleep(float(os.environ.get("FAKE_LOAD_SECONDS", "0")))  # a slow model load
    return KeywordRetriever()
app_module.Retriever.open = classmethod(fake_open)
sys.exit(getattr(app_module, {entry!r})(Settings(home=Path({home!r}))))
"""


def start_bot_process(home: Path, env: dict[str, str], stderr: Path, entry: str = "run_bot") -> subprocess.Popen:
    """run_bot (or run_webhook) in a child process, with KeywordRetriever in place of the model (fast start)."""
    script = _PROCESS_SCRIPT.format(tests=str(Path(__file__).parent), home=str(home), entry=entry)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")}
    full_env.update({"NO_PROXY": "127.0.0.1,localhost", "PYTHONPATH": str(REPO), **env})
    return subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=stderr.open("wb"),
    )


def test_process_stops_on_sigterm_after_answering_the_question_in_flight(tg, tmp_path):
    err = tmp_path / "stderr.log"
    env = {"TELEGRAM_BOT_TOKEN": tg.token, "TELEGRAM_API_BASE_URL": tg.base_url, "TELEGRAM_TYPING_DELAY_SECONDS": "0"}
    proc = start_bot_process(tmp_path / "home", env, err)
    try:
        tg.wait_polling(timeout=60)
        chat = tg.private_chat(4004)
        tg.inject("sendChatAction", delay=1.5)  # keeps the handler busy while the signal arrives
        mark = tg.mark()
        update = tg.send_text("2019年衡阳调解了多少矛盾纠纷？", chat)
        tg.wait_for("sendChatAction", after=mark)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    answers = [c for c in tg.calls_of("sendMessage", mark) if c.status == 200]
    assert len(answers) == 1 and "17076" in answers[0].result["text"]
    tg.wait_confirmed(update, timeout=1)
    log_text = err.read_text(encoding="utf-8")
    assert "bot stopped" in log_text and "Traceback" not in log_text
    assert tg.token not in log_text and tg.token.partition(":")[2] not in log_text
    for path in (tmp_path / "home").rglob("*"):
        if path.is_file():
            assert tg.token.partition(":")[2].encode() not in path.read_bytes(), path


def test_process_stopped_while_loading_exits_0(tg, tmp_path):
    err = tmp_path / "stderr.log"
    env = {"TELEGRAM_BOT_TOKEN": tg.token, "TELEGRAM_API_BASE_URL": tg.base_url, "FAKE_LOAD_SECONDS": "60"}
    proc = start_bot_process(tmp_path / "home", env, err)
    try:
        deadline = time.monotonic() + 30
        while "loading reports" not in err.read_text(encoding="utf-8") and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    log_text = err.read_text(encoding="utf-8")
    assert "stopped before the bot started" in log_text and "Traceback" not in log_text
    assert tg.calls == []  # never talked to Telegram


def test_process_with_a_token_telegram_rejects_exits_2_without_printing_it(tg, tmp_path):
    err = tmp_path / "stderr.log"
    wrong = "987654321:AAWrongTokenWrongTokenWrongToken_1234"
    env = {"TELEGRAM_BOT_TOKEN": wrong, "TELEGRAM_API_BASE_URL": tg.base_url}
    proc = start_bot_process(tmp_path / "home", env, err)
    assert proc.wait(timeout=60) == 2
    log_text = err.read_text(encoding="utf-8")
    assert "reportqa: error: Telegram rejected TELEGRAM_BOT_TOKEN" in log_text
    assert wrong.partition(":")[2] not in log_text and "Traceback" not in log_text


def test_process_without_a_token_exits_2_with_one_line(tmp_path):
    err = tmp_path / "stderr.log"
    proc = start_bot_process(tmp_path / "home", {}, err)
    assert proc.wait(timeout=60) == 2
    lines = err.read_text(encoding="utf-8").strip().splitlines()
    assert lines == ["reportqa: error: TELEGRAM_BOT_TOKEN is not set: put the token from @BotFather in the environment"]
    assert not (tmp_path / "home").exists()  # nothing loaded, nothing written


@pytest.mark.slow  # ~9 s: three start-up retries with back-off
def test_process_that_cannot_reach_the_api_exits_1_with_a_hint(tmp_path):
    err = tmp_path / "stderr.log"
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"TELEGRAM_BOT_TOKEN": TEST_TOKEN, "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{port}/bot"}
    proc = start_bot_process(tmp_path / "home", env, err)
    assert proc.wait(timeout=90) == 1
    log_text = err.read_text(encoding="utf-8")
    assert "cannot reach the Telegram Bot API" in log_text and "TELEGRAM_API_BASE_URL" in log_text
    assert TEST_TOKEN.partition(":")[2] not in log_text
