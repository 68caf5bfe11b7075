"""The PTB Application around `ReportBot`, and `reportqa telegram` (long polling)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

import uvicorn
from telegram import Bot
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application, ApplicationBuilder
from telegram.request import HTTPXRequest

from bot.question_log import QuestionLog
from bot.telegram.flow import BacklogUpdateProcessor, BackpressureBot, MessageRateLimiter, UpdateBacklog
from bot.telegram.handlers import ReportBot
from bot.telegram.redaction import configure_logging, redact
from bot.telegram.settings import (
    ALLOWED_UPDATES,
    BotConfig,
    BotConfigError,
    BotOptions,
    Listen,
    RetrieverAPI,
    WebhookConfig,
    config_from_env,
    json_logs_from_env,
    max_connections_from_env,
    metrics_listen_from_env,
    options_from_env,
    webhook_config_from_env,
)
from bot.telegram.webhook import Serving, http_app
from retrieval.config import Settings
from retrieval.errors import ReportQAError
from retrieval.retriever import Retriever

_LOG = logging.getLogger("reportqa.telegram")


def _file_url(base_url: str) -> str:
    """PTB's base_file_url that belongs with a base_url (…/bot → …/file/bot)."""
    return base_url[: -len("/bot")] + "/file/bot" if base_url.endswith("/bot") else base_url.rstrip("/") + "/file/bot"


def build_application(
    config: BotConfig,
    retriever: RetrieverAPI,
    log: QuestionLog,
    options: BotOptions | None = None,
    *,
    webhook: bool = False,
) -> Application:
    """The PTB Application with all handlers; the caller runs it (run_polling, `serve_webhook`, or
    start() in tests). webhook: no updater (updates come from `bot.telegram.webhook`, never getUpdates)."""
    options = options or BotOptions()
    bot = ReportBot(retriever, log, options)
    timeouts = {
        f"{kind}_timeout": options.request_timeout for kind in ("connect", "read", "write", "pool")
    }  # getUpdates adds its long-polling seconds to the read timeout itself
    backlog = UpdateBacklog(options.max_backlog)
    telegram_bot = BackpressureBot(
        token=config.token,
        base_url=config.base_url,
        base_file_url=_file_url(config.base_url),
        request=HTTPXRequest(connection_pool_size=256, proxy=config.proxy, **timeouts),
        get_updates_request=HTTPXRequest(connection_pool_size=1, proxy=config.proxy, **timeouts),
        rate_limiter=MessageRateLimiter(
            overall_max_rate=options.max_messages_per_second,
            max_retries=options.rate_limiter_retries,
        ),
        backlog=backlog,
    )
    builder = (
        ApplicationBuilder()
        .bot(telegram_bot)
        .concurrent_updates(BacklogUpdateProcessor(options.concurrent_updates, backlog))
        .job_queue(None)
        .post_init(bot.post_init)
        .post_stop(bot.post_stop)
        .post_shutdown(bot.post_stop)
    )
    if webhook:
        builder = builder.updater(None)
        bot.share_rate_limits()
    else:
        bot.metrics.in_progress.set_function(lambda: backlog.pending)
    app = builder.build()
    bot.register(app)
    app.bot_data["reportbot"] = bot
    return app


def _fail(message: str, code: int = 2) -> int:
    print(f"reportqa: error: {message}", file=sys.stderr)
    return code


# Asked once at start-up, with one example question: the first English question of a process reads
# CC-CEDICT (~2–3 s of Python, holding the GIL). Left to the first English user, that stalled every
# question beside it: two webhook replicas at 30 questions/s started with p95 ~1.1 s over their first
# seconds, a backlog that a bot sending at Telegram's 30 messages/s then never worked off.
WARM_UP_ENGLISH = "How many disputes were mediated?"


def _load(settings: Settings, options: BotOptions) -> tuple[Retriever, QuestionLog]:
    """The retriever, warmed up (what the first Chinese and English questions would load, loaded before
    any user waits), and the question log."""
    _LOG.info("loading reports, model and index …")
    started = time.perf_counter()
    retriever = Retriever.open(settings)
    retriever.ask(options.examples[0], top_k=1)
    retriever.ask(WARM_UP_ENGLISH, top_k=1)
    _LOG.info("retrieval ready in %.1fs", time.perf_counter() - started)
    return retriever, QuestionLog.open(settings.home)


