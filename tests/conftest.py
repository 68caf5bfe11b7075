"""Shared fixtures. ../shared (corpora, benchmarks, seed) sits beside the repository, read-only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CORPORA = SHARED / "corpora"
SEED_FILE = REPO / "corpus" / "hengyang-2019-fazhi-zhengfu-report.txt"
LONGHUA_FILE = CORPORA / "gov-work-reports" / "深圳市龙华区2019年法治政府建设工作报告_2019.txt"


def tree_signature(report) -> list:
    """A parsed report without offsets: what must not change with encoding, line ends or HTML."""
    return [
        (s.section_id, s.label, s.title, s.level, [(p.text, [x.text for x in p.sentences]) for p in s.paragraphs])
        for s in report.walk()
    ] + [report.parsed_title, report.signed_date]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"../shared is missing beside the repository ({SHARED}); tests need it")
    return SHARED


@pytest.fixture(scope="session")
def model_home(tmp_path_factory) -> Path:
    """A REPORTQA_HOME with the default model built once per test session (slow tests share it)."""
    from retrieval.config import Settings
    from retrieval.embedding import ensure_default_model

    home = tmp_path_factory.mktemp("reportqa-home")
    ensure_default_model(Settings(home=home))
    return home


@pytest.fixture
def tg(monkeypatch: pytest.MonkeyPatch):
    """A fake Telegram Bot API server on 127.0.0.1 (tests/fake_telegram.py), stopped after the test."""
    from fake_telegram import FakeTelegram

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # PTB 22's opt-in; silences its RetryAfter deprecation warning
    with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def seed_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A writable copy of the repository's corpus (manifest + seed report), with its own REPORTQA_HOME."""
    import shutil

    monkeypatch.setenv("REPORTQA_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("REPORTQA_CORPUS", raising=False)
    target = tmp_path / "corpus"
    target.mkdir()
    shutil.copy(REPO / "corpus" / "reports.toml", target)
    shutil.copy(REPO / "corpus" / "hengyang-2019-fazhi-zhengfu-report.txt", target)
    return target


def invoke_cli(corpus: Path, *args: str):
    """`reportqa --corpus CORPUS ARGS…` in process (typer's CliRunner), stdout and stderr apart."""
    from typer.testing import CliRunner

    from bot.cli import app

    return CliRunner().invoke(app, ["--corpus", str(corpus), *args])


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server for the session (tests/postgres_server.py), or a skip with the
    reason when the binaries are missing — a failure instead under REPORTQA_REQUIRE_POSTGRES (CI)."""
    from postgres_server import REQUIRE_ENV, PostgresServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        reason = "PostgreSQL is not installed (Debian: apt-get install postgresql); store tests on it not run"
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{reason}, and {REQUIRE_ENV} is set")
        pytest.skip(reason)
    server = PostgresServer(bindir).start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path: Path) -> str:
    """Where a store test's QuestionLog lives: a SQLite file under tmp_path, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'telegram' / 'questions.sqlite3'}"
    return request.getfixturevalue("postgres").new_database()
