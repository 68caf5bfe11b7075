"""Webhook mode (`reportqa telegram --webhook`): the real Application behind the real Starlette/uvicorn
server, the fake Bot API delivering updates to it the way Telegram does (per chat one at a time,
retries on non-2xx), and two replicas sharing one store.
"""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest
from bot_harness import WEBHOOK_SECRET, WebhookReplica, http
from fake_telegram import FakeTelegram
from test_telegram_bot import KeywordRetriever, start_bot_process

from bot.telegram import messages as tm
from bot.telegram.app import run_webhook, set_webhook
from bot.telegram.webhook import SECRET_HEADER
from retrieval.config import Settings

KNOWN = "2019年衡阳调解了多少矛盾纠纷？"


@pytest.fixture(scope="module")
def retriever() -> KeywordRetriever:
    return KeywordRetriever()


def _hook(tg: FakeTelegram, replica: WebhookReplica) -> None:
    env = {"TELEGRAM_BOT_TOKEN": tg.token, "TELEGRAM_API_BASE_URL": tg.base_url,
           "TELEGRAM_WEBHOOK_SECRET": replica.config.secret}
    assert set_webhook(replica.url, env) == 0


def _replies(tg: FakeTelegram, chat_id: int) -> list:
    return [c for c in tg.calls_of("sendMessage") if c.status == 200 and c.params["chat_id"] == chat_id]


def _post(replica: WebhookReplica, update: dict, secret: str | None = WEBHOOK_SECRET) -> int:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    return http("POST", replica.url, json.dumps(update).encode(), headers)[0]


def _metric(replica: WebhookReplica, name: str) -> float:
    status, body = http("GET", replica.base() + "/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{") and line.split(" ")[0] == name:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_each_update_is_answered_before_its_200_and_one_chat_stays_in_order(tg, retriever, tmp_path):
    with WebhookReplica(tg, retriever, tmp_path) as replica:
        _hook(tg, replica)
        chat = tg.private_chat(5001)
        questions = [KNOWN, "行政复议案件办理了多少件？", "法律顾问发挥了什么作用？"]
        updates = [tg.send_text(q, chat) for q in questions]
        for u in updates:
            tg.wait_acked(u)
        replies = _replies(tg, chat.id)
        assert [r.result["text"].split("\n")[0] for r in replies] == [f"❓ {q}" for q in questions]  # in order
        acked_at = {uid: when for uid, status, when in tg.webhook_statuses() if status == 200}
        for update, reply in zip(updates, replies, strict=True):
            assert reply.started < acked_at[update["update_id"]]  # replied, then 200
        assert "17076" in replies[0].result["text"]
        assert tg.calls_of("getUpdates") == []  # a replica never polls
        answered = _metric(replica, 'reportqa_updates_total{outcome="answered"}')
        assert answered + _metric(replica, 'reportqa_updates_total{outcome="not_covered"}') == 3 and answered >= 2


def test_the_secret_is_required_and_nothing_else_gets_in(tg, retriever, tmp_path):
    with WebhookReplica(tg, retriever, tmp_path) as replica:
        update = {"update_id": 77, "message": {"message_id": 1, "date": 0, "text": KNOWN,
                                                "chat": {"id": 5002, "type": "private"}}}
        assert _post(replica, update, secret=None) == 403
        assert _post(replica, update, secret="wrong-secret") == 403
        assert _post(replica, update, secret=WEBHOOK_SECRET + "x") == 403
        assert http("POST", replica.url, b"\xff\xfejunk", {SECRET_HEADER: WEBHOOK_SECRET})[0] == 400
        assert tg.calls_of("sendMessage") == []


def test_a_delivery_repeated_after_a_lost_200_is_not_answered_twice(tg, retriever, tmp_path):
    with WebhookReplica(tg, retriever, tmp_path) as replica:
        _hook(tg, replica)
        chat = tg.private_chat(5003)
        update = tg.send_text(KNOWN, chat)
        tg.wait_acked(update)
        tg.redeliver(update)
        tg.wait_acked(update, times=2)
        assert len(_replies(tg, chat.id)) == 1
        assert _metric(replica, 'reportqa_updates_total{outcome="duplicate"}') == 1


