"""End to end: the real Retriever (model + index over the real reports) behind the real bot,
talking HTTP to the fake Bot API server; and `reportqa telegram` as a process, stopped by SIGTERM.

Corpus: the seed report (corpus/) plus one long district report from ../shared (copied to a temp
directory, not the repo), whose chapter 二、 is ~7,700 characters: long enough that 全文 must
split it into numbered parts.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bot_harness import ask, running_bot
from fake_telegram import TEST_TOKEN, FakeTelegram, parse_html, utf16_len

from bot.telegram import messages as tm
from bot.telegram.settings import BotOptions
from retrieval.config import Settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
LONG_REPORT = SHARED / "corpora" / "gov-work-reports" / "大鹏新区2023年管理委员会工作报告_2023.txt"
REPORTQA = Path(sys.executable).parent / "reportqa"
KNOWN_QUESTION = "2019年衡阳调解了多少矛盾纠纷？"
OUT_OF_SCOPE = "火星移民计划的预算是多少？"
OPTIONS = BotOptions(request_timeout=5.0, send_retry_delay=0.2, typing_interval=1.0, typing_delay=0.0)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, model_home: Path) -> Settings:
    """Our own home (own index and question log) sharing the session's built model."""
    if not LONG_REPORT.is_file():
        pytest.fail(f"{LONG_REPORT} is missing: the e2e tests need ../shared beside the repository")
    extra = tmp_path_factory.mktemp("extra-corpus")
    shutil.copy(LONG_REPORT, extra / LONG_REPORT.name)
    home = tmp_path_factory.mktemp("telegram-home")
    (home / "models").symlink_to(Settings(home=model_home).models_dir, target_is_directory=True)
    return Settings(corpus_dirs=(REPO / "corpus", extra), home=home)


@pytest.fixture(scope="module")
def retriever(settings: Settings):
    from retrieval.retriever import Retriever

    return Retriever.open(settings)


def labels(message: dict) -> list[str]:
    return [b["text"] for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row]


def test_known_question_cites_section_7_1_with_the_number_in_bold(tg, retriever, tmp_path):
    with running_bot(tg, retriever, tmp_path, OPTIONS) as bot:
        log = bot.log
        mark = tg.mark()
        reply = ask(tg, KNOWN_QUESTION)
        html_text = tg.html(reply)
        assert "出处：<b>《衡阳市2019年度法治政府建设情况报告》七、(一) 推行多元化解机制</b>" in html_text
        bold = [part.split("</b>")[0] for part in html_text.split("<b>")[1:]]
        assert any("17076" in b for b in bold), html_text  # the answer sentence is the highlighted one
        assert tg.calls_of("sendChatAction", mark)[0].seq < reply.seq
        assert labels(reply.result) == ["📄 全文", "更多结果 ▶", "👍 有帮助", "👎 没帮助"]
        (row,) = log.rows()
        assert row.answered and row.hits[0]["section_id"] == "7.1"


def test_start_example_button_asks_it(tg, retriever, tmp_path):
    with running_bot(tg, retriever, tmp_path, OPTIONS):
        start = ask(tg, "/start")
        assert len(labels(start.result)) == 3
        mark = tg.mark()
        tg.press(start.result, "调解")
        answer = tg.wait_for("sendMessage", after=mark)
        assert "17076" in answer.result["text"] and "七、(一)" in answer.result["text"]


def test_more_results_pages_in_place_and_thumbs_up_lands_in_sqlite(tg, retriever, tmp_path):
    with running_bot(tg, retriever, tmp_path, OPTIONS) as bot:
        log = bot.log
        reply = ask(tg, KNOWN_QUESTION)
        first = tg.html(reply)
        mark = tg.mark()
        tg.press(reply.result, "更多结果")
        tg.wait_for("editMessageText", after=mark)
        second = tg.html(reply)
        assert "📄 4. 出处" in second and "第 2 页" in second and second != first
        assert "◀ 上一页" in labels(tg.message(reply))
        mark = tg.mark()
        tg.press(reply.result, "上一页")
        tg.wait_for("editMessageText", after=mark)
        assert tg.html(reply) == first
        mark = tg.mark()
        tg.press(reply.result, "👍")
        assert tg.wait_for("answerCallbackQuery", after=mark).params.get("text") == "感谢反馈！"
        tg.wait_for("editMessageReplyMarkup", after=mark)
        assert "已记录：👍 有帮助，谢谢！" in labels(tg.message(reply))
        assert [r.vote for r in log.rows()] == [1]
        assert len(tg.calls_of("sendMessage")) == 1  # one message for the whole exchange


