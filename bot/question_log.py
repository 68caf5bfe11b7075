"""The bot's question and feedback log: SQLite (WAL) under REPORTQA_HOME.

Why it exists: staff learn which questions the reports fail to answer (👎 → draft eval file), and
the bot's buttons carry only a row id, so paging and voting keep working after a restart.
Privacy: no user ids, names or usernames are stored; a chat is kept only as an HMAC of its id
under a random per-install salt (so the hashes cannot be reversed by trying ids without the salt
file, and do not match across installs). Questions are kept for a retention period (the bot
deletes older ones at start and daily); deleted rows are overwritten (`secure_delete`), not just
unlinked. Maintenance without the bot running (docs/SECURITY.md):

    reportqa feedback purge --days 30      # delete questions older than 30 days
    reportqa feedback forget-chat 12345    # delete every question of one chat id
    reportqa feedback stats                # how many rows, oldest and newest
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from retrieval.answer import Answer
from retrieval.errors import ReportQAError

LOG_DIR = "telegram"
DB_FILE = "questions.sqlite3"
SALT_FILE = "chat-id-salt"
SCHEMA_VERSION = 4  # 2: questions.year; 3: questions.understood_as, conversations; 4: updates
DEFAULT_CONVERSATION_MINUTES = 30
DEFAULT_RETENTION_DAYS = 90

_SCHEMA = """
CREATE TABLE IF NOT EXISTS questions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,   -- AUTOINCREMENT: an old button never meets a new row
    asked_at TEXT NOT NULL,                 -- ISO 8601 UTC
    chat_hash TEXT NOT NULL,                -- HMAC-SHA256(salt, chat id), hex
    chat_kind TEXT NOT NULL,                -- private / group / supergroup / channel
    question TEXT NOT NULL,
    normalized_question TEXT NOT NULL,
    answered INTEGER NOT NULL,              -- 0: the reports do not cover it
    hits TEXT NOT NULL,                     -- JSON list of the first page's hit references
    vote INTEGER,                           -- +1 👍, -1 👎, NULL none
    voted_at TEXT,
    year INTEGER,                           -- the year a year button asked for; NULL: as asked
    understood_as TEXT                      -- the standalone question searched (a follow-up rewritten)
);
CREATE INDEX IF NOT EXISTS questions_vote ON questions(vote);
CREATE TABLE IF NOT EXISTS conversations (  -- one per chat (per forum topic in groups)
    chat_hash TEXT NOT NULL,                -- HMAC of the chat id, as above
    thread INTEGER NOT NULL,                -- forum topic id, 0 outside topics
    updated_at TEXT NOT NULL,               -- ISO 8601 UTC of the last turn
    turns TEXT NOT NULL,                    -- JSON list of the last turns (retrieval.followup.Turn)
    scope TEXT NOT NULL,                    -- JSON: {"report": id, "region": name} chosen with /report
    PRIMARY KEY (chat_hash, thread)
);
CREATE TABLE IF NOT EXISTS updates (        -- webhook deliveries claimed by a serving process (no double answers)
    update_id INTEGER PRIMARY KEY,          -- Telegram's update id (membership, not a high-water mark)
    owner TEXT NOT NULL,                    -- random id of the process that claimed it
    lease_until REAL NOT NULL,              -- unix time; after it another process may take the update over
    received_at TEXT NOT NULL,              -- ISO 8601 UTC; rows are dropped after UPDATE_MEMORY_HOURS
    answered_at TEXT                        -- set once handled; NULL while in progress
);
"""
UPDATE_MEMORY_HOURS = 24  # Telegram gives up re-delivering an update after about a day


class QuestionLogError(ReportQAError):
    """The question log cannot be created, read or written."""


@dataclass(frozen=True)
class LoggedQuestion:
    row_id: int
    asked_at: str
    chat_hash: str
    chat_kind: str
    question: str
    normalized_question: str
    answered: bool
    hits: list[dict]
    vote: int | None
    voted_at: str | None
    year: int | None = None  # asked for this year (a year button)
    understood_as: str | None = None  # the standalone question searched, when it differs


def normalize_question(question: str) -> str:
    """NFKC (full-width → half-width), lower case, single spaces: groups repeats of one question."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", question)).strip().lower()


def hit_refs(answer: Answer) -> list[dict]:
    """What the log keeps of each hit: enough to find the passage again, not the text."""
    return [
        {
            "rank": h.rank,
            "report_id": h.report_id,
            "section_id": h.section_id,
            "citation": h.citation,
            "score": round(float(h.score), 4),
        }
        for h in answer.hits
    ]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _cutoff(days: int, now: datetime | None = None) -> str:
    """The asked_at value below which a row is older than `days` (ISO strings sort by time)."""
    return ((now or datetime.now(UTC)) - timedelta(days=days)).isoformat(timespec="seconds")


