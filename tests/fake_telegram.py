"""A fake Telegram Bot API server for offline end-to-end tests of the bot.

Why: Telegram cannot be reached from CI and python-telegram-bot checks neither message length,
callback_data size nor HTML before sending, so the only way to catch those mistakes offline is a
server that enforces them the way Telegram does. The real `Application` talks to it over HTTP
through PTB's `base_url` (`FakeTelegram.base_url`).

What it does:
- serves `getUpdates` (long polling) from a queue the test fills with `send_text`, `press`,
  `inline_query`, `send_sticker`; remembers which offset the bot confirmed and how often each
  update was delivered (to prove nothing is lost or handled twice);
- records every call (`calls`, `wait_for`) and keeps the bot's messages, with edits applied;
- enforces 4096 characters (UTF-16 units of the visible text), 1–64 bytes of callback_data, HTML
  entity parsing (400 "can't parse entities"), "message is not modified", answering a callback or
  inline query once, bot command syntax;
- injects faults on chosen calls: an error status (429 with retry_after, 500, 502, any 400), a
  response delayed past the client's timeout (the call still takes effect, as on Telegram), or a
  connection dropped without a response, before or after the call took effect (`drop=`);
- remembers when each update was first delivered (`delivered_at`), so a load test can measure
  answer latency from the moment the bot had the question;
- renders a transcript of the conversation as recorded;
- delivers updates to a webhook once `setWebhook` was called, the way Telegram does: one chat's
  updates one at a time (the next only after a 2xx for the previous), different chats in parallel
  over up to max_connections, the secret in X-Telegram-Bot-Api-Secret-Token, any non-2xx or timeout
  retried with backoff; getUpdates then fails with 409. `redeliver` sends an acknowledged update
  again (a 200 that got lost on the way back).
"""

from __future__ import annotations

import contextlib
import html
import itertools
import json
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TEST_TOKEN = "123456789:AAFakeTokenForOfflineTests_0123456789"
BOT_USER = {
    "id": 123456789,
    "is_bot": True,
    "first_name": "报告问答",
    "username": "reportqa_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": True,
}
MESSAGE_LIMIT = 4096
CALLBACK_DATA_LIMIT = 64
# values PTB sends as plain strings; everything else is JSON-encoded
STRING_PARAMS = {
    "text",
    "parse_mode",
    "callback_query_id",
    "inline_query_id",
    "action",
    "language_code",
    "url",
    "next_offset",
}
_ALLOWED_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
    "tg-spoiler", "span", "blockquote", "tg-emoji",
}  # fmt: skip
_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^<>]*)?)>")
_ENTITY_RE = re.compile(r"&(?:#[0-9]{1,7}|#x[0-9a-fA-F]{1,6}|lt|gt|amp|quot);")
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")