def test_full_text_of_a_long_chapter_comes_in_numbered_parts_below_4096(tg, retriever, tmp_path):
    with running_bot(tg, retriever, tmp_path, OPTIONS):
        menu = ask(tg, "/sections")
        assert "已收录 2 份报告" in menu.result["text"]
        for label in ("大鹏新区2023年", "二、"):
            mark = tg.mark()
            tg.press(menu.result, label)
            tg.wait_for("editMessageText", after=mark)
        assert "📄 本节全文" in labels(tg.message(menu)) and "⬅ 返回上一级" in labels(tg.message(menu))
        mark = tg.mark()
        tg.press(menu.result, "本节全文")
        first = tg.wait_for("sendMessage", after=mark)
        total = int(first.result["text"].split("（1/")[1].split("）")[0])
        assert total >= 2
        parts = [first]
        for _ in range(total - 1):
            parts.append(tg.wait_for("sendMessage", after=parts[-1].seq))
        for i, part in enumerate(parts, start=1):
            assert f"（{i}/{total}）" in part.result["text"]
            assert utf16_len(part.result["text"]) < 4096
            parse_html(part.params["text"])
        text = "".join(p.result["text"] for p in parts)
        assert "(十) 打好“作风牌”" in text  # the last sub-section arrived


def test_out_of_scope_question_says_so_and_offers_nearest_sections(tg, retriever, tmp_path):
    with running_bot(tg, retriever, tmp_path, OPTIONS) as bot:
        log = bot.log
        reply = ask(tg, OUT_OF_SCOPE)
        assert tm.NOT_COVERED in reply.result["text"]
        assert "17076" not in reply.result["text"]
        assert log.rows()[0].answered is False
        mark = tg.mark()
        tg.inline_query(OUT_OF_SCOPE)
        (none,) = tg.wait_for("answerInlineQuery", after=mark).params["results"]
        assert none["title"] == "没有找到相关内容"


def test_group_mention_and_inline_query(tg, retriever, tmp_path):
    group = tg.group_chat()
    with running_bot(tg, retriever, tmp_path, OPTIONS):
        mark = tg.mark()
        tg.send_text("今天开会讨论调解工作", group, thread_id=9)  # not addressed: ignored
        reply = ask(tg, f"@reportqa_test_bot {KNOWN_QUESTION}", chat=group, thread_id=9)
        assert "17076" in reply.result["text"] and reply.params["message_thread_id"] == 9
        assert len([c for c in tg.calls_of("sendMessage", mark) if c.status == 200]) == 1
        mark = tg.mark()
        tg.inline_query(KNOWN_QUESTION)
        results = tg.wait_for("answerInlineQuery", after=mark).params["results"]
        assert 1 <= len(results) <= 5
        assert results[0]["title"] == "《衡阳市2019年度法治政府建设情况报告》七、(一) 推行多元化解机制"
        assert "17076" in parse_html(results[0]["input_message_content"]["message_text"])


def test_api_faults_429_502_and_timeout_do_not_stop_real_answers(tg, retriever, tmp_path):
    with running_bot(tg, retriever, tmp_path, OPTIONS):
        tg.inject("sendMessage", 429, retry_after=1)
        assert "17076" in ask(tg, KNOWN_QUESTION).result["text"]
        tg.inject("sendMessage", 502)
        assert "17076" in ask(tg, KNOWN_QUESTION).result["text"]
        tg.inject("sendMessage", delay=OPTIONS.request_timeout + 1)  # delivered, but the client times out
        mark = tg.mark()
        tg.send_text(KNOWN_QUESTION, tg.private_chat())
        tg.wait_for("sendMessage", after=mark)
        time.sleep(OPTIONS.request_timeout + 1.5)
        assert "17076" in ask(tg, KNOWN_QUESTION).result["text"]  # alive after the timeout
        sent = [c for c in tg.calls_of("sendMessage") if c.status == 200]
        assert len(sent) == 4  # four questions, four answers: nothing lost, nothing repeated
        assert [c.status for c in tg.calls_of("sendMessage")] == [429, 200, 502, 200, 200, 200]


def _start_process(tg: FakeTelegram, settings: Settings, out: Path, err: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": tg.token,
        "TELEGRAM_API_BASE_URL": tg.base_url,
        "REPORTQA_HOME": str(settings.home),
        "REPORTQA_CORPUS": os.pathsep.join(str(d) for d in settings.corpus_dirs),
        "NO_PROXY": "127.0.0.1,localhost",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TELEGRAM_TYPING_DELAY_SECONDS": "0",  # the SIGTERM test holds a handler busy in its indicator
    }
    command = (
        [str(REPORTQA), "telegram"] if REPORTQA.exists() else [sys.executable, "-m", "bot.cli", "telegram"]
    )
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=out.open("wb"), stderr=err.open("wb"))


