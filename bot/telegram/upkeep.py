"""The bot's background jobs: hourly and daily retention in the store, and the corpus watch that
swaps in a rebuilt retriever while the old one keeps answering.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from bot.question_log import QuestionLog
from bot.telegram import messages as tm
from bot.telegram.redaction import redact
from bot.telegram.settings import BotOptions, RetrieverAPI
from retrieval.document import ReportMeta
from retrieval.errors import ReportQAError

_LOG = logging.getLogger("reportqa.telegram")


class Upkeep:
    """Background jobs for `ReportBot` (a mixin): needs `self.retriever`, `self.log`, `self.options`,
    `self._reports`, `self._background`, `self._failed_fingerprint` and `self.reloads`."""

    retriever: RetrieverAPI
    log: QuestionLog
    options: BotOptions
    _reports: dict[str, ReportMeta]
    _background: list[asyncio.Task]
    _failed_fingerprint: tuple | None
    reloads: int

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
        """Hourly: blank expired conversation memory, forget webhook update claims older than a day;
        daily: delete questions past retention."""
        hours = 0
        while True:
            if hours % 24 == 0:
                await self.purge_old_questions()
            await self.expire_conversations()
            await self.forget_old_updates()
            hours += 1
            await asyncio.sleep(3600)

    async def forget_old_updates(self) -> int:
        """Update claims past Telegram's re-delivery horizon (a day) are of no use: deleted."""
        try:
            return await asyncio.to_thread(self.log.forget_old_updates)
        except ReportQAError as exc:
            _LOG.error("forgetting old update claims failed: %s", exc)
            return 0

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
