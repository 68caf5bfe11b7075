"""The bot's store: questions and feedback, conversation memory, webhook update claims.

SQLite under REPORTQA_HOME by default (WAL, 10 s busy timeout: processes on one host), or PostgreSQL
with `REPORTQA_DATABASE_URL=postgresql://user:pass@host/db` (processes on several hosts). One code
path: SQLAlchemy 2 Core with psycopg 3; the statements are the same on both (standard upserts with
ON CONFLICT, RETURNING). The schema is versioned by Alembic migrations (`bot/migrations`), applied
when the store is opened; a SQLite log from before migrations is upgraded in place, rows kept.

Why it exists: staff learn which questions the reports fail to answer (👎 → draft eval file), and
the bot's buttons carry only a row id, so paging and voting keep working after a restart.
Privacy: no user ids, names or usernames are stored; a chat is kept only as an HMAC of its id
under a random per-install salt (so the hashes cannot be reversed by trying ids without the salt,
and do not match across installs; a PostgreSQL store keeps its salt in the database, shared by its
replicas). Questions are kept for a retention period (the bot deletes older ones at start and
daily); in SQLite deleted rows are overwritten (`secure_delete`), not just unlinked. Maintenance
without the bot running (docs/SECURITY.md):

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
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from retrieval.answer import Answer
from retrieval.errors import ReportQAError
from retrieval.index_store import exclusive_lock

LOG_DIR = "telegram"
DB_FILE = "questions.sqlite3"
SALT_FILE = "chat-id-salt"
DATABASE_URL_ENV = "REPORTQA_DATABASE_URL"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LEGACY_REVISIONS = {3: "0001", 4: "0002"}  # PRAGMA user_version of a log from before Alembic → revision
DEFAULT_CONVERSATION_MINUTES = 30
DEFAULT_RETENTION_DAYS = 90
UPDATE_MEMORY_HOURS = 24  # Telegram gives up re-delivering an update after about a day
_SELECT_QUESTION = (
    "SELECT id, asked_at, chat_hash, chat_kind, question, normalized_question, answered, hits,"
    " vote, voted_at, year, understood_as FROM questions"
)


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


def engine_url(url: str) -> str:
    """A database URL as users write it → the SQLAlchemy URL (postgresql:// → the psycopg 3 driver)."""
    url = url.strip()
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    if url.startswith(("postgresql+psycopg://", "sqlite:///")):
        return url
    raise QuestionLogError(
        f"{DATABASE_URL_ENV} must be a postgresql://user:password@host/database URL (or sqlite:///path), "
        f"not {_shown(url)!r}"
    )


def _shown(url: str) -> str:
    """A URL fit for an error message: no password."""
    return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", url)[:200]


class QuestionLog:
    """The store; safe to share between the bot's threads (each call takes a pooled connection)."""

    def __init__(self, engine, salt: bytes, path: Path | None, where: str):
        self._engine = engine
        self._salt = salt
        self.path = path  # the SQLite file, None for PostgreSQL
        self.where = where  # for messages: the file, or the URL without its password

    @classmethod
    def open(cls, home: Path, url: str | None = None) -> QuestionLog:
        """Open (creating and migrating if needed) the store: `url` or REPORTQA_DATABASE_URL, else the
        SQLite file under `home`. QuestionLogError (one line) if that is impossible."""
        url = (url if url is not None else os.environ.get(DATABASE_URL_ENV, "")).strip()
        if url and not url.startswith("sqlite:///"):
            return cls._open_server(url)
        path = Path(url[len("sqlite:///"):]) if url else Path(home) / LOG_DIR / DB_FILE
        return cls._open_sqlite(path)

    @classmethod
    def _open_sqlite(cls, path: Path) -> QuestionLog:
        from sqlalchemy import create_engine, event

        folder = path.parent
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # questions are personal data
            if not path.exists():  # created owner-only; SQLite gives its -wal/-shm files the same mode
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        except OSError as exc:
            raise QuestionLogError(f"cannot create the question log folder {folder}: {exc.strerror}") from exc
        salt = _load_or_create_salt(folder / SALT_FILE)
        engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 10, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA secure_delete=ON")  # deleted questions are overwritten, not left in free pages
            cur.close()

        log = cls(engine, salt, path, str(path))
        lock = folder / ".migrate.lock"
        with exclusive_lock(lock, lambda e: QuestionLogError(f"cannot create {lock}: {e.strerror}")):
            # two processes starting at once migrate in turn
            log._migrate()
        return log

    @classmethod
    def _open_server(cls, url: str) -> QuestionLog:
        from sqlalchemy import create_engine

        where = _shown(url)
        engine = create_engine(engine_url(url), pool_pre_ping=True, pool_size=4, max_overflow=8,
                               connect_args={"connect_timeout": 5})
        log = cls(engine, b"", None, where)
        log._migrate()
        log._salt = log._shared_salt()
        return log

    def _migrate(self) -> None:
        """Bring the schema to the newest revision (Alembic), adopting a pre-Alembic SQLite log."""
        from alembic import command
        from alembic.config import Config
        from sqlalchemy import inspect, text

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self._engine.begin() as conn:
                if conn.dialect.name == "postgresql":  # replicas starting at once migrate one after the other
                    conn.execute(text("SELECT pg_advisory_xact_lock(727001)"))
                tables = set(inspect(conn).get_table_names())
                config.attributes["connection"] = conn
                if "questions" in tables and "alembic_version" not in tables:
                    command.stamp(config, _adopt_legacy(conn, tables))
                command.upgrade(config, "head")
        except QuestionLogError:
            raise
        except Exception as exc:  # noqa: BLE001 - any database or migration failure: one line, no traceback
            if self.path is not None:
                raise QuestionLogError(
                    f"question log {self.where} is not a usable SQLite database: {_reason(exc)}"
                ) from exc
            raise QuestionLogError(f"question store {self.where} cannot be opened: {_reason(exc)}") from exc

    def _shared_salt(self) -> bytes:
        """The install's salt from the database (made once; every replica reads the same one)."""
        with self._write() as conn:
            conn.exec(
                "INSERT INTO install (name, value) VALUES ('chat_id_salt', :value) ON CONFLICT (name) DO NOTHING",
                value=secrets.token_hex(32),
            )
            value = conn.exec("SELECT value FROM install WHERE name = 'chat_id_salt'").scalar_one()
        return bytes.fromhex(value)

    def close(self) -> None:
        self._engine.dispose()

    def chat_hash(self, chat_id: int) -> str:
        return hmac.new(self._salt, str(chat_id).encode("ascii"), hashlib.sha256).hexdigest()

    # ------------------------------------------------------------ questions and votes

    def record(self, chat_id: int, chat_kind: str, answer: Answer, year: int | None = None) -> int:
        """Log a question and its first page of hits; the row id is what the buttons carry."""
        with self._write() as conn:
            return int(conn.exec(
                "INSERT INTO questions (asked_at, chat_hash, chat_kind, question, normalized_question,"
                " answered, hits, year, understood_as) VALUES (:asked_at, :chat_hash, :chat_kind, :question,"
                " :normalized, :answered, :hits, :year, :understood_as) RETURNING id",
                asked_at=_now(),
                chat_hash=self.chat_hash(chat_id),
                chat_kind=chat_kind,
                question=answer.question,
                normalized=answer.normalized_question or normalize_question(answer.question),
                answered=int(answer.answered),
                hits=json.dumps(hit_refs(answer), ensure_ascii=False),
                year=year,
                understood_as=answer.understood_as
                if answer.understood_as and answer.understood_as != answer.question else None,
            ).scalar_one())

    def get(self, row_id: int) -> LoggedQuestion | None:
        with self._read() as conn:
            found = conn.exec(_SELECT_QUESTION + " WHERE id = :id", id=row_id).first()
        return None if found is None else _row(tuple(found))

    def vote(self, row_id: int, helpful: bool) -> LoggedQuestion | None:
        """Record 👍/👎 (a later vote replaces an earlier one); None if the row is gone."""
        with self._write() as conn:
            conn.exec("UPDATE questions SET vote = :vote, voted_at = :at WHERE id = :id",
                      vote=1 if helpful else -1, at=_now(), id=row_id)
        return self.get(row_id)

    def rows(self) -> list[LoggedQuestion]:
        with self._read() as conn:
            return [_row(tuple(r)) for r in conn.exec(_SELECT_QUESTION + " ORDER BY id").all()]

    def purge_older_than(self, days: int, now: datetime | None = None) -> int:
        """Delete questions asked more than `days` days ago (the retention period); returns how many.

        In SQLite the WAL is checkpointed afterwards so the deleted text does not linger in it either.
        """
        if days < 1:
            raise QuestionLogError(f"retention must be at least 1 day, not {days}")
        cutoff = _cutoff(days, now)
        self._delete("conversations", "updated_at < :cutoff", cutoff=cutoff)
        return self._delete("questions", "asked_at < :cutoff", cutoff=cutoff)

    def forget_chat(self, chat_id: int) -> int:
        """Delete every question and the conversation memory of one chat (a user's request to be
        forgotten); returns how many questions."""
        key = self.chat_hash(chat_id)
        self._delete("conversations", "chat_hash = :key", key=key)
        return self._delete("questions", "chat_hash = :key", key=key)

    def questions_since(self, chat_id: int, seconds: float) -> tuple[int, str | None]:
        """How many questions the chat asked in the last `seconds`, and when the oldest of them was asked."""
        since = (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat(timespec="seconds")
        with self._read() as conn:
            count, oldest = conn.exec(
                "SELECT COUNT(*), MIN(asked_at) FROM questions WHERE chat_hash = :key AND asked_at >= :since",
                key=self.chat_hash(chat_id), since=since,
            ).one()
        return int(count), oldest

    def stats(self) -> tuple[int, str | None, str | None]:
        """(rows, oldest asked_at, newest asked_at)."""
        with self._read() as conn:
            count, oldest, newest = conn.exec("SELECT COUNT(*), MIN(asked_at), MAX(asked_at) FROM questions").one()
        return int(count), oldest, newest

    # ------------------------------------------------------------ webhook update claims

    def claim_update(self, update_id: int, owner: str, lease_seconds: float, now: float | None = None) -> str:
        """Claim an update before handling it: "claimed" (new, or taken over from an owner whose lease
        ran out), "answered" (handled already: a re-delivery), or "held" (in progress, here or in
        another live process: Telegram re-sent it while the first delivery is still being answered).

        One upsert, so two processes claiming at once cannot both win.
        """
        now = time.time() if now is None else now
        with self._write() as conn:
            won = conn.exec(
                "INSERT INTO updates (update_id, owner, lease_until, received_at)"
                " VALUES (:id, :owner, :until, :received)"
                " ON CONFLICT (update_id) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until"
                " WHERE updates.answered_at IS NULL AND updates.lease_until < :now RETURNING owner",
                id=update_id, owner=owner, until=now + lease_seconds, received=_now(), now=now,
            ).first()
            if won is not None:
                return "claimed"
            answered = conn.exec("SELECT answered_at FROM updates WHERE update_id = :id", id=update_id).first()
        return "answered" if answered is not None and answered[0] is not None else "held"

    def renew_update(self, update_id: int, owner: str, lease_seconds: float) -> None:
        """Extend the lease of an update this process is still answering."""
        with self._write() as conn:
            conn.exec("UPDATE updates SET lease_until = :until WHERE update_id = :id AND owner = :owner"
                      " AND answered_at IS NULL", until=time.time() + lease_seconds, id=update_id, owner=owner)

    def finish_update(self, update_id: int, owner: str) -> None:
        """Mark a claimed update handled (re-deliveries are then acknowledged without an answer)."""
        with self._write() as conn:
            conn.exec("UPDATE updates SET answered_at = :at WHERE update_id = :id AND owner = :owner",
                      at=_now(), id=update_id, owner=owner)

    def release_update(self, update_id: int, owner: str) -> None:
        """Give a claimed update back unanswered (its reply could not be sent): the re-delivery that
        Telegram is asked for is then claimed and answered like a new one."""
        with self._write() as conn:
            conn.exec("DELETE FROM updates WHERE update_id = :id AND owner = :owner AND answered_at IS NULL",
                      id=update_id, owner=owner)

    def forget_old_updates(self, now: datetime | None = None) -> int:
        """Delete update claims older than UPDATE_MEMORY_HOURS; returns how many."""
        cutoff = ((now or datetime.now(UTC)) - timedelta(hours=UPDATE_MEMORY_HOURS)).isoformat(timespec="seconds")
        with self._write() as conn:
            return int(conn.exec("DELETE FROM updates WHERE received_at < :cutoff", cutoff=cutoff).rowcount)

    def ping(self) -> bool:
        """The store answers (for /readyz)."""
        try:
            with self._read() as conn:
                conn.exec("SELECT 1").first()
        except QuestionLogError:
            return False
        return True

    # ------------------------------------------------------------ conversation memory

    def conversation(
        self, chat_id: int, thread: int | None, max_age_minutes: float = DEFAULT_CONVERSATION_MINUTES,
        now: datetime | None = None,
    ) -> tuple[list[dict], dict]:
        """The chat's remembered turns (none once older than `max_age_minutes`) and its scope."""
        with self._read() as conn:
            found = conn.exec(
                "SELECT updated_at, turns, scope FROM conversations WHERE chat_hash = :key AND thread = :thread",
                key=self.chat_hash(chat_id), thread=thread or 0,
            ).first()
        if found is None:
            return [], {}
        updated_at, turns, scope = found
        fresh = datetime.fromisoformat(updated_at) >= (now or datetime.now(UTC)) - timedelta(minutes=max_age_minutes)
        return (json.loads(turns) if fresh else []), json.loads(scope)

    def save_conversation(
        self, chat_id: int, thread: int | None, turns: list[dict] | None = None, scope: dict | None = None
    ) -> None:
        """Replace the chat's turns and/or scope (None: keep what is stored)."""
        key, thread = self.chat_hash(chat_id), thread or 0
        with self._write() as conn:
            row = conn.exec(
                "SELECT turns, scope FROM conversations WHERE chat_hash = :key AND thread = :thread",
                key=key, thread=thread,
            ).first()
            old_turns, old_scope = (json.loads(row[0]), json.loads(row[1])) if row else ([], {})
            conn.exec(
                "INSERT INTO conversations (chat_hash, thread, updated_at, turns, scope)"
                " VALUES (:key, :thread, :at, :turns, :scope)"
                " ON CONFLICT (chat_hash, thread) DO UPDATE SET updated_at = excluded.updated_at,"
                " turns = excluded.turns, scope = excluded.scope",
                key=key, thread=thread, at=_now(),
                turns=json.dumps(old_turns if turns is None else turns, ensure_ascii=False),
                scope=json.dumps(old_scope if scope is None else scope, ensure_ascii=False),
            )

    def expire_conversations(self, max_age_minutes: float, now: datetime | None = None) -> int:
        """Blank the turns of conversations idle for longer than `max_age_minutes` (they would be
        ignored anyway; the questions should not outlive their use); scopes stay. Returns how many."""
        cutoff = ((now or datetime.now(UTC)) - timedelta(minutes=max_age_minutes)).isoformat(timespec="seconds")
        with self._write() as conn:
            return int(conn.exec(
                "UPDATE conversations SET turns = '[]' WHERE updated_at < :cutoff AND turns != '[]'", cutoff=cutoff
            ).rowcount)

    def reset_conversation(self, chat_id: int, thread: int | None) -> None:
        """Forget the chat's turns (/reset); its scope stays."""
        self.save_conversation(chat_id, thread, turns=[])

    # ------------------------------------------------------------ plumbing

    def _delete(self, table: str, where: str, **params) -> int:
        with self._write() as conn:
            removed = int(conn.exec(f"DELETE FROM {table} WHERE {where}", **params).rowcount)
        if removed and self.path is not None:  # a busy checkpoint is not an error: the next one completes it
            with contextlib.suppress(QuestionLogError), self._write() as conn:
                conn.exec("PRAGMA wal_checkpoint(TRUNCATE)").first()
        return removed

    @contextlib.contextmanager
    def _write(self) -> Iterator[_Conn]:
        """One transaction: committed on success; a database error becomes a one-line QuestionLogError."""
        yield from self._transaction("write")

    @contextlib.contextmanager
    def _read(self) -> Iterator[_Conn]:
        yield from self._transaction("read")

    def _transaction(self, what: str) -> Iterator[_Conn]:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self._engine.begin() as conn:
                yield _Conn(conn)
        except SQLAlchemyError as exc:
            raise QuestionLogError(f"cannot {what} the question store {self.where}: {_reason(exc)}") from exc


class _Conn:
    """A connection that runs SQL text with named parameters (the same statements on both backends)."""

    def __init__(self, conn):
        self._conn = conn

    def exec(self, sql: str, **params):
        from sqlalchemy import text

        return self._conn.execute(text(sql), params)


def _reason(exc: BaseException) -> str:
    """The first line of a database error, without SQLAlchemy's statement dump and help link."""
    inner = getattr(exc, "orig", None) or exc
    first = str(inner).strip().splitlines()[0] if str(inner).strip() else type(inner).__name__
    return first[:300]


def _adopt_legacy(conn, tables: set[str]) -> str:
    """A SQLite log from before Alembic: bring it to the revision its PRAGMA user_version matches and
    return that revision (its rows stay)."""
    from sqlalchemy import text

    version = conn.execute(text("PRAGMA user_version")).scalar_one()
    if version > max(LEGACY_REVISIONS):
        raise QuestionLogError(f"the question log is from a newer reportqa (schema {version}); upgrade reportqa")
    columns = {row[1] for row in conn.execute(text("PRAGMA table_info(questions)"))}
    if "year" not in columns:  # schema 1 → 2
        conn.execute(text("ALTER TABLE questions ADD COLUMN year INTEGER"))
    if "understood_as" not in columns:  # 2 → 3
        conn.execute(text("ALTER TABLE questions ADD COLUMN understood_as TEXT"))
    if "conversations" not in tables:
        conn.execute(text(
            "CREATE TABLE conversations (chat_hash TEXT NOT NULL, thread INTEGER NOT NULL, updated_at TEXT NOT NULL,"
            " turns TEXT NOT NULL, scope TEXT NOT NULL, PRIMARY KEY (chat_hash, thread))"
        ))
    conn.execute(text("CREATE INDEX IF NOT EXISTS questions_vote ON questions(vote)"))
    conn.execute(text("CREATE INDEX IF NOT EXISTS questions_chat ON questions(chat_hash)"))
    if "updates" not in tables:
        return "0001"
    conn.execute(text("CREATE TABLE IF NOT EXISTS install (name TEXT PRIMARY KEY, value TEXT NOT NULL)"))
    conn.execute(text("CREATE INDEX IF NOT EXISTS updates_received ON updates(received_at)"))
    return "0002"


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


def open_existing(home: Path) -> QuestionLog:
    """The store the bot has written (for the `feedback` commands): an error, not a new empty log,
    when the bot never ran with this home (SQLite) — a PostgreSQL store is opened as configured."""
    if not os.environ.get(DATABASE_URL_ENV, "").strip() and not log_path(home).is_file():
        raise QuestionLogError(f"no question log at {log_path(home)}: the Telegram bot has not run with this home")
    return QuestionLog.open(home)


def export_draft_eval(home: Path, out: Path) -> int:
    """Write the 👎 questions as a draft eval JSONL for staff to label; returns how many.

    One line per distinct normalized question (its first 👎), in the order asked. Staff fill
    `gold_sections` / `answer_key` and set `kind`; `bot_hits` shows what the bot answered.
    """
    log = open_existing(home)
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
