"""The HTTP side of serving: Telegram's webhook POSTs, and /livez, /readyz, /metrics (Starlette).

Why each update is handled *before* the 200: Telegram sends one chat's updates one at a time,
waiting for the previous answer, so replying only after the update was processed keeps every
chat's order across any number of replicas, and a process that dies mid-update never acknowledged
it (Telegram delivers it again, possibly elsewhere). A handler error still gets a 200 (it is
logged): a non-2xx would make Telegram retry it and stall that chat — except when the reply surely
never reached Telegram (flood control, or a failure before the request arrived, after the bot's own
retries): then the claim is released and a 503 has Telegram deliver the update again, so the
question is answered late rather than never. 503 also means "not now": before the bot is ready,
while the store is unreachable, or while another live process holds the update.

Exactly once across replicas: an update is claimed in the shared store by its id with a lease
(`QuestionLog.claim_update`) and marked answered once handled. A re-delivered answered update gets a
200 at once; one whose owner died (lease run out) is taken over. The window no design closes: a
process killed after Telegram accepted the reply but before the update was marked answered — the
re-delivery is answered a second time.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import Callable
from json import JSONDecodeError

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from telegram import Update
from telegram.ext import Application

from bot.question_log import QuestionLog, QuestionLogError
from bot.telegram.handlers import ReportBot
from bot.telegram.metrics import CONTENT_TYPE
from bot.telegram.settings import WebhookConfig

_LOG = logging.getLogger("reportqa.telegram")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
HELD_RETRY_AFTER = "5"


class Serving:
    """Whether this process takes updates now: set once the bot has started, cleared when it stops."""

    def __init__(self) -> None:
        self.ready = False
        self.owner = secrets.token_hex(8)  # this process, in the update claims (not a user id)


def http_app(
    application: Application,
    bot: ReportBot,
    log: QuestionLog,
    serving: Serving,
    webhook: WebhookConfig | None = None,
) -> Starlette:
    """/livez, /readyz, /metrics; with `webhook`, also the update endpoint at `webhook.path`."""

    async def livez(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        checks = {
            "index": bot.retriever is not None,
            "store": await asyncio.to_thread(log.ping),
            "application": serving.ready and application.running,
        }
        return JSONResponse(checks, status_code=200 if all(checks.values()) else 503)

    async def metrics(request: Request) -> Response:
        return Response(bot.metrics.exposition(), media_type=CONTENT_TYPE)

    routes = [
        Route("/livez", livez, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    if webhook is not None:
        routes.append(Route(webhook.path, _update_endpoint(application, bot, log, serving, webhook), methods=["POST"]))
    return Starlette(routes=routes)


def _update_endpoint(
    application: Application, bot: ReportBot, log: QuestionLog, serving: Serving, webhook: WebhookConfig
) -> Callable:
    expected = webhook.secret.encode()
    lease_seconds = webhook.lease_seconds

    async def receive(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, expected):
            return Response(status_code=403)
        if not (serving.ready and application.running):
            return Response(status_code=503)
        try:
            update = Update.de_json(await request.json(), application.bot)
        except (JSONDecodeError, UnicodeDecodeError, TypeError, KeyError, ValueError):
            update = None
        if update is None:
            return Response(status_code=400)
        try:
            claim = await asyncio.to_thread(log.claim_update, update.update_id, serving.owner, lease_seconds)
        except QuestionLogError as exc:
            _LOG.warning("update %d: store unavailable, asking Telegram to retry: %s", update.update_id, exc)
            return Response(status_code=503)
        if claim == "answered":
            bot.metrics.outcome("duplicate")
            return Response(status_code=200)
        if claim == "held":
            return Response(status_code=503, headers={"Retry-After": HELD_RETRY_AFTER})
        bot.metrics.in_progress.inc()
        renewing = asyncio.create_task(_renew(log, update.update_id, serving.owner, lease_seconds))
        try:
            await application.process_update(update)
        except Exception:  # noqa: BLE001 - PTB routes handler errors to on_error; anything else: log, 200
            _LOG.exception("update %d failed", update.update_id)
        finally:
            renewing.cancel()
            bot.metrics.in_progress.dec()
        if update.update_id in bot.unsent:  # the reply surely never reached the chat: have Telegram retry
            bot.unsent.discard(update.update_id)
            try:
                await asyncio.to_thread(log.release_update, update.update_id, serving.owner)
            except QuestionLogError as exc:  # the lease runs out instead: retried a little later
                _LOG.warning("update %d: claim not released: %s", update.update_id, exc)
            return Response(status_code=503, headers={"Retry-After": HELD_RETRY_AFTER})
        try:
            await asyncio.to_thread(log.finish_update, update.update_id, serving.owner)
        except QuestionLogError as exc:  # answered, but a re-delivery may be answered again
            _LOG.warning("update %d: answered but not recorded as answered: %s", update.update_id, exc)
        return Response(status_code=200)

    return receive


async def _renew(log: QuestionLog, update_id: int, owner: str, lease_seconds: float) -> None:
    while True:
        await asyncio.sleep(lease_seconds / 3)
        try:
            await asyncio.to_thread(log.renew_update, update_id, owner, lease_seconds)
        except QuestionLogError as exc:
            _LOG.warning("update %d: lease not renewed: %s", update_id, exc)
