"""Running the real bot Application against the fake Bot API inside a test (shared by the bot tests)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fake_telegram import FakeTelegram, RunningApp

from bot.question_log import QuestionLog
from bot.telegram.app import _bind, build_application, serve_webhook
from bot.telegram.handlers import ReportBot
from bot.telegram.settings import BotConfig, BotOptions, Listen, WebhookConfig
from bot.telegram.webhook import Serving

FAST = BotOptions(request_timeout=10.0, send_retry_delay=0.2, typing_interval=0.5, typing_delay=0.0)


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


WEBHOOK_SECRET = "test-webhook-secret_0123"


class WebhookReplica:
    """`serve_webhook` on a thread of its own (own event loop, port, Application and store
    connection), as one `reportqa telegram --webhook` process would run it."""

    def __init__(self, tg: FakeTelegram, retriever, home: Path, options: BotOptions = FAST,
                 secret: str = WEBHOOK_SECRET, store_url: str | None = None):
        self.log = QuestionLog.open(home, url=store_url)
        self.app = build_application(BotConfig(tg.token, tg.base_url), retriever, self.log, options, webhook=True)
        self.bot: ReportBot = self.app.bot_data["reportbot"]
        self._sock = _bind(Listen("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.config = WebhookConfig(secret=secret, listen=Listen("127.0.0.1", self.port))
        self.serving = Serving()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"webhook-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.config.path}"

    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        async def main() -> None:
            self._stop = asyncio.Event()
            await serve_webhook(self.app, self.log, self.config, self._sock, stop=self._stop, serving=self.serving)

        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(main())
        except BaseException as exc:  # noqa: BLE001 - surfaced by start()/stop()
            self._error = exc
        finally:
            self._loop.close()

    def __enter__(self) -> WebhookReplica:
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self.serving.ready:
            if self._error or time.monotonic() > deadline:
                raise RuntimeError(f"webhook replica did not start: {self._error!r}")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        self.log.close()
        if self._thread.is_alive():
            raise RuntimeError("webhook replica did not stop within 60 s")
        if self._error:
            raise RuntimeError(f"webhook replica failed: {self._error!r}") from self._error


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    """One plain HTTP request (no proxy): (status, body)."""
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
