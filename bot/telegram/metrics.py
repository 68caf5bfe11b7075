"""What the bot counts for Prometheus (`/metrics`): updates by outcome, latencies, Telegram API errors,
updates in progress. Never labelled by chat or user: the labels are a fixed, small set.

Each Application gets its own registry (tests run several bots in one process); one serving process
exposes one registry. Several worker processes behind one port would need prometheus-client's
multiprocess mode — each `reportqa telegram` process serves its own listener instead.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

OUTCOMES = ("answered", "not_covered", "asked_back", "refused", "error", "duplicate")
_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class BotMetrics:
    """The bot's counters and histograms, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.updates = Counter(
            "reportqa_updates", "Telegram updates handled, by outcome", ["outcome"], registry=self.registry
        )
        for outcome in OUTCOMES:  # every series exists from the start (a rate of 0 is not "no data")
            self.updates.labels(outcome)
        self.answer_seconds = Histogram(
            "reportqa_answer_seconds", "From a question's arrival to its reply accepted by Telegram",
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.retrieval_seconds = Histogram(
            "reportqa_retrieval_seconds", "Retrieval (understanding, search, ranking) of one question",
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.api_errors = Counter(
            "reportqa_telegram_api_errors", "Failed Telegram Bot API calls, by kind", ["kind"],
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "reportqa_updates_in_progress", "Updates received and not finished yet (the queue depth)",
            registry=self.registry,
        )

    def outcome(self, outcome: str) -> None:
        self.updates.labels(outcome).inc()

    def api_error(self, exc: BaseException) -> None:
        """Count a failed API call by its kind: RetryAfter, TimedOut, NetworkError, BadRequest, Forbidden …"""
        self.api_errors.labels(type(exc).__name__).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
