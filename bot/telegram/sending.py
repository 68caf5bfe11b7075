"""How the bot's replies go out: HTML with a plain-text resend when Telegram rejects the markup,
retries (with back-off) only of failures that surely did not deliver, the "typing…" indicator.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardMarkup, LinkPreviewOptions, Message, ReplyParameters
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, NetworkError, TelegramError, TimedOut

from bot.telegram import messages as tm
from bot.telegram.metrics import BotMetrics
from bot.telegram.redaction import redact
from bot.telegram.settings import BotOptions

_LOG = logging.getLogger("reportqa.telegram")


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


def is_not_modified(exc: BadRequest) -> bool:
    return "message is not modified" in str(exc).lower()


_NOT_SENT_CAUSES = ("ConnectError", "ConnectTimeout", "PoolTimeout")


def surely_not_delivered(exc: NetworkError) -> bool:
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


class Sending:
    """Sending for `ReportBot` (a mixin): needs `self.options` (BotOptions) and `self.metrics`."""

    options: BotOptions
    metrics: BotMetrics

    async def _with_retry(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """Retry (with doubling back-off) failures that surely did not deliver; never a read timeout."""
        delay = self.options.send_retry_delay
        for attempt in range(self.options.send_retries + 1):
            try:
                return await call()
            except NetworkError as exc:
                self.metrics.api_error(exc)
                if attempt == self.options.send_retries or not surely_not_delivered(exc):
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
            if not is_not_modified(exc):
                raise

    async def send_parts(self, bot: Any, target: Target, parts: Sequence[str]) -> None:
        for part in parts:
            await self.send_html(bot, target, part)

    @contextlib.asynccontextmanager
    async def typing(self, bot: Any, target: Target) -> AsyncIterator[None]:
        """Show "typing…" while the block runs, once it has run `typing_delay` seconds (repeated:
        Telegram clears it after ~5 s).

        Why the delay: a fast answer arrives before an indicator would be seen, and the extra API call
        per question cost a quarter of a serving process's event-loop time under load. An indicator
        already on its way is awaited before the block's result is sent, so it is never cancelled
        half-way and never arrives after the answer.
        """
        started = asyncio.Event()
        first_sent = asyncio.Event()

        async def keep_typing() -> None:
            if self.options.typing_delay > 0:
                await asyncio.sleep(self.options.typing_delay)
            while True:
                started.set()
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
            if started.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(first_sent.wait(), timeout=min(3.0, self.options.request_timeout))
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
