"""How fast the bot takes and sends: Telegram's message budget, the backlog of fetched updates
(backpressure for long polling), per-chat question limits.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from telegram import Update
from telegram.ext import AIORateLimiter, ExtBot, SimpleUpdateProcessor

from bot.question_log import QuestionLog, QuestionLogError


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

    async def wait_seconds(self, key: int) -> float:
        return self.check(key)

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


class SharedChatRateLimiter:
    """The same limit counted from the questions the store has recorded for the chat in the window,
    so that replicas share it (a chat's updates come one at a time, so none is in flight uncounted)."""

    def __init__(self, log: QuestionLog, limit: int, window: float):
        self._log = log
        self._limit = limit
        self._window = window

    async def wait_seconds(self, chat_id: int) -> float:
        """0 if the question may go ahead; else seconds until it may. A store that cannot be read
        does not block questions (the answer is what matters; the limit is a courtesy)."""
        if self._limit <= 0:
            return 0.0
        try:
            count, oldest = await asyncio.to_thread(self._log.questions_since, chat_id, self._window)
        except QuestionLogError:
            return 0.0
        if count < self._limit or oldest is None:
            return 0.0
        age = (datetime.now(UTC) - datetime.fromisoformat(oldest)).total_seconds()
        return max(1.0, self._window - age)
