"""Fast reliability and privacy checks of the bot layer (no model): retention and deletion of the
question log, the settings that govern them, bounded fetch-ahead, retries that cannot duplicate,
and log lines that stay one line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from bot_harness import running_bot
from telegram.error import BadRequest, NetworkError, TimedOut

from bot.question_log import LOG_DIR, QuestionLog, QuestionLogError
from bot.telegram.app import run_bot
from bot.telegram.flow import UpdateBacklog
from bot.telegram.handlers import ReportBot
from bot.telegram.redaction import RedactingFilter
from bot.telegram.sending import surely_not_delivered
from bot.telegram.settings import BotConfigError, BotOptions, options_from_env
from retrieval.answer import Answer
from retrieval.config import Settings

REPO = Path(__file__).resolve().parent.parent
OLD, NEW = "调解了多少矛盾纠纷（三个月前问的）", "行政复议办理了多少件（今天问的）"


def backdate(log: QuestionLog, row: int, days: int) -> None:
    """Pretend a row was asked `days` ago (the log has no clock to inject)."""
    when = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")
    conn = sqlite3.connect(log.path)
    with conn:
        conn.execute("UPDATE questions SET asked_at = ? WHERE id = ?", (when, row))
    conn.close()


@pytest.fixture
def log(tmp_path: Path) -> Iterator[QuestionLog]:
    log = QuestionLog.open(tmp_path)
    old = log.record(111, "private", Answer(OLD, True))
    log.record(222, "private", Answer(NEW, True))
    backdate(log, old, 100)
    yield log
    log.close()


def database_bytes(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (home / LOG_DIR).iterdir() if p.name.startswith("questions"))


# ------------------------------------------------------------------------------------ retention


def test_purge_deletes_only_questions_older_than_the_retention_and_leaves_no_trace(tmp_path, log):
    assert OLD.encode() in database_bytes(tmp_path)
    assert log.purge_older_than(90) == 1
    assert [r.question for r in log.rows()] == [NEW]
    assert OLD.encode() not in database_bytes(tmp_path)  # overwritten (secure_delete), not just unlinked
    assert log.purge_older_than(90) == 0
    with pytest.raises(QuestionLogError, match="at least 1 day"):
        log.purge_older_than(0)


def test_forget_chat_deletes_that_chat_only(tmp_path, log):
    assert log.forget_chat(111) == 1
    assert log.forget_chat(111) == 0
    assert [r.question for r in log.rows()] == [NEW]
    assert log.stats()[0] == 1


def test_bot_enforces_retention_at_start(tmp_path, log, caplog):
    caplog.set_level(logging.INFO, logger="reportqa.telegram")
    bot = ReportBot(StubRetriever(), log, BotOptions(log_retention_days=30, corpus_check_seconds=0))

    async def start_and_stop() -> None:
        bot.start_background()
        for _ in range(100):
            if len(log.rows()) == 1:
                break
            await asyncio.sleep(0.02)
        await bot.stop_background()

    asyncio.run(start_and_stop())
    assert [r.question for r in log.rows()] == [NEW]
    assert any("deleted 1 question(s) older than 30 days" in r.getMessage() for r in caplog.records)


def test_retention_zero_keeps_everything(tmp_path, log):
    bot = ReportBot(StubRetriever(), log, BotOptions(log_retention_days=0, corpus_check_seconds=0))

    async def start_and_stop() -> None:
        bot.start_background()
        await asyncio.sleep(0.1)
        await bot.stop_background()

    asyncio.run(start_and_stop())
    assert len(log.rows()) == 2


def test_maintenance_commands(tmp_path, log):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(Path(sys.executable).with_name("reportqa")), "--home", str(tmp_path), "feedback", *args],
            cwd=REPO, capture_output=True, text=True, timeout=60,
        )

    stats = run("stats")
    assert stats.returncode == 0 and stats.stdout.startswith("2 question(s); oldest ")
    forget = run("forget-chat", "222")
    assert forget.returncode == 0 and "deleted 1 question(s) of that chat" in forget.stdout
    purge = run("purge", "--days", "30")
    assert purge.returncode == 0 and "deleted 1 question(s) older than 30 days" in purge.stdout
    assert run("stats").stdout.startswith("0 question(s)")
    missing = subprocess.run(
        [str(Path(sys.executable).with_name("reportqa")), "--home", str(tmp_path / "nowhere"), "feedback", "stats"],
        capture_output=True, text=True, timeout=60,
    )
    err = missing.stderr.strip().splitlines()
    assert missing.returncode == 2 and len(err) == 1 and err[0].startswith("reportqa: error: no question log at")


# ------------------------------------------------------------------------------------ settings


def test_options_from_env_reads_every_knob():
    options = options_from_env(
        {
            "REPORTQA_CHAT_QUESTIONS_PER_MINUTE": "0",
            "REPORTQA_BOT_CONCURRENCY": "4",
            "REPORTQA_CORPUS_CHECK_SECONDS": "2.5",
            "REPORTQA_LOG_RETENTION_DAYS": "30",
            "TELEGRAM_MAX_MESSAGES_PER_SECOND": "0",
            "TELEGRAM_REQUEST_TIMEOUT": "7",
            "TELEGRAM_TYPING_DELAY_SECONDS": "0",
        }
    )
    assert (options.questions_per_window, options.rate_window_seconds) == (0, 60.0)
    assert options.concurrent_updates == 4 and options.corpus_check_seconds == 2.5
    assert options.log_retention_days == 30 and options.max_messages_per_second == 0
    assert options.request_timeout == 7 and options.typing_delay == 0
    assert options_from_env({}) == BotOptions()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REPORTQA_LOG_RETENTION_DAYS", "-1"),
        ("REPORTQA_LOG_RETENTION_DAYS", "ninety"),
        ("REPORTQA_LOG_RETENTION_DAYS", "1.5"),
        ("REPORTQA_BOT_CONCURRENCY", "0"),
        ("REPORTQA_CORPUS_CHECK_SECONDS", "nan"),
        ("TELEGRAM_REQUEST_TIMEOUT", "0.1"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it_and_the_bot_does_not_start(tmp_path, capsys, name, value):
    with pytest.raises(BotConfigError, match=name):
        options_from_env({name: value})
    env = {"TELEGRAM_BOT_TOKEN": "123456789:AAFakeTokenForOfflineTests_0123456789", name: value}
    assert run_bot(Settings(home=tmp_path / "home"), env=env) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"reportqa: error: {name} must be")
    assert not (tmp_path / "home").exists()  # nothing loaded, nothing written


# ------------------------------------------------------------------------------------ delivery


def _network_error(cls, cause: Exception) -> NetworkError:
    try:
        raise cls("boom") from cause
    except NetworkError as exc:
        return exc


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        (_network_error(NetworkError, httpx.ConnectError("refused")), True),
        (_network_error(NetworkError, httpx.RemoteProtocolError("Server disconnected")), True),
        (NetworkError("Bad Gateway"), True),  # a 5xx answer
        (_network_error(TimedOut, httpx.PoolTimeout("no free connection")), True),
        (_network_error(TimedOut, httpx.ConnectTimeout("connect")), True),
        (_network_error(TimedOut, httpx.ReadTimeout("read")), False),  # Telegram may have sent it
        (_network_error(TimedOut, httpx.WriteTimeout("write")), False),
        (BadRequest("can't parse entities"), False),
    ],
    ids=["connect", "dropped", "5xx", "pool-timeout", "connect-timeout", "read-timeout", "write-timeout", "400"],
)
def test_only_failures_that_cannot_have_delivered_are_retried(error, retry):
    assert surely_not_delivered(error) is retry


class StubRetriever:
    """Instant answers, or answers held until `gate` opens."""

    reports: list = []

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.asked = 0

    def ask(self, question: str, top_k: int = 3, **kw) -> Answer:
        assert self.gate.wait(60)
        self.asked += 1
        return Answer(question=question, answered=False)


def test_a_burst_is_fetched_no_further_ahead_than_the_backlog_allows(tg, tmp_path):
    retriever = StubRetriever()
    retriever.gate.clear()  # every answer is held: the bot cannot finish anything yet
    options = BotOptions(concurrent_updates=4, max_backlog=8, questions_per_window=0, corpus_check_seconds=0)
    with running_bot(tg, retriever, tmp_path, options):
        updates = [tg.send_text(f"问题{i}", tg.private_chat(7000 + i % 10)) for i in range(60)]
        time.sleep(1.5)
        fetched = [u for u in updates if tg.delivered(u)]
        assert len(fetched) == 8  # not 60: the rest stay with Telegram, unconfirmed
        assert tg.confirmed_offset <= updates[0]["update_id"] + 8
        retriever.gate.set()
        tg.wait_for("sendMessage", lambda c: "问题59" in c.params["text"], timeout=30)
        time.sleep(0.3)
    assert [tg.delivered(u) for u in updates] == [1] * 60  # each fetched exactly once
    answers = [c.params["text"] for c in tg.calls_of("sendMessage") if c.status == 200]
    assert len(answers) == 60


def test_three_5xx_in_a_row_are_survived_without_a_duplicate(tg, tmp_path):
    options = BotOptions(send_retry_delay=0.05, request_timeout=5, corpus_check_seconds=0)
    with running_bot(tg, StubRetriever(), tmp_path, options):
        tg.inject("sendMessage", 502, times=3)
        mark = tg.mark()
        tg.send_text("调解了多少纠纷", tg.private_chat(4242))
        tg.wait_for("sendMessage", after=mark)
        time.sleep(0.3)
        assert [c.status for c in tg.calls_of("sendMessage", mark)] == [502, 502, 502, 200]


def test_ptb_internal_errors_are_logged_as_one_line():
    record = logging.LogRecord(
        "telegram.request.BaseRequest", logging.ERROR, __file__, 1, "Can not load %s", ("x",), None
    )
    try:
        json.loads("<html>502</html>")
    except ValueError:
        record.exc_info = sys.exc_info()
    RedactingFilter("123456789:AAFakeTokenForOfflineTests_0123456789").filter(record)
    line = logging.Formatter().format(record)
    assert "\n" not in line and "Traceback" not in line and "JSONDecodeError" in line


def test_backlog_waits_for_room_and_reopens():
    async def scenario() -> list[str]:
        backlog = UpdateBacklog(2)
        events = []
        assert await backlog.room() == 2
        backlog.fetched(2)

        async def poller() -> None:
            events.append(f"room {await backlog.room()}")

        task = asyncio.create_task(poller())
        await asyncio.sleep(0.05)
        events.append("full")
        backlog.done()
        await task
        return events

    assert asyncio.run(scenario()) == ["full", "room 1"]


def test_the_log_is_readable_by_its_owner_only(tmp_path, log):
    folder = tmp_path / LOG_DIR
    assert folder.stat().st_mode & 0o777 == 0o700
    for path in folder.iterdir():  # the database, its WAL files and the salt
        assert path.stat().st_mode & 0o077 == 0, path