def _telegram_failure(exc: TelegramError, config: BotConfig) -> int:
    if isinstance(exc, InvalidToken):  # PTB's message quotes the token: never print it
        return _fail("Telegram rejected TELEGRAM_BOT_TOKEN (unauthorized); check it with @BotFather")
    return _fail(
        f"cannot reach the Telegram Bot API ({type(exc).__name__}: {redact(str(exc), config.token)}); "
        "check TELEGRAM_API_BASE_URL / TELEGRAM_PROXY",
        1,
    )


def run_bot(settings: Settings, env: Mapping[str, str] | None = None, options: BotOptions | None = None) -> int:
    """`reportqa telegram`: long polling until SIGTERM/SIGINT. Returns the process exit code.

    0 after a signal (updates already fetched are answered and confirmed first); 2 for a
    configuration problem (message on stderr, one line); 1 if Telegram cannot be reached at start.
    With REPORTQA_METRICS_LISTEN, /livez, /readyz and /metrics are served beside polling.
    """
    try:
        config = config_from_env(env)
        options = options_from_env(env, options)
        metrics_at = metrics_listen_from_env(env)
        json_logs = json_logs_from_env(env)
    except BotConfigError as exc:
        return _fail(str(exc))
    configure_logging(config.token, json_logs=json_logs)
    os.environ.setdefault("PTB_TIMEDELTA", "1")  # PTB 22 opt-in (RetryAfter as timedelta); no deprecation noise

    stopping = False

    def stop_while_loading(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop_while_loading) for sig in (signal.SIGTERM, signal.SIGINT)}
    log: QuestionLog | None = None
    side: _SideServer | None = None
    try:
        try:
            retriever, log = _load(settings, options)
            app = build_application(config, retriever, log, options)
            if metrics_at is not None:
                serving = Serving()
                side = _SideServer(http_app(app, app.bot_data["reportbot"], log, serving), metrics_at, serving)
        except ReportQAError as exc:
            return _fail(str(exc))
        except OSError as exc:  # the metrics port
            return _fail(f"cannot listen on REPORTQA_METRICS_LISTEN={metrics_at}: {exc.strerror or exc}")
        except KeyboardInterrupt:
            if stopping:
                _LOG.info("stopped before the bot started")
                return 0
            raise
        try:  # run_polling replaces our start-up signal handlers with its own graceful ones
            app.run_polling(
                poll_interval=0.0,
                timeout=options.poll_timeout,
                bootstrap_retries=3,
                allowed_updates=ALLOWED_UPDATES,
                drop_pending_updates=False,
                stop_signals=(signal.SIGINT, signal.SIGTERM),
            )
        except TelegramError as exc:
            return _telegram_failure(exc, config)
        _LOG.info("bot stopped")
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if side is not None:
            side.stop()
        if log is not None:
            log.close()


