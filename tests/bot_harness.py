"""Running the real bot Application against the fake Bot API inside a test (shared by the bot tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fake_telegram import FakeTelegram, RunningApp

from bot.question_log import QuestionLog
from bot.telegram_app import BotConfig, BotOptions, ReportBot, build_application

FAST = BotOptions(request_timeout=10.0, send_retry_delay=0.2, typing_interval=0.5)


@contextmanager
def running_bot(tg: FakeTelegram, retriever, home: Path, options: BotOptions = FAST) -> Iterator[ReportBot]:
    """The bot polling `tg` with `retriever` and a question log under `home`; stopped on exit."""
    log = QuestionLog.open(home)
    app = build_application(BotConfig(tg.token, tg.base_url), retriever, log, options)
    try:
        with RunningApp(app):
            yield app.bot_data["reportbot"]
    finally:
        log.close()


def ask(tg: FakeTelegram, text: str, chat=None, timeout: float = 60, **kw):
    """Send a question and return the bot's reply to that chat (a recorded sendMessage call)."""
    chat = chat or tg.private_chat()
    mark = tg.mark()
    tg.send_text(text, chat, **kw)
    return tg.wait_for("sendMessage", lambda c: c.params["chat_id"] == chat.id, after=mark, timeout=timeout)


def replies(tg: FakeTelegram, after: int = 0) -> list:
    return [c for c in tg.calls_of("sendMessage", after) if c.status == 200]