def log_path(home: Path) -> Path:
    return Path(home) / LOG_DIR / DB_FILE


def _load_or_create_salt(path: Path) -> bytes:
    try:
        salt = path.read_bytes()
    except FileNotFoundError:
        salt = secrets.token_bytes(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race: use its salt
            return path.read_bytes()
        with os.fdopen(fd, "wb") as f:
            f.write(salt)
        return salt
    except OSError as exc:
        raise QuestionLogError(f"cannot read the chat-id salt {path}: {exc.strerror}") from exc
    if len(salt) < 16:
        raise QuestionLogError(f"the chat-id salt {path} is damaged (too short); delete it to make a new one")
    return salt


class QuestionLog:
    """One SQLite connection shared by the bot's threads (guarded by a lock)."""

    def __init__(self, conn: sqlite3.Connection, salt: bytes, path: Path):
        self._conn = conn
        self._salt = salt
        self._lock = threading.Lock()
        self.path = path

    @classmethod
    def open(cls, home: Path) -> QuestionLog:
        """Open (creating if needed) the log under `home`; QuestionLogError if that is impossible."""
        folder = Path(home) / LOG_DIR
        path = folder / DB_FILE
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # questions are personal data
            if not path.exists():  # created owner-only; SQLite gives its -wal/-shm files the same mode
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        except OSError as exc:
            raise QuestionLogError(f"cannot create the question log folder {folder}: {exc.strerror}") from exc
        salt = _load_or_create_salt(folder / SALT_FILE)
        try:
            conn = sqlite3.connect(path, check_same_thread=False, timeout=10)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA secure_delete=ON")  # deleted questions are overwritten, not left in free pages
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise QuestionLogError(
                    f"question log {path} is from a newer reportqa (schema {version}); upgrade reportqa"
                )
            conn.executescript(_SCHEMA)
            _migrate(conn, version)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.commit()
        except sqlite3.DatabaseError as exc:
            raise QuestionLogError(f"question log {path} is not a usable SQLite database: {exc}") from exc
        return cls(conn, salt, path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def chat_hash(self, chat_id: int) -> str:
        return hmac.new(self._salt, str(chat_id).encode("ascii"), hashlib.sha256).hexdigest()

    def record(self, chat_id: int, chat_kind: str, answer: Answer, year: int | None = None) -> int:
        """Log a question and its first page of hits; the row id is what the buttons carry."""
        normalized = answer.normalized_question or normalize_question(answer.question)
        row = (
            _now(),
            self.chat_hash(chat_id),
            chat_kind,
            answer.question,
            normalized,
            int(answer.answered),
            json.dumps(hit_refs(answer), ensure_ascii=False),
            year,
            answer.understood_as if answer.understood_as and answer.understood_as != answer.question else None,
        )
        with self._lock, self._write():
            cur = self._conn.execute(
                "INSERT INTO questions (asked_at, chat_hash, chat_kind, question, normalized_question,"
                " answered, hits, year, understood_as) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            return int(cur.lastrowid)

    def get(self, row_id: int) -> LoggedQuestion | None:
        with self._lock:
            cur = self._conn.execute(
                "SELECT id, asked_at, chat_hash, chat_kind, question, normalized_question, answered, hits,"
                " vote, voted_at, year, understood_as FROM questions WHERE id = ?",
                (row_id,),
            )
            found = cur.fetchone()
        return None if found is None else _row(found)

    def vote(self, row_id: int, helpful: bool) -> LoggedQuestion | None:
        """Record 👍/👎 (a later vote replaces an earlier one); None if the row is gone."""
        with self._lock, self._write():
            self._conn.execute(
                "UPDATE questions SET vote = ?, voted_at = ? WHERE id = ?",
                (1 if helpful else -1, _now(), row_id),
            )
        return self.get(row_id)

    def rows(self) -> list[LoggedQuestion]:
        with self._lock:
            cur = self._conn.execute(
                "SELECT id, asked_at, chat_hash, chat_kind, question, normalized_question, answered, hits,"
                " vote, voted_at, year, understood_as FROM questions ORDER BY id"
            )
            return [_row(r) for r in cur.fetchall()]

    def purge_older_than(self, days: int, now: datetime | None = None) -> int:
        """Delete questions asked more than `days` days ago (the retention period); returns how many.

        The WAL is checkpointed afterwards so the deleted text does not linger in it either.
        """
        if days < 1:
            raise QuestionLogError(f"retention must be at least 1 day, not {days}")
        self._delete_conversations("updated_at < ?", (_cutoff(days, now),))
        return self._delete("asked_at < ?", (_cutoff(days, now),))

    def forget_chat(self, chat_id: int) -> int:
        """Delete every question and the conversation memory of one chat (a user's request to be
        forgotten); returns how many questions."""
        self._delete_conversations("chat_hash = ?", (self.chat_hash(chat_id),))
        return self._delete("chat_hash = ?", (self.chat_hash(chat_id),))

    # ------------------------------------------------------------ webhook update claims

    def claim_update(self, update_id: int, owner: str, lease_seconds: float, now: float | None = None) -> str:
        """Claim an update before handling it: "claimed" (new, or taken over from an owner whose lease
        ran out), "answered" (handled already: a re-delivery), or "held" (in progress, here or in
        another live process: Telegram re-sent it while the first delivery is still being answered).

        One upsert, so two processes claiming at once cannot both win.
        """
        now = time.time() if now is None else now
        with self._lock, self._write():
            won = self._conn.execute(
                "INSERT INTO updates (update_id, owner, lease_until, received_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(update_id) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until"
                " WHERE updates.answered_at IS NULL AND updates.lease_until < ?"
                " RETURNING owner",
                (update_id, owner, now + lease_seconds, _now(), now),
            ).fetchone()
            if won is not None:
                return "claimed"
            row = self._conn.execute("SELECT answered_at FROM updates WHERE update_id = ?", (update_id,)).fetchone()
        return "answered" if row is not None and row[0] is not None else "held"

    def renew_update(self, update_id: int, owner: str, lease_seconds: float) -> None:
        """Extend the lease of an update this process is still answering."""
        with self._lock, self._write():
            self._conn.execute(
                "UPDATE updates SET lease_until = ? WHERE update_id = ? AND owner = ? AND answered_at IS NULL",
                (time.time() + lease_seconds, update_id, owner),
            )

    def finish_update(self, update_id: int, owner: str) -> None:
        """Mark a claimed update handled (re-deliveries are then acknowledged without an answer)."""
        with self._lock, self._write():
            self._conn.execute(
                "UPDATE updates SET answered_at = ? WHERE update_id = ? AND owner = ?", (_now(), update_id, owner)
            )

    def release_update(self, update_id: int, owner: str) -> None:
        """Give a claimed, unhandled update back at once (this process is stopping before handling it)."""
        with self._lock, self._write():
            self._conn.execute(
                "DELETE FROM updates WHERE update_id = ? AND owner = ? AND answered_at IS NULL", (update_id, owner)
            )

    def forget_old_updates(self, now: datetime | None = None) -> int:
        cutoff = ((now or datetime.now(UTC)) - timedelta(hours=UPDATE_MEMORY_HOURS)).isoformat(timespec="seconds")
        with self._lock, self._write():
            return int(self._conn.execute("DELETE FROM updates WHERE received_at < ?", (cutoff,)).rowcount)

    def ping(self) -> bool:
        """The store answers (for /readyz)."""
        try:
            with self._lock:
                self._conn.execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    # ------------------------------------------------------------ conversation memory

    def conversation(
        self, chat_id: int, thread: int | None, max_age_minutes: float = DEFAULT_CONVERSATION_MINUTES,
        now: datetime | None = None,
    ) -> tuple[list[dict], dict]:
        """The chat's remembered turns (none once older than `max_age_minutes`) and its scope."""
        with self._lock:
            found = self._conn.execute(
                "SELECT updated_at, turns, scope FROM conversations WHERE chat_hash = ? AND thread = ?",
                (self.chat_hash(chat_id), thread or 0),
            ).fetchone()
        if found is None:
            return [], {}
        updated_at, turns, scope = found
        fresh = datetime.fromisoformat(updated_at) >= (now or datetime.now(UTC)) - timedelta(minutes=max_age_minutes)
        return (json.loads(turns) if fresh else []), json.loads(scope)

    def save_conversation(
        self, chat_id: int, thread: int | None, turns: list[dict] | None = None, scope: dict | None = None
    ) -> None:
        """Replace the chat's turns and/or scope (None: keep what is stored)."""
        key = (self.chat_hash(chat_id), thread or 0)
        with self._lock, self._write():
            row = self._conn.execute(
                "SELECT turns, scope FROM conversations WHERE chat_hash = ? AND thread = ?", key
            ).fetchone()
            old_turns, old_scope = (json.loads(row[0]), json.loads(row[1])) if row else ([], {})
            self._conn.execute(
                "INSERT INTO conversations (chat_hash, thread, updated_at, turns, scope) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(chat_hash, thread) DO UPDATE SET updated_at = excluded.updated_at,"
                " turns = excluded.turns, scope = excluded.scope",
                (*key, _now(), json.dumps(old_turns if turns is None else turns, ensure_ascii=False),
                 json.dumps(old_scope if scope is None else scope, ensure_ascii=False)),
            )

    def expire_conversations(self, max_age_minutes: float, now: datetime | None = None) -> int:
        """Blank the turns of conversations idle for longer than `max_age_minutes` (they would be
        ignored anyway; the questions should not outlive their use); scopes stay. Returns how many."""
        cutoff = ((now or datetime.now(UTC)) - timedelta(minutes=max_age_minutes)).isoformat(timespec="seconds")
        with self._lock, self._write():
            return int(self._conn.execute(
                "UPDATE conversations SET turns = '[]' WHERE updated_at < ? AND turns != '[]'", (cutoff,)
            ).rowcount)

    def reset_conversation(self, chat_id: int, thread: int | None) -> None:
        """Forget the chat's turns (/reset); its scope stays."""
        self.save_conversation(chat_id, thread, turns=[])

    def _delete_conversations(self, where: str, args: tuple) -> int:
        with self._lock, self._write():
            return int(self._conn.execute(f"DELETE FROM conversations WHERE {where}", args).rowcount)

    def stats(self) -> tuple[int, str | None, str | None]:
        """(rows, oldest asked_at, newest asked_at)."""
        with self._lock:
            count, oldest, newest = self._conn.execute(
                "SELECT COUNT(*), MIN(asked_at), MAX(asked_at) FROM questions"
            ).fetchone()
        return int(count), oldest, newest

    def _delete(self, where: str, args: tuple) -> int:
        with self._lock:
            with self._write():
                removed = self._conn.execute(f"DELETE FROM questions WHERE {where}", args).rowcount
            if removed:  # a busy checkpoint is not an error: the next one completes it
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return int(removed)

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """Commit on success; roll back and raise a one-line QuestionLogError on a database error."""
        try:
            yield self._conn
            self._conn.commit()
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):  # a closed or broken connection cannot roll back
                self._conn.rollback()
            raise QuestionLogError(f"cannot write the question log {self.path}: {exc}") from exc


def _migrate(conn: sqlite3.Connection, version: int) -> None:
    """Bring a log written by an older reportqa up to SCHEMA_VERSION (rows are kept)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(questions)")}
    if version < 2 and "year" not in columns:
        conn.execute("ALTER TABLE questions ADD COLUMN year INTEGER")
    if version < 3 and "understood_as" not in columns:
        conn.execute("ALTER TABLE questions ADD COLUMN understood_as TEXT")


def _row(r: tuple) -> LoggedQuestion:
    return LoggedQuestion(
        row_id=r[0],
        asked_at=r[1],
        chat_hash=r[2],
        chat_kind=r[3],
        question=r[4],
        normalized_question=r[5],
        answered=bool(r[6]),
        hits=json.loads(r[7]),
        vote=r[8],
        voted_at=r[9],
        year=r[10],
        understood_as=r[11],
    )


_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def _lang(text: str) -> str:
    return "zh" if _CJK.search(text) else "en"


def export_draft_eval(home: Path, out: Path) -> int:
    """Write the 👎 questions as a draft eval JSONL for staff to label; returns how many.

    One line per distinct normalized question (its first 👎), in the order asked. Staff fill
    `gold_sections` / `answer_key` and set `kind`; `bot_hits` shows what the bot answered.
    """
    path = log_path(home)
    if not path.is_file():
        raise QuestionLogError(f"no question log at {path}: the Telegram bot has not run with this home")
    log = QuestionLog.open(home)
    try:
        rows = [r for r in log.rows() if r.vote is not None and r.vote < 0]
    finally:
        log.close()
    seen: set[str] = set()
    records = []
    for r in rows:
        if r.normalized_question in seen:
            continue
        seen.add(r.normalized_question)
        records.append(
            {
                "id": f"bot-{r.row_id}",
                "question": r.question,
                "report_id": r.hits[0]["report_id"] if r.hits else None,
                "gold_sections": [],
                "answer_key": None,
                "split": "tune",
                "lang": _lang(r.question),
                "kind": "todo",
                "bot_hits": r.hits,
            }
        )
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            for rec in records:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        tmp.replace(out)
    except OSError as exc:
        raise QuestionLogError(f"cannot write {out}: {exc.strerror}") from exc
    return len(records)
