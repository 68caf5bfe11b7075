"""The bot's behaviour, whatever delivers the updates (long polling or a webhook): commands, questions,
buttons, inline queries. How replies are sent: `bot.telegram.sending`; background jobs (corpus
reload, retention): `bot.telegram.upkeep`.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
import re
import time
import weakref
from dataclasses import replace
from typing import Any

from telegram import (
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    Update,
)
from telegram.constants import ChatType
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.question_log import QuestionLog
from bot.telegram import messages as tm
from bot.telegram.flow import ChatRateLimiter, SharedChatRateLimiter
from bot.telegram.metrics import BotMetrics
from bot.telegram.redaction import redact
from bot.telegram.sending import Sending, Target, is_not_modified, surely_not_delivered
from bot.telegram.settings import BotOptions, RetrieverAPI
from bot.telegram.upkeep import Upkeep
from retrieval.answer import Answer
from retrieval.document import ReportMeta, Section
from retrieval.errors import InputError, ReportQAError
from retrieval.followup import Turn, remember, with_place

_LOG = logging.getLogger("reportqa.telegram")
_UPDATE_ID: contextvars.ContextVar[int | None] = contextvars.ContextVar("update_id", default=None)
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



class ReportBot(Sending, Upkeep):
    """Handlers for one Application; holds the retriever, the log and per-chat state (sending:
    `bot.telegram.sending`; background jobs: `bot.telegram.upkeep`)."""

    def __init__(self, retriever: RetrieverAPI, log: QuestionLog, options: BotOptions | None = None):
        self.retriever = retriever
        self.log = log
        self.options = options or BotOptions()
        self._reports: dict[str, ReportMeta] = {tm.report_key(m.report_id): m for m in retriever.reports}
        if len(self._reports) < len(retriever.reports):  # 32-bit keys: vanishingly rare, but say so
            _LOG.warning("two report ids share a button key; some section buttons will open the wrong report")
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        self._limiter: ChatRateLimiter | SharedChatRateLimiter = ChatRateLimiter(
            self.options.questions_per_window, self.options.rate_window_seconds
        )
        self._background: list[asyncio.Task] = []
        self._failed_fingerprint: tuple | None = None  # a corpus state whose reload failed: not retried
        self.reloads = 0  # successful corpus reloads (for tests and the log)
        self.metrics = BotMetrics()
        # Updates whose reply Telegram surely did not take (flood control or a failure before it
        # arrived, after our own retries): the webhook endpoint has Telegram deliver them again.
        self.unsent: set[int] = set()

    def share_rate_limits(self) -> None:
        """Count each chat's questions in the store, not in this process (webhook replicas: a chat's
        questions may reach any of them)."""
        self._limiter = SharedChatRateLimiter(self.log, self.options.questions_per_window,
                                              self.options.rate_window_seconds)

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
        app.add_handler(TypeHandler(Update, self._note_update), group=-1)  # runs first, for every update
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

    async def _note_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Remember the update being handled, for the structured log lines of this task."""
        _UPDATE_ID.set(update.update_id)

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
        arrived = time.perf_counter()
        question = clean_question(question)
        limit = self.options.max_question_chars
        refusal = None
        if not question:
            refusal = tm.EMPTY_QUESTION.format(example=self.options.examples[0])
        elif len(question) > limit:
            refusal = tm.TOO_LONG.format(length=len(question), limit=limit)
        elif wait := await self._limiter.wait_seconds(target.chat_id):
            refusal = tm.RATE_LIMITED.format(seconds=max(1, round(wait)))
        async with self._lock(target.chat_id):
            if refusal is not None:
                await self.send_html(bot, target, tm.escape(refusal))
                self.metrics.outcome("refused")
                return
            started = time.perf_counter()
            try:
                async with self.typing(bot, target):
                    answer, scope = await asyncio.to_thread(self._converse, target, question, year, fresh)
                    self.metrics.retrieval_seconds.observe(time.perf_counter() - started)
            except ReportQAError as exc:
                await self.send_html(bot, target, tm.escape(tm.UNUSABLE_QUESTION.format(detail=exc)))
                self.metrics.outcome("refused")
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
                self._answered("asked_back", arrived)
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
            outcome = "answered" if answer.answered else "not_covered"
            self._answered(outcome, arrived)
            _LOG.info(
                "question #%d answered=%s hits=%d in %.2fs",
                row,
                answer.answered,
                len(first_page.hits),
                time.perf_counter() - started,
                extra={"update_id": _UPDATE_ID.get(), "chat": self.log.chat_hash(target.chat_id)[:16],
                       "outcome": outcome, "question_row": row,
                       "latency_ms": round((time.perf_counter() - arrived) * 1000, 1)},
            )

    def _answered(self, outcome: str, arrived: float) -> None:
        self.metrics.outcome(outcome)
        self.metrics.answer_seconds.observe(time.perf_counter() - arrived)

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
                    if not is_not_modified(exc):
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
        if isinstance(update, Update):
            self.metrics.outcome("error")
            if isinstance(err, RetryAfter) or (isinstance(err, NetworkError) and surely_not_delivered(err)):
                self.unsent.add(update.update_id)  # the webhook asks Telegram to deliver it again
        if isinstance(err, TelegramError):
            self.metrics.api_error(err)
            _LOG.warning("%s: Telegram API error %s: %s", where, type(err).__name__, redact(str(err)))
        else:
            _LOG.error("%s failed: %s", where, redact(repr(err)), exc_info=err)
