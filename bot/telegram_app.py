"""The Telegram bot for citizens: python-telegram-bot (v22) wiring over the retrieval API.

    TELEGRAM_BOT_TOKEN=… reportqa telegram        # or: run_bot(Settings())

A thin shell: every answer comes from `Retriever.ask`, every text from `bot.telegram_messages`,
every record from `bot.question_log`. What this module adds is the Telegram behaviour:
- the model and index load once (`Retriever.open`), retrieval runs in a worker thread, and
  updates are processed concurrently, with a per-chat lock so one chat's answers stay in order;
- one reply per question, HTML with a plain-text resend if Telegram rejects the markup, one
  retry when the API fails with a 5xx/network error (not after a timeout: the message may
  already be delivered, and a duplicate answer is worse than a late one);
- 429s are retried by `AIORateLimiter`; no API error ends the bot (the error handler logs one
  redacted line); SIGTERM/SIGINT stop polling, finish the updates already fetched, confirm them
  to Telegram and exit 0;
- the token never reaches logs or messages: httpx's request log (whose URL holds the token) is
  silenced and every log record passes through `RedactingFilter`.
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
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
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
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from bot import telegram_messages as tm
from bot.question_log import QuestionLog
from retrieval.answer import Answer
from retrieval.config import Settings
from retrieval.document import Report, ReportMeta, Section
from retrieval.errors import InputError, ReportQAError
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
    ],
    "en": [
        ("start", "Start and see example questions"),
        ("help", "How to use this bot"),
        ("sections", "Browse the reports' sections"),
        ("about", "Which reports are loaded"),
        ("ask", "Ask a question (in groups)"),
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
    questions_per_window: int = 10  # per chat
    rate_window_seconds: float = 60.0
    max_question_chars: int = MAX_QUESTION_CHARS
    concurrent_updates: int = 16
    rate_limiter_retries: int = 2  # AIORateLimiter: 429s retried after retry_after
    request_timeout: float = 15.0  # connect/read/write for one API call
    poll_timeout: int = 30  # getUpdates long-polling seconds
    typing_interval: float = 4.5  # Telegram shows "typing…" for about 5 s
    send_retry_delay: float = 1.0
    examples: tuple[str, ...] = tm.EXAMPLE_QUESTIONS


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
    """Redact tokens from every record; turn Telegram API exceptions into one line.

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
            if isinstance(exc, TelegramError):
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


class ChatRateLimiter:
    """At most `limit` questions per `window` seconds per chat (sliding window)."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic):
        self._limit = limit
        self._window = window
        self._clock = clock
        self._seen: dict[int, deque[float]] = {}

    def check(self, key: int) -> float:
        """0 if the question may go ahead (and count it); else seconds until it may."""
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
        app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND, self.on_text))
        app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & private & filters.COMMAND, self.on_unknown))
        app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & non_text, self.on_non_text))
        app.add_handler(CallbackQueryHandler(self.on_callback))
        app.add_handler(InlineQueryHandler(self.on_inline))
        app.add_error_handler(self.on_error)

    async def post_init(self, app: Application) -> None:
        """Register the command menu in Chinese (default and zh) and English."""
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

    # ---------------------------------------------------------------- sending

    async def _with_retry(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """One retry after a 5xx or connection failure; never after a timeout (may be delivered)."""
        try:
            return await call()
        except (BadRequest, TimedOut):
            raise
        except NetworkError as exc:
            _LOG.warning("Telegram API call failed (%s); retrying once", redact(str(exc)))
            await asyncio.sleep(self.options.send_retry_delay)
            return await call()

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

    def _page(self, answer: Answer, row: int, page: int, vote: int | None) -> tuple[str, InlineKeyboardMarkup]:
        size = self.options.page_size
        shown = Answer(
            question=answer.question,
            answered=answer.answered,
            hits=answer.hits[:size],
            normalized_question=answer.normalized_question,
            mode=answer.mode,
        )
        if not answer.answered and page == 0:
            text = tm.render_not_covered(shown)
            markup = tm.not_covered_keyboard(shown.hits)
            rows = [list(r) for r in markup.inline_keyboard] if markup else []
            return text, InlineKeyboardMarkup([*rows, tm.vote_row(row, vote)])
        top = shown.hits[0] if shown.hits else None
        has_more = len(answer.hits) > size
        return tm.render_answer(shown, page, size), tm.answer_keyboard(row, page, top, has_more, vote)

    async def answer_question(self, bot: Any, target: Target, question: str) -> None:
        """The whole question flow; always exactly one reply message, in the order asked."""
        question = question.strip()
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
                    answer = await asyncio.to_thread(self.retriever.ask, question, top_k=self.options.page_size + 1)
            except ReportQAError as exc:
                await self.send_html(bot, target, tm.escape(tm.UNUSABLE_QUESTION.format(detail=exc)))
                return
            except Exception:
                await self.send_html(bot, target, tm.escape(tm.FAILED))
                raise
            first_page = Answer(
                question=answer.question or question,
                answered=answer.answered,
                hits=answer.hits[: self.options.page_size],
                normalized_question=answer.normalized_question,
                mode=answer.mode,
            )
            row = await asyncio.to_thread(self.log.record, target.chat_id, target.chat_kind, first_page)
            text, markup = self._page(answer, row, 0, None)
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
        await self.reply(context.bot, target, tm.start_text(), tm.start_keyboard(self.options.examples))

    async def on_help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        target = Target.of(update.effective_message, quote=False)
        await self.reply(context.bot, target, tm.help_text(self.options.max_question_chars, context.bot.username))

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
                await query.answer("感谢反馈！")
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
            case _:
                await query.answer(tm.EXPIRED, show_alert=True)

    async def _more(self, bot: Any, query: CallbackQuery, message: Message, row: int, page: int) -> None:
        logged = await asyncio.to_thread(self.log.get, row)
        if logged is None:
            await query.answer(tm.EXPIRED, show_alert=True)
            return
        size = self.options.page_size
        async with self._lock(message.chat_id):
            try:
                answer = await asyncio.to_thread(
                    self.retriever.ask, logged.question, top_k=size + 1, offset=page * size
                )
            except ReportQAError as exc:
                await query.answer(str(exc), show_alert=True)
                return
            if not answer.hits:
                await query.answer(tm.NO_MORE)
                return
            await query.answer()
            answer = Answer(
                question=logged.question,
                answered=True,
                hits=answer.hits,
                normalized_question=answer.normalized_question,
                mode=answer.mode,
            )
            await self.edit_html(message, *self._page(answer, row, page, logged.vote))

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
    timeout = options.request_timeout
    builder = (
        ApplicationBuilder()
        .token(config.token)
        .base_url(config.base_url)
        .base_file_url(_file_url(config.base_url))
        .rate_limiter(AIORateLimiter(max_retries=options.rate_limiter_retries))
        .concurrent_updates(options.concurrent_updates)
        .connect_timeout(timeout)
        .read_timeout(timeout)
        .write_timeout(timeout)
        .pool_timeout(timeout)
        .get_updates_connect_timeout(timeout)
        .get_updates_read_timeout(timeout)
        .get_updates_write_timeout(timeout)
        .get_updates_pool_timeout(timeout)
        .job_queue(None)
        .post_init(bot.post_init)
    )
    if config.proxy:
        builder = builder.proxy(config.proxy).get_updates_proxy(config.proxy)
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
    except BotConfigError as exc:
        print(f"reportqa: error: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.token)
    os.environ.setdefault("PTB_TIMEDELTA", "1")  # PTB 22 opt-in (RetryAfter as timedelta); no deprecation noise
    options = options or BotOptions()

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
