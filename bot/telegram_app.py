"""The Telegram bot for citizens: python-telegram-bot (v22) wiring over the retrieval API.

    TELEGRAM_BOT_TOKEN=… reportqa telegram        # or: run_bot(Settings())

A thin shell: every answer comes from `Retriever.ask`, every text from `bot.telegram_messages`,
every record from `bot.question_log`. What this module adds is the Telegram behaviour:
- the model and index load once (`Retriever.open`), retrieval runs in a worker thread, and
  updates are processed concurrently, with a per-chat lock so one chat's answers stay in order;
- one reply per question, HTML with a plain-text resend if Telegram rejects the markup; a few
  retries with back-off when the request surely did not take effect (a 5xx, a refused or dropped
  connection, no free connection) — never after a read/write timeout: the message may already be
  delivered, and a duplicate answer is worse than a late one;
- 429s are retried by `AIORateLimiter`, which also keeps messages under Telegram's ~30/s
  (configurable); the "typing…" indicator bypasses it: it is cosmetic and must not halve the
  message budget;
- no API error ends the bot (the error handler logs one redacted line); SIGTERM/SIGINT stop
  polling, finish the updates already fetched, confirm them to Telegram and exit 0;
- the bot fetches no more updates than it has room for (`BackpressureBot`): Telegram forgets an
  update once the next getUpdates confirms it, so a burst fetched all at once would be confirmed
  long before it is answered, and a crash (kill -9, OOM) would lose all of it;
- background jobs: every few seconds the corpus is checked; if it changed, a new retriever is
  built off the event loop while the old one keeps answering, then swapped in (a failed rebuild
  is logged and the old one kept); at start and daily, questions older than the retention period
  are deleted from the log;
- the token never reaches logs or messages: httpx's request log (whose URL holds the token) is
  silenced and every log record passes through `RedactingFilter`.

Environment (all optional; see docs/SECURITY.md for the privacy ones): TELEGRAM_MAX_MESSAGES_PER_SECOND,
TELEGRAM_REQUEST_TIMEOUT, REPORTQA_CHAT_QUESTIONS_PER_MINUTE, REPORTQA_BOT_CONCURRENCY,
REPORTQA_CORPUS_CHECK_SECONDS, REPORTQA_LOG_RETENTION_DAYS.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import logging
import os
import re
import signal
import sys
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Protocol

from telegram import (
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError, TimedOut
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ExtBot,
    InlineQueryHandler,
    MessageHandler,
    SimpleUpdateProcessor,
    filters,
)
from telegram.request import HTTPXRequest

from bot import telegram_messages as tm
from bot.question_log import DEFAULT_CONVERSATION_MINUTES, DEFAULT_RETENTION_DAYS, QuestionLog
from retrieval.answer import Answer
from retrieval.config import Settings
from retrieval.document import Report, ReportMeta, Section
from retrieval.errors import InputError, ReportQAError
from retrieval.followup import Turn, remember, with_place
from retrieval.retriever import MAX_QUESTION_CHARS, Retriever

_LOG = logging.getLogger("reportqa.telegram")

DEFAULT_BASE_URL = "https://api.telegram.org/bot"
ALLOWED_UPDATES = ["message", "callback_query", "inline_query"]
# BotFather tokens: the bot's numeric id, a colon, a 35-character secret
_TOKEN_RE = re.compile(r"[0-9]{3,20}:[A-Za-z0-9_-]{30,80}")
_TOKEN_ANYWHERE = re.compile(r"[0-9]{3,20}:[A-Za-z0-9_-]{30,80}")
_DEEP_LINK_SECTION = re.compile(r"sec_([0-9]{1,4}(?:_[0-9]{1,4}){0,8})")

COMMANDS = {
    "zh": [
        ("start", "开始使用，查看示例问题"),
        ("help", "使用帮助"),
        ("sections", "浏览报告目录"),
        ("about", "已收录的报告"),
        ("ask", "提问（在群聊中使用）"),
        ("report", "只查某个地区或报告（/report all 恢复）"),
        ("reset", "忘记之前的对话，重新开始"),
        ("lang", "回复语言：/lang en | zh | auto"),
    ],
    "en": [
        ("start", "Start and see example questions"),
        ("help", "How to use this bot"),
        ("sections", "Browse the reports' sections"),
        ("about", "Which reports are loaded"),
        ("ask", "Ask a question (in groups)"),
        ("report", "Limit questions to one region or report"),
        ("reset", "Forget the conversation and start fresh"),
        ("lang", "Reply language: /lang en | zh | auto"),
    ],
}


class BotConfigError(ReportQAError):
    """The bot's environment settings are missing or malformed."""


class RetrieverAPI(Protocol):
    """What the bot needs from `retrieval.retriever.Retriever`."""

    @property
    def reports(self) -> list[ReportMeta]: ...

    def report(self, report_id: str) -> Report: ...

    def section(self, report_id: str, section_id: str) -> Section: ...

    def ask(
        self,
        question: str,
        top_k: int = 3,
        reports: Sequence[str] | None = None,
        mode: str = "hybrid",
        offset: int = 0,
        *,
        year: int | None = None,
    ) -> Answer: ...


@dataclass(frozen=True)
class BotConfig:
    token: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    proxy: str | None = None


@dataclass(frozen=True)
class BotOptions:
    """Behaviour knobs; the defaults are for production, tests shorten the timeouts."""

    page_size: int = 3
    questions_per_window: int = 10  # per chat; 0: no per-chat limit
    rate_window_seconds: float = 60.0
    max_question_chars: int = MAX_QUESTION_CHARS
    concurrent_updates: int = 16
    max_backlog: int = 32  # updates fetched but not yet answered; bounds what a crash can lose
    rate_limiter_retries: int = 2  # AIORateLimiter: 429s retried after retry_after
    max_messages_per_second: float = 30.0  # Telegram's free broadcast limit; 0: no bot-side limit
    request_timeout: float = 15.0  # connect/read/write for one API call
    poll_timeout: int = 30  # getUpdates long-polling seconds
    typing_interval: float = 4.5  # Telegram shows "typing…" for about 5 s
    send_retry_delay: float = 1.0  # first back-off; doubles on each further retry
    send_retries: int = 3  # for failures where the request surely did not take effect
    corpus_check_seconds: float = 10.0  # 0: do not watch the corpus
    log_retention_days: int = DEFAULT_RETENTION_DAYS  # 0: keep questions forever
    conversation_minutes: float = DEFAULT_CONVERSATION_MINUTES  # follow-ups understood within this time
    examples: tuple[str, ...] = tm.EXAMPLE_QUESTIONS


