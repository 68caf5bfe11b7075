"""The bot's question log: what it stores (and must not), votes, and the 👎 export for staff."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest

from bot.question_log import (
    LOG_DIR,
    SALT_FILE,
    QuestionLog,
    QuestionLogError,
    export_draft_eval,
    log_path,
)
from retrieval.answer import Answer, Hit
from retrieval.errors import ReportQAError

CHAT_ID = 987654321


def hit(section_id: str, rank: int = 1) -> Hit:
    return Hit(
        rank=rank,
        score=0.9,
        report_id="hengyang-2019-fazhi",
        report_title="衡阳市2019年度法治政府建设情况报告",
        report_date="2020-03-17",
        section_id=section_id,
        section_label="七、(一)",
        section_title="推行多元化解机制",
        citation="《衡阳市2019年度法治政府建设情况报告》七、(一) 推行多元化解机制",
        text="2019年,全市共调解矛盾纠纷17076件。",
        highlight="2019年,全市共调解矛盾纠纷17076件。",
        highlight_start=0,
        highlight_end=21,
    )


@pytest.fixture
def log(tmp_path: Path):
    log = QuestionLog.open(tmp_path)
    yield log
    log.close()


def test_records_question_hits_and_flags_but_only_a_salted_hash_of_the_chat(tmp_path: Path, log: QuestionLog):
    row = log.record(CHAT_ID, "private", Answer("2019年调解了多少纠纷？", True, [hit("7.1"), hit("7.3", 2)]))
    got = log.get(row)
    assert got.question == "2019年调解了多少纠纷？"
    assert got.answered is True
    assert [h["section_id"] for h in got.hits] == ["7.1", "7.3"]
    assert got.vote is None and got.asked_at
    assert got.chat_hash != str(CHAT_ID) and len(got.chat_hash) == 64
    dump = b"".join(p.read_bytes() for p in (tmp_path / LOG_DIR).iterdir() if p.name != SALT_FILE)
    assert str(CHAT_ID).encode() not in dump  # the raw chat id is nowhere in the database files


def test_same_chat_same_hash_but_another_install_hashes_differently(tmp_path: Path, log: QuestionLog):
    assert log.chat_hash(CHAT_ID) == log.chat_hash(CHAT_ID)
    assert log.chat_hash(CHAT_ID) != log.chat_hash(CHAT_ID + 1)
    other = QuestionLog.open(tmp_path / "other-install")
    try:
        assert other.chat_hash(CHAT_ID) != log.chat_hash(CHAT_ID)
    finally:
        other.close()


def test_salt_is_private_and_kept_across_restarts(tmp_path: Path, log: QuestionLog):
    salt = tmp_path / LOG_DIR / SALT_FILE
    assert stat.S_IMODE(salt.stat().st_mode) == 0o600
    before = log.chat_hash(CHAT_ID)
    again = QuestionLog.open(tmp_path)
    try:
        assert again.chat_hash(CHAT_ID) == before
    finally:
        again.close()


def test_database_uses_wal(tmp_path: Path, log: QuestionLog):
    log.record(1, "private", Answer("q", True))
    conn = sqlite3.connect(log_path(tmp_path))
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_normalized_question_falls_back_to_our_normalization(log: QuestionLog):
    row = log.record(1, "private", Answer("  公积金　利率ＡＢＣ？ ", False))
    assert log.get(row).normalized_question == "公积金 利率abc?"


def test_vote_is_recorded_and_a_missing_row_is_reported(log: QuestionLog):
    row = log.record(1, "private", Answer("q", True, [hit("7.1")]))
    assert log.vote(row, helpful=True).vote == 1
    assert log.vote(row, helpful=False).vote == -1
    assert log.get(row).voted_at
    assert log.vote(row + 100, helpful=True) is None
    assert log.get(row + 100) is None


def test_row_ids_survive_reopening(tmp_path: Path, log: QuestionLog):
    row = log.record(1, "private", Answer("q", True))
    log.close()
    again = QuestionLog.open(tmp_path)
    try:
        assert again.get(row).question == "q"
        assert again.record(1, "private", Answer("q2", True)) == row + 1
    finally:
        again.close()


def test_export_writes_thumbs_down_questions_once_each_as_draft_eval(tmp_path: Path, log: QuestionLog):
    a = log.record(1, "private", Answer("公积金利率是多少", False, [hit("3.2")]))
    b = log.record(2, "group", Answer("公积金利率是多少 ", False, [hit("3.2")]))  # same question again
    c = log.record(1, "private", Answer("调解了多少纠纷", True, [hit("7.1")]))
    d = log.record(3, "private", Answer("What is the budget?", False))
    for row, helpful in ((a, False), (b, False), (c, True), (d, False)):
        log.vote(row, helpful)
    out = tmp_path / "draft.jsonl"
    assert export_draft_eval(tmp_path, out) == 2
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows[0] == {
        "id": f"bot-{a}",
        "question": "公积金利率是多少",
        "report_id": "hengyang-2019-fazhi",
        "gold_sections": [],
        "answer_key": None,
        "split": "tune",
        "lang": "zh",
        "kind": "todo",
        "bot_hits": rows[0]["bot_hits"],
    }
    assert rows[0]["bot_hits"][0]["section_id"] == "3.2"
    assert rows[1]["question"] == "What is the budget?" and rows[1]["lang"] == "en"
    assert rows[1]["report_id"] is None


def test_export_without_a_log_is_a_one_line_error(tmp_path: Path):
    with pytest.raises(ReportQAError) as err:
        export_draft_eval(tmp_path / "nowhere", tmp_path / "out.jsonl")
    assert "no question log" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out.jsonl").exists()


def test_corrupt_database_is_a_one_line_error(tmp_path: Path):
    (tmp_path / LOG_DIR).mkdir()
    log_path(tmp_path).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(QuestionLogError) as err:
        QuestionLog.open(tmp_path)
    assert "not a usable SQLite database" in str(err.value)


def test_unwritable_home_is_a_one_line_error(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(QuestionLogError) as err:
        QuestionLog.open(blocker / "home")
    assert "cannot create the question log folder" in str(err.value)


def test_conversation_memory_expires_resets_and_is_deleted_with_the_chat(tmp_path: Path, log: QuestionLog):
    from datetime import UTC, datetime, timedelta

    turns = [{"question": "2018年罗湖区GDP是多少", "understood_as": "2018年罗湖区GDP是多少"}]
    log.save_conversation(CHAT_ID, None, turns=turns, scope={"region": "罗湖区"})
    assert log.conversation(CHAT_ID, None) == (turns, {"region": "罗湖区"})
    assert log.conversation(CHAT_ID, 7) == ([], {})  # another forum topic is another conversation
    later = datetime.now(UTC) + timedelta(minutes=31)
    assert log.conversation(CHAT_ID, None, max_age_minutes=30, now=later) == ([], {"region": "罗湖区"})
    log.reset_conversation(CHAT_ID, None)
    assert log.conversation(CHAT_ID, None) == ([], {"region": "罗湖区"})  # /reset keeps the scope
    raw = (tmp_path / LOG_DIR / "questions.sqlite3").read_bytes()
    assert str(CHAT_ID).encode() not in raw
    log.save_conversation(CHAT_ID, None, turns=turns)
    assert log.expire_conversations(30) == 0  # still fresh: kept
    assert log.expire_conversations(30, now=later) == 1  # idle past the limit: the questions are gone
    raw = (tmp_path / LOG_DIR / "questions.sqlite3").read_bytes()
    assert "2018年罗湖区GDP".encode() not in raw and log.conversation(CHAT_ID, None) == ([], {"region": "罗湖区"})
    log.save_conversation(CHAT_ID, None, turns=turns)
    assert log.purge_older_than(1, now=datetime.now(UTC) + timedelta(days=2)) == 0
    assert log.conversation(CHAT_ID, None) == ([], {})  # retention removes conversations too
    log.save_conversation(CHAT_ID, None, turns=turns)
    log.forget_chat(CHAT_ID)
    assert log.conversation(CHAT_ID, None) == ([], {})


def test_a_schema_1_log_is_upgraded_in_place(tmp_path: Path):
    folder = tmp_path / LOG_DIR
    folder.mkdir()
    conn = sqlite3.connect(folder / "questions.sqlite3")
    conn.executescript(
        "CREATE TABLE questions (id INTEGER PRIMARY KEY AUTOINCREMENT, asked_at TEXT NOT NULL, chat_hash TEXT NOT NULL,"
        " chat_kind TEXT NOT NULL, question TEXT NOT NULL, normalized_question TEXT NOT NULL,"
        " answered INTEGER NOT NULL, hits TEXT NOT NULL, vote INTEGER, voted_at TEXT);"
        "INSERT INTO questions (asked_at, chat_hash, chat_kind, question, normalized_question, answered, hits)"
        " VALUES ('2026-01-01T00:00:00+00:00', 'x', 'private', '旧问题', '旧问题', 1, '[]');"
        "PRAGMA user_version=1;"
    )
    conn.commit()
    conn.close()
    log = QuestionLog.open(tmp_path)
    try:
        (old,) = log.rows()
        assert old.question == "旧问题" and old.year is None and old.understood_as is None
        log.save_conversation(CHAT_ID, None, turns=[])
    finally:
        log.close()