class ApiError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def parse_html(text: str) -> str:
    """The visible text of a Telegram-HTML message; ApiError 400 as Telegram words it if invalid."""
    out: list[str] = []
    stack: list[str] = []
    i = 0

    def fail(detail: str, at: int) -> ApiError:
        offset = len(text[:at].encode("utf-8"))
        return ApiError(400, f"Bad Request: can't parse entities: {detail} at byte offset {offset}")

    while i < len(text):
        ch = text[i]
        if ch == "<":
            m = _TAG_RE.match(text, i)
            if not m:
                raise fail("Unexpected character '<'", i)
            closing, name, attrs = m.group(1), m.group(2).lower(), m.group(3).strip()
            if name not in _ALLOWED_TAGS:
                raise fail(f'Unsupported {"end" if closing else "start"} tag "{name}"', i)
            if closing:
                if not stack or stack[-1] != name:
                    expected = f'"</{stack[-1]}>"' if stack else "no end tag"
                    raise fail(f'Unmatched end tag, expected {expected}, found "</{name}>"', i)
                stack.pop()
            else:
                if attrs.endswith("/"):
                    raise fail(f'Unsupported self-closing tag "{name}"', i)
                if name == "a" and "href=" not in attrs:
                    raise fail('Tag "a" must have attribute "href"', i)
                if name == "span" and "tg-spoiler" not in attrs:
                    raise fail('Tag "span" must have class "tg-spoiler"', i)
                if name == "blockquote" and "blockquote" in stack:
                    raise fail("Nested blockquotes are not allowed", i)
                stack.append(name)
            i = m.end()
        elif ch == "&":
            m = _ENTITY_RE.match(text, i)
            if not m:
                raise fail("Character '&' must be escaped", i)
            out.append(html.unescape(m.group()))
            i = m.end()
        elif ch == ">":
            raise fail("Character '>' must be escaped", i)
        else:
            out.append(ch)
            i += 1
    if stack:
        raise fail(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"', len(text))
    return "".join(out)


def visible_text(text: str, parse_mode: str | None) -> str:
    """Check a message text the way Telegram does and return what the user sees."""
    shown = parse_html(text) if (parse_mode or "").upper() == "HTML" else text
    if parse_mode and parse_mode.upper() not in {"HTML", "MARKDOWN", "MARKDOWNV2"}:
        raise ApiError(400, f"Bad Request: unsupported parse_mode {parse_mode!r}")
    shown = shown.strip()
    if not shown:
        raise ApiError(400, "Bad Request: message text is empty")
    if utf16_len(shown) > MESSAGE_LIMIT:
        raise ApiError(400, "Bad Request: message is too long")
    return shown


def check_markup(markup: Any) -> None:
    if markup is None:
        return
    if not isinstance(markup, dict):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    for row in markup.get("inline_keyboard", []):
        for button in row:
            if not str(button.get("text", "")).strip():
                raise ApiError(400, "Bad Request: BUTTON_TEXT_EMPTY")
            if "callback_data" in button:
                size = len(str(button["callback_data"]).encode("utf-8"))
                if not 1 <= size <= CALLBACK_DATA_LIMIT:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


@dataclass
class Call:
    seq: int
    method: str
    params: dict[str, Any]
    status: int = 200
    result: Any = None
    error: str | None = None
    started: float = 0.0
    fault: str | None = None  # the fault injected into this call, e.g. "429", "delay 4s", "drop-after"


@dataclass
class Fault:
    method: str
    status: int | None  # None: no error, only a delayed response (or a dropped connection)
    description: str
    retry_after: int | None
    delay: float
    times: int
    when: Callable[[dict[str, Any]], bool] | None
    drop: str | None = None  # "before" / "after" the call takes effect: close without a response


DROPPED = 0  # the status `handle` returns when the connection is to be closed without a response


@dataclass
class Event:
    """One line of the transcript: an update the user sent or a call the bot made."""

    kind: str  # "update" | "call"
    update: dict[str, Any] | None = None
    call: Call | None = None


@dataclass
class FakeChat:
    id: int
    type: str = "private"
    title: str | None = None
    is_forum: bool = False

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.title:
            d["title"] = self.title
        else:
            d["first_name"] = "用户"
        if self.is_forum:
            d["is_forum"] = True
        return d


@dataclass
class FakeUser:
    id: int
    first_name: str = "张三"
    language_code: str = "zh-hans"
    username: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "is_bot": False,
            "first_name": self.first_name,
            "language_code": self.language_code,
        }
        if self.username:
            d["username"] = self.username
        return d


@dataclass
class _State:
    updates: list[dict[str, Any]] = field(default_factory=list)
    delivered: Counter = field(default_factory=Counter)
    first_delivered: dict[int, float] = field(default_factory=dict)  # update_id -> time.monotonic()
    confirmed_offset: int = 0
    messages: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    html_of: dict[tuple[int, int], str] = field(default_factory=dict)
    chats: dict[int, FakeChat] = field(default_factory=dict)
    open_callbacks: set[str] = field(default_factory=set)
    open_inline: set[str] = field(default_factory=set)
    commands: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    polls_started: int = 0
    webhook: dict[str, Any] | None = None  # setWebhook's parameters while a webhook is set
    acked: Counter = field(default_factory=Counter)  # update_id -> webhook deliveries answered 2xx
    in_flight: set = field(default_factory=set)  # chat keys with a webhook delivery under way
    retry_at: dict[int, float] = field(default_factory=dict)  # update_id -> monotonic time of next try
    webhook_statuses: list = field(default_factory=list)  # (update_id, HTTP status or "timeout"/"refused", when)


