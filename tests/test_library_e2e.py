"""End to end over a small shelf of reports across years: the seed plus three 罗湖区 work reports
(delivered 2018, 2019, 2020: they review 2017, 2018, 2019 and plan their own year), added the way staff
add them (`reportqa reports add DIR`), asked through the installed CLI and the Telegram bot.

Figures, as the reports state them: 2017 GDP 2150亿元 (2018 report), 2018 2253.69亿元 (2019 report),
2019 2390.26亿元 (2020 report); the 2019 target 增长6.5-7% (2019 report's plan).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from bot_harness import FAST, ask, running_bot

from retrieval.config import Settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
GOV = REPO.parent / "shared" / "corpora" / "gov-work-reports"
REPORTQA = Path(sys.executable).parent / "reportqa"
LUOHU = {
    2018: "2018年政府工作报告（在深圳市罗湖区第七届人民代表大会第三次会议上）_2018",
    2019: "2019年政府工作报告（在深圳市罗湖区第七届人民代表大会第五次会议上）_2019",
    2020: "2020年政府工作报告（在深圳市罗湖区第七届人民代表大会第七次会议上）_2020",
}
GDP = {2017: "2150亿元", 2018: "2253.69亿元", 2019: "2390.26亿元"}


def run(home: Path, corpus: Path, *args: str, today: str | None = None):
    env = {k: v for k, v in os.environ.items() if k not in ("REPORTQA_CORPUS", "REPORTQA_TODAY", "NO_COLOR")}
    env.update({"REPORTQA_HOME": str(home), "REPORTQA_CORPUS": str(corpus), "HF_HUB_OFFLINE": "1"})
    if today:
        env["REPORTQA_TODAY"] = today
    return subprocess.run([str(REPORTQA), *args], capture_output=True, env=env, cwd=home, timeout=900)


def ask_json(library, question: str, *args: str, today: str = "2026-12-02") -> tuple[int, dict]:
    home, corpus = library
    proc = run(home, corpus, "ask", "--json", *args, question, today=today)
    assert proc.returncode in (0, 1), proc.stderr.decode()
    return proc.returncode, json.loads(proc.stdout)


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, model_home: Path) -> tuple[Path, Path]:
    """A corpus directory filled by `reportqa reports add`, indexed once."""
    home = tmp_path_factory.mktemp("library-home")
    (home / "models").symlink_to(Settings(home=model_home).models_dir, target_is_directory=True)
    corpus = tmp_path_factory.mktemp("library-corpus")
    shutil.copy(REPO / "corpus" / "reports.toml", corpus)
    shutil.copy(REPO / "corpus" / "hengyang-2019-fazhi-zhengfu-report.txt", corpus)
    inbox = tmp_path_factory.mktemp("inbox")
    for stem in LUOHU.values():
        shutil.copy(GOV / f"{stem}.txt", inbox)
    (inbox / "损坏的文件.txt").write_bytes(b"\x00\xff\x00\xfe" * 200)  # binary junk: skipped, named
    before = (corpus / "reports.toml").read_bytes()
    added = run(home, corpus, "reports", "add", str(inbox))
    text = added.stdout.decode()
    assert added.returncode == 1, added.stderr.decode()  # one file could not be added
    assert "损坏的文件.txt" in text and "3 of 4 report(s) added" in text, text
    assert (corpus / "reports.toml").read_bytes() != before
    built = run(home, corpus, "index", "build")
    assert built.returncode == 0, built.stderr.decode()
    return home, corpus


def test_reports_list_shows_region_kind_year_and_the_period_each_covers(library):
    home, corpus = library
    proc = run(home, corpus, "reports", "list")
    lines = proc.stdout.decode().splitlines()
    row = next(line for line in lines if line.startswith(LUOHU[2019]))
    assert row.split()[1:5] == ["罗湖区", "政府工作报告", "2019", "回顾2018年"] and "计划2019年" in row
    manifest = (corpus / "reports.toml").read_text(encoding="utf-8")
    assert 'region = "罗湖区"' in manifest and 'kind = "政府工作报告"' in manifest


def test_an_actual_figure_comes_from_the_part_that_reviews_that_year(library):
    code, answer = ask_json(library, "2018年罗湖区地区生产总值是多少？")
    top = answer["results"][0]
    assert code == 0 and answer["years"] == [2018]
    assert top["report_id"] == LUOHU[2019] and GDP[2018] in top["highlight"]
    assert (top["period"], top["period_kind"]) == (2018, "review")
    assert answer["timeline"] is None and answer["note"] is None


def test_a_target_comes_from_the_part_that_plans_that_year(library):
    _, answer = ask_json(library, "2019年罗湖区地区生产总值增长目标是多少？")
    top = answer["results"][0]
    assert top["report_id"] == LUOHU[2019] and top["period_kind"] == "plan"
    assert "6.5-7%" in top["highlight"]


def test_no_year_means_the_latest_and_offers_the_other_years(library):
    code, answer = ask_json(library, "罗湖区地区生产总值是多少？")
    assert code == 0 and answer["years"] == []
    assert {h["report_id"] for h in answer["results"]} == {LUOHU[2020]}  # years are not mixed
    assert GDP[2019] in answer["results"][0]["highlight"]
    assert answer["other_years"][:2] == [2018, 2017]
    _, older = ask_json(library, "罗湖区地区生产总值是多少？", "--year", "2017")
    assert older["results"][0]["report_id"] == LUOHU[2018] and GDP[2017] in older["results"][0]["highlight"]


def test_relative_years_count_from_today(library):
    _, answer = ask_json(library, "去年罗湖的GDP是多少？", today="2019-03-01")
    assert answer["years"] == [2018] and answer["note"] is None
    assert GDP[2018] in answer["results"][0]["highlight"]
    # in 2026 去年 is 2025: no report reaches it, the newest one answers and says so
    code, late = ask_json(library, "去年罗湖的GDP是多少？", today="2026-12-02")
    assert code == 0 and late["years"] == [2025]
    assert late["results"][0]["report_id"] == LUOHU[2020] and GDP[2019] in late["results"][0]["highlight"]
    assert late["note"].startswith("收录的最新报告为《2020年政府工作报告") and "回顾2019年" in late["note"]
    # in 2021 去年 is 2020, which the newest report only plans: the newest figure, not the 2020 target
    _, planned = ask_json(library, "去年罗湖的GDP是多少？", today="2021-03-01")
    assert planned["years"] == [2020] and planned["results"][0]["period_kind"] == "review"
    assert GDP[2019] in planned["results"][0]["highlight"] and "回顾2019年" in planned["note"]


def test_an_explicit_year_no_report_covers_is_not_covered_with_nearest_years(library):
    code, answer = ask_json(library, "2012年罗湖区地区生产总值是多少？")
    assert code == 1 and answer["answered"] is False
    assert "2012年" in answer["note"] and answer["other_years"] == [2017, 2018, 2019]


def test_a_timeline_gives_one_entry_per_year_oldest_first(library):
    home, corpus = library
    _, answer = ask_json(library, "罗湖区历年地区生产总值是多少")
    entries = answer["timeline"]
    assert [e["period"] for e in entries] == [2017, 2018, 2019]
    for entry in entries:
        assert GDP[entry["period"]] in entry["highlight"], entry["highlight"]
    assert [e["report_id"] for e in entries] == [LUOHU[2018], LUOHU[2019], LUOHU[2020]]
    _, compare = ask_json(library, "2017年和2019年罗湖区GDP分别是多少")
    assert [e["period"] for e in compare["timeline"]] == [2017, 2019]
    table = run(home, corpus, "ask", "罗湖区历年地区生产总值是多少").stdout.decode()
    rows = [line for line in table.splitlines() if line.startswith(("2017年", "2018年", "2019年"))]
    assert len(rows) == 3 and all(" | 【" in r and "| 《" in r for r in rows), table


def test_the_seed_still_answers_its_own_questions(library):
    _, answer = ask_json(library, "2019年衡阳全市调解了多少件矛盾纠纷？")
    top = answer["results"][0]
    assert top["report_id"] == "hengyang-2019-fazhi" and "17076" in top["highlight"]


def test_telegram_year_buttons_and_a_timeline(tg, library, tmp_path, monkeypatch):
    from retrieval.retriever import Retriever

    home, corpus = library
    monkeypatch.setenv("REPORTQA_TODAY", "2026-12-02")
    retriever = Retriever.open(Settings(corpus_dirs=(corpus,), home=home))
    with running_bot(tg, retriever, tmp_path, FAST):
        reply = ask(tg, "罗湖区地区生产总值是多少？")
        assert GDP[2019] in reply.result["text"]
        buttons = [b["text"] for row in reply.result["reply_markup"]["inline_keyboard"] for b in row]
        assert "📅 2018年" in buttons and "📅 2017年" in buttons
        mark = tg.mark()
        tg.press(reply.result, "📅 2017年")
        again = tg.wait_for("sendMessage", after=mark)
        assert GDP[2017] in again.result["text"] and "2018年政府工作报告" in again.result["text"]
        timeline = ask(tg, "罗湖区历年地区生产总值是多少")
        text = timeline.result["text"]
        assert "历年情况（3 年）" in text
        lines = [line for line in text.splitlines() if line.startswith(("2017年", "2018年", "2019年"))]
        assert len(lines) == 3 and all(GDP[int(line[:4])] in line for line in lines), text
        late = ask(tg, "去年罗湖的GDP是多少？")
        assert "ℹ️ 收录的最新报告为" in late.result["text"]
    print("\n----- transcript -----\n" + tg.transcript())  # shown with -s


# ---------------------------------------------------------------------------------- conversations

DIALOGUE = ["2018年罗湖区地区生产总值是多少？", "那2017年呢？", "固定资产投资呢？"]


def test_ask_json_lines_with_a_conversation_id_form_one_dialogue(library):
    home, corpus = library
    lines = [json.dumps({"conversation": "a", "question": q}, ensure_ascii=False) for q in DIALOGUE]
    lines.insert(1, "那2017年呢？")  # a plain line stands alone: nothing to follow up
    proc = subprocess.run(
        [str(REPORTQA), "ask", "--json", "-"], input="\n".join(lines).encode(), capture_output=True, timeout=900,
        env={**os.environ, "REPORTQA_HOME": str(home), "REPORTQA_CORPUS": str(corpus), "REPORTQA_TODAY": "2026-12-02"},
    )
    out = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [o.get("conversation") for o in out] == ["a", None, "a", "a"]
    assert out[0]["understood_as"] == DIALOGUE[0]
    assert out[1]["understood_as"] == "那2017年呢？"  # not taken from the dialogue
    assert out[2]["understood_as"] == "2017年罗湖区地区生产总值是多少？"
    assert GDP[2017] in out[2]["results"][0]["highlight"]
    assert out[3]["understood_as"] == "2017年罗湖区固定资产投资是多少？"
    assert any("229亿元" in r["text"] for r in out[3]["results"])


def test_cli_chat_keeps_context_resets_and_never_leaks_into_a_complete_question(library):
    home, corpus = library
    script = "\n".join([*DIALOGUE, "/reset", "那2019年呢？", "衡阳市调解了多少矛盾纠纷", "那罗湖区呢？", "/quit"])
    script += "\n"
    proc = subprocess.run(
        [str(REPORTQA), "chat", "-k", "1"], input=script.encode(), capture_output=True, timeout=900,
        env={**os.environ, "REPORTQA_HOME": str(home), "REPORTQA_CORPUS": str(corpus), "REPORTQA_TODAY": "2026-12-02"},
    )
    text = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr.decode()
    assert "理解为 (understood as): 2017年罗湖区地区生产总值是多少？" in text
    assert "理解为 (understood as): 2017年罗湖区固定资产投资是多少？" in text
    after_reset = text.split("conversation forgotten")[1]
    assert "理解为 (understood as): 2019年罗湖区" not in after_reset  # /reset: no context
    first = after_reset.split("reportqa> 衡阳市调解了多少矛盾纠纷")[0]
    assert "请把问题说完整" in first and "《" not in first  # a follow-up with nothing to follow: no passages
    complete = after_reset.split("reportqa> 衡阳市调解了多少矛盾纠纷")[1].split("reportqa> 那罗湖区呢？")[0]
    assert "理解为" not in complete and "17076" in complete  # a complete question stands alone
    assert "理解为 (understood as): 罗湖区调解了多少矛盾纠纷" in text


def test_telegram_dialogue_ask_back_and_reset(tg, library, tmp_path, monkeypatch):
    from retrieval.retriever import Retriever

    home, corpus = library
    monkeypatch.setenv("REPORTQA_TODAY", "2026-12-02")
    retriever = Retriever.open(Settings(corpus_dirs=(corpus,), home=home))
    with running_bot(tg, retriever, tmp_path, FAST) as bot:
        chat = tg.private_chat()
        first = ask(tg, DIALOGUE[0], chat)
        assert GDP[2018] in first.result["text"] and "理解为" not in first.result["text"]
        year = ask(tg, DIALOGUE[1], chat)
        assert "🔎 理解为：2017年罗湖区地区生产总值是多少？" in year.result["text"]
        assert GDP[2017] in year.result["text"]
        measure = ask(tg, DIALOGUE[2], chat)
        assert "🔎 理解为：2017年罗湖区固定资产投资是多少？" in measure.result["text"]
        # asking back: no place named, two regions answer about as well
        back = ask(tg, "调解了多少矛盾纠纷", chat)
        assert "您问的是哪个地区？" in back.result["text"]
        buttons = [b["text"] for row in back.result["reply_markup"]["inline_keyboard"] for b in row]
        assert set(buttons) == {"衡阳市", "罗湖区"}
        mark = tg.mark()
        tg.press(back.result, "衡阳市")
        picked = tg.wait_for("sendMessage", after=mark)
        assert "17076" in picked.result["text"] and "理解为：衡阳市调解了多少矛盾纠纷" in picked.result["text"]
        place = ask(tg, "那罗湖区呢？", chat)  # the picked region was a place like any other
        assert "理解为：罗湖区调解了多少矛盾纠纷" in place.result["text"]
        reset = ask(tg, "/reset", chat)
        assert "已忘记之前的对话" in reset.result["text"]
        fresh = ask(tg, "那2019年呢？", chat)
        assert "理解为" not in fresh.result["text"]  # nothing left to follow up
        assert "请把问题说完整" in fresh.result["text"] and "《" not in fresh.result["text"]
        # memory is per chat and kept as HMACs; forget-chat deletes it too
        other = ask(tg, "那2017年呢？", tg.private_chat(2002))
        assert "理解为" not in other.result["text"]
        log = bot.log
        stored = sqlite3.connect(log.path).execute("SELECT chat_hash, turns FROM conversations").fetchall()
        assert stored and all(str(chat.id) not in h and str(chat.id) not in t for h, t in stored)
        log.forget_chat(chat.id)
        assert log.conversation(chat.id, None) == ([], {})
    print("\n----- transcript -----\n" + tg.transcript())  # shown with -s
