"""Two `reportqa telegram --webhook` replicas over one store, under load, faults and a kill -9,
measured by the load benchmark (scripts/bench_bot_load.py --webhook 2; here 10 chats x 5 questions
per run over the real retriever and the seed report). The fake Bot API delivers like Telegram (one
update per chat at a time, retries on non-2xx) through a round-robin "proxy" that skips a replica
that refuses the connection or answers 503. Every question must get exactly one answer, in order per
chat, also when 200s get lost (the update is delivered again) and when one replica is killed mid-load
(its updates are taken over by the other once their lease runs out).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_reliability_load import assert_exactly_once_in_order, bench, workload

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rig(model_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    from bot.telegram.app import set_webhook

    extra = {"REPORTQA_WEBHOOK_LEASE_SECONDS": "3"}  # a dead replica's updates are taken over after 3 s
    with bench.rig(model_home, work=tmp_path_factory.mktemp("webhook-load"), extra_env=extra,
                   webhook_replicas=2) as r:
        r.start_bot(slot=0)
        r.start_bot(slot=1)
        assert set_webhook(r.urls()[0], r.env) == 0
        r.tg.upstreams = r.urls()
        yield r


@pytest.fixture(scope="module")
def all_chats() -> list:
    return []


def test_two_replicas_answer_every_question_once_in_order_and_never_poll(rig, all_chats):
    out = bench.run_load(rig, workload(all_chats), "clean")
    assert_exactly_once_in_order(out)
    assert rig.tg.calls_of("getUpdates") == []
    served = {status for _, status, _ in rig.tg.webhook_statuses()}
    assert served == {200}, served


@pytest.mark.parametrize("fault", ["429", "5xx", "lost200"])
def test_faults_and_lost_200s_lose_nothing_and_repeat_nothing(rig, all_chats, fault):
    mark = len(rig.tg.webhook_statuses())
    out = bench.run_load(rig, workload(all_chats), fault)
    assert_exactly_once_in_order(out)
    if fault == "lost200":
        lost = [s for _, s, _ in rig.tg.webhook_statuses()[mark:] if s == "200 lost"]
        assert len(lost) >= 3  # delivered again after a 200, acknowledged without a second answer
    else:
        assert sum(out.faults.values()) >= 3, out.faults


def test_kill_9_of_one_replica_mid_load_loses_nothing(rig, all_chats):
    out = bench.run_interrupted(rig, workload(all_chats, chats=20), signal.SIGKILL)
    what = out.interruption
    assert what.exit_code == -signal.SIGKILL and what.log_integrity == "ok"
    assert what.confirmed_unanswered == 0  # nothing acknowledged is unanswered: a 200 follows the answer
    assert out.lost == 0 and out.out_of_order == 0
    # the one window: answered, killed before it was marked answered (no 200 either) -> answered again by
    # the replica that takes it over; only such updates can be duplicated
    assert out.duplicated <= what.answered_before - what.confirmed, out


def test_sigterm_of_a_replica_exits_0_and_the_other_goes_on(rig, all_chats):
    out = bench.run_interrupted(rig, workload(all_chats, chats=20), signal.SIGTERM)
    assert out.interruption.exit_code == 0
    assert_exactly_once_in_order(out)