class FakeTelegram:
    """Start with `with FakeTelegram() as tg:`; point PTB at `tg.base_url` with `tg.token`."""

    def __init__(self, token: str = TEST_TOKEN):
        self.token = token
        self.calls: list[Call] = []
        self.events: list[Event] = []
        self._faults: list[Fault] = []
        self._state = _State()
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._message_ids = itertools.count(100)
        self._closing = False
        self.proxied_requests = 0  # requests that came through us as an HTTP proxy
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._deliverer: threading.Thread | None = None
        self.webhook_timeout = 10.0  # seconds Telegram waits for a webhook's response
        self.webhook_backoff = (0.2, 2.0)  # first retry delay, doubling up to this
        # A reverse proxy in front of replicas: deliveries go round-robin to these instead of the
        # registered URL, and on a refused connection or a 503 to the next one (nginx's next_upstream).
        self.upstreams: list[str] = []
        self._next_upstream = itertools.count()
        # A lost 200: for updates this returns True for, the first 2xx is treated as never received
        # (the update is delivered again), as when Telegram's side of the connection drops.
        self.lose_ack: Callable[[dict[str, Any]], bool] | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeTelegram:
        fake = self

        class Handler(_Handler):
            telegram = fake

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=lambda: self._server.serve_forever(poll_interval=0.05), name="fake-telegram", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    # ------------------------------------------------------------------ what the test sends

    def private_chat(self, user_id: int = 1001) -> FakeChat:
        return self._chat(FakeChat(user_id))

    def group_chat(self, chat_id: int = -1001234567890, forum: bool = True) -> FakeChat:
        return self._chat(FakeChat(chat_id, "supergroup", title="市民议事群", is_forum=forum))

    def _chat(self, chat: FakeChat) -> FakeChat:
        with self._cond:
            self._state.chats[chat.id] = chat
        return chat

    def send_text(
        self,
        text: str,
        chat: FakeChat | None = None,
        user: FakeUser | None = None,
        reply_to: dict[str, Any] | None = None,
        thread_id: int | None = None,
    ) -> dict[str, Any]:
        """A user's text message (command and @mention entities filled in); returns the update."""
        chat = chat or self.private_chat()
        message = self._user_message(chat, user, reply_to, thread_id)
        message["text"] = text
        entities = []
        if text.startswith("/"):
            m = re.match(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text)
            if m:
                entities.append({"type": "bot_command", "offset": 0, "length": utf16_len(m.group())})
        for m in re.finditer(r"@[A-Za-z0-9_]{5,32}", text):
            if text.startswith("/") and m.start() < (entities[0]["length"] if entities else 0):
                continue
            entities.append({"type": "mention", "offset": utf16_len(text[: m.start()]), "length": utf16_len(m.group())})
        if entities:
            message["entities"] = entities
        return self._push({"message": message})

    def send_sticker(self, chat: FakeChat | None = None, user: FakeUser | None = None) -> dict[str, Any]:
        chat = chat or self.private_chat()
        message = self._user_message(chat, user, None, None)
        message["sticker"] = {
            "file_id": "CAACAgIAAxkBAAI",
            "file_unique_id": "AgAD",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "👍",
        }
        return self._push({"message": message})

    def press(self, message: dict[str, Any], label: str, user: FakeUser | None = None) -> dict[str, Any]:
        """Tap the button whose text contains `label` on the bot message as it is now."""
        key = (message["chat"]["id"], message["message_id"])
        with self._cond:
            current = self._state.messages[key]
        for row in current.get("reply_markup", {}).get("inline_keyboard", []):
            for button in row:
                if label in button["text"]:
                    return self.press_data(current, button["callback_data"], user)
        raise AssertionError(f"no button {label!r} on message {key}: {current.get('reply_markup')}")

    def press_data(self, message: dict[str, Any], data: str, user: FakeUser | None = None) -> dict[str, Any]:
        """A callback query with arbitrary data (e.g. a button from an older bot version)."""
        query_id = f"cq{next(self._ids)}"
        user = user or FakeUser(message["chat"]["id"] if message["chat"]["id"] > 0 else 1001)
        with self._cond:
            self._state.open_callbacks.add(query_id)
        query = {
            "id": query_id,
            "from": user.as_dict(),
            "chat_instance": f"ci{message['chat']['id']}",
            "message": message,
            "data": data,
        }
        return self._push({"callback_query": query})

    def inline_query(self, query: str, user: FakeUser | None = None) -> dict[str, Any]:
        query_id = f"iq{next(self._ids)}"
        with self._cond:
            self._state.open_inline.add(query_id)
        payload = {"id": query_id, "from": (user or FakeUser(1001)).as_dict(), "query": query, "offset": ""}
        return self._push({"inline_query": payload})

    def _user_message(
        self,
        chat: FakeChat,
        user: FakeUser | None,
        reply_to: dict[str, Any] | None,
        thread_id: int | None,
    ) -> dict[str, Any]:
        user = user or FakeUser(chat.id if chat.id > 0 else 1001)
        self._chat(chat)
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat.as_dict(),
            "from": user.as_dict(),
        }
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        return message

    def _push(self, payload: dict[str, Any]) -> dict[str, Any]:
        with self._cond:
            update = {"update_id": next(self._ids), **payload}
            self._state.updates.append(update)
            self.events.append(Event("update", update=update))
            self._cond.notify_all()
        return update

    # ------------------------------------------------------------------ faults

    def inject(
        self,
        method: str,
        status: int | None = None,
        *,
        description: str | None = None,
        retry_after: int | None = None,
        delay: float = 0.0,
        times: int = 1,
        when: Callable[[dict[str, Any]], bool] | None = None,
        drop: str | None = None,
    ) -> None:
        """Make the next `times` calls of `method` (matching `when`) fail with `status` or answer late.

        drop="before": close the connection without a response and without running the call (the
        request was lost); drop="after": run the call, then close without a response (the reply was lost).
        """
        if drop not in (None, "before", "after"):
            raise ValueError("drop must be None, 'before' or 'after'")
        if description is None and status is not None:
            description = {
                429: f"Too Many Requests: retry after {retry_after}",
                500: "Internal Server Error",
                502: "Bad Gateway",
            }.get(status, "Bad Request: injected")
        with self._cond:
            self._faults.append(Fault(method, status, description or "", retry_after, delay, times, when, drop))

    def clear_faults(self) -> None:
        """Forget every fault not yet used up (between phases of a load test)."""
        with self._cond:
            self._faults.clear()

    def _take_fault(self, method: str, params: dict[str, Any]) -> Fault | None:
        with self._cond:
            for fault in self._faults:
                if fault.method == method and fault.times > 0 and (fault.when is None or fault.when(params)):
                    fault.times -= 1
                    return fault
        return None

    # ------------------------------------------------------------------ what the test reads

    def calls_of(self, method: str, after: int = 0) -> list[Call]:
        with self._cond:
            return [c for c in self.calls if c.method == method and c.seq > after]

    def mark(self) -> int:
        """The sequence number of the last call so far: wait for calls after it."""
        with self._cond:
            return self.calls[-1].seq if self.calls else 0

    def wait_for(
        self,
        method: str,
        where: Callable[[Call], bool] | None = None,
        after: int = 0,
        timeout: float = 30.0,
        ok: bool | None = True,
    ) -> Call:
        """The first call of `method` after seq `after` matching `where` (successful unless ok=None/False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for call in self.calls:
                    if call.seq <= after or call.method != method:
                        continue
                    if ok is not None and (call.status == 200) != ok:
                        continue
                    if where is None or where(call):
                        return call
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no {method} call after #{after} within {timeout}s; transcript:\n{self._transcript()}"
                    )
                self._cond.wait(remaining)

    def wait_polling(self, timeout: float = 30.0) -> None:
        """Wait until the bot has started a getUpdates call (it is up and listening)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._state.polls_started == 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"the bot never polled within {timeout}s")
                self._cond.wait(remaining)

    def wait_confirmed(self, update: dict[str, Any], timeout: float = 30.0) -> None:
        """Wait until the bot confirmed (offset past) this update, i.e. it will not get it again."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._state.confirmed_offset <= update["update_id"]:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"update {update['update_id']} never confirmed")
                self._cond.wait(remaining)

    def delivered(self, update: dict[str, Any]) -> int:
        with self._cond:
            return self._state.delivered[update["update_id"]]

    def delivered_at(self, update: dict[str, Any]) -> float | None:
        """time.monotonic() of the update's first delivery to the bot, or None if never delivered."""
        with self._cond:
            return self._state.first_delivered.get(update["update_id"])

    @property
    def polls_started(self) -> int:
        """How many getUpdates calls the bot(s) have made: a new one means a (re)started bot is listening."""
        with self._cond:
            return self._state.polls_started

    @property
    def confirmed_offset(self) -> int:
        """The highest offset the bot has sent: every update below it is confirmed (never redelivered)."""
        with self._cond:
            return self._state.confirmed_offset

    def message(self, call_or_message: Call | dict[str, Any]) -> dict[str, Any]:
        """The bot message as it is now (after edits)."""
        msg = call_or_message.result if isinstance(call_or_message, Call) else call_or_message
        with self._cond:
            return self._state.messages[(msg["chat"]["id"], msg["message_id"])]

    def html(self, call_or_message: Call | dict[str, Any]) -> str:
        """The text of a bot message as sent (HTML source), after edits."""
        msg = self.message(call_or_message)
        with self._cond:
            return self._state.html_of[(msg["chat"]["id"], msg["message_id"])]

    def commands(self, language_code: str = "") -> list[dict[str, Any]]:
        with self._cond:
            return list(self._state.commands.get(language_code, []))

    # ------------------------------------------------------------------ HTTP side

    def handle(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        """Run one API call: (HTTP status, JSON envelope, seconds to wait before answering)."""
        with self._cond:
            call = Call(seq=len(self.calls) + 1, method=method, params=params, started=time.monotonic())
        fault = self._take_fault(method, params)
        delay = fault.delay if fault else 0.0
        if fault:
            call.fault = (
                f"drop-{fault.drop}" if fault.drop else str(fault.status) if fault.status else f"delay {delay:g}s"
            )
        if fault and fault.drop == "before":
            call.status, call.error = DROPPED, "connection dropped before the call"
            with self._cond:
                call.seq = len(self.calls) + 1
                self.calls.append(call)
                self.events.append(Event("call", call=call))
                self._cond.notify_all()
            return DROPPED, {}, delay
        if fault and fault.status is not None:
            error = ApiError(fault.status, fault.description, fault.retry_after)
        else:
            error = None
            try:
                call.result = self._dispatch(method, params)
            except ApiError as exc:
                error = exc
        if error is not None:
            call.status, call.error = error.status, error.description
            body: dict[str, Any] = {"ok": False, "error_code": error.status, "description": error.description}
            if error.retry_after is not None:
                body["parameters"] = {"retry_after": error.retry_after}
        else:
            body = {"ok": True, "result": call.result}
        with self._cond:
            call.seq = len(self.calls) + 1
            self.calls.append(call)
            if not (method == "getUpdates" and call.status == 200 and not call.result):
                self.events.append(Event("call", call=call))
            self._cond.notify_all()
        if fault and fault.drop == "after":
            return DROPPED, body, delay
        return call.status, body, delay

    def _dispatch(self, method: str, p: dict[str, Any]) -> Any:
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            raise ApiError(404, "Not Found: method not found")
        return handler(p)

    def _api_getMe(self, p: dict[str, Any]) -> Any:
        return BOT_USER

    def _api_deleteWebhook(self, p: dict[str, Any]) -> Any:
        with self._cond:
            self._state.webhook = None
            if p.get("drop_pending_updates") in (True, "true", "True"):
                self._state.updates.clear()
        return True

    def _api_setWebhook(self, p: dict[str, Any]) -> Any:
        url = str(p.get("url") or "")
        if not url:
            return self._api_deleteWebhook(p)
        with self._cond:
            self._state.webhook = dict(p)
            if p.get("drop_pending_updates") in (True, "true", "True"):
                self._state.updates.clear()
            if self._deliverer is None:
                self._deliverer = threading.Thread(target=self._deliver_loop, name="fake-webhook", daemon=True)
                self._deliverer.start()
            self._cond.notify_all()
        return True

    def _api_getWebhookInfo(self, p: dict[str, Any]) -> Any:
        with self._cond:
            hook = self._state.webhook or {}
            return {"url": hook.get("url", ""), "has_custom_certificate": False,
                    "pending_update_count": len(self._state.updates),
                    "max_connections": int(hook.get("max_connections") or 40)}

    # ------------------------------------------------------------------ webhook delivery

    @property
    def webhook(self) -> dict[str, Any] | None:
        with self._cond:
            return None if self._state.webhook is None else dict(self._state.webhook)

    def acked(self, update: dict[str, Any]) -> int:
        """How many webhook deliveries of this update got a 2xx."""
        with self._cond:
            return self._state.acked[update["update_id"]]

    def webhook_statuses(self) -> list:
        with self._cond:
            return list(self._state.webhook_statuses)

    def redeliver(self, update: dict[str, Any]) -> None:
        """Deliver an acknowledged update again (its 200 never reached Telegram)."""
        with self._cond:
            if all(u["update_id"] != update["update_id"] for u in self._state.updates):
                self._state.updates.insert(0, update)
            self._cond.notify_all()

    def wait_acked(self, update: dict[str, Any], timeout: float = 30.0, times: int = 1) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._state.acked[update["update_id"]] < times:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"update {update['update_id']} never acknowledged; statuses "
                                         f"{self._state.webhook_statuses[-10:]}")
                self._cond.wait(remaining)

    @staticmethod
    def _chat_key(update: dict[str, Any]) -> Any:
        for kind in ("message", "edited_message"):
            if kind in update:
                return ("chat", update[kind]["chat"]["id"])
        if "callback_query" in update:
            message = update["callback_query"].get("message") or {}
            return ("chat", message.get("chat", {}).get("id"))
        if "inline_query" in update:
            return ("user", update["inline_query"]["from"]["id"])
        return ("update", update["update_id"])

    def _deliver_loop(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=100, thread_name_prefix="fake-webhook-post") as pool:
            while True:
                with self._cond:
                    if self._closing:
                        return
                    hook = self._state.webhook
                    due: list[dict[str, Any]] = []
                    if hook is not None:
                        now = time.monotonic()
                        room = int(hook.get("max_connections") or 40) - len(self._state.in_flight)
                        heads: dict[Any, dict[str, Any]] = {}
                        for u in self._state.updates:
                            heads.setdefault(self._chat_key(u), u)  # only the head of each chat's queue
                        for key, u in heads.items():
                            if room <= 0:
                                break
                            if key in self._state.in_flight or self._state.retry_at.get(u["update_id"], 0) > now:
                                continue
                            self._state.in_flight.add(key)
                            due.append(u)
                            room -= 1
                    if not due:
                        self._cond.wait(0.05)
                        continue
                for u in due:
                    pool.submit(self._post_update, dict(hook), u)

    def _post_update(self, hook: dict[str, Any], update: dict[str, Any]) -> None:
        import urllib.error
        import urllib.request

        uid, key = update["update_id"], self._chat_key(update)
        headers = {"Content-Type": "application/json"}
        if hook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = str(hook["secret_token"])
        with self._cond:
            self._state.delivered[uid] += 1
            self._state.first_delivered.setdefault(uid, time.monotonic())
            targets = list(self.upstreams) or [str(hook["url"])]
            start = next(self._next_upstream)
        status: Any = "refused"
        retry_after = None
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        for k in range(len(targets)):
            url = targets[(start + k) % len(targets)]
            request = urllib.request.Request(url, data=json.dumps(update).encode(), headers=headers)
            try:
                with opener.open(request, timeout=self.webhook_timeout) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
                retry_after = exc.headers.get("Retry-After")
            except TimeoutError:
                status = "timeout"
            except (urllib.error.URLError, OSError):
                status = "refused"
            if status not in ("refused", 503):
                break
        with self._cond:
            self._state.webhook_statuses.append((uid, status, time.monotonic()))
            self._state.in_flight.discard(key)
            if isinstance(status, int) and 200 <= status < 300:
                self._state.acked[uid] += 1
                lost = self._state.acked[uid] == 1 and self.lose_ack is not None and self.lose_ack(update)
                if lost:
                    self._state.webhook_statuses[-1] = (uid, f"{status} lost", time.monotonic())
                else:
                    self._state.updates = [u for u in self._state.updates if u["update_id"] != uid]
                self._state.retry_at.pop(uid, None)
            else:
                first, cap = self.webhook_backoff
                tries = sum(1 for i, *_ in self._state.webhook_statuses if i == uid)
                wait = min(cap, first * 2 ** (tries - 1))
                if retry_after and str(retry_after).isdigit():
                    wait = max(wait, min(cap, float(retry_after)))  # honoured, capped to keep tests fast
                self._state.retry_at[uid] = time.monotonic() + wait
            self._cond.notify_all()

    def _api_getUpdates(self, p: dict[str, Any]) -> Any:
        with self._cond:
            if self._state.webhook is not None:
                raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                    "use deleteWebhook to delete the webhook first")
        offset = int(p.get("offset") or 0)
        limit = int(p.get("limit") or 100)
        timeout = float(p.get("timeout") or 0)
        allowed = p.get("allowed_updates") or None
        deadline = time.monotonic() + timeout
        with self._cond:
            if offset:
                self._state.updates = [u for u in self._state.updates if u["update_id"] >= offset]
                self._state.confirmed_offset = max(self._state.confirmed_offset, offset)
            self._state.polls_started += 1
            self._cond.notify_all()
            while True:
                pending = [u for u in self._state.updates if allowed is None or any(k in u for k in allowed)][:limit]
                remaining = deadline - time.monotonic()
                if pending or remaining <= 0 or self._closing:
                    break
                self._cond.wait(min(remaining, 0.5))
            now = time.monotonic()
            for u in pending:
                self._state.delivered[u["update_id"]] += 1
                self._state.first_delivered.setdefault(u["update_id"], now)
            return pending

    def _known_chat(self, chat_id: Any) -> FakeChat:
        try:
            return self._state.chats[int(chat_id)]
        except (KeyError, TypeError, ValueError):
            raise ApiError(400, "Bad Request: chat not found") from None

    def _api_sendMessage(self, p: dict[str, Any]) -> Any:
        text = str(p.get("text", ""))
        shown = visible_text(text, p.get("parse_mode"))
        check_markup(p.get("reply_markup"))
        with self._cond:
            chat = self._known_chat(p.get("chat_id"))
            message: dict[str, Any] = {
                "message_id": next(self._message_ids),
                "date": int(time.time()),
                "chat": chat.as_dict(),
                "from": BOT_USER,
                "text": shown,
            }
            if p.get("reply_markup"):
                message["reply_markup"] = p["reply_markup"]
            if p.get("message_thread_id") is not None:
                if not chat.is_forum:
                    raise ApiError(400, "Bad Request: message thread not found")
                message["message_thread_id"] = p["message_thread_id"]
                message["is_topic_message"] = True
            reply = p.get("reply_parameters")
            if isinstance(reply, dict) and reply.get("message_id"):
                message["reply_to_message"] = {
                    "message_id": reply["message_id"],
                    "date": int(time.time()),
                    "chat": chat.as_dict(),
                }
            key = (chat.id, message["message_id"])
            self._state.messages[key] = message
            self._state.html_of[key] = text
            return message

    def _edit_target(self, p: dict[str, Any]) -> tuple[tuple[int, int], dict[str, Any]]:
        key = (int(p.get("chat_id", 0)), int(p.get("message_id", 0)))
        if key not in self._state.messages:
            raise ApiError(400, "Bad Request: message to edit not found")
        return key, self._state.messages[key]

    def _api_editMessageText(self, p: dict[str, Any]) -> Any:
        text = str(p.get("text", ""))
        shown = visible_text(text, p.get("parse_mode"))
        check_markup(p.get("reply_markup"))
        with self._cond:
            key, message = self._edit_target(p)
            markup = p.get("reply_markup")
            if text == self._state.html_of[key] and markup == message.get("reply_markup"):
                raise ApiError(
                    400,
                    "Bad Request: message is not modified: specified new message content and reply markup "
                    "are exactly the same as a current content and reply markup of the message",
                )
            edited = {**message, "text": shown, "edit_date": int(time.time())}
            edited.pop("reply_markup", None)
            if markup:
                edited["reply_markup"] = markup
            self._state.messages[key] = edited
            self._state.html_of[key] = text
            return edited

    def _api_editMessageReplyMarkup(self, p: dict[str, Any]) -> Any:
        check_markup(p.get("reply_markup"))
        with self._cond:
            key, message = self._edit_target(p)
            markup = p.get("reply_markup")
            if markup == message.get("reply_markup"):
                raise ApiError(400, "Bad Request: message is not modified")
            edited = {**message, "edit_date": int(time.time())}
            edited.pop("reply_markup", None)
            if markup:
                edited["reply_markup"] = markup
            self._state.messages[key] = edited
            return edited

    def _api_answerCallbackQuery(self, p: dict[str, Any]) -> Any:
        query_id = str(p.get("callback_query_id"))
        if len(str(p.get("text") or "")) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        with self._cond:
            if query_id not in self._state.open_callbacks:
                raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
            self._state.open_callbacks.discard(query_id)
        return True

    def _api_answerInlineQuery(self, p: dict[str, Any]) -> Any:
        query_id = str(p.get("inline_query_id"))
        results = p.get("results")
        if not isinstance(results, list) or len(results) > 50:
            raise ApiError(400, "Bad Request: RESULTS_TOO_MUCH")
        ids = [str(r.get("id", "")) for r in results]
        if len(set(ids)) != len(ids) or any(not 1 <= len(i.encode()) <= 64 for i in ids):
            raise ApiError(400, "Bad Request: RESULT_ID_INVALID")
        for r in results:
            if r.get("type") == "article" and not str(r.get("title", "")).strip():
                raise ApiError(400, "Bad Request: RESULT_TITLE_EMPTY")
            content = r.get("input_message_content") or {}
            visible_text(str(content.get("message_text", "")), content.get("parse_mode"))
            check_markup(r.get("reply_markup"))
        with self._cond:
            if query_id not in self._state.open_inline:
                raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
            self._state.open_inline.discard(query_id)
        return True

    def _api_sendChatAction(self, p: dict[str, Any]) -> Any:
        if p.get("action") not in {
            "typing",
            "upload_document",
            "upload_photo",
            "record_voice",
            "choose_sticker",
        }:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        with self._cond:
            self._known_chat(p.get("chat_id"))
        return True

    def _api_setMyCommands(self, p: dict[str, Any]) -> Any:
        commands = p.get("commands")
        if not isinstance(commands, list) or not commands or len(commands) > 100:
            raise ApiError(400, "Bad Request: commands must be a non-empty list")
        for c in commands:
            if not _COMMAND_RE.fullmatch(str(c.get("command", ""))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(c.get("description", ""))) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        with self._cond:
            self._state.commands[str(p.get("language_code") or "")] = commands
        return True

    def _api_deleteMyCommands(self, p: dict[str, Any]) -> Any:
        with self._cond:
            self._state.commands.pop(str(p.get("language_code") or ""), None)
        return True

    def _api_close(self, p: dict[str, Any]) -> Any:
        return True

    # ------------------------------------------------------------------ transcript

    def transcript(self) -> str:
        with self._cond:
            return self._transcript()

    def _transcript(self) -> str:
        lines: list[str] = []
        for ev in self.events:
            if ev.kind == "update":
                lines.append(_describe_update(ev.update or {}))
            elif ev.call is not None:
                lines.append(_describe_call(ev.call))
        return "\n".join(lines)