def test_two_replicas_over_one_store_answer_an_update_once_and_take_over_a_dead_owners(tg, retriever, tmp_path,
                                                                                       store_url):
    """On SQLite (one host) and on PostgreSQL."""
    with WebhookReplica(tg, retriever, tmp_path / "a", store_url=store_url) as a, \
            WebhookReplica(tg, retriever, tmp_path / "b", store_url=store_url) as b:
        chat = tg.private_chat(5004)
        tg.send_text("warm up", chat)  # so the fake knows the chat; the test posts the updates itself
        update = {"update_id": 9001, "message": {"message_id": 11, "date": int(time.time()), "text": KNOWN,
                                                  "chat": {"id": chat.id, "type": "private"},
                                                  "from": {"id": chat.id, "is_bot": False, "first_name": "市民"}}}
        statuses: list[int] = []
        threads = [threading.Thread(target=lambda r=r: statuses.append(_post(r, update))) for r in (a, b, a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert 200 in statuses and set(statuses) <= {200, 503}
        assert len(_replies(tg, chat.id)) == 1
        # An update claimed by a replica that died (its lease ran out) is taken over and answered.
        orphan = dict(update, update_id=9002, message=dict(update["message"], message_id=12))
        assert a.log.claim_update(9002, "dead-replica", lease_seconds=-1) == "claimed"
        assert _post(b, orphan) == 200
        assert len(_replies(tg, chat.id)) == 2
        # One a live replica holds (lease running) is refused for now: Telegram retries it later.
        held = dict(update, update_id=9003, message=dict(update["message"], message_id=13))
        assert a.log.claim_update(9003, "live-replica", lease_seconds=60) == "claimed"
        assert _post(b, held) == 503 and len(_replies(tg, chat.id)) == 2
        # A day later the claims are forgotten (Telegram no longer re-delivers them).
        from datetime import UTC, datetime, timedelta

        assert a.log.forget_old_updates(now=datetime.now(UTC) + timedelta(hours=25)) == 3


def test_a_failing_handler_still_gets_a_200_and_the_chat_goes_on(tg, tmp_path):
    class Failing(KeywordRetriever):
        def ask(self, question, *args, **kwargs):
            if "爆炸" in question:
                raise RuntimeError("boom")
            return super().ask(question, *args, **kwargs)

    with WebhookReplica(tg, Failing(), tmp_path) as replica:
        _hook(tg, replica)
        chat = tg.private_chat(5005)
        bad = tg.send_text("爆炸了怎么办", chat)
        tg.wait_acked(bad)
        good = tg.send_text(KNOWN, chat)
        tg.wait_acked(good)
        texts = [r.result["text"] for r in _replies(tg, chat.id)]
        assert texts[0] == tm.FAILED and "17076" in texts[1]
        assert [s for uid, s, _ in tg.webhook_statuses() if uid == bad["update_id"]] == [200]
        assert _metric(replica, 'reportqa_updates_total{outcome="error"}') == 1


def test_health_and_metrics_endpoints(tg, retriever, tmp_path):
    with WebhookReplica(tg, retriever, tmp_path) as replica:
        assert http("GET", replica.base() + "/livez") == (200, b"ok\n")
        status, body = http("GET", replica.base() + "/readyz")
        assert status == 200 and json.loads(body) == {"index": True, "store": True, "application": True}
        status, body = http("GET", replica.base() + "/metrics")
        text = body.decode()
        for name in ("reportqa_updates_total", "reportqa_answer_seconds_bucket", "reportqa_retrieval_seconds_bucket",
                     "reportqa_telegram_api_errors_total", "reportqa_updates_in_progress"):
            assert name in text or name.replace("_total", "") in text, name
        assert "chat" not in text.lower()  # never labelled by chat
        from sqlalchemy import create_engine

        working = replica.log._engine  # the store becomes unreachable: not ready, updates refused for a retry
        replica.log._engine = create_engine(f"sqlite:///{tmp_path}/gone/questions.sqlite3")
        status, body = http("GET", replica.base() + "/readyz")
        assert status == 503 and json.loads(body)["store"] is False
        update = {"update_id": 5, "message": {"message_id": 1, "date": 0, "text": KNOWN,
                                               "chat": {"id": 5006, "type": "private"}}}
        assert _post(replica, update) == 503 and tg.calls_of("sendMessage") == []
        replica.log._engine = working  # back: the same update is taken and answered
        assert _post(replica, update) == 200


def test_set_webhook_registers_the_secret_and_keeps_pending_updates(tg, capsys):
    env = {"TELEGRAM_BOT_TOKEN": tg.token, "TELEGRAM_API_BASE_URL": tg.base_url,
           "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET, "TELEGRAM_WEBHOOK_MAX_CONNECTIONS": "8"}
    pending = tg.send_text(KNOWN)
    assert set_webhook("http://127.0.0.1:9/telegram", env) == 0
    hook = tg.webhook
    assert hook["url"] == "http://127.0.0.1:9/telegram" and hook["secret_token"] == WEBHOOK_SECRET
    assert int(hook["max_connections"]) == 8 and hook["drop_pending_updates"] in (False, "false", "False")
    assert set(hook["allowed_updates"]) == {"message", "callback_query", "inline_query"}
    assert "only https://" in capsys.readouterr().err
    deadline = time.monotonic() + 10  # the update queued before kept: Telegram tries to deliver it there
    while not any(uid == pending["update_id"] for uid, _, _ in tg.webhook_statuses()):
        assert time.monotonic() < deadline, "the pending update was dropped"
        time.sleep(0.05)
    assert tg.acked(pending) == 0  # nothing listens on port 9: still pending, retried
    assert set_webhook("not a url", env) == 2
    assert set_webhook("https://bot.example.org/telegram", {**env, "TELEGRAM_WEBHOOK_SECRET": ""}) == 2
    err = capsys.readouterr().err
    assert "TELEGRAM_WEBHOOK_SECRET is not set" in err and tg.token not in err


@pytest.mark.parametrize(("env", "message"), [
    ({}, "TELEGRAM_WEBHOOK_SECRET is not set"),
    ({"TELEGRAM_WEBHOOK_SECRET": "has spaces in it"}, "TELEGRAM_WEBHOOK_SECRET is malformed"),
    ({"TELEGRAM_WEBHOOK_SECRET": "ok", "TELEGRAM_WEBHOOK_LISTEN": "8080"}, "TELEGRAM_WEBHOOK_LISTEN must be"),
    ({"TELEGRAM_WEBHOOK_SECRET": "ok", "TELEGRAM_WEBHOOK_PATH": "/metrics"}, "TELEGRAM_WEBHOOK_PATH must be"),
    ({"TELEGRAM_WEBHOOK_SECRET": "ok", "REPORTQA_REPLICAS": "0"}, "REPORTQA_REPLICAS must be"),
])
def test_webhook_settings_are_checked_before_anything_loads(tg, tmp_path, capsys, env, message):
    base = {"TELEGRAM_BOT_TOKEN": tg.token, "TELEGRAM_API_BASE_URL": tg.base_url}
    assert run_webhook(Settings(home=tmp_path), {**base, **env}) == 2
    err = capsys.readouterr().err
    assert message in err and tg.token not in err and len(err.strip().splitlines()) == 1


def test_replicas_split_the_message_budget():
    from bot.telegram.settings import options_from_env

    assert options_from_env({"REPORTQA_REPLICAS": "3"}).max_messages_per_second == 10.0
    assert options_from_env({"REPORTQA_REPLICAS": "2", "TELEGRAM_MAX_MESSAGES_PER_SECOND": "20"}
                            ).max_messages_per_second == 10.0


def test_webhook_process_finishes_the_update_in_flight_on_sigterm(tg, tmp_path):
    import socket

    with socket.socket() as probe:  # a free port for the child to listen on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    err = tmp_path / "stderr.log"
    env = {"TELEGRAM_BOT_TOKEN": tg.token, "TELEGRAM_API_BASE_URL": tg.base_url,
           "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET, "TELEGRAM_WEBHOOK_LISTEN": f"127.0.0.1:{port}",
           "TELEGRAM_TYPING_DELAY_SECONDS": "0"}
    proc = start_bot_process(tmp_path / "home", env, err, entry="run_webhook")
    try:
        deadline = time.monotonic() + 60
        while not (_listening(port) and http("GET", f"http://127.0.0.1:{port}/readyz")[0] == 200):
            assert time.monotonic() < deadline and proc.poll() is None, err.read_text()
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/telegram"
        assert set_webhook(url, env) == 0
        tg.inject("sendChatAction", delay=1.5)  # keeps the handler busy while the signal arrives
        chat = tg.private_chat(5007)
        mark = tg.mark()
        update = tg.send_text(KNOWN, chat)
        tg.wait_for("sendChatAction", after=mark)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, err.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert tg.acked(update) == 1 and len(_replies(tg, chat.id)) == 1
    assert tg.token not in err.read_text() and "getUpdates" not in " ".join(c.method for c in tg.calls)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_a_taken_port_is_one_clear_line_before_anything_loads(tg, tmp_path, capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        env = {"TELEGRAM_BOT_TOKEN": tg.token, "TELEGRAM_API_BASE_URL": tg.base_url,
               "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET, "TELEGRAM_WEBHOOK_LISTEN": f"127.0.0.1:{port}"}
        assert run_webhook(Settings(home=tmp_path), env) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"reportqa: error: cannot listen on TELEGRAM_WEBHOOK_LISTEN=127.0.0.1:{port}")
    assert len(err.splitlines()) == 1


def test_polling_serves_health_and_metrics_beside_it(tg, tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    err = tmp_path / "stderr.log"
    env = {"TELEGRAM_BOT_TOKEN": tg.token, "TELEGRAM_API_BASE_URL": tg.base_url,
           "REPORTQA_METRICS_LISTEN": f"127.0.0.1:{port}"}
    proc = start_bot_process(tmp_path / "home", env, err)
    base = f"http://127.0.0.1:{port}"
    try:
        tg.wait_polling(timeout=60)
        chat = tg.private_chat(5008)
        mark = tg.mark()
        tg.send_text(KNOWN, chat)
        tg.wait_for("sendMessage", lambda c: c.params["chat_id"] == chat.id, after=mark)
        assert http("GET", base + "/livez") == (200, b"ok\n")
        assert http("GET", base + "/readyz")[0] == 200
        deadline = time.monotonic() + 10  # the count follows the reply by a moment
        while 'reportqa_updates_total{outcome="answered"} 1.0' not in http("GET", base + "/metrics")[1].decode():
            assert time.monotonic() < deadline, http("GET", base + "/metrics")[1].decode()
            time.sleep(0.05)
        assert http("POST", base + "/telegram", b"{}")[0] in (404, 405)  # no update endpoint when polling
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, err.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_per_chat_limit_is_shared_by_the_replicas(tg, retriever, tmp_path):
    from dataclasses import replace

    from bot_harness import FAST

    limited = replace(FAST, questions_per_window=2, rate_window_seconds=60.0)
    home = tmp_path / "shared"
    with WebhookReplica(tg, retriever, home, limited) as a, WebhookReplica(tg, retriever, home, limited) as b:
        _hook(tg, a)
        tg.upstreams = [a.url, b.url]  # round-robin: the chat's questions alternate between the two
        chat = tg.private_chat(5009)
        for q in (KNOWN, "行政复议案件办理了多少件？", "法律顾问发挥了什么作用？"):
            tg.wait_acked(tg.send_text(q, chat))
        texts = [r.result["text"] for r in _replies(tg, chat.id)]
        assert len(texts) == 3 and texts[0].startswith("❓") and texts[1].startswith("❓")
        assert texts[2].startswith(tm.RATE_LIMITED.split("{")[0]), texts[2]  # the third: refused, politely


def test_json_log_lines_carry_update_hashed_chat_outcome_and_latency(tg, retriever, tmp_path, caplog):
    import logging

    from bot.telegram.redaction import JsonFormatter, RedactingFilter

    with caplog.at_level(logging.INFO, logger="reportqa.telegram"), WebhookReplica(tg, retriever, tmp_path) as replica:
        _hook(tg, replica)
        chat = tg.private_chat(5010)
        update = tg.send_text(KNOWN, chat)
        tg.wait_acked(update)
    (record,) = [r for r in caplog.records if r.getMessage().startswith("question #")]
    RedactingFilter(tg.token).filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["update_id"] == update["update_id"] and line["outcome"] == "answered"
    assert line["latency_ms"] > 0 and len(line["chat"]) == 16 and str(chat.id) not in json.dumps(line)
    assert KNOWN not in json.dumps(line, ensure_ascii=False)  # no question text in log lines


def test_a_reply_telegram_refused_has_the_update_delivered_again_and_answered_once(tg, retriever, tmp_path):
    """Flood control outlasting the bot's own retries: the update gets a 503 (claim released), and
    Telegram's re-delivery is answered — late, not never, and once."""
    with WebhookReplica(tg, retriever, tmp_path) as replica:
        _hook(tg, replica)
        chat = tg.private_chat(5011)
        tg.inject("sendMessage", 429, retry_after=1, times=3, when=lambda p: p.get("chat_id") == chat.id)
        update = tg.send_text(KNOWN, chat)
        tg.wait_acked(update, timeout=60)
        assert [s for uid, s, _ in tg.webhook_statuses() if uid == update["update_id"]] == [503, 200]
        (reply,) = _replies(tg, chat.id)
        assert "17076" in reply.result["text"]
