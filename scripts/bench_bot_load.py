"""Load and fault benchmark of the Telegram bot: `reportqa telegram` as a real process (real retriever
over the corpus) polling the fake Bot API server (tests/fake_telegram.py), driven by simulated chats.

    .venv/bin/python scripts/bench_bot_load.py                        # 50 chats x 20 questions, every scenario
    .venv/bin/python scripts/bench_bot_load.py --scenario clean --scenario 429
    .venv/bin/python scripts/bench_bot_load.py --chats 10 --questions 5 --json

Each chat asks its questions (distinct ones drawn from corpus/eval/hengyang-dev.jsonl) as fast as a
user can type them: every update is queued at once (or at --rate questions/s), so answers must stay
in order per chat while the bot works on many chats at a time. Per scenario it prints questions
sent / answered / lost / duplicated / out of order, throughput (answered questions per second, from
the first question queued to the last answer), answer latency p50/p95/max (update delivered to
the bot -> its sendMessage reaching the server) and end-to-end p50/p95 (question sent -> answer:
the bot fetches at most a bounded backlog, so under a burst most of the wait is at "Telegram").
--stub-retriever answers instantly with a canned passage: the bot layer's own capacity.

Scenarios: clean; faults injected by the fake server on a share of the bot's calls (429 with
retry_after, 500/502, a response delayed past the client timeout, 400 "can't parse entities", a
connection dropped before / after the call took effect); SIGTERM mid-load (exit code, then every
confirmed question must have been answered; a restart answers the rest); kill -9 mid-load (SQLite
integrity_check, index status, restart answers again). The bot gets its own REPORTQA_HOME (its own
index and question log) in a temporary directory, sharing the model of --model-home; finally every
file it wrote and everything it printed is searched for the token, chat ids and user names.

The bot runs with REPORTQA_CHAT_QUESTIONS_PER_MINUTE=0 (a simulated user asks 20 questions in a
few seconds, which the default per-chat limit would refuse) and, unless --max-messages-per-second
is given, TELEGRAM_MAX_MESSAGES_PER_SECOND=0: Telegram's own ~30 messages/s would otherwise cap the
figure this script is meant to measure (the bot's capacity).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the fake Bot API server lives with the tests

from fake_telegram import Call, FakeChat, FakeTelegram, FakeUser  # noqa: E402

from bot.question_log import log_path  # noqa: E402
from bot.telegram.messages import QUESTION_ECHO, shorten  # noqa: E402
from bot.telegram.settings import BotOptions  # noqa: E402

QUESTIONS_FILE = REPO / "corpus" / "eval" / "hengyang-dev.jsonl"
CHAT_ID_BASE = 861_234_500  # distinctive digits: a leak into a log line is easy to find
REQUEST_TIMEOUT = 3.0  # the bot's client timeout here, so "slow response" faults resolve quickly
FAULT_SHARE = 10  # a fault scenario hits every FAULT_SHARE-th call of the method
STARTUP_TIMEOUT = 600.0  # the first run may build the model (~1 min) and the index
BOT_MAX_BACKLOG = BotOptions().max_backlog  # updates the bot fetches ahead: what a crash can lose at most


# ------------------------------------------------------------------------------------ workload


@dataclass(frozen=True)
class SimChat:
    chat: FakeChat
    user: FakeUser
    questions: tuple[str, ...]


def load_questions(path: Path = QUESTIONS_FILE) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line)["question"] for line in f if line.strip()]


def make_workload(chats: int, per_chat: int, seed: int = 7, pool: Sequence[str] | None = None) -> list[SimChat]:
    """Each chat gets `per_chat` distinct questions (so an answer's echo says which one it answers)."""
    pool = list(pool or load_questions())
    distinct = list(dict.fromkeys(shorten(q, QUESTION_ECHO) for q in pool))
    if per_chat > len(distinct):
        raise SystemExit(f"at most {len(distinct)} distinct questions per chat")
    by_echo = {shorten(q, QUESTION_ECHO): q for q in pool}
    rng = random.Random(seed)
    out = []
    for i in range(chats):
        chat_id = CHAT_ID_BASE + i
        user = FakeUser(chat_id, first_name=f"负载用户{i:02d}", username=f"load_user_{i:02d}")
        out.append(SimChat(FakeChat(chat_id), user, tuple(by_echo[e] for e in rng.sample(distinct, per_chat))))
    return out


@dataclass
class Sent:
    chat: SimChat
    index: int  # position in the chat's questions
    update: dict[str, Any]
    queued_at: float


def send_load(tg: FakeTelegram, workload: Sequence[SimChat], rate: float = 0.0) -> list[Sent]:
    """Queue every question, chats interleaved (round-robin), all at once or at `rate` per second."""
    sent: list[Sent] = []
    order = [(c, i) for i in range(max(len(c.questions) for c in workload)) for c in workload if i < len(c.questions)]
    start = time.monotonic()
    for n, (chat, i) in enumerate(order):
        if rate > 0:
            wait = start + n / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        update = tg.send_text(chat.questions[i], chat.chat, user=chat.user)
        sent.append(Sent(chat, i, update, time.monotonic()))
    return sent


# ------------------------------------------------------------------------------------ measuring


@dataclass
class Interruption:
    """What a signal mid-load did, seen before the bot is restarted."""

    signal: str
    exit_code: int
    stop_seconds: float  # signal -> process gone
    answered_before: int  # questions answered by the signalled process
    confirmed: int  # questions whose update Telegram (the fake) will not deliver again
    confirmed_unanswered: int  # of those, not answered: lost for good
    log_integrity: str | None = None  # after kill -9: PRAGMA integrity_check of the question log
    log_rows: int | None = None
    index_status_exit: int | None = None  # after kill -9: `reportqa index status`
    index_stale: str | None = None

    def describe(self) -> list[str]:
        lines = [
            f"{self.signal}: exit code {self.exit_code} after {self.stop_seconds:.1f}s; {self.answered_before} "
            f"answered by then; {self.confirmed} confirmed, of which {self.confirmed_unanswered} unanswered"
        ]
        if self.log_integrity is not None:
            lines.append(f"question log after the crash: integrity_check={self.log_integrity}, {self.log_rows} rows")
        if self.index_stale is not None:
            lines.append(
                f"index after the crash: `reportqa index status` exit {self.index_status_exit},"
                f" stale: {self.index_stale}"
            )
        return lines


@dataclass
class Outcome:
    """What happened to a batch of questions, from the fake server's records."""

    sent: int = 0
    answered: int = 0  # questions with at least one answer
    lost: int = 0  # questions with none
    duplicated: int = 0  # questions answered more than once
    out_of_order: int = 0  # answers that came before the answer to an earlier question of the same chat
    other_replies: int = 0  # messages to the load chats that answer none of the questions
    seconds: float = 0.0
    throughput: float = 0.0  # answered questions per second
    p50_ms: float = 0.0  # update delivered to the bot -> its answer reaching the server
    p95_ms: float = 0.0
    max_ms: float = 0.0
    e2e_p50_ms: float = 0.0  # question sent by the user -> answer (includes waiting at "Telegram")
    e2e_p95_ms: float = 0.0
    faults: dict[str, int] = field(default_factory=dict)  # "method fault" -> calls it was injected into
    plain_fallbacks: int = 0  # answers resent without HTML after a 400 "can't parse entities"
    interruption: Interruption | None = None


def _answer_key(call: Call) -> str | None:
    """The question an answer echoes on its first line ("❓ question"), or None for other messages."""
    text = (call.result or {}).get("text", "") if isinstance(call.result, dict) else ""
    first = text.split("\n", 1)[0]
    return first[2:] if first.startswith("❓ ") else None


def answers_by_question(tg: FakeTelegram, sent: Sequence[Sent], after: int = 0) -> tuple[dict[int, list[Call]], int]:
    """Successful sendMessage calls per sent question (by position in `sent`), and unmatched messages."""
    where: dict[tuple[int, str], int] = {}
    for n, s in enumerate(sent):
        where[(s.chat.chat.id, shorten(s.chat.questions[s.index], QUESTION_ECHO))] = n
    chats = {s.chat.chat.id for s in sent}
    found: dict[int, list[Call]] = {n: [] for n in range(len(sent))}
    other = 0
    for call in tg.calls_of("sendMessage", after):
        if call.status != 200:
            continue
        chat_id = int(call.params.get("chat_id", 0))
        if chat_id not in chats:
            continue
        n = where.get((chat_id, _answer_key(call) or ""))
        if n is None:
            other += 1
        else:
            found[n].append(call)
    return found, other


def wait_answered(
    tg: FakeTelegram,
    sent: Sequence[Sent],
    after: int,
    stall: float = 30.0,
    limit: float = 900.0,
    expect: int | None = None,
) -> None:
    """Until `expect` (default: every) question has an answer, or nothing new arrived for `stall` seconds."""
    expect = len(sent) if expect is None else expect
    deadline = time.monotonic() + limit
    last_count, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        found, _ = answers_by_question(tg, sent, after)
        count = sum(1 for calls in found.values() if calls)
        if count >= expect:
            time.sleep(0.5)  # a duplicate would arrive right behind
            return
        if count != last_count:
            last_count, last_change = count, time.monotonic()
        elif time.monotonic() - last_change > stall:
            return
        time.sleep(0.2)


def _percentiles(seconds: list[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds (nearest rank)."""
    ordered = sorted(seconds)
    return 1000 * statistics.median(ordered), 1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def measure(tg: FakeTelegram, sent: Sequence[Sent], after: int) -> Outcome:
    found, other = answers_by_question(tg, sent, after)
    out = Outcome(sent=len(sent), other_replies=other)
    latencies = []
    e2e = []
    firsts = []
    per_chat: dict[int, list[tuple[int, int]]] = {}
    for n, s in enumerate(sent):
        calls = found[n]
        if not calls:
            out.lost += 1
            continue
        out.answered += 1
        out.duplicated += len(calls) > 1
        first = min(calls, key=lambda c: c.seq)
        firsts.append(first.started)
        delivered = tg.delivered_at(s.update)
        if delivered is not None:
            latencies.append(first.started - delivered)
        e2e.append(first.started - s.queued_at)
        per_chat.setdefault(s.chat.chat.id, []).append((first.seq, s.index))
        out.plain_fallbacks += any(not c.params.get("parse_mode") for c in calls)
    for answers in per_chat.values():
        order = [i for _, i in sorted(answers)]
        out.out_of_order += sum(1 for a, b in zip(order, order[1:], strict=False) if b < a)
    if firsts:
        out.seconds = max(firsts) - min(s.queued_at for s in sent)
        out.throughput = out.answered / out.seconds if out.seconds > 0 else 0.0
    if latencies:
        out.p50_ms, out.p95_ms = _percentiles(latencies)
        out.max_ms = 1000 * max(latencies)
    if e2e:
        out.e2e_p50_ms, out.e2e_p95_ms = _percentiles(e2e)
    for call in tg.calls:
        if call.seq > after and call.fault:
            key = f"{call.method} {call.fault}"
            out.faults[key] = out.faults.get(key, 0) + 1
    return out


# ------------------------------------------------------------------------------------ the bot process

# `reportqa telegram` with an instant retriever: the bot layer's own capacity, without retrieval.
_STUB_BOT = """
import sys
from retrieval.answer import Answer, Hit
from retrieval.corpus import load_corpus
import bot.telegram.app as app_module


class StubRetriever:
    def __init__(self, settings):
        self.settings = settings
        self._reports = {r.meta.report_id: r for r in load_corpus(settings.corpus_dirs)}
        report = next(iter(self._reports.values()))
        para = next(report.paragraphs())
        sec = report.section(para.section_id)
        s = para.sentences[0]
        self._hit = Hit(1, 1.0, report.meta.report_id, report.meta.title, report.meta.date, sec.section_id,
                        sec.label, sec.title, f"《{report.meta.title}》{sec.label} {sec.title}", para.text, s.text,
                        s.start - para.start, s.end - para.start)

    @property
    def reports(self):
        return [r.meta for r in self._reports.values()]

    def report(self, report_id):
        return self._reports[report_id]

    def section(self, report_id, section_id):
        return self._reports[report_id].section(section_id)

    def ask(self, question, top_k=3, reports=None, mode="hybrid", offset=0):
        return Answer(question=question.strip(), answered=True, hits=[self._hit] * top_k)


app_module.Retriever.open = classmethod(lambda cls, settings=None, **kw: StubRetriever(settings))
sys.argv = ["reportqa", "telegram", *sys.argv[1:]]
from bot.cli import main
main()
"""


@dataclass
class BotRun:
    """One `reportqa telegram` process and the files its output goes to."""

    proc: subprocess.Popen
    stdout: Path
    stderr: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 120.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -9


@dataclass
class Rig:
    """The fake server, the bot's home and how to start the bot."""

    tg: FakeTelegram
    home: Path
    corpus_dirs: tuple[Path, ...]
    env: dict[str, str]
    logs: Path
    stub_retriever: bool = False
    runs: list[BotRun] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)  # webhook mode: one per replica
    replicas: dict[int, BotRun] = field(default_factory=dict)  # webhook mode: the live process per slot

    def start_bot(self, wait: bool = True, slot: int = 0) -> BotRun:
        n = len(self.runs) + 1
        out, err = self.logs / f"bot{n}.stdout", self.logs / f"bot{n}.stderr"
        reportqa = Path(sys.executable).parent / "reportqa"
        args = ["telegram", "--webhook"] if self.ports else ["telegram"]
        command = [str(reportqa), *args] if reportqa.exists() else [sys.executable, "-m", "bot.cli", *args]
        if self.stub_retriever:
            command = [sys.executable, "-c", _STUB_BOT, *args[1:]]
        env = dict(self.env)
        if self.ports:
            env["TELEGRAM_WEBHOOK_LISTEN"] = f"127.0.0.1:{self.ports[slot]}"
        polls = self.tg.polls_started
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=out.open("wb"), stderr=err.open("wb"))
        run = BotRun(proc, out, err)
        self.runs.append(run)
        if self.ports:
            self.replicas[slot] = run
            if wait:
                self._wait_ready(run, self.ports[slot])
            return run
        if wait:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while self.tg.polls_started == polls:
                if proc.poll() is not None:
                    raise RuntimeError(f"the bot exited with {proc.returncode}:\n{err.read_text(errors='replace')}")
                if time.monotonic() > deadline:
                    raise RuntimeError("the bot did not start polling in time")
                time.sleep(0.1)
        return run

    def _wait_ready(self, run: BotRun, port: int) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while _http_status(f"http://127.0.0.1:{port}/readyz") != 200:
            if run.proc.poll() is not None:
                raise RuntimeError(f"the bot exited with {run.proc.returncode}:\n"
                                   f"{run.stderr.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                raise RuntimeError("the webhook replica did not get ready in time")
            time.sleep(0.1)

    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}/telegram" for port in self.ports]

    def produced_files(self) -> list[Path]:
        files = [p for r in self.runs for p in (r.stdout, r.stderr)]
        return files + [p for p in self.home.rglob("*") if p.is_file() and not p.is_symlink()]


def _http_status(url: str) -> int | None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def _metrics_text(listen: str) -> str:
    """The reportqa_* series of a bot's /metrics (without the *_created timestamps), indented."""
    import urllib.request

    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(f"http://{listen}/metrics", timeout=5) as r:
        text = r.read().decode()
    keep = [line for line in text.splitlines()
            if line.startswith("reportqa_") and "_created" not in line]
    return "\n".join("    " + line for line in keep)


def _free_ports(n: int) -> list[int]:
    import socket

    socks = [socket.socket() for _ in range(n)]
    for sock in socks:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in socks]
    for sock in socks:
        sock.close()
    return ports