def _buttons(markup: Any) -> str:
    if not isinstance(markup, dict) or not markup.get("inline_keyboard"):
        return ""
    rows = [" | ".join(f"{b['text']} ⟨{b.get('callback_data', '')}⟩" for b in row) for row in markup["inline_keyboard"]]
    return "\n      buttons: " + "\n               ".join(f"[{r}]" for r in rows)


def _indent(text: str) -> str:
    return "\n".join("      " + line for line in text.splitlines())


def _describe_update(u: dict[str, Any]) -> str:
    if "message" in u:
        m = u["message"]
        chat = m["chat"]
        where = "private" if chat["type"] == "private" else f"{chat['type']} {chat['id']}"
        thread = f" thread {m['message_thread_id']}" if "message_thread_id" in m else ""
        reply = " (reply to bot)" if m.get("reply_to_message", {}).get("from", {}).get("is_bot") else ""
        body = m.get("text") if "text" in m else "<sticker>" if "sticker" in m else "<non-text>"
        return f"USER [{where}{thread}] #{m['message_id']}{reply}: {body}"
    if "callback_query" in u:
        q = u["callback_query"]
        return f"USER taps ⟨{q['data']}⟩ on bot message #{q['message']['message_id']}"
    if "inline_query" in u:
        return f"USER inline query: @{BOT_USER['username']} {u['inline_query']['query']}"
    return f"USER update {u}"


