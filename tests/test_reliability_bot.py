"""The bot with the real retriever, in process, against the fake Bot API: hostile messages, and a
corpus that changes underneath the running bot.

- Hostile messages (the fixed list of tests/test_fuzz_input.py) each get exactly one reply that
  Telegram accepts (the fake server checks HTML, length and markup as Telegram does): an answer,
  "not covered", or a polite refusal; never the "something went wrong" reply, never silence.
- Hot reload: a report added to the corpus directory is noticed by the periodic check, built off
  the event loop while the old retriever keeps answering, swapped in with one log line; a broken
  manifest is logged once and the old corpus keeps answering; fixing it reloads.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from bot_harness import ask, running_bot
from conftest import REPO
from test_fuzz_input import HOSTILE

from bot.telegram import messages as tm
from bot.telegram.settings import BotOptions
from retrieval.config import Settings
from retrieval.corpus import add_report
from retrieval.retriever import Retriever

pytestmark = pytest.mark.slow

OPTIONS = BotOptions(request_timeout=5.0, send_retry_delay=0.2, typing_interval=1.0, typing_delay=0.0,
                     questions_per_window=0)
PARKS_REPORT = """某市2025年城市公园建设情况报告
一、口袋公园
2025年，全市新建口袋公园42座，新增绿地面积12公顷。
二、绿道建设
全年新建绿道35公里，串联城市公园18个。
"""
PARKS_QUESTION = "新建了多少座口袋公园？"


@pytest.fixture
def settings(tmp_path: Path, model_home: Path) -> Settings:
    """A corpus directory of our own (a copy of the seed corpus, which the tests change)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("reports.toml", "hengyang-2019-fazhi-zhengfu-report.txt"):
        shutil.copy(REPO / "corpus" / name, corpus / name)
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(Settings(home=model_home).models_dir, target_is_directory=True)
    return Settings(corpus_dirs=(corpus,), home=home)


# ------------------------------------------------------------------------------------ hostile input

# A lone surrogate cannot travel in Telegram's UTF-8 JSON at all: the retriever-level tests cover it.
THROUGH_TELEGRAM = [(i, t) for i, t, _ in HOSTILE if i != "lone-surrogate"]


def test_hostile_messages_each_get_exactly_one_acceptable_reply(tg, settings):
    retriever = Retriever.open(settings)
    with running_bot(tg, retriever, settings.home, OPTIONS):
        mark = tg.mark()
        for n, (_, text) in enumerate(THROUGH_TELEGRAM):
            tg.send_text(text, tg.private_chat(5000 + n))
        replies = {}
        for n, (name, _) in enumerate(THROUGH_TELEGRAM):
            call = tg.wait_for("sendMessage", lambda c, n=n: c.params["chat_id"] == 5000 + n, after=mark, timeout=60)
            replies[name] = call.result["text"]
        time.sleep(1.0)  # a second reply would arrive by now
    sent = [c for c in tg.calls_of("sendMessage", mark) if c.status == 200]
    assert len(sent) == len(THROUGH_TELEGRAM), [c.result["text"][:40] for c in sent]
    assert not [c for c in tg.calls_of("sendMessage", mark) if c.status != 200]  # Telegram refused nothing
    assert not any(tm.FAILED in text for text in replies.values()), replies
    assert "问题太长了（100000 字）" in replies["100kb"]
    assert replies["html-injection"].startswith("❓ <b>调解</b>了多少纠纷</blockquote>&amp;&")  # shown, not parsed
    assert replies["newlines"].startswith("❓ 调解 纠纷 多少")  # a multi-line question is asked, on one line
    assert "这个问题无法处理" in replies["emoji-only"]


# ------------------------------------------------------------------------------------ hot reload


def wait_until(condition, timeout: float = 120.0, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(step)


def test_corpus_changed_under_a_running_bot_is_reloaded_off_the_loop_and_swapped(tg, settings, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="reportqa.telegram")
    corpus = settings.corpus_dirs[0]
    retriever = Retriever.open(settings)
    rebuild_may_finish = threading.Event()  # holds a rebuild open, as a big corpus would
    real_reopened = retriever.reopened
    retriever.reopened = lambda **kw: (rebuild_may_finish.wait(60), real_reopened(**kw))[1]
    rebuild_may_finish.set()
    options = replace(OPTIONS, corpus_check_seconds=0.5)
    with running_bot(tg, retriever, settings.home, options) as bot:
        assert tm.NOT_COVERED in ask(tg, PARKS_QUESTION).result["text"]

        # a broken manifest: the reload fails, is logged once, and the old corpus keeps answering
        manifest = corpus / "reports.toml"
        good = manifest.read_text(encoding="utf-8")
        manifest.write_text(good + "\n[[report]\nbroken", encoding="utf-8")
        wait_until(lambda: any("corpus reload failed" in r.getMessage() for r in caplog.records))
        assert "17076" in ask(tg, "2019年衡阳调解了多少矛盾纠纷？", chat=tg.private_chat(1002)).result["text"]
        time.sleep(1.5)  # three more checks: the same broken state is not rebuilt again
        assert sum("corpus reload failed" in r.getMessage() for r in caplog.records) == 1
        assert bot.retriever is retriever and bot.reloads == 0

        # fixed, plus a new report: rebuilt in a thread while the old retriever answers, then swapped
        rebuild_may_finish.clear()
        manifest.write_text(good, encoding="utf-8")
        new_file = tmp_path / "parks-2025.txt"
        new_file.write_text(PARKS_REPORT, encoding="utf-8")
        add_report(corpus, new_file, title="某市2025年城市公园建设情况报告", date="2026-01-10")
        wait_until(lambda: sum("corpus changed on disk" in r.getMessage() for r in caplog.records) == 2)
        during = ask(tg, PARKS_QUESTION, chat=tg.private_chat(1003)).result["text"]
        assert tm.NOT_COVERED in during and bot.retriever is retriever  # the old corpus, not blocked
        rebuild_may_finish.set()
        wait_until(lambda: bot.reloads == 1)
        assert bot.retriever is not retriever
        reloaded = [r.getMessage() for r in caplog.records if "corpus reloaded" in r.getMessage()]
        assert len(reloaded) == 1 and "now 2 report(s)" in reloaded[0]
        reply = ask(tg, PARKS_QUESTION, chat=tg.private_chat(1004)).result["text"]
        assert "42座" in reply and "某市2025年城市公园建设情况报告" in reply
        assert "17076" in ask(tg, "2019年衡阳调解了多少矛盾纠纷？", chat=tg.private_chat(1005)).result["text"]
        time.sleep(1.5)
        assert bot.reloads == 1  # nothing changed since: no further rebuilds