WEBHOOK_SECRET = "bench-webhook-secret"


@contextmanager
def rig(
    model_home: Path,
    corpus_dirs: Sequence[Path] = (REPO / "corpus",),
    work: Path | None = None,
    extra_env: dict[str, str] | None = None,
    stub_retriever: bool = False,
    webhook_replicas: int = 0,
) -> Iterator[Rig]:
    """A fake server and a fresh bot home (own index and log; the model linked from `model_home`).
    webhook_replicas: that many `reportqa telegram --webhook` processes sharing the home, the fake
    server delivering to them round-robin as a reverse proxy would."""
    cleanup = work is None
    work = Path(tempfile.mkdtemp(prefix="reportqa-load-")) if work is None else work
    home, logs = work / "home", work / "logs"
    home.mkdir(parents=True, exist_ok=True)
    logs.mkdir(exist_ok=True)
    models = Path(model_home).resolve() / "models"
    models.mkdir(parents=True, exist_ok=True)
    if not (home / "models").exists():
        (home / "models").symlink_to(models, target_is_directory=True)
    with FakeTelegram() as tg:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "REPORTQA_"))},
            "TELEGRAM_BOT_TOKEN": tg.token,
            "TELEGRAM_API_BASE_URL": tg.base_url,
            "TELEGRAM_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT),
            "TELEGRAM_MAX_MESSAGES_PER_SECOND": "0",
            "REPORTQA_CHAT_QUESTIONS_PER_MINUTE": "0",
            "REPORTQA_HOME": str(home),
            "REPORTQA_CORPUS": os.pathsep.join(str(d) for d in corpus_dirs),
            "NO_PROXY": "127.0.0.1,localhost",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            **(extra_env or {}),
        }
        if webhook_replicas:
            env.update({"TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET, "REPORTQA_REPLICAS": str(webhook_replicas)})
        r = Rig(tg, home, tuple(corpus_dirs), env, logs, stub_retriever, ports=_free_ports(webhook_replicas))
        try:
            yield r
        finally:
            for run in r.runs:
                if run.proc.poll() is None:
                    run.stop(signal.SIGKILL, timeout=30)
            if cleanup:
                shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------------------------ scenarios


def every_nth(n: int) -> Callable[[dict[str, Any]], bool]:
    """A fault predicate that is true for every n-th call it sees (deterministic share of calls)."""
    seen = [0]

    def hit(_params: dict[str, Any]) -> bool:
        seen[0] += 1
        return seen[0] % n == 0

    return hit


def _html_only(hit: Callable[[dict[str, Any]], bool]) -> Callable[[dict[str, Any]], bool]:
    """Only HTML messages count (the plain-text resend after a 400 must go through)."""
    return lambda p: p.get("parse_mode") == "HTML" and hit(p)


FAULTS: dict[str, Callable[[FakeTelegram], None]] = {
    "clean": lambda tg: None,
    "429": lambda tg: tg.inject("sendMessage", 429, retry_after=1, times=10**9, when=every_nth(FAULT_SHARE)),
    "5xx": lambda tg: (
        tg.inject("sendMessage", 500, times=10**9, when=every_nth(2 * FAULT_SHARE)),
        tg.inject("sendMessage", 502, times=10**9, when=every_nth(2 * FAULT_SHARE)),
    ),
    "timeout": lambda tg: (
        tg.inject("sendMessage", delay=REQUEST_TIMEOUT + 1, times=10**9, when=every_nth(FAULT_SHARE)),
        tg.inject("sendChatAction", delay=REQUEST_TIMEOUT + 1, times=10**9, when=every_nth(FAULT_SHARE)),
    ),
    "parse400": lambda tg: tg.inject(
        "sendMessage",
        400,
        description='Bad Request: can\'t parse entities: Unsupported start tag "bq" at byte offset 12',
        times=10**9,
        when=_html_only(every_nth(FAULT_SHARE)),
    ),
    "drop-before": lambda tg: tg.inject("sendMessage", drop="before", times=10**9, when=every_nth(FAULT_SHARE)),
    "drop-after": lambda tg: tg.inject("sendMessage", drop="after", times=10**9, when=every_nth(FAULT_SHARE)),
}
WEBHOOK_FAULTS: dict[str, Callable[[FakeTelegram], None]] = {
    "lost200": lambda tg: setattr(tg, "lose_ack", every_nth(FAULT_SHARE)),
}
FAULT_DESCRIPTIONS = {
    "clean": "no faults",
    "429": f"1 in {FAULT_SHARE} sendMessage: 429 retry_after=1",
    "5xx": f"1 in {FAULT_SHARE} sendMessage: 500 or 502",
    "timeout": f"1 in {FAULT_SHARE} sendMessage and sendChatAction answered {REQUEST_TIMEOUT + 1:g}s late "
    f"(client timeout {REQUEST_TIMEOUT:g}s; the call takes effect)",
    "parse400": f"1 in {FAULT_SHARE} HTML sendMessage: 400 can't parse entities",
    "drop-before": f"1 in {FAULT_SHARE} sendMessage: connection closed, request not processed",
    "drop-after": f"1 in {FAULT_SHARE} sendMessage: processed, connection closed before the response",
    "lost200": f"1 in {FAULT_SHARE} updates: the replica's 200 never reaches Telegram, which delivers it again",
}


def run_load(r: Rig, workload: Sequence[SimChat], fault: str = "clean", rate: float = 0.0) -> Outcome:
    """One batch of load under one fault setting, against the running bot."""
    r.tg.clear_faults()
    {**FAULTS, **WEBHOOK_FAULTS}[fault](r.tg)
    mark = r.tg.mark()
    sent = send_load(r.tg, workload, rate)
    wait_answered(r.tg, sent, mark, stall=30.0 if fault == "clean" else 45.0)
    r.tg.clear_faults()
    r.tg.lose_ack = None
    time.sleep(0.5)
    return measure(r.tg, sent, mark)


def fresh_workload(workload: Sequence[SimChat], salt: int) -> list[SimChat]:
    """The same questions for new chat ids (a second batch must not be confused with the first)."""
    out = []
    for c in workload:
        chat_id = c.chat.id + 1000 * salt
        user = FakeUser(chat_id, first_name=c.user.first_name, username=c.user.username)
        out.append(SimChat(FakeChat(chat_id), user, c.questions))
    return out


def _wait_answers(r: Rig, sent: Sequence[Sent], after: int, count: int, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found, _ = answers_by_question(r.tg, sent, after)
        if sum(1 for c in found.values() if c) >= count:
            return
        time.sleep(0.05)


def run_interrupted(r: Rig, workload: Sequence[SimChat], sig: int, at_share: float = 0.3) -> Outcome:
    """Load; when `at_share` of it is answered, send `sig` to the bot; restart it; let it finish.

    lost / duplicated are over both runs together; `interruption` says what the first run owed.
    """
    mark = r.tg.mark()
    sent = send_load(r.tg, workload)
    _wait_answers(r, sent, mark, int(at_share * len(sent)))
    signalled = time.monotonic()
    victim = r.replicas[0] if r.ports else r.runs[-1]  # webhook: one replica of several; the others go on
    code = victim.stop(sig, timeout=180)
    stopped = time.monotonic() - signalled
    found, _ = answers_by_question(r.tg, sent, mark)
    if r.ports:  # confirmed = acknowledged with a 2xx: Telegram will not deliver it again
        confirmed = [n for n, s in enumerate(sent) if r.tg.acked(s.update)]
    else:
        confirmed = [n for n, s in enumerate(sent) if s.update["update_id"] < r.tg.confirmed_offset]
    what = Interruption(
        signal=signal.Signals(sig).name,
        exit_code=code,
        stop_seconds=stopped,
        answered_before=sum(1 for calls in found.values() if calls),
        confirmed=len(confirmed),
        confirmed_unanswered=sum(1 for n in confirmed if not found[n]),
    )
    if sig == signal.SIGKILL:
        check_after_crash(r, what)
    r.start_bot(slot=0)
    wait_answered(r.tg, sent, mark, stall=20.0, expect=len(sent) - what.confirmed_unanswered)
    time.sleep(1.0)  # a late duplicate of a redelivered update would show by now
    out = measure(r.tg, sent, mark)
    out.interruption = what
    out.throughput = out.p50_ms = out.p95_ms = out.max_ms = 0.0  # a restart in the middle: not comparable
    out.e2e_p50_ms = out.e2e_p95_ms = 0.0
    return out


def check_after_crash(r: Rig, what: Interruption) -> None:
    """After kill -9, before restarting: the question log's integrity and the index's status."""
    if r.env.get("REPORTQA_DATABASE_URL"):  # PostgreSQL: the server keeps its own integrity
        from bot.question_log import QuestionLog

        store = QuestionLog.open(r.home, url=r.env["REPORTQA_DATABASE_URL"])
        try:
            what.log_integrity, what.log_rows = "ok (PostgreSQL)", store.stats()[0]
        finally:
            store.close()
    else:
        conn = sqlite3.connect(log_path(r.home))
        try:
            what.log_integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
            what.log_rows = conn.execute("SELECT COUNT(*) FROM questions").fetchone()[0]
        finally:
            conn.close()
    status = subprocess.run(
        [sys.executable, "-m", "bot.cli", "index", "status"],
        cwd=REPO,
        env=r.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    what.index_status_exit = status.returncode
    what.index_stale = next(
        (line.split(None, 1)[1].strip() for line in status.stdout.splitlines() if line.startswith("stale")), "?"
    )


@dataclass
class Leaks:
    """The search of everything a bot run printed or wrote for secrets and personal data."""

    files: int
    problems: list[str]
    tracebacks: int

    def describe(self) -> list[str]:
        found = "; ".join(self.problems[:5]) if self.problems else "no token, chat id or user name anywhere"
        return [
            f"{self.files} files searched (bot stdout/stderr, every file in its home): {found}",
            f"tracebacks in the bot's output: {self.tracebacks}",
        ]


def search_leaks(r: Rig, workload: Sequence[SimChat]) -> Leaks:
    """The token (and its secret half) in any file; raw chat ids or user names in output or the log."""
    token = r.tg.token.encode()
    secret = r.tg.token.partition(":")[2].encode()
    needles = {
        n.encode()
        for c in workload
        for n in (str(c.chat.id), str(c.user.id), c.user.first_name, c.user.username or "")
        if n
    }
    problems = []
    files = r.produced_files()
    for path in files:
        data = path.read_bytes()
        if token in data or secret in data:
            problems.append(f"token in {path}")
        found = sorted(n.decode() for n in needles if n in data)
        if found:
            problems.append(f"{len(found)} chat ids / names in {path.name}, e.g. {found[0]!r}")
    printed = b"".join(p.read_bytes() for run in r.runs for p in (run.stdout, run.stderr))
    return Leaks(len(files), problems, printed.count(b"Traceback"))


# ------------------------------------------------------------------------------------ report


SCENARIOS = [*FAULTS, *WEBHOOK_FAULTS, "sigterm", "kill9"]


def table(results: dict[str, Outcome]) -> str:
    head = f"{'scenario':<12} {'sent':>5} {'answ':>5} {'lost':>5} {'dup':>4} {'order':>5} {'q/s':>6} "
    head += f"{'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} {'e2e p50':>7} {'e2e p95':>7}  faults injected"
    lines = [head, "-" * len(head)]
    for name, o in results.items():
        faults = ", ".join(f"{k}×{v}" for k, v in sorted(o.faults.items())) or "-"
        if o.plain_fallbacks:
            faults += f"; {o.plain_fallbacks} resent as plain text"
        rate = f"{o.throughput:6.1f}" if o.throughput else f"{'-':>6}"
        lat = (
            f"{o.p50_ms:7.0f} {o.p95_ms:7.0f} {o.max_ms:7.0f} {o.e2e_p50_ms:7.0f} {o.e2e_p95_ms:7.0f}"
            if o.p50_ms
            else " ".join(f"{'-':>7}" for _ in range(5))
        )
        lines.append(
            f"{name:<12} {o.sent:>5} {o.answered:>5} {o.lost:>5} {o.duplicated:>4} {o.out_of_order:>5} "
            f"{rate} {lat}  {faults}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--questions", type=int, default=20, help="questions per chat")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="repeatable; default: all")
    parser.add_argument("--rate", type=float, default=0.0, help="questions queued per second (0: all at once)")
    parser.add_argument(
        "--max-messages-per-second",
        type=float,
        default=0.0,
        help="the bot's overall message limit (TELEGRAM_MAX_MESSAGES_PER_SECOND; production default 30)",
    )
    parser.add_argument("--concurrency", type=int, default=None, help="REPORTQA_BOT_CONCURRENCY")
    parser.add_argument(
        "--model-home",
        type=Path,
        default=Path(os.environ.get("REPORTQA_HOME", ".reportqa")),
        help="where the built model is (or gets built): env REPORTQA_HOME, default ./.reportqa",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--stub-retriever",
        action="store_true",
        help="answer instantly with a canned passage: measures the bot layer alone, without retrieval",
    )
    parser.add_argument("--keep", type=Path, default=None, help="keep the bot's home and logs in this directory")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--webhook", type=int, default=0, metavar="N",
        help="N `reportqa telegram --webhook` replicas over one store instead of one polling process",
    )
    parser.add_argument("--postgres", action="store_true",
                        help="the store on a throwaway PostgreSQL server (Debian's binaries) instead of SQLite")
    parser.add_argument("--metrics", action="store_true",
                        help="print each bot process's /metrics (reportqa_* series) after the last scenario")
    args = parser.parse_args(argv)
    scenarios = args.scenario or [s for s in SCENARIOS if args.webhook or s not in WEBHOOK_FAULTS]
    if not args.webhook and any(s in WEBHOOK_FAULTS for s in scenarios):
        parser.error("the lost200 scenario needs --webhook N")
    extra = {"TELEGRAM_MAX_MESSAGES_PER_SECOND": f"{args.max_messages_per_second:g}"}
    if args.concurrency:
        extra["REPORTQA_BOT_CONCURRENCY"] = str(args.concurrency)
    if args.metrics and not args.webhook:  # webhook replicas serve /metrics on their own port
        extra["REPORTQA_METRICS_LISTEN"] = f"127.0.0.1:{_free_ports(1)[0]}"
    server = None
    if args.postgres:
        from postgres_server import PostgresServer, find_bindir

        bindir = find_bindir()
        if bindir is None:
            parser.error("--postgres: PostgreSQL binaries not found (apt-get install postgresql)")
        server = PostgresServer(bindir).start()
        extra["REPORTQA_DATABASE_URL"] = server.new_database()
    try:
        return _run(args, scenarios, extra)
    finally:
        if server is not None:
            server.stop()


def _run(args: argparse.Namespace, scenarios: list[str], extra: dict[str, str]) -> int:
    workload = make_workload(args.chats, args.questions, args.seed)
    results: dict[str, Outcome] = {}
    notes: list[str] = []
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    with rig(args.model_home, work=args.keep, extra_env=extra, stub_retriever=args.stub_retriever,
             webhook_replicas=args.webhook) as r:
        started = time.monotonic()
        if args.webhook:
            r.start_bot(slot=0)  # the first builds the index; the others open it
            for slot in range(1, args.webhook):
                r.start_bot(slot=slot)
            from bot.telegram.app import set_webhook

            if set_webhook(r.urls()[0], r.env) != 0:
                raise RuntimeError("setWebhook failed")
            r.tg.upstreams = r.urls()
        else:
            r.start_bot()
        notes.append(f"bot started (model, index, first question) in {time.monotonic() - started:.1f}s")
        batch = 0
        for name in scenarios:
            batch += 1
            load = fresh_workload(workload, batch)
            if name in FAULTS or name in WEBHOOK_FAULTS:
                results[name] = run_load(r, load, name, args.rate)
            else:
                sig = signal.SIGTERM if name == "sigterm" else signal.SIGKILL
                results[name] = run_interrupted(r, load, sig)
            print(f"… {name}: {results[name].answered}/{results[name].sent} answered", file=sys.stderr)
        if args.metrics:
            listeners = [f"127.0.0.1:{p}" for p in r.ports] or [extra["REPORTQA_METRICS_LISTEN"]]
            for n, where in enumerate(listeners, 1):
                notes.append(f"/metrics of bot process {n} after the run:\n" + _metrics_text(where))
        codes = [run.stop(signal.SIGTERM) for run in (r.replicas.values() if r.ports else [r.runs[-1]])]
        notes.append(f"final SIGTERM: exit code {', '.join(map(str, codes))}")
        notes.extend(search_leaks(r, [c for b in range(1, batch + 1) for c in fresh_workload(workload, b)]).describe())
    if args.json:
        payload = {
            "chats": args.chats,
            "questions_per_chat": args.questions,
            "rate": args.rate,
            "results": {k: asdict(v) for k, v in results.items()},
            "notes": notes,
        }
        print(json.dumps(payload, ensure_ascii=False, indent=1))
        return 0
    what = "stub retriever (bot layer only)" if args.stub_retriever else "real retriever"
    store = "PostgreSQL" if args.postgres else "SQLite"
    how = f"{args.webhook} webhook replicas over one {store} store" if args.webhook else f"polling, {store}"
    print(f"{args.chats} chats × {args.questions} questions per scenario, {what}, {how}; cpus: {os.cpu_count()}")
    print(table(results))
    for name, o in results.items():
        for note in o.interruption.describe() if o.interruption else []:
            print(f"  {name}: {note}")
    for name in results:
        if name in FAULT_DESCRIPTIONS:
            print(f"  {name}: {FAULT_DESCRIPTIONS[name]}")
    for note in notes:
        print(f"  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