class _SideServer:
    """/livez, /readyz, /metrics on their own thread beside long polling (which owns the main loop)."""

    def __init__(self, asgi: Any, listen: Listen, serving: Serving):
        self._sock = _bind(listen)
        self._server = uvicorn.Server(uvicorn.Config(asgi, log_level="warning", access_log=False, lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="reportqa-metrics", daemon=True)
        self._thread.start()
        serving.ready = True

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._sock.close()


def _bind(listen: Listen) -> socket.socket:
    """A listening socket, bound here so that a taken port is a clear error, not uvicorn's exit."""
    family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((listen.host, listen.port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def run_webhook(settings: Settings, env: Mapping[str, str] | None = None, options: BotOptions | None = None) -> int:
    """`reportqa telegram --webhook`: serve Telegram's webhook POSTs (and /livez, /readyz, /metrics)
    until SIGTERM/SIGINT; updates in progress are finished first. Never calls setWebhook,
    deleteWebhook or getUpdates: registering the webhook is `--set-webhook`, once, at deploy.

    Exit codes as `run_bot`.
    """
    try:
        config = config_from_env(env)
        webhook = webhook_config_from_env(env)
        options = options_from_env(env, options)
        json_logs = json_logs_from_env(env)
    except BotConfigError as exc:
        return _fail(str(exc))
    configure_logging(config.token, json_logs=json_logs)
    os.environ.setdefault("PTB_TIMEDELTA", "1")

    def stop_while_loading(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    def stopped(signum: int, frame: object) -> None:
        """uvicorn handles the signal while serving and raises it again afterwards: nothing left to do."""

    previous = {sig: signal.signal(sig, stop_while_loading) for sig in (signal.SIGTERM, signal.SIGINT)}
    log: QuestionLog | None = None
    sock: socket.socket | None = None
    try:
        try:
            sock = _bind(webhook.listen)  # first: a taken port fails fast, before the model loads
        except OSError as exc:
            return _fail(f"cannot listen on TELEGRAM_WEBHOOK_LISTEN={webhook.listen}: {exc.strerror or exc}")
        try:
            retriever, log = _load(settings, options)
        except ReportQAError as exc:
            return _fail(str(exc))
        except KeyboardInterrupt:
            _LOG.info("stopped before the bot started")
            return 0
        app = build_application(config, retriever, log, options, webhook=True)
        for sig in previous:
            signal.signal(sig, stopped)
        try:
            asyncio.run(serve_webhook(app, log, webhook, sock))
        except TelegramError as exc:
            return _telegram_failure(exc, config)
        _LOG.info("bot stopped")
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if sock is not None:
            sock.close()
        if log is not None:
            log.close()


async def serve_webhook(
    app: Application, log: QuestionLog, webhook: WebhookConfig, sock: socket.socket,
    stop: asyncio.Event | None = None, serving: Serving | None = None,
) -> None:
    """Run the Application and the HTTP server on one event loop until SIGTERM/SIGINT (or `stop`, for
    a server on another thread than the main one, where uvicorn installs no signal handlers)."""
    bot: ReportBot = app.bot_data["reportbot"]
    serving = serving or Serving()
    server = uvicorn.Server(uvicorn.Config(
        http_app(app, bot, log, serving, webhook), log_level="warning", access_log=False, lifespan="off",
        timeout_graceful_shutdown=30,
    ))
    async with app:  # initialize (getMe) … shutdown
        await app.start()
        await bot.post_init(app)
        serving.ready = True
        _LOG.info("webhook: serving %s on %s", webhook.path, webhook.listen)
        watcher = asyncio.create_task(_exit_on(stop, server)) if stop is not None else None
        try:
            await server.serve(sockets=[sock])  # handles SIGTERM/SIGINT: stops taking requests, finishes them
        finally:
            if watcher is not None:
                watcher.cancel()
            serving.ready = False
            await bot.post_stop(app)
            await app.stop()


async def _exit_on(stop: asyncio.Event, server: uvicorn.Server) -> None:
    await stop.wait()
    server.should_exit = True


def set_webhook(url: str, env: Mapping[str, str] | None = None) -> int:
    """`reportqa telegram --set-webhook URL`: register the webhook once (a deploy step); exit code.

    Sends the secret, the update types the bot handles and TELEGRAM_WEBHOOK_MAX_CONNECTIONS (default
    40); never drops pending updates. A non-https URL is accepted with a warning (Telegram itself
    requires https; loopback tests do not).
    """
    try:
        config = config_from_env(env)
        webhook = webhook_config_from_env(env)
        connections = max_connections_from_env(env)
    except BotConfigError as exc:
        return _fail(str(exc))
    if not re.match(r"https?://[^/\s]+", url or ""):
        return _fail(f"--set-webhook needs an http(s) URL such as https://bot.example.org{webhook.path}")
    if not url.startswith("https://"):
        print("reportqa: warning: Telegram accepts only https:// webhook URLs; using it anyway", file=sys.stderr)
    configure_logging(config.token)

    async def register() -> None:
        async with Bot(config.token, base_url=config.base_url, base_file_url=_file_url(config.base_url)) as bot:
            await bot.set_webhook(url, secret_token=webhook.secret, allowed_updates=ALLOWED_UPDATES,
                                  max_connections=connections, drop_pending_updates=False)

    try:
        asyncio.run(register())
    except TelegramError as exc:
        return _telegram_failure(exc, config)
    print(f"webhook set: {url} (max_connections={connections}; pending updates kept)")
    return 0