def _describe_call(c: Call) -> str:
    p = c.params
    status = "" if c.status == 200 else f"  ✗ {c.status} {c.error}"
    if c.method in ("sendMessage", "editMessageText"):
        mid = c.result["message_id"] if c.status == 200 else p.get("message_id", "?")
        mode = p.get("parse_mode") or "plain"
        head = f"BOT  {c.method} #{mid} ({mode}){status}"
        thread = f" thread {p['message_thread_id']}" if p.get("message_thread_id") else ""
        return f"{head}{thread}\n{_indent(str(p.get('text', '')))}{_buttons(p.get('reply_markup'))}"
    if c.method == "editMessageReplyMarkup":
        return f"BOT  editMessageReplyMarkup #{p.get('message_id')}{status}{_buttons(p.get('reply_markup'))}"
    if c.method == "answerCallbackQuery":
        text = f": {p['text']}" if p.get("text") else ""
        return f"BOT  answerCallbackQuery{text}{status}"
    if c.method == "answerInlineQuery":
        titles = "; ".join(str(r.get("title")) for r in p.get("results", []))
        return f"BOT  answerInlineQuery {len(p.get('results', []))} results: {titles}{status}"
    if c.method == "sendChatAction":
        return f"BOT  sendChatAction {p.get('action')}{status}"
    if c.method == "setMyCommands":
        names = " ".join("/" + x["command"] for x in p.get("commands", []))
        return f"BOT  setMyCommands [{p.get('language_code') or 'default'}] {names}{status}"
    if c.method == "getUpdates":
        n = len(c.result) if isinstance(c.result, list) else 0
        return f"BOT  getUpdates offset={p.get('offset')} → {n} updates{status}"
    return f"BOT  {c.method}{status}"


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that vanished (a bot killed with -9, a timed-out request) is not an error here."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    telegram: FakeTelegram
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return

    def do_GET(self) -> None:
        self.do_POST()

    def do_POST(self) -> None:
        path = self.path
        if path.startswith(("http://", "https://")):  # absolute form: we are being used as a proxy
            self.telegram.proxied_requests += 1
            path = urlsplit(path).path
        m = re.fullmatch(r"/bot([^/]+)/([A-Za-z]+)", path.split("?")[0])
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not m:
            self._reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        if m.group(1) != self.telegram.token:
            self._reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
            return
        try:
            params = _decode_params(raw, self.headers.get("Content-Type", ""))
        except ValueError as exc:
            self._reply(400, {"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"})
            return
        status, body, delay = self.telegram.handle(m.group(2), params)
        if delay:
            time.sleep(delay)
        if status == DROPPED:  # as if the network cut the connection: no status line at all
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if status in (500, 502, 503, 504):
            # what Telegram's front end really returns: an nginx page, not JSON
            page = f"<html><head><title>{status}</title></head><body><h1>{status}</h1></body></html>"
            self._reply_bytes(status, page.encode(), "text/html")
            return
        self._reply(status, body)

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        self._reply_bytes(status, json.dumps(body, ensure_ascii=False).encode("utf-8"), "application/json")

    def _reply_bytes(self, status: int, data: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            pass


def _decode_params(raw: bytes, content_type: str) -> dict[str, Any]:
    if not raw:
        return {}
    if content_type.startswith("application/json"):
        return json.loads(raw)
    if not content_type.startswith("application/x-www-form-urlencoded"):
        raise ValueError(f"unsupported content type {content_type!r}")
    params: dict[str, Any] = {}
    for key, value in parse_qsl(raw.decode("utf-8"), keep_blank_values=True):
        if key in STRING_PARAMS:
            params[key] = value
            continue
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


class RunningApp:
    """Run a PTB Application in a background thread, polling the fake server, as `run_polling`
    would (initialize → post_init → polling → start; on stop: updater.stop → stop → post_stop →
    shutdown → post_shutdown) but without installing signal handlers, so the test thread stays in
    control."""

    def __init__(self, app: Any, poll_timeout: int = 1):
        self.app = app
        self._poll_timeout = poll_timeout
        self._loop: Any = None
        self._stop: Any = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bot-under-test", daemon=True)

    def _run(self) -> None:
        import asyncio

        async def main() -> None:
            self._stop = asyncio.Event()
            async with self.app:
                if self.app.post_init:
                    await self.app.post_init(self.app)
                await self.app.updater.start_polling(
                    poll_interval=0.0,
                    timeout=self._poll_timeout,
                    allowed_updates=["message", "callback_query", "inline_query"],
                )
                await self.app.start()
                self._ready.set()
                await self._stop.wait()
                await self.app.updater.stop()
                await self.app.stop()
                if self.app.post_stop:
                    await self.app.post_stop(self.app)
            if self.app.post_shutdown:
                await self.app.post_shutdown(self.app)

        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(main())
        except BaseException as exc:  # surfaced by start()/stop()
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    def __enter__(self) -> RunningApp:
        self._thread.start()
        if not self._ready.wait(60) or self._error:
            raise RuntimeError(f"bot did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        if self._thread.is_alive():
            raise RuntimeError("bot did not stop within 60 s")
        if self._error:
            raise RuntimeError(f"bot failed: {self._error!r}") from self._error