def _answers_to(tg: FakeTelegram, question: str) -> int:
    return sum(1 for c in tg.calls_of("sendMessage") if c.status == 200 and question in c.params["text"])


def test_sigterm_finishes_work_in_flight_exits_0_loses_nothing_and_never_writes_the_token(
    tg, retriever, settings, tmp_path
):
    """`reportqa telegram` in a process: a question in flight at SIGTERM is answered once and
    confirmed; one sent after the exit is answered by the next run; the token is nowhere."""
    logs = [tmp_path / name for name in ("out1", "err1", "out2", "err2")]
    chat = tg.private_chat(5005)
    proc = _start_process(tg, settings, logs[0], logs[1])
    try:
        tg.wait_polling(timeout=300)  # model and index loaded, polling
        assert "17076" in ask(tg, KNOWN_QUESTION, chat=chat).result["text"]
        in_flight = "行政复议办理了多少件案件？"
        tg.inject("sendChatAction", delay=2.0, when=lambda p: p.get("chat_id") == chat.id)
        mark = tg.mark()
        update = tg.send_text(in_flight, chat)
        tg.wait_for("sendChatAction", after=mark, timeout=60)  # the handler is running now
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _answers_to(tg, in_flight) == 1
    tg.wait_confirmed(update, timeout=1)  # the last getUpdates told Telegram it was handled
    after_exit = "行政执法人员培训了多少人？"
    later = tg.send_text(after_exit, chat)
    assert tg.delivered(later) == 0

    proc = _start_process(tg, settings, logs[2], logs[3])
    try:
        tg.wait_for("sendMessage", lambda c: after_exit in c.params["text"], timeout=300)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _answers_to(tg, after_exit) == 1 and _answers_to(tg, in_flight) == 1  # nothing answered twice
    assert tg.delivered(update) == 1

    stderr = logs[1].read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in stderr and "bot stopped" in stderr
    secret = TEST_TOKEN.partition(":")[2]
    produced = [*logs, *(p for p in Path(settings.home).rglob("*") if p.is_file())]
    leaks = [
        str(p) for p in produced if TEST_TOKEN.encode() in p.read_bytes() or secret.encode() in p.read_bytes()
    ]
    assert leaks == []


def test_transcript_of_a_conversation(tg, retriever, tmp_path):
    """The conversation a citizen would have, as the fake server recorded it (shown with -s)."""
    with running_bot(tg, retriever, tmp_path, OPTIONS):
        start = ask(tg, "/start")
        mark = tg.mark()
        tg.press(start.result, "调解")
        reply = tg.wait_for("sendMessage", after=mark)
        mark = tg.mark()
        tg.press(reply.result, "更多结果")
        tg.wait_for("editMessageText", after=mark)
        mark = tg.mark()
        tg.press(reply.result, "👍")
        tg.wait_for("editMessageReplyMarkup", after=mark)
        ask(tg, OUT_OF_SCOPE)
        mark = tg.mark()
        tg.send_sticker(tg.private_chat())
        tg.wait_for("sendMessage", after=mark)
    transcript = tg.transcript()
    (tmp_path / "transcript.txt").write_text(transcript, encoding="utf-8")
    print("\n----- transcript -----\n" + transcript)
    assert "USER taps" in transcript and "BOT  editMessageText" in transcript


def test_an_english_question_is_answered_with_english_labels_and_lang_overrides(tg, retriever, tmp_path):
    english = "How many disputes were mediated in Hengyang in 2019?"
    with running_bot(tg, retriever, tmp_path, OPTIONS):
        reply = ask(tg, english)
        text = tg.html(reply)
        assert "17076" in text
        assert "Source: <b>《衡阳市2019年度法治政府建设情况报告》七、(一) 推行多元化解机制</b>" in text
        assert labels(reply.result) == ["📄 Full section", "More results ▶", "👍 Helpful", "👎 Not helpful"]
        refused = ask(tg, "What is the weather like in Hengyang tomorrow?")
        assert "The reports do not cover this." in refused.result["text"]
        assert ask(tg, "/lang zh").result["text"] == tm.LANG_SET["zh"]
        again = ask(tg, english)
        assert "出处：" in again.result["text"] and "👍 有帮助" in labels(again.result)
        assert ask(tg, "/lang en").result["text"] == tm.LANG_SET["en"]
        chinese = ask(tg, KNOWN_QUESTION)
        assert "Source:" in chinese.result["text"] and "17076" in chinese.result["text"]
        ask(tg, "/lang auto")
        assert "出处：" in ask(tg, KNOWN_QUESTION).result["text"]
    print("\n----- transcript -----\n" + tg.transcript())  # shown with -s
