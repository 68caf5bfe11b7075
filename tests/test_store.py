"""The bot's store on both backends — SQLite (the default) and a real PostgreSQL server — through the
one code path: questions, votes, conversations, update claims, retention, the salt replicas share,
migrations, and a database that is down. SQLite-only details (WAL, file modes, secure_delete) are in
test_telegram_log.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.question_log import QuestionLog, QuestionLogError, engine_url, export_draft_eval
from retrieval.answer import Answer

REPO = Path(__file__).resolve().parent.parent
CHAT = 987654321


@pytest.fixture
def log(store_url: str, tmp_path: Path):
    store = QuestionLog.open(tmp_path, url=store_url)
    yield store
    store.close()


def test_questions_votes_and_row_ids_survive_reopening(log, store_url, tmp_path):
    asked = Answer("2019年调解了多少纠纷？", True, normalized_question="2019年调解了多少纠纷?")
    first = log.record(CHAT, "private", asked)
    second = log.record(CHAT, "group", Answer("公积金利率", False), year=2018)
    assert second == first + 1
    assert log.vote(first, helpful=False).vote == -1 and log.vote(second + 50, helpful=True) is None
    log.close()
    again = QuestionLog.open(tmp_path, url=store_url)
    try:
        rows = again.rows()
        assert [(r.row_id, r.question, r.answered, r.vote, r.year) for r in rows] == [
            (first, "2019年调解了多少纠纷？", True, -1, None), (second, "公积金利率", False, None, 2018)]
        assert rows[0].chat_hash == again.chat_hash(CHAT) != str(CHAT)  # the same salt after a restart
        assert again.record(1, "private", Answer("q", True)) == second + 1  # ids never reused
        count, oldest, newest = again.stats()
        assert count == 3 and oldest <= newest
    finally:
        again.close()


def test_two_processes_on_one_store_hash_chats_alike_and_see_each_others_rows(log, store_url, tmp_path):
    other = QuestionLog.open(tmp_path, url=store_url)  # a second replica
    try:
        assert other.chat_hash(CHAT) == log.chat_hash(CHAT)
        row = other.record(CHAT, "private", Answer("q", True))
        assert log.get(row).question == "q"
        other.save_conversation(CHAT, 5, turns=[{"question": "q"}], scope={"region": "罗湖区"})
        assert log.conversation(CHAT, 5) == ([{"question": "q"}], {"region": "罗湖区"})
    finally:
        other.close()


def test_conversations_expire_reset_and_go_with_purge_and_forget(log):
    turns = [{"question": "2018年罗湖区GDP", "years": [2018]}]
    log.save_conversation(CHAT, None, turns=turns, scope={"region": "罗湖区"})
    assert log.conversation(CHAT, None) == (turns, {"region": "罗湖区"})
    assert log.conversation(CHAT, 7) == ([], {})
    later = datetime.now(UTC) + timedelta(minutes=31)
    assert log.expire_conversations(30, now=later) == 1
    assert log.conversation(CHAT, None) == ([], {"region": "罗湖区"})
    log.save_conversation(CHAT, None, turns=turns)
    log.reset_conversation(CHAT, None)
    assert log.conversation(CHAT, None) == ([], {"region": "罗湖区"})
    log.record(CHAT, "private", Answer("old", True))
    assert log.purge_older_than(1, now=datetime.now(UTC) + timedelta(days=2)) == 1
    assert log.conversation(CHAT, None) == ([], {}) and log.rows() == []
    log.record(CHAT, "private", Answer("mine", True))
    log.record(CHAT + 1, "private", Answer("theirs", True))
    log.save_conversation(CHAT, None, turns=turns)
    assert log.forget_chat(CHAT) == 1
    assert [r.question for r in log.rows()] == ["theirs"] and log.conversation(CHAT, None) == ([], {})


def test_update_claims_answer_each_update_once_across_processes(log, store_url, tmp_path):
    other = QuestionLog.open(tmp_path, url=store_url)
    try:
        results: list[tuple[str, str, QuestionLog]] = []
        tries = [(store, f"{name}{i}") for i in range(4) for store, name in ((log, "a"), (other, "b"))]
        claimers = [threading.Thread(target=lambda s=s, o=o: results.append((s.claim_update(42, o, 60), o, s)))
                    for s, o in tries]
        for t in claimers:
            t.start()
        for t in claimers:
            t.join()
        winners = [(owner, store) for result, owner, store in results if result == "claimed"]
        assert len(winners) == 1 and sorted(r for r, _, _ in results) == ["claimed"] + ["held"] * 7
        owner, store = winners[0]
        store.finish_update(42, owner)
        assert log.claim_update(42, "late", 60) == other.claim_update(42, "late2", 60) == "answered"
        assert log.claim_update(43, "dead", lease_seconds=-1) == "claimed"
        assert other.claim_update(43, "alive", 60) == "claimed"  # the dead owner's lease ran out: taken over
        other.renew_update(43, "alive", 60)
        assert log.claim_update(43, "third", 60) == "held"
        assert log.claim_update(43, "third", 60, now=time.time() + 61) == "claimed"  # renewed lease ran out
        assert log.forget_old_updates(now=datetime.now(UTC) + timedelta(days=2)) == 2
    finally:
        other.close()


def test_feedback_commands_and_export_work_on_the_store(log, store_url, tmp_path, monkeypatch):
    bad = log.record(CHAT, "private", Answer("公积金利率是多少", False))
    log.vote(bad, helpful=False)
    monkeypatch.setenv("REPORTQA_DATABASE_URL", store_url)
    out = tmp_path / "draft.jsonl"
    assert export_draft_eval(tmp_path, out) == 1
    assert json.loads(out.read_text(encoding="utf-8"))["question"] == "公积金利率是多少"
    env = {**os.environ, "REPORTQA_DATABASE_URL": store_url, "REPORTQA_HOME": str(tmp_path)}
    stats = subprocess.run([sys.executable, "-m", "bot.cli", "feedback", "stats"], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=120)
    assert stats.returncode == 0 and stats.stdout.startswith("1 question(s)"), stats.stderr
    forget = subprocess.run([sys.executable, "-m", "bot.cli", "feedback", "forget-chat", str(CHAT)], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=120)
    assert forget.returncode == 0 and "deleted 1 question(s)" in forget.stdout and log.rows() == []


def test_a_database_that_is_down_is_one_line_without_the_password(postgres, tmp_path):
    url = postgres.new_database().replace("reportqa@", "reportqa:s3cr3t-pass@").replace(
        f"host={postgres.socket}", "host=/nonexistent-socket-dir")
    with pytest.raises(QuestionLogError) as err:
        QuestionLog.open(tmp_path, url=url)
    message = str(err.value)
    assert "cannot be opened" in message and "s3cr3t" not in message and "\n" not in message
    env = {**os.environ, "REPORTQA_DATABASE_URL": url, "REPORTQA_HOME": str(tmp_path)}
    stats = subprocess.run([sys.executable, "-m", "bot.cli", "feedback", "stats"], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=120)
    assert stats.returncode != 0 and "s3cr3t" not in stats.stderr + stats.stdout
    assert "Traceback" not in stats.stderr and len(stats.stderr.strip().splitlines()) == 1, stats.stderr


def test_a_server_going_away_mid_run_is_a_clear_error_then_recovers(postgres, tmp_path):
    url = postgres.new_database()
    store = QuestionLog.open(tmp_path, url=url)
    try:
        store.record(CHAT, "private", Answer("before", True))
        with postgres.paused():
            assert store.ping() is False
            with pytest.raises(QuestionLogError, match="cannot write the question store"):
                store.record(CHAT, "private", Answer("during", True))
        assert store.ping() is True and [r.question for r in store.rows()] == ["before"]
    finally:
        store.close()


def test_urls_as_users_write_them():
    assert engine_url("postgresql://u:p@db/reportqa") == "postgresql+psycopg://u:p@db/reportqa"
    assert engine_url("postgres://u@db/reportqa") == "postgresql+psycopg://u@db/reportqa"
    with pytest.raises(QuestionLogError, match=r"must be a postgresql://") as err:
        engine_url("mysql://u:hunter2@db/x")
    assert "hunter2" not in str(err.value)


def test_a_pre_migration_sqlite_log_is_upgraded_in_place(tmp_path):
    import sqlite3

    folder = tmp_path / "telegram"
    folder.mkdir()
    conn = sqlite3.connect(folder / "questions.sqlite3")
    conn.executescript(  # the schema-3 log every earlier release wrote
        "CREATE TABLE questions (id INTEGER PRIMARY KEY AUTOINCREMENT, asked_at TEXT NOT NULL, chat_hash TEXT NOT NULL,"
        " chat_kind TEXT NOT NULL, question TEXT NOT NULL, normalized_question TEXT NOT NULL,"
        " answered INTEGER NOT NULL, hits TEXT NOT NULL, vote INTEGER, voted_at TEXT, year INTEGER,"
        " understood_as TEXT);"
        "CREATE INDEX questions_vote ON questions(vote);"
        "CREATE TABLE conversations (chat_hash TEXT NOT NULL, thread INTEGER NOT NULL, updated_at TEXT NOT NULL,"
        " turns TEXT NOT NULL, scope TEXT NOT NULL, PRIMARY KEY (chat_hash, thread));"
        "INSERT INTO questions (asked_at, chat_hash, chat_kind, question, normalized_question, answered, hits, vote)"
        " VALUES ('2026-11-01T00:00:00+00:00', 'h', 'private', '旧问题', '旧问题', 1, '[]', -1);"
        "INSERT INTO conversations VALUES ('h', 0, '2026-11-01T00:00:00+00:00', '[]', '{\"region\": \"盐田区\"}');"
        "PRAGMA user_version=3;"
    )
    conn.commit()
    conn.close()
    store = QuestionLog.open(tmp_path)
    try:
        (old,) = store.rows()
        assert (old.question, old.vote) == ("旧问题", -1)
        assert store.claim_update(1, "p", 60) == "claimed"  # the new table is there
        assert store.record(CHAT, "private", Answer("新问题", True)) == old.row_id + 1
    finally:
        store.close()
    conn = sqlite3.connect(folder / "questions.sqlite3")
    assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("0002",)
    assert conn.execute("SELECT scope FROM conversations").fetchone() == ('{"region": "盐田区"}',)
    conn.close()
