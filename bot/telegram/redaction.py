"""Logging that never shows the bot token: every record is redacted, Telegram errors become one line."""

from __future__ import annotations

import json
import logging
import re
import sys

from telegram.error import TelegramError

_TOKEN_ANYWHERE = re.compile(r"[0-9]{3,20}:[A-Za-z0-9_-]{30,80}")

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


_JSON_FIELDS = ("update_id", "chat", "outcome", "latency_ms", "question_row")  # passed as `extra=`


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (redacted by the filter first) and the
    structured fields a record carries (hashed chat, never a raw id)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: getattr(record, k) for k in _JSON_FIELDS if hasattr(record, k)})
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(token: str | None, level: int = logging.INFO, *, json_logs: bool = False) -> None:
    """Log to stderr (if nothing else is set up) with every handler redacting the token."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            JsonFormatter() if json_logs else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        root.addHandler(handler)
    root.setLevel(level)
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter(token))
    # httpx logs every request URL at INFO, and the URL contains the token
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
