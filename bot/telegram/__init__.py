"""The Telegram bot for citizens: python-telegram-bot (v22) wiring over the retrieval API.

    TELEGRAM_BOT_TOKEN=… reportqa telegram        # or: run_bot(Settings())

A thin shell: every answer comes from `Retriever.ask`, every text from `bot.telegram.messages`,
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