_ENV_OPTIONS: dict[str, tuple[str, type, float]] = {
    # variable: (BotOptions field, type, smallest allowed value)
    "REPORTQA_CHAT_QUESTIONS_PER_MINUTE": ("questions_per_window", int, 0),
    "REPORTQA_BOT_CONCURRENCY": ("concurrent_updates", int, 1),
    "REPORTQA_CORPUS_CHECK_SECONDS": ("corpus_check_seconds", float, 0),
    "REPORTQA_LOG_RETENTION_DAYS": ("log_retention_days", int, 0),
    "REPORTQA_CONVERSATION_MINUTES": ("conversation_minutes", float, 0),
    "TELEGRAM_MAX_MESSAGES_PER_SECOND": ("max_messages_per_second", float, 0),
    "TELEGRAM_REQUEST_TIMEOUT": ("request_timeout", float, 1),
}


def options_from_env(env: Mapping[str, str] | None = None, base: BotOptions | None = None) -> BotOptions:
    """BotOptions with the knobs set in the environment (see `_ENV_OPTIONS`); BotConfigError names a bad one."""
    env = os.environ if env is None else env
    options = base or BotOptions()
    changes: dict[str, Any] = {}
    for name, (attr, kind, lowest) in _ENV_OPTIONS.items():
        raw = env.get(name, "").strip()
        if not raw:
            continue
        try:
            value = kind(raw)
        except ValueError:
            value = None
        if value is None or value < lowest or value != value:  # value != value: NaN
            what = "a whole number" if kind is int else "a number"
            raise BotConfigError(f"{name} must be {what} ≥ {lowest:g}, not {raw[:20]!r}")
        changes[attr] = value
    if "questions_per_window" in changes:
        changes["rate_window_seconds"] = 60.0
    return replace(options, **changes)


def config_from_env(env: Mapping[str, str] | None = None) -> BotConfig:
    """Read TELEGRAM_BOT_TOKEN (required), TELEGRAM_API_BASE_URL, TELEGRAM_PROXY.

    Error messages describe the token's shape, never its value.
    """
    env = os.environ if env is None else env
    token = env.get("TELEGRAM_BOT_TOKEN", "").strip()
    if not token:
        raise BotConfigError("TELEGRAM_BOT_TOKEN is not set: put the token from @BotFather in the environment")
    if not _TOKEN_RE.fullmatch(token):
        raise BotConfigError(
            f"TELEGRAM_BOT_TOKEN is malformed ({len(token)} characters): expected '<bot id>:<secret>' "
            "as issued by @BotFather"
        )
    base_url = env.get("TELEGRAM_API_BASE_URL", "").strip() or DEFAULT_BASE_URL
    if not re.match(r"https?://[^/\s]+", base_url):
        raise BotConfigError(f"TELEGRAM_API_BASE_URL must be an http(s) URL such as {DEFAULT_BASE_URL}")
    if token in base_url:
        raise BotConfigError("TELEGRAM_API_BASE_URL must not contain the token (it is appended automatically)")
    proxy = env.get("TELEGRAM_PROXY", "").strip() or None
    if proxy and not re.match(r"(https?|socks5h?)://", proxy):
        raise BotConfigError("TELEGRAM_PROXY must be a URL such as http://host:port or socks5://host:port")
    if proxy and proxy.startswith("socks") and importlib.util.find_spec("socksio") is None:
        raise BotConfigError(
            'TELEGRAM_PROXY is a SOCKS proxy, which needs `pip install "python-telegram-bot[socks]"`; '
            "or use an http:// proxy"
        )
    return BotConfig(token=token, base_url=base_url, proxy=proxy)


# --------------------------------------------------------------------------- logging


def redact(text: str, token: str | None = None) -> str:
    """Remove a bot token (given, or anything shaped like one) from a log line."""
    if token:
        text = text.replace(token, "<token>")
        secret = token.partition(":")[2]
        if secret:
            text = text.replace(secret, "<token>")
    return _TOKEN_ANYWHERE.sub("<token>", text)


class RedactingFilter(logging.Filter):
    """Redact tokens from every record; turn Telegram API exceptions (and PTB's own) into one line.

    Attached to handlers, so it also covers PTB's and httpx's own log records.
    """

    def __init__(self, token: str | None = None):
        super().__init__()
        self._token = token
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = redact(record.getMessage(), self._token)
        except (TypeError, ValueError):  # a record whose args do not fit its format
            message = redact(f"{record.msg} {record.args!r}", self._token)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            # PTB logs e.g. Telegram's HTML 502 page (JSONDecodeError) with a traceback of its own
            # internals; the error reaches our handlers as a NetworkError anyway: one line is enough
            if isinstance(exc, TelegramError) or record.name.startswith("telegram"):
                message = f"{message} [{type(exc).__name__}: {redact(str(exc), self._token)}]"
                record.exc_info = None
                record.exc_text = None
            else:
                record.exc_text = redact(self._formatter.formatException(record.exc_info), self._token)
        record.msg = message
        record.args = None
        return True


