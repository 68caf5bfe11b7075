"""A throwaway PostgreSQL cluster for the store tests: Debian's `postgresql` binaries, initdb and
pg_ctl in a temporary directory, listening on a unix socket only, run as an unprivileged user
(initdb refuses root). `.ci/run` installs the package when missing and sets REPORTQA_REQUIRE_POSTGRES,
so CI fails rather than skips when the server cannot be started."""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

REQUIRE_ENV = "REPORTQA_REQUIRE_POSTGRES"


def find_bindir() -> Path | None:
    """Where initdb and pg_ctl are: Debian keeps them in /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


class PostgresServer:
    """start() → a server on a socket in a private temp dir; url(db) for a database; stop() removes all."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.base = Path(tempfile.mkdtemp(prefix="reportqa-pg-"))  # directly under /tmp: traversable
        self.data, self.socket = self.base / "data", self.base / "sock"
        self._user = self._run_as()
        self._names = itertools.count(1)

    @staticmethod
    def _run_as() -> str | None:
        if os.geteuid() != 0:
            return None
        for name in ("postgres", "nobody"):
            try:
                pwd.getpwnam(name)
                return name
            except KeyError:
                continue
        raise RuntimeError("running as root and no unprivileged user (postgres, nobody) to run initdb as")

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", self._user, "--", *args] if self._user else list(args)

    def start(self) -> PostgresServer:
        self.socket.mkdir()
        if self._user:
            entry = pwd.getpwnam(self._user)
            for path in (self.base, self.socket):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        subprocess.run(self._cmd(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "reportqa",
                                 "-E", "UTF8", "--locale=C", "-N"), check=True, capture_output=True, timeout=120)
        self._pg_ctl("start")
        return self

    def _pg_ctl(self, action: str) -> None:
        options = f"-k {self.socket} -c listen_addresses='' -c fsync=off -c full_page_writes=off"
        args = ["-o", options, "-w", "-l", str(self.base / "server.log")] if action == "start" else ["-m", "immediate"]
        subprocess.run(self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.data), *args, action),
                       check=action == "start", capture_output=True, timeout=120)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The server down (killed, as by a crash) for the block, then up again with its data."""
        self._pg_ctl("stop")
        try:
            yield
        finally:
            self._pg_ctl("start")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://reportqa@/{database}?host={self.socket}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL as a user would write it."""
        import psycopg

        name = f"t{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        self._pg_ctl("stop")
        shutil.rmtree(self.base, ignore_errors=True)
