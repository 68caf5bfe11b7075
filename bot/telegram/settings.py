"""The bot's settings: the token and API address (BotConfig) and its behaviour knobs (BotOptions), from
the environment; errors name the variable, never the token's value.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from bot.question_log import DEFAULT_CONVERSATION_MINUTES, DEFAULT_RETENTION_DAYS
from bot.telegram import messages as tm
from retrieval.answer import Answer
from retrieval.document import Report, ReportMeta, Section
from retrieval.errors import ReportQAError
from retrieval.retriever import MAX_QUESTION_CHARS

DEFAULT_BASE_URL = "https://api.telegram.org/bot"
ALLOWED_UPDATES = ["message", "callback_query", "inline_query"]
# BotFather tokens: the bot's numeric id, a colon, a 35-character secret
_TOKEN_RE = re.compile(r"[0-9]{3,20}:[A-Za-z0-9_-]{30,80}")


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
    # "typing…" only for an answer not sent within this many seconds (Telegram: use it "only when a
    # response from the bot will take a noticeable amount of time"); 0: for every answer.
    typing_delay: float = 0.5
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
    "TELEGRAM_TYPING_DELAY_SECONDS": ("typing_delay", float, 0),
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
    replicas = _replicas(env)
    if replicas > 1:  # Telegram's budget is per token: each replica sends its share
        rate = changes.get("max_messages_per_second", options.max_messages_per_second)
        changes["max_messages_per_second"] = rate / replicas
    return replace(options, **changes)


def _replicas(env: Mapping[str, str]) -> int:
    raw = env.get("REPORTQA_REPLICAS", "").strip()
    if not raw:
        return 1
    if not raw.isdigit() or int(raw) < 1:
        raise BotConfigError(f"REPORTQA_REPLICAS must be a whole number ≥ 1, not {raw[:20]!r}")
    return int(raw)


_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what Telegram accepts as secret_token


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class WebhookConfig:
    """`reportqa telegram --webhook`: where updates arrive and the secret Telegram sends with each."""

    secret: str = field(repr=False)
    listen: Listen = Listen("127.0.0.1", 8080)
    path: str = "/telegram"
    # How long an update's claim holds without renewal (REPORTQA_WEBHOOK_LEASE_SECONDS): a process
    # that died is taken over this long after its last renewal; while answering it renews every third.
    lease_seconds: float = 15.0


def parse_listen(name: str, raw: str) -> Listen:
    """host:port (IPv6 in brackets) → Listen; BotConfigError names the variable."""
    host, sep, port = raw.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BotConfigError(f"{name} must be host:port such as 127.0.0.1:8080, not {raw[:60]!r}")
    return Listen(host, int(port))


def webhook_config_from_env(env: Mapping[str, str] | None = None) -> WebhookConfig:
    """Read TELEGRAM_WEBHOOK_SECRET (required), TELEGRAM_WEBHOOK_LISTEN, TELEGRAM_WEBHOOK_PATH."""
    env = os.environ if env is None else env
    secret = env.get("TELEGRAM_WEBHOOK_SECRET", "").strip()
    if not secret:
        raise BotConfigError(
            "TELEGRAM_WEBHOOK_SECRET is not set: webhook mode needs a secret (1-256 characters A-Z a-z 0-9 _ -), "
            "the same for `--set-webhook` and every replica"
        )
    if not _SECRET_RE.fullmatch(secret):
        raise BotConfigError(
            f"TELEGRAM_WEBHOOK_SECRET is malformed ({len(secret)} characters): Telegram accepts 1-256 of "
            "A-Z a-z 0-9 _ -"
        )
    listen = parse_listen("TELEGRAM_WEBHOOK_LISTEN", env.get("TELEGRAM_WEBHOOK_LISTEN", "") or "127.0.0.1:8080")
    path = env.get("TELEGRAM_WEBHOOK_PATH", "").strip() or "/telegram"
    if not re.fullmatch(r"/[A-Za-z0-9_./-]*", path) or path in ("/livez", "/readyz", "/metrics"):
        raise BotConfigError(f"TELEGRAM_WEBHOOK_PATH must be a URL path such as /telegram, not {path[:60]!r}")
    raw = env.get("REPORTQA_WEBHOOK_LEASE_SECONDS", "").strip() or "15"
    try:
        lease = float(raw)
    except ValueError:
        lease = 0.0
    if not 1 <= lease <= 3600:
        raise BotConfigError(f"REPORTQA_WEBHOOK_LEASE_SECONDS must be a number of seconds 1-3600, not {raw[:20]!r}")
    return WebhookConfig(secret=secret, listen=listen, path=path, lease_seconds=lease)


def metrics_listen_from_env(env: Mapping[str, str] | None = None) -> Listen | None:
    """REPORTQA_METRICS_LISTEN (host:port) for /livez, /readyz, /metrics beside long polling; None if unset."""
    env = os.environ if env is None else env
    raw = env.get("REPORTQA_METRICS_LISTEN", "").strip()
    return parse_listen("REPORTQA_METRICS_LISTEN", raw) if raw else None


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


def max_connections_from_env(env: Mapping[str, str] | None = None) -> int:
    """TELEGRAM_WEBHOOK_MAX_CONNECTIONS: parallel webhook deliveries Telegram may open (1-100, default 40)."""
    env = os.environ if env is None else env
    raw = env.get("TELEGRAM_WEBHOOK_MAX_CONNECTIONS", "").strip() or "40"
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise BotConfigError(f"TELEGRAM_WEBHOOK_MAX_CONNECTIONS must be a whole number 1-100, not {raw[:20]!r}")
    return int(raw)


def json_logs_from_env(env: Mapping[str, str] | None = None) -> bool:
    """REPORTQA_LOG_FORMAT: "text" (default) or "json" (one JSON object per line)."""
    env = os.environ if env is None else env
    raw = env.get("REPORTQA_LOG_FORMAT", "").strip().lower() or "text"
    if raw not in ("text", "json"):
        raise BotConfigError(f"REPORTQA_LOG_FORMAT must be text or json, not {raw[:20]!r}")
    return raw == "json"