def configure_logging(token: str | None, level: int = logging.INFO) -> None:
    """Log to stderr (if nothing else is set up) with every handler redacting the token."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level)
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter(token))
    # httpx logs every request URL at INFO, and the URL contains the token
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


# --------------------------------------------------------------------------- helpers


class MessageRateLimiter(AIORateLimiter):
    """AIORateLimiter for messages only: the typing indicator goes straight out, never queued or retried.

    Why: the overall limit (Telegram's ~30 messages/s) would otherwise count one chat action per
    answer, halving the answers per second, and a 429 on a cosmetic call would halt every request.
    """

    UNLIMITED = frozenset({"sendChatAction"})

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        if endpoint in self.UNLIMITED:
            return await callback(*args, **kwargs)
        return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)


class UpdateBacklog:
    """How many fetched updates are not handled yet; polling waits while that reaches `limit`."""

    def __init__(self, limit: int):
        self.limit = max(1, limit)
        self.pending = 0
        self._room = asyncio.Event()
        self._room.set()

    async def room(self) -> int:
        """Wait until fewer than `limit` updates are pending; how many more may be fetched."""
        await self._room.wait()
        return self.limit - self.pending

    def fetched(self, count: int) -> None:
        self.pending += count
        if self.pending >= self.limit:
            self._room.clear()

    def done(self) -> None:
        self.pending = max(0, self.pending - 1)
        if self.pending < self.limit:
            self._room.set()


class BackpressureBot(ExtBot):
    """ExtBot whose getUpdates waits for room in the backlog and asks for at most that many updates.

    Why: PTB's poller queues a batch and immediately polls again, which confirms the batch to
    Telegram; under a burst, hundreds of questions would be confirmed (gone from Telegram) while
    still waiting for an answer. With this, at most `UpdateBacklog.limit` are; the rest stay
    unconfirmed on Telegram's side and a restarted bot gets them again.
    """

    __slots__ = ("_backlog",)

    def __init__(self, *args: Any, backlog: UpdateBacklog, **kwargs: Any):
        super().__init__(*args, **kwargs)
        object.__setattr__(self, "_backlog", backlog)  # PTB freezes its objects at the end of __init__

    async def get_updates(  # type: ignore[override]
        self,
        offset: int | None = None,
        limit: int | None = None,
        timeout: float | timedelta | None = None,
        allowed_updates: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> tuple[Update, ...]:
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout or 0)
        if seconds <= 0:  # the confirming call at shutdown (its updates are not handled): never wait
            return await super().get_updates(offset, limit, timeout, allowed_updates, **kwargs)
        room = await self._backlog.room()
        updates = await super().get_updates(offset, min(limit or 100, room), timeout, allowed_updates, **kwargs)
        self._backlog.fetched(len(updates))
        return updates


class BacklogUpdateProcessor(SimpleUpdateProcessor):
    """PTB's concurrent update processing, telling the backlog when each update is handled."""

    def __init__(self, max_concurrent_updates: int, backlog: UpdateBacklog):
        super().__init__(max_concurrent_updates)
        self.backlog = backlog

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        try:
            await coroutine
        finally:
            if isinstance(update, Update):
                self.backlog.done()


class ChatRateLimiter:
    """At most `limit` questions per `window` seconds per chat (sliding window); limit 0: no limit."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic):
        self._limit = limit
        self._window = window
        self._clock = clock
        self._seen: dict[int, deque[float]] = {}

    def check(self, key: int) -> float:
        """0 if the question may go ahead (and count it); else seconds until it may."""
        if self._limit <= 0:
            return 0.0
        now = self._clock()
        times = self._seen.setdefault(key, deque())
        while times and now - times[0] >= self._window:
            times.popleft()
        if len(times) >= self._limit:
            return self._window - (now - times[0])
        times.append(now)
        if len(self._seen) > 10_000:  # forget idle chats
            self._seen = {k: v for k, v in self._seen.items() if v and now - v[-1] < self._window}
        return 0.0


@dataclass(frozen=True)
class Target:
    """Where a reply goes: the chat, its forum topic, and (in groups) the message answered."""

    chat_id: int
    chat_kind: str
    thread_id: int | None = None
    reply_to: int | None = None

    @classmethod
    def of(cls, message: Message, quote: bool) -> Target:
        thread = message.message_thread_id if message.is_topic_message else None
        return cls(message.chat_id, message.chat.type, thread, message.message_id if quote else None)


def _is_parse_error(exc: BadRequest) -> bool:
    return "can't parse entities" in str(exc).lower() or "can't find end" in str(exc).lower()


def _is_not_modified(exc: BadRequest) -> bool:
    return "message is not modified" in str(exc).lower()


_NOT_SENT_CAUSES = ("ConnectError", "ConnectTimeout", "PoolTimeout")


def _surely_not_delivered(exc: NetworkError) -> bool:
    """True when retrying cannot duplicate a message: Telegram answered 5xx, or the request never left.

    A read/write timeout is ambiguous (Telegram may have acted on it) and is not retried. A dropped
    connection without a response is ambiguous too, but it is what a stale keep-alive connection
    looks like (the request never arrived), which is far more common: it is retried.
    """
    if isinstance(exc, BadRequest):
        return False
    cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else ""
    if isinstance(exc, TimedOut):
        return cause in _NOT_SENT_CAUSES
    return True


_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean_question(text: str) -> str:
    """The question as the bot asks and echoes it: whitespace runs (newlines too) as one space,
    other control characters and lone surrogates dropped.

    Why: a message typed on several lines is one question and is logged and echoed as one line, and
    the echo in the reply must not carry characters Telegram or the question log cannot take (a lone
    surrogate cannot even be encoded as UTF-8).
    """
    if not text.isascii():
        text = text.encode("utf-8", "surrogatepass").decode("utf-8", "ignore")  # drops lone surrogates
    return " ".join(_CONTROL_CHARS.sub("", text).split())


def _query_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def _strip_mention(text: str, username: str) -> str:
    return re.sub(rf"@{re.escape(username)}\b", " ", text, flags=re.IGNORECASE).strip()


# --------------------------------------------------------------------------- the bot


class ReportBot:
    """Handlers for one Application; holds the retriever, the log and per-chat state."""

    def __init__(self, retriever: RetrieverAPI, log: QuestionLog, options: BotOptions | None = None):
        self.retriever = retriever
        self.log = log
        self.options = options or BotOptions()
        self._reports: dict[str, ReportMeta] = {tm.report_key(m.report_id): m for m in retriever.reports}
        if len(self._reports) < len(retriever.reports):  # 32-bit keys: vanishingly rare, but say so
            _LOG.warning("two report ids share a button key; some section buttons will open the wrong report")
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        self._limiter = ChatRateLimiter(self.options.questions_per_window, self.options.rate_window_seconds)
        self._background: list[asyncio.Task] = []
        self._failed_fingerprint: tuple | None = None  # a corpus state whose reload failed: not retried
        self.reloads = 0  # successful corpus reloads (for tests and the log)

    # ---------------------------------------------------------------- wiring

    def register(self, app: Application) -> None:
        private = filters.ChatType.PRIVATE
        non_text = (
            filters.Sticker.ALL
            | filters.PHOTO
            | filters.VOICE
            | filters.AUDIO
            | filters.VIDEO
            | filters.VIDEO_NOTE
            | filters.ANIMATION
            | filters.Document.ALL
            | filters.LOCATION
            | filters.CONTACT
        )
        app.add_handler(CommandHandler("start", self.on_start))
        app.add_handler(CommandHandler("help", self.on_help))
        app.add_handler(CommandHandler("sections", self.on_sections))
        app.add_handler(CommandHandler("about", self.on_about))
        app.add_handler(CommandHandler("ask", self.on_ask))
        app.add_handler(CommandHandler("reset", self.on_reset))
        app.add_handler(CommandHandler("report", self.on_report))
        app.add_handler(CommandHandler("lang", self.on_lang))
        app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND, self.on_text))
        app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & private & filters.COMMAND, self.on_unknown))
        app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & non_text, self.on_non_text))
        app.add_handler(CallbackQueryHandler(self.on_callback))
        app.add_handler(InlineQueryHandler(self.on_inline))
        app.add_error_handler(self.on_error)

    async def post_init(self, app: Application) -> None:
        """Register the command menu in Chinese (default and zh) and English; start the background jobs."""
        for language, commands in (("", COMMANDS["zh"]), ("zh", COMMANDS["zh"]), ("en", COMMANDS["en"])):
            try:
                await app.bot.set_my_commands([BotCommand(c, d) for c, d in commands], language_code=language or None)
            except TelegramError as exc:  # the menu is a nicety: never fail start-up over it
                _LOG.warning("could not set the %s command menu: %s", language or "default", exc)
        _LOG.info(
            "bot @%s ready: %d report(s), answering concurrently (%d)",
            app.bot.username,
            len(self._reports),
            self.options.concurrent_updates,
        )
        self.start_background()

    async def post_stop(self, app: Application) -> None:
        await self.stop_background()

    # ---------------------------------------------------------------- background jobs

    def start_background(self) -> None:
        """Start the retention and corpus-watch loops on the running event loop (idempotent)."""
        if self._background:
            return
        self._background.append(asyncio.create_task(self._retention_loop(), name="reportqa:retention"))
        if self.options.corpus_check_seconds > 0 and hasattr(self.retriever, "corpus_changed"):
            self._background.append(asyncio.create_task(self._corpus_loop(), name="reportqa:corpus-watch"))

    async def stop_background(self) -> None:
        tasks, self._background = self._background, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _retention_loop(self) -> None:
        """Hourly: blank expired conversation memory; daily: delete questions past retention."""
        hours = 0
        while True:
            if hours % 24 == 0:
                await self.purge_old_questions()
            await self.expire_conversations()
            hours += 1
            await asyncio.sleep(3600)

    async def expire_conversations(self) -> int:
        """Forget the turns of chats idle past REPORTQA_CONVERSATION_MINUTES; errors logged, not raised."""
        try:
            return await asyncio.to_thread(self.log.expire_conversations, self.options.conversation_minutes)
        except ReportQAError as exc:
            _LOG.error("conversation expiry failed: %s", exc)
            return 0

    async def purge_old_questions(self) -> int:
        """Delete questions older than the retention period; errors are logged, never raised."""
        days = self.options.log_retention_days
        if days <= 0:  # 0: keep questions forever
            return 0
        try:
            removed = await asyncio.to_thread(self.log.purge_older_than, days)
        except ReportQAError as exc:
            _LOG.error("question log retention failed: %s", exc)
            return 0
        if removed:
            _LOG.info("question log: deleted %d question(s) older than %d days", removed, days)
        return removed

    async def _corpus_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.corpus_check_seconds)
            try:
                await self.reload_if_corpus_changed()
            except Exception as exc:  # never let the watcher die: the next check tries again
                _LOG.error("corpus check failed: %s", redact(repr(exc)))

    async def reload_if_corpus_changed(self) -> bool:
        """If the corpus on disk changed, build a new retriever in a thread and swap it in.

        The old retriever answers until the new one is ready (warmed up with one question); the
        swap is one assignment on the event loop, so every question sees one or the other. A failed
        rebuild is logged once and the old retriever kept; the same corpus state is not retried.
        """
        from retrieval.corpus import corpus_fingerprint

        old: Any = self.retriever  # a `Retriever`: `settings`, `corpus_changed()`, `reopened()`
        if not hasattr(old, "corpus_changed") or not await asyncio.to_thread(old.corpus_changed):
            return False
        fingerprint = await asyncio.to_thread(corpus_fingerprint, old.settings.corpus_dirs)
        if fingerprint == self._failed_fingerprint:
            return False
        started = time.perf_counter()
        _LOG.info("corpus changed on disk: rebuilding; the current reports keep answering")

        def build() -> RetrieverAPI:
            new = old.reopened()
            new.ask(self.options.examples[0], top_k=1)  # pay the lazy first-question cost here
            return new

        try:
            new = await asyncio.to_thread(build)
        except Exception as exc:  # ReportQAError or a bug: either way keep serving the old corpus
            self._failed_fingerprint = fingerprint
            detail = str(exc) if isinstance(exc, ReportQAError) else f"{type(exc).__name__}: {redact(str(exc))}"
            _LOG.error("corpus reload failed, still serving the previous %d report(s): %s", len(self._reports), detail)
            return False
        reports = {tm.report_key(m.report_id): m for m in new.reports}
        self.retriever, self._reports = new, reports  # the swap: no await in between
        self._failed_fingerprint = None
        self.reloads += 1
        _LOG.info("corpus reloaded in %.1fs: now %d report(s)", time.perf_counter() - started, len(reports))
        return True

    # ---------------------------------------------------------------- sending

    async def _with_retry(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """Retry (with doubling back-off) failures that surely did not deliver; never a read timeout."""
        delay = self.options.send_retry_delay
        for attempt in range(self.options.send_retries + 1):
            try:
                return await call()
            except NetworkError as exc:
                if attempt == self.options.send_retries or not _surely_not_delivered(exc):
                    raise
                _LOG.warning(
                    "Telegram API call failed (%s); retry %d of %d in %.1fs",
                    redact(str(exc)),
                    attempt + 1,
                    self.options.send_retries,
                    delay,
                )
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    async def send_html(
        self, bot: Any, target: Target, text: str, markup: InlineKeyboardMarkup | None = None
    ) -> Message:
        """Send HTML; if Telegram cannot parse it, send the same text without markup."""
        kwargs: dict[str, Any] = {
            "chat_id": target.chat_id,
            "reply_markup": markup,
            "message_thread_id": target.thread_id,
            "link_preview_options": LinkPreviewOptions(is_disabled=True),
        }
        if target.reply_to is not None:
            kwargs["reply_parameters"] = ReplyParameters(target.reply_to, allow_sending_without_reply=True)
        try:
            return await self._with_retry(lambda: bot.send_message(text=text, parse_mode=ParseMode.HTML, **kwargs))
        except BadRequest as exc:
            if not _is_parse_error(exc):
                raise
            _LOG.warning("Telegram rejected our HTML (%s); resending as plain text", exc)
            return await self._with_retry(lambda: bot.send_message(text=tm.html_to_plain(text), **kwargs))

    async def edit_html(self, message: Message, text: str, markup: InlineKeyboardMarkup | None) -> None:
        """Edit a message in place, with the same plain-text fallback; "not modified" is fine."""
        try:
            try:
                await self._with_retry(
                    lambda: message.edit_text(
                        text,
                        parse_mode=ParseMode.HTML,
                        reply_markup=markup,
                        link_preview_options=LinkPreviewOptions(is_disabled=True),
                    )
                )
            except BadRequest as exc:
                if not _is_parse_error(exc):
                    raise
                _LOG.warning("Telegram rejected our HTML (%s); editing as plain text", exc)
                await self._with_retry(lambda: message.edit_text(tm.html_to_plain(text), reply_markup=markup))
        except BadRequest as exc:
            if not _is_not_modified(exc):
                raise

    async def send_parts(self, bot: Any, target: Target, parts: Sequence[str]) -> None:
        for part in parts:
            await self.send_html(bot, target, part)

    @contextlib.asynccontextmanager
    async def typing(self, bot: Any, target: Target) -> AsyncIterator[None]:
        """Show "typing…" while the block runs (repeated: Telegram clears it after ~5 s).

        The first indicator is awaited before the block's result is sent, so it is never
        cancelled half-way by a fast answer."""
        first_sent = asyncio.Event()

        async def keep_typing() -> None:
            while True:
                try:
                    await bot.send_chat_action(target.chat_id, ChatAction.TYPING, message_thread_id=target.thread_id)
                except TelegramError as exc:
                    _LOG.debug("typing indicator failed: %s", exc)
                first_sent.set()
                await asyncio.sleep(self.options.typing_interval)

        task = asyncio.create_task(keep_typing())
        try:
            yield
        finally:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(first_sent.wait(), timeout=min(3.0, self.options.request_timeout))
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _lock(self, chat_id: int) -> asyncio.Lock:
        lock = self._locks.get(chat_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[chat_id] = lock
        return lock

    # ---------------------------------------------------------------- answering

    def _page(
        self, answer: Answer, row: int, page: int, vote: int | None, scope: str | None = None
    ) -> tuple[str, InlineKeyboardMarkup]:
        size = self.options.page_size
        shown = replace(answer, hits=answer.hits[:size])
        if not answer.answered and page == 0:
            text = tm.render_not_covered(shown, scope)
            markup = tm.not_covered_keyboard(shown.hits)
            rows = [list(r) for r in markup.inline_keyboard] if markup else []
            if answer.other_years:
                rows.append(tm.year_row(row, answer.other_years, lang=answer.lang))
            return text, InlineKeyboardMarkup([*rows, tm.vote_row(row, vote, answer.lang)])
        top = shown.hits[0] if shown.hits else None
        has_more = len(answer.hits) > size
        keyboard = tm.answer_keyboard(row, page, top, has_more, vote, answer.other_years, answer.lang)
        return tm.render_answer(shown, page, size, scope), keyboard

    def _ask(self, question: str, year: int | None, **kwargs: Any) -> Answer:
        """The retriever's answer; `year` only when one was asked for (stand-in retrievers lack it)."""
        if year is None:
            return self.retriever.ask(question, **kwargs)
        return self.retriever.ask(question, year=year, **kwargs)

    def _converse(self, target: Target, question: str, year: int | None, fresh: bool) -> tuple[Answer, dict]:
        """Answer `question` as the next message of the chat's conversation (stored in the log):
        a follow-up is understood from the remembered turns, the chat's /report scope applies.
        Returns the answer and the scope used. Runs in a worker thread."""
        turns, scope = self.log.conversation(target.chat_id, target.thread_id, self.options.conversation_minutes)
        kwargs: dict[str, Any] = {"top_k": self.options.page_size + 1}
        if scope.get("report"):
            kwargs["reports"] = [scope["report"]]
        if scope.get("region"):
            kwargs["region"] = scope["region"]
        converse = getattr(self.retriever, "converse", None)
        if converse is None:  # a retriever without conversations: every message stands alone
            return self._ask(question, year, **kwargs), scope
        history = [] if fresh else [Turn.from_dict(t) for t in turns]
        answer, turn = converse(question, history, year=year, **kwargs)
        if scope.get("lang") in ("en", "zh"):  # /lang: the chat's choice over the question's script
            answer = replace(answer, lang=scope["lang"])
        if not answer.ambiguous or kwargs.get("region") or kwargs.get("reports"):
            kept = remember([Turn.from_dict(t) for t in turns] if fresh else history, turn)
            self.log.save_conversation(target.chat_id, target.thread_id, turns=[t.to_dict() for t in kept])
        return answer, scope

    def _scope_label(self, scope: dict) -> str | None:
        if scope.get("report"):
            meta = next((m for m in self.retriever.reports if m.report_id == scope["report"]), None)
            return f"《{meta.title}》" if meta else scope["report"]
        return scope.get("region")

    async def answer_question(
        self, bot: Any, target: Target, question: str, year: int | None = None, fresh: bool = False,
        asked: str | None = None,
    ) -> None:
        """The whole question flow; always exactly one reply (a long timeline: its parts), in order.

        fresh: the message is a standalone question already (an answered ask-back), not a follow-up;
        asked: what the user typed, when `question` is its rewrite (shown with 理解为).
        """
        question = clean_question(question)
        limit = self.options.max_question_chars
        refusal = None
        if not question:
            refusal = tm.EMPTY_QUESTION.format(example=self.options.examples[0])
        elif len(question) > limit:
            refusal = tm.TOO_LONG.format(length=len(question), limit=limit)
        elif wait := self._limiter.check(target.chat_id):
            refusal = tm.RATE_LIMITED.format(seconds=max(1, round(wait)))
        async with self._lock(target.chat_id):
            if refusal is not None:
                await self.send_html(bot, target, tm.escape(refusal))
                return
            started = time.perf_counter()
            try:
                async with self.typing(bot, target):
                    answer, scope = await asyncio.to_thread(self._converse, target, question, year, fresh)
            except ReportQAError as exc:
                await self.send_html(bot, target, tm.escape(tm.UNUSABLE_QUESTION.format(detail=exc)))
                return
            except Exception:
                await self.send_html(bot, target, tm.escape(tm.FAILED))
                raise
            if asked is not None:
                answer = replace(answer, question=asked, understood_as=answer.understood_as or question)
            first_page = replace(
                answer, question=answer.question or question, hits=answer.hits[: self.options.page_size]
            )
            row = await asyncio.to_thread(self.log.record, target.chat_id, target.chat_kind, first_page, year)
            label = self._scope_label(scope)
            if answer.ambiguous and not label:
                await self.send_html(bot, target, *tm.ask_back_view(first_page, row))
                _LOG.info("question #%d: asked back (%d regions)", row, len(answer.ambiguous))
                return
            text, markup = self._page(answer, row, 0, None, label)
            if answer.answered and answer.timeline:
                parts = tm.render_timeline_parts(first_page)
                for part in parts[:-1]:
                    await self.send_html(bot, target, part)
                await self.send_html(bot, target, parts[-1], markup)
            else:
                await self.send_html(bot, target, text, markup)
            _LOG.info(
                "question #%d answered=%s hits=%d in %.2fs",
                row,
                answer.answered,
                len(first_page.hits),
                time.perf_counter() - started,
            )

    async def reply(self, bot: Any, target: Target, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
        """A command's reply, queued behind any answer still being prepared for this chat."""
        async with self._lock(target.chat_id):
            await self.send_html(bot, target, text, markup)

    # ---------------------------------------------------------------- commands

    async def on_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        target = Target.of(message, quote=False)
        payload = context.args[0] if context.args else ""
        deep = _DEEP_LINK_SECTION.fullmatch(payload)
        if deep and self._reports:
            meta = self.retriever.reports[0]
            section_id = deep.group(1).replace("_", ".")
            try:
                section = await asyncio.to_thread(self.retriever.section, meta.report_id, section_id)
            except InputError:
                await self.reply(context.bot, target, tm.escape(tm.SECTION_MISSING))
                return
            async with self._lock(target.chat_id):
                await self.send_parts(context.bot, target, tm.render_section_parts(meta, section))
            return
        lang = await self._command_lang(update, target)
        await self.reply(context.bot, target, tm.start_text(lang), tm.start_keyboard(self.options.examples))

    async def on_help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        target = Target.of(update.effective_message, quote=False)
        lang = await self._command_lang(update, target)
        await self.reply(
            context.bot, target, tm.help_text(self.options.max_question_chars, context.bot.username, lang)
        )

    async def _command_lang(self, update: Update, target: Target) -> str:
        """The language of a command's reply: the chat's /lang choice, else the user's Telegram language."""
        _, scope = await asyncio.to_thread(self.log.conversation, target.chat_id, target.thread_id)
        if scope.get("lang") in ("en", "zh"):
            return scope["lang"]
        user = update.effective_user
        code = (getattr(user, "language_code", None) or "").lower()
        return "en" if code.startswith("en") else "zh"

    async def on_about(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        target = Target.of(update.effective_message, quote=False)
        async with self._lock(target.chat_id):
            await self.send_parts(context.bot, target, tm.about_parts(self.retriever.reports))

    async def on_sections(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        target = Target.of(update.effective_message, quote=False)
        metas = self.retriever.reports
        if len(metas) == 1:
            report = await asyncio.to_thread(self.retriever.report, metas[0].report_id)
            text, markup = tm.browse_view(metas[0], report.sections, None, multi_report=False)
        else:
            text, markup = tm.reports_view(metas, 0)
        await self.reply(context.bot, target, text, markup)

    async def on_ask(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        entity = next((e for e in message.entities if e.type == MessageEntity.BOT_COMMAND and e.offset == 0), None)
        question = message.text[entity.length :] if entity else " ".join(context.args or [])
        quote = message.chat.type != ChatType.PRIVATE
        await self.answer_question(context.bot, Target.of(message, quote), question)

    async def on_reset(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        target = Target.of(update.effective_message, quote=False)
        await asyncio.to_thread(self.log.reset_conversation, target.chat_id, target.thread_id)
        await self.reply(context.bot, target, tm.escape(tm.RESET_DONE))

    async def on_lang(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/lang en|zh: the chat's reply language whatever the question's script; /lang auto: by question."""
        target = Target.of(update.effective_message, quote=False)
        choice = (context.args[0].lower() if context.args else "").strip()
        if choice not in ("en", "zh", "auto"):
            await self.reply(context.bot, target, tm.escape(tm.LANG_USAGE))
            return
        _, scope = await asyncio.to_thread(self.log.conversation, target.chat_id, target.thread_id)
        scope = {k: v for k, v in scope.items() if k != "lang"} | ({} if choice == "auto" else {"lang": choice})
        await asyncio.to_thread(self.log.save_conversation, target.chat_id, target.thread_id, None, scope)
        await self.reply(context.bot, target, tm.escape(tm.LANG_SET[choice]))

    async def on_report(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/report: buttons to limit the chat to a region or a report; /report all: everything again."""
        target = Target.of(update.effective_message, quote=False)
        if context.args and context.args[0].lower() in ("all", "全部", "*"):
            await self._set_scope(context.bot, target, {})
            return
        _, scope = await asyncio.to_thread(self.log.conversation, target.chat_id, target.thread_id)
        regions = getattr(self.retriever, "regions", [])
        text, markup = tm.scope_view(self.retriever.reports, regions, self._scope_label(scope))
        await self.reply(context.bot, target, text, markup)

    async def _set_scope(self, bot: Any, target: Target, scope: dict) -> None:
        _, old = await asyncio.to_thread(self.log.conversation, target.chat_id, target.thread_id)
        if old.get("lang"):  # the chat's language is a setting of its own, kept across /report
            scope = {**scope, "lang": old["lang"]}
        await asyncio.to_thread(self.log.save_conversation, target.chat_id, target.thread_id, [], scope)
        label = self._scope_label(scope)
        text = tm.SCOPE_SET.format(label=label) if label else tm.SCOPE_ALL
        await self.reply(bot, target, tm.escape(text))

    async def on_unknown(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        target = Target.of(update.effective_message, quote=False)
        await self.reply(
            context.bot,
            target,
            "不认识这个命令。" + tm.help_text(self.options.max_question_chars, context.bot.username),
        )

    # ---------------------------------------------------------------- messages

    def _addressed(self, message: Message, bot: Any) -> str | None:
        """In a group: the question if the bot was mentioned or replied to, else None."""
        username = bot.username or ""
        mentioned = any(
            entity.type == MessageEntity.MENTION and text.lower() == f"@{username}".lower()
            for entity, text in message.parse_entities([MessageEntity.MENTION]).items()
        )
        replied = message.reply_to_message is not None and (
            message.reply_to_message.from_user is not None and message.reply_to_message.from_user.id == bot.id
        )
        if not (mentioned or replied):
            return None
        return _strip_mention(message.text or "", username)

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message.chat.type == ChatType.PRIVATE:
            await self.answer_question(context.bot, Target.of(message, quote=False), message.text or "")
            return
        question = self._addressed(message, context.bot)
        if question is not None:
            await self.answer_question(context.bot, Target.of(message, quote=True), question)

    async def on_non_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        private = message.chat.type == ChatType.PRIVATE
        replied = (
            message.reply_to_message is not None
            and message.reply_to_message.from_user is not None
            and message.reply_to_message.from_user.id == context.bot.id
        )
        if private or replied:
            target = Target.of(message, quote=not private)
            await self.reply(context.bot, target, tm.not_text_reply(self.options.examples))

    # ---------------------------------------------------------------- buttons

    async def on_callback(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        action = tm.decode_callback(query.data)
        message = query.message if isinstance(query.message, Message) else None
        if action is None or message is None:
            await query.answer(tm.EXPIRED, show_alert=True)
            return
        target = Target.of(message, quote=False)
        match action:
            case tm.MorePage(row, page):
                await self._more(context.bot, query, message, row, page)
            case tm.Vote(row, helpful):
                logged = await asyncio.to_thread(self.log.vote, row, helpful)
                if logged is None:
                    await query.answer(tm.EXPIRED, show_alert=True)
                    return
                await query.answer(tm.t(tm.THANKS, tm.shown_lang(message.reply_markup)))
                markup = tm.with_vote_recorded(message.reply_markup, row, 1 if helpful else -1)
                try:
                    await self._with_retry(lambda: message.edit_reply_markup(markup))
                except BadRequest as exc:
                    if not _is_not_modified(exc):
                        raise
            case tm.FullSection(key, section_id):
                found = await self._find_section(key, section_id)
                if found is None:
                    await query.answer(tm.EXPIRED, show_alert=True)
                    return
                await query.answer()
                async with self._lock(target.chat_id):
                    await self.send_parts(context.bot, target, tm.render_section_parts(*found))
            case tm.Browse(key, section_id):
                await self._browse(context.bot, query, message, key, section_id)
            case tm.ReportsPage(page):
                await query.answer()
                await self.edit_html(message, *tm.reports_view(self.retriever.reports, page))
            case tm.Example(index) if index < len(self.options.examples):
                await query.answer()
                await self.answer_question(context.bot, target, self.options.examples[index])
            case tm.Noop():
                await query.answer("已记录")
            case tm.AskRegion(row, region):
                logged = await asyncio.to_thread(self.log.get, row)
                if logged is None:
                    await query.answer(tm.EXPIRED, show_alert=True)
                    return
                await query.answer(region)
                standalone = with_place(logged.understood_as or logged.question, region,
                                        getattr(self.retriever, "known_places", ()))
                await self.answer_question(context.bot, target, standalone, fresh=True, asked=logged.question)
            case tm.ScopeRegion(region):
                await query.answer(region)
                await self._set_scope(context.bot, target, {"region": region})
            case tm.ScopeReport(key) if key in self._reports:
                await query.answer()
                await self._set_scope(context.bot, target, {"report": self._reports[key].report_id})
            case tm.ScopeAll():
                await query.answer()
                await self._set_scope(context.bot, target, {})
            case tm.YearAsk(row, year):
                logged = await asyncio.to_thread(self.log.get, row)
                if logged is None:
                    await query.answer(tm.EXPIRED, show_alert=True)
                    return
                await query.answer(f"{year}年")
                await self.answer_question(context.bot, target, logged.understood_as or logged.question, year=year,
                                           fresh=True)
            case _:
                await query.answer(tm.EXPIRED, show_alert=True)

    async def _more(self, bot: Any, query: CallbackQuery, message: Message, row: int, page: int) -> None:
        logged = await asyncio.to_thread(self.log.get, row)
        if logged is None:
            await query.answer(tm.EXPIRED, show_alert=True)
            return
        size = self.options.page_size
        target = Target.of(message, quote=False)
        _, scope = await asyncio.to_thread(self.log.conversation, target.chat_id, target.thread_id)
        scoped = {k: v for k, v in (("reports", [scope["report"]] if scope.get("report") else None),
                                    ("region", scope.get("region"))) if v}
        async with self._lock(message.chat_id):
            try:
                answer = await asyncio.to_thread(
                    self._ask, logged.understood_as or logged.question, logged.year, top_k=size + 1,
                    offset=page * size, **scoped,
                )
            except ReportQAError as exc:
                await query.answer(str(exc), show_alert=True)
                return
            if not answer.hits:
                await query.answer(tm.NO_MORE)
                return
            await query.answer()
            answer = replace(answer, question=logged.question, answered=True, timeline=None,
                             understood_as=logged.understood_as or "")
            await self.edit_html(message, *self._page(answer, row, page, logged.vote, self._scope_label(scope)))

    async def _find_section(self, key: str, section_id: str) -> tuple[ReportMeta, Section] | None:
        meta = self._reports.get(key)
        if meta is None:
            return None
        try:
            section = await asyncio.to_thread(self.retriever.section, meta.report_id, section_id)
        except InputError:
            return None
        return meta, section

    async def _browse(self, bot: Any, query: CallbackQuery, message: Message, key: str, section_id: str) -> None:
        meta = self._reports.get(key)
        if meta is None:
            await query.answer(tm.EXPIRED, show_alert=True)
            return
        report = await asyncio.to_thread(self.retriever.report, meta.report_id)
        node = report.section(section_id) if section_id else None
        if section_id and node is None:
            await query.answer(tm.EXPIRED, show_alert=True)
            return
        await query.answer()
        if node is not None and not node.children:
            # a leaf: its text in place of the menu (first part), with a way back
            parts = tm.render_section_parts(meta, node)
            parent = section_id.rpartition(".")[0] if "." in section_id else ""
            back = InlineKeyboardMarkup(
                [[InlineKeyboardButton("⬅ 返回目录", callback_data=tm.encode_callback(tm.Browse(key, parent)))]]
            )
            async with self._lock(message.chat_id):
                await self.edit_html(message, parts[0], back)
                await self.send_parts(bot, Target.of(message, quote=False), parts[1:])
            return
        text, markup = tm.browse_view(meta, report.sections, node, multi_report=len(self._reports) > 1)
        await self.edit_html(message, text, markup)

    # ---------------------------------------------------------------- inline mode

    async def on_inline(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.inline_query
        text = " ".join(query.query.split())
        key = _query_key(text)
        if len(text) < 2:
            results = [tm.hint_article(key, self.options.examples)]
        else:
            try:
                answer = await asyncio.to_thread(
                    self.retriever.ask, text[: self.options.max_question_chars], top_k=tm.INLINE_RESULTS
                )
                results = tm.inline_articles(answer, key)
            except ReportQAError:
                results = [tm.no_results_article(text, key)]
        await query.answer(results, cache_time=300, is_personal=False)

    # ---------------------------------------------------------------- errors

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log one redacted line per failure; the bot keeps running."""
        err = context.error
        where = f"update {update.update_id}" if isinstance(update, Update) else "background task"
        if isinstance(err, TelegramError):
            _LOG.warning("%s: Telegram API error %s: %s", where, type(err).__name__, redact(str(err)))
        else:
            _LOG.error("%s failed: %s", where, redact(repr(err)), exc_info=err)


def _file_url(base_url: str) -> str:
    """PTB's base_file_url that belongs with a base_url (…/bot → …/file/bot)."""
    return base_url[: -len("/bot")] + "/file/bot" if base_url.endswith("/bot") else base_url.rstrip("/") + "/file/bot"


def build_application(
    config: BotConfig, retriever: RetrieverAPI, log: QuestionLog, options: BotOptions | None = None
) -> Application:
    """The PTB Application with all handlers; the caller runs it (run_polling, or start() in tests)."""
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
    app = builder.build()
    bot.register(app)
    app.bot_data["reportbot"] = bot
    return app


def run_bot(settings: Settings, env: Mapping[str, str] | None = None, options: BotOptions | None = None) -> int:
    """`reportqa telegram`: long polling until SIGTERM/SIGINT. Returns the process exit code.

    0 after a signal (updates already fetched are answered and confirmed first); 2 for a
    configuration problem (message on stderr, one line); 1 if Telegram cannot be reached at start.
    """
    try:
        config = config_from_env(env)
        options = options_from_env(env, options)
    except BotConfigError as exc:
        print(f"reportqa: error: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.token)
    os.environ.setdefault("PTB_TIMEDELTA", "1")  # PTB 22 opt-in (RetryAfter as timedelta); no deprecation noise

    stopping = False

    def stop_while_loading(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop_while_loading) for sig in (signal.SIGTERM, signal.SIGINT)}
    log: QuestionLog | None = None
    try:
        try:
            _LOG.info("loading reports, model and index …")
            started = time.perf_counter()
            retriever = Retriever.open(settings)
            # parts of the model load lazily on the first question: pay that now, not a citizen
            retriever.ask(options.examples[0], top_k=1)
            _LOG.info("retrieval ready in %.1fs", time.perf_counter() - started)
            log = QuestionLog.open(settings.home)
            app = build_application(config, retriever, log, options)
        except ReportQAError as exc:
            print(f"reportqa: error: {exc}", file=sys.stderr)
            return 2
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
        except InvalidToken:  # PTB's message quotes the token: never print it
            print(
                "reportqa: error: Telegram rejected TELEGRAM_BOT_TOKEN (unauthorized); check it with @BotFather",
                file=sys.stderr,
            )
            return 2
        except TelegramError as exc:
            print(
                f"reportqa: error: cannot reach the Telegram Bot API ({type(exc).__name__}: "
                f"{redact(str(exc), config.token)}); check TELEGRAM_API_BASE_URL / TELEGRAM_PROXY",
                file=sys.stderr,
            )
            return 1
        _LOG.info("bot stopped")
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if log is not None:
            log.close()
