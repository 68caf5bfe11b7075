"""Follow-up questions in a conversation, understood as standalone questions. Pure functions.

    prev = Turn.of("2022年盐田区地区生产总值是多少？", places=KNOWN)
    understand("那2017年呢？", prev, KNOWN).standalone == "2017年盐田区地区生产总值是多少？"

No LLM: a question is taken apart into its years, its place, its subject/measure (topic) and its
question words (tail); a follow-up names only what changes and the rest is carried over from the
previous turn's standalone question — the idea of historical query expansion (HQE), made visible
and correctable because the rewrite is a readable question, shown to the user (理解为：…).

Kinds, decided in this order:
- more — 具体怎么做的 / 详细说说 / 还有呢: the previous question's next results;
- year / place — the message names only years and/or a place (那2017年呢, 龙岗区呢, 换成南山区,
  换福田看看, 去年呢, 18年的, 前一年呢 — counted from the conversation's year): the previous question
  with those replaced;
- fresh — the message names its own place and measure, or is a longer question of its own
  (more than MAX_CARRIED characters of subject): nothing is carried over (context must never leak
  into a complete question);
- measure — an ellipsis with a new measure (固定资产投资呢, 那参考率呢: the measure replaced), a
  predicate on the same subject (增长了多少？, 受理了多少件？, 龙华定了多少: the question words
  replaced), or a short question naming no place (有效发明专利多少件: asked in the conversation's
  place and year — HQE's rule).

全省/全市 mean the province/city the previous place lies in (place_parents.txt); a conversation about
targets (计划/目标) stays about targets unless the message asks what was achieved (实际修了多少).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from retrieval.normalize import fold_for_match
from retrieval.years import _EXPLICIT, _RANGE, _RELATIVE, _year_value

FRESH, YEAR, PLACE, MEASURE, MORE = "fresh", "year", "place", "measure", "more"
INCOMPLETE = "incomplete"  # a follow-up with nothing to follow (`needs_context`): answered by a note only

# Asking for more of the same: a closed class of chat phrases (具体怎么做的, 详细说说, 还有别的措施吗,
# 其他的呢, 然后呢, 展开讲讲, 再多说一点, 下一页 …).
_MORE_PHRASES = (
    r"具体(?:是|都)?(?:怎么|如何)(?:做|搞|弄|开展|推进|落实|实施)的?",
    r"(?:再)?(?:具体|详细)(?:一)?(?:点|些|一些|说说|讲讲|说一下|讲一下|介绍一下|介绍|内容|措施|情况)?",
    r"细说|细讲|展开(?:说说|讲讲|一下|说|讲)?",
    r"还有(?:没有)?(?:什么|啥|别的|其他|其它)?(?:的)?(?:措施|做法|内容|情况|结果|信息)?(?:吗|呢|没有|没)?",
    r"(?:其他|其它|别的|另外)(?:的)?(?:措施|做法|内容|情况|结果)?",
    r"然后呢|接着呢|后面呢|接着说|然后",
    r"更多(?:的|内容|结果|信息)?|继续(?:说|讲)?|下一(?:页|条|个)",
    r"(?:再)?多(?:说|讲|介绍)(?:说|讲)?(?:一)?(?:点|些|一些)?",
    r"再(?:来|说|讲|给)(?:点|些|一些|说|讲)?",
)
_MORE = re.compile(rf"^(?:那|那么)?(?:请|麻烦)?(?:{'|'.join(_MORE_PHRASES)})(?:吧|呢|吗|啊|呀)?[？?。！!~\s]*$")
# …and, beyond those phrases, any short message made only of words that ask for more (能不能再具体
#讲讲其他做法, 还有啥别的举措没): at least one asking word, nothing else but their fillers.
_MORE_ASK = (
    "具体", "详细", "详尽", "细节", "细说", "细讲", "展开", "还有", "其他", "其它", "别的", "另外", "更多", "继续",
    "补充", "多说", "多讲", "多介绍", "再说", "再讲", "再来", "再介绍", "接着", "然后", "下一页", "下一条", "后续",
)
_MORE_FILLER = (
    "能不能", "能否", "可不可以", "可以", "请", "麻烦", "帮我", "给我", "你", "再", "多", "一下", "一点", "一些",
    "点", "些", "说说", "讲讲", "谈谈", "介绍", "说", "讲", "谈", "聊聊", "看看", "列举", "列一下", "展示", "呢",
    "吗", "吧", "啊", "呀", "哈", "嘛", "没", "没有", "有", "什么", "啥", "的", "了", "是", "怎么", "如何", "做",
    "搞", "弄", "开展", "推进", "落实", "哪些", "措施", "举措", "做法", "办法", "内容", "情况", "方面", "信息",
    "结果", "东西", "地方", "那", "那么", "还", "都",
)
_MORE_WORDS = re.compile(
    "(?:" + "|".join(sorted((*_MORE_ASK, *_MORE_FILLER), key=len, reverse=True)) + ")+"
)
MAX_MORE_CHARS = 14  # a message asking for more is short; a longer one names something of its own


def asks_for_more(text: str) -> bool:
    """具体怎么做的 / 还有啥别的举措没 / 能不能再展开讲讲: the previous question's next results."""
    if _MORE.match(text):
        return True
    core = re.sub(r"[？?。！!~，,、…\s]+", "", text)
    return (
        0 < len(core) <= MAX_MORE_CHARS
        and bool(_MORE_WORDS.fullmatch(core))
        and any(w in core for w in _MORE_ASK)
    )


_OPENER = re.compile(
    r"^(?:那么|那(?![会时])|换成|改成|换到|换(?=[0-9〇零一二三四五六七八九今去前明])|改为|如果是|要是|再看看|看看|再问|还有)"
)
_ELLIPSIS_END = re.compile(r"(?:呢|嘞|的呢|的嘞|怎么样呢|如何呢)[？?。！!~\s]*$")
_TAIL = re.compile(
    r"(?:(?:增长|下降|提高|增加|减少|完成|实现|达到|新增|受理|办理|占|收到|审结|建成|开工|引进|投入)(?:了)?)?"
    r"(?:是多少|有多少|为多少|多少[个件次名项家人所亿万元户座条台辆套张亩吨]*|几[个件次名项家人所台辆套张]?|是什么|有哪些|哪些|怎么样|怎样|如何|"
    r"是怎么做的|怎么做的|是否|有没有|吗|呢)?[？?。！!~\s]*$"
)
_VERBS = (
    "增长|下降|提高|增加|减少|完成|实现|达到|新增|受理|办理|占|收到|审结|建成|开工|引进|投入|提速|压缩|办|开|搞|做|定|修|建"
)
_PREDICATE_START = re.compile(
    rf"^(?:那|那么)?(?:{_VERBS}|有多少|是多少|多少|几[个件次名项家人所]?|怎么|如何|具体|是否|有没有|比上年|同比|"
    r"排(?:第|在|名)|位(?:列|居)|名列)"
)
# Any verb + 了 + how many, and nothing else (提速了多少？, 压缩了几天): a predicate with no subject of its
# own. With an object (调解了多少矛盾纠纷) the message names its own subject and stands alone.
_BARE_PREDICATE = re.compile(
    r"^(?:那|那么)?[\u4e00-\u9fff]{1,3}[了的](?:多少|几)[个件次名项家人所亿万元户座条天倍台辆套张亩吨]*[？?。！!\s]*$"
)
_COUNTER = re.compile(r"^(?:平方公里|公里|平方米|公顷|人次|标箱|千瓦|[个件次名项家人所亿万元户座条张套天倍亩吨])+")
_QUESTION_WORD = re.compile(r"多少|几[个件次名项家人所年]?|哪些|哪个|什么|怎么|如何|是否|有没有")
_TRAILING_VERB = re.compile(rf"(?:(?:{_VERBS})了?|了|的)+$")
_FILLER = re.compile(
    r"^(?:请问|那么|那(?![边里会时块年些个样])|换成|改成|换到|换(?=[0-9〇零一二三四五六七八九今去前明])|改为|如果是|要是|"
    r"再看看|看看|再问|还有|的话|的|一下|换个地方|换个地区|换一个|换个|查一下|查查|问一下|问问|帮我查|帮我看|说说|讲讲|看一下|瞧瞧|告诉我|往前推到|往前推|往回推到|往回推|再往前|倒推到|推到|回到|"
    r"看下|到了|同期|对应)+|"
    r"(?:的|呢|嘞|吗|啊|呀|吧|哈|嘛|哦|噢|咯|喽|呗|来着|一下|看看|看一下|的话|同期|整体|层面|总体)+$"
)
_GENERIC_TAIL = re.compile(r"(?:的)?(?:情况|工作|方面|问题|内容|数据|数字|成绩)+$")
# What a year or place follow-up may add without naming a measure: 2024年的数字呢, 2017年的数据有吗,
# 全省的情况呢, 那时候怎么样.
_GENERIC_CONTENT = re.compile(
    r"^(?:在|到|去)?(?:的)?(?:那会儿|那时候|那时|当时|那一年|那年|情况|数据|数字|数|那边|这边|那里|这里|这块|那块|这一块|"
    r"方面|这个|那个|这方面|那方面|这项|该项)?(?:的)?"
    r"(?:又|也|呢)?(?:是多少|有多少|为多少|多少|怎么样了?|怎样|如何了?|咋样了?|情况如何|有吗|有没有|有|吗|呢|嘞)?$"
)
MAX_CARRIED = 8  # characters of subject a message without a place may name and still be asked in the chat's place
# …and a question for a figure (社会消费品零售总额多少) a little more: a measure's name is long, and a
# figure is always of some place and year
MAX_CARRIED_FIGURE = 12
_FIGURE = re.compile(r"多少|几[个件次名项家人所倍]|增长|增速|增幅|比重|占比|总额|总量|规模")
# 全省 / 全市 in a follow-up: the province / city the previous place lies in (place_parents.txt).
_WHOLE = {"全省": "省", "省里": "省", "全市": "市", "市里": "市"}
# A conversation about targets stays about targets (`_with_intent`)…
_INTENT_WORDS = ("目标", "计划", "预期", "打算")
# …but a message asking what was achieved (实际, 搞了多少亩 — not 定了多少) is not
_ACTUAL = re.compile(r"实际|完成了|实现了|达到了|(?<!定)了(?:多少|几)")
# Measures that are an attribute of the subject, not a subject of their own: 增速 of 金融业增加值.
_ATTRIBUTE = re.compile(r"^(?:增速|增幅|增长|增量|总额|总数|总量|人均|占比|比重|规模|排名|比例|目标|计划)")
PARENTS_FILE = Path(__file__).with_name("place_parents.txt")
_NATIONAL = ("全国", "中国", "我国")
MAX_TURNS = 5  # turns a conversation remembers


@dataclass(frozen=True)
class Parts:
    """A question taken apart; `compose` puts it back in canonical order."""

    years: str  # the year expressions as written (2022年, 去年, 2019—2021年), joined
    place: str  # the place named (盐田区, 深圳, 全国)
    topic: str  # subject and measure (地区生产总值, 学法考试通过率, 行政复议)
    tail: str  # question words (是多少？, 增长了多少？, 怎么样)

    def compose(self) -> str:
        return f"{self.years}{self.place}{self.topic}{self.tail}".strip()


@dataclass(frozen=True)
class Turn:
    """What a conversation remembers of one question (see `bot.question_log` for how it is kept)."""

    question: str
    understood_as: str
    years: tuple[int, ...] = ()
    places: tuple[str, ...] = ()
    hits: tuple[str, ...] = ()  # "report_id#section_id" shown
    offset: int = 0  # results already shown of understood_as (paging by 还有呢)
    region: str | None = None  # the region it was asked in, when the chat is limited to one
    year: int | None = None  # a year chosen for it (year buttons, /year)

    def to_dict(self) -> dict:
        return {
            "question": self.question, "understood_as": self.understood_as, "years": list(self.years),
            "places": list(self.places), "hits": list(self.hits), "offset": self.offset,
            "region": self.region, "year": self.year,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Turn:
        return cls(
            question=str(d["question"]), understood_as=str(d["understood_as"]),
            years=tuple(int(y) for y in d.get("years", ())), places=tuple(str(p) for p in d.get("places", ())),
            hits=tuple(str(h) for h in d.get("hits", ())), offset=int(d.get("offset", 0)),
            region=d.get("region"), year=d.get("year"),
        )


@dataclass(frozen=True)
class Understanding:
    standalone: str  # the question that is searched
    kind: str  # FRESH | YEAR | PLACE | MEASURE | MORE
    changed: tuple[str, ...] = field(default_factory=tuple)  # what the message replaced: "year", "place", …

    @property
    def rewritten(self) -> bool:
        return self.kind != FRESH


@lru_cache(maxsize=1)
def place_parents() -> Mapping[str, str]:
    """The shipped child → parent place pairs (南山区 → 深圳市 → 广东省)."""
    pairs: dict[str, str] = {}
    for line in PARENTS_FILE.read_text(encoding="utf-8").splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) == 2:
            pairs[fields[0]] = fields[1]
    return pairs


def _parent(place: str, level: str, places: Sequence[str]) -> str | None:
    """The known place of that level (省/市) the place lies in: 南山 → 深圳市 → 广东省."""
    parents = place_parents()
    name = next((n for n in (place, place + "市", place + "区", place + "新区") if n in parents), None)
    seen: set[str] = set()
    while name and name not in seen:
        seen.add(name)
        name = parents.get(name)
        if name and name.endswith(level) and (name in places or name[:-1] in places):
            return name
    return None


def _written_year(expression: str) -> str:
    """A year written out in digits (二〇二一年 → 2021年); other expressions unchanged."""
    m = _EXPLICIT.match(expression)
    value = _year_value(m.group(1)) if m else None
    return f"{value}{expression[m.end(1):]}" if value else expression


def _year_expressions(text: str) -> list[tuple[int, int]]:
    """Spans of year expressions (ranges first, then single years, then 今年/去年 …), in order."""
    spans: list[tuple[int, int]] = []
    for pattern in (_RANGE, _EXPLICIT, _RELATIVE):
        for m in pattern.finditer(text):
            start, end = m.span()
            if pattern is _EXPLICIT:
                end += len(re.match(r"\s*年度?", text[end:]).group(0))  # the 年 after the digits
            if not any(s <= start < e for s, e in spans):
                spans.append((start, end))
    return sorted(spans)


def _places_in(text: str, places: Sequence[str]) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    for name in sorted(set(places) | set(_NATIONAL), key=len, reverse=True):
        start = text.find(name)
        while start >= 0:
            end = start + len(name)
            if not any(s < end and start < e for s, e in found):
                found.append((start, end))
            start = text.find(name, end)
    return sorted(found)


def parts(question: str, places: Sequence[str]) -> Parts:
    """Years, place, topic and tail of a question (folded text, place names from the corpus)."""
    text = fold_for_match(question).strip()
    year_spans = _year_expressions(text)
    place_spans = _places_in(text, places)
    years = "和".join(_written_year(text[s:e]) for s, e in year_spans)
    place = "".join(text[s:e] for s, e in place_spans[:1])
    rest = text
    for s, e in sorted(year_spans + place_spans, reverse=True):
        rest = rest[:s] + " " + rest[e:]
    rest = re.sub(r"\s+", "", rest)
    rest = re.sub(r"^(?:和|与|及|、|的(?!话))+", "", rest)
    tail_match = _TAIL.search(rest)
    tail = tail_match.group(0) if tail_match else ""
    topic = rest[: len(rest) - len(tail)] if tail else rest
    topic = re.sub(r"^(?:请问|那么|那会儿|那时候|那时|当时|那一年|那年|那(?![边里会时块年些个样])|的话|的)+|的+$", "",
                   topic)
    return Parts(years=years, place=place, topic=topic, tail=tail)


def _content(message: str, p: Parts) -> str:
    """What the message says besides years, place and fillers (its own subject or measure)."""
    rest = f"{p.topic}{p.tail}"
    rest = _ELLIPSIS_END.sub("", rest)
    rest = re.sub(r"[？?。！!~，,、；;：:\s]+", "", rest)
    rest = _FILLER.sub("", rest)
    return "" if _GENERIC_CONTENT.match(rest) else rest


def subject(topic: str) -> str:
    """The subject of a topic, without what it asked about it: 行政复议一年收到多少申请 → 行政复议一年申请,
    调解了多少矛盾纠纷 → 调解矛盾纠纷, 行政复议情况 → 行政复议."""
    m = _QUESTION_WORD.search(topic)
    core = topic[: m.start()] if m else topic
    core = _TRAILING_VERB.sub("", core)
    core = _GENERIC_TAIL.sub("", core)
    # 计划新增多少公里碧道 / 碧道计划定了: the subject is 碧道, 计划 what was asked of it
    core = re.sub(rf"(?:{'|'.join(_INTENT_WORDS)})+$", "", core)
    # the object after the question: 新增了多少家国家高新技术企业 → 国家高新技术企业,
    # 国家计划新增多少高标准农田 → 国家高标准农田
    obj = _GENERIC_TAIL.sub("", _COUNTER.sub("", topic[m.end():])) if m else ""
    return f"{core}{obj}" or topic


def _replace_measure(topic: str, new: str) -> str:
    """The previous topic with its measure replaced: a short measure of the same sort (…率, …数)
    replaces the end of the topic (学法考试通过率 → 学法考试参考率); another short one goes after the
    topic's subject (调解了多少矛盾纠纷 → 调解成功率); a long one replaces the whole topic
    (地区生产总值 → 固定资产投资)."""
    if len(new) <= 3 and len(topic) > len(new) and topic[-1] == new[-1]:
        return topic[: -len(new)] + new
    if len(new) <= 3 and (subject(topic) != topic or _ATTRIBUTE.match(new)):
        return subject(topic) + new
    return new


def _read(text: str, places: Sequence[str]) -> tuple[re.Match | None, Parts, str]:
    """A message's opener (那 / 换成 / 换 + year … say nothing of their own), its parts without it,
    and what it says besides years, place and fillers."""
    opener = _OPENER.match(text)
    mine = parts(text[opener.end():] if opener else text, places)
    return opener, mine, _content(text, mine)


# Years counted from the conversation's year, not from today: 前一年呢 / 再往前一年 after a 2022 question
# is 2021 (上一年 in a first question stays last year, `retrieval.years`).
_SHIFT = re.compile(
    r"(?:再)?(?:往前|往回|向前|早)(?:推)?(?P<back>一|两|二|三|1|2|3)年|(?<!提)(?:前|上|头)一年"
    r"|(?:再)?(?:往后|向后|晚)(?:推)?(?P<fwd>一|两|二|三|1|2|3)年|(?:后|下)一年|次年|第二年"
)
_SMALL = {"一": 1, "两": 2, "二": 2, "三": 3, "1": 1, "2": 2, "3": 3}
# A two-digit year in a short follow-up (18年的, 那19年呢): 2018, 2019 — only where the message then
# reads as a year follow-up (连续18年 in a question of its own is eighteen years).
_TWO_DIGIT_YEAR = re.compile(r"(?<![\d.])([0-3]\d)(?=年)(?!年度?[\d])")
# 换福田看看 / 那换宝安: 换 before a place says only that the place changes.
_SWITCH = re.compile(r"^(?:那|那么)?换(?:成|到|个|一下)?")


_END = r"(?:的)?(?:情况|数据|数字|变化)?(?:呢|嘞|怎么样|如何|是多少|分别是多少|有多少|分别是)?[？?。！!~\s]*"
# 这几年呢 / 历年的数据 / 近三年呢: the same question over those years (`retrieval.years` reads the span).
_ACROSS_YEARS = re.compile(
    r"(?:那|那么)?(?:看看|再看看)?(?P<span>历年|每年|每一年|这几年|近几年|这些年|近年来|历年来|"
    r"(?:近|最近|过去)(?:[两二三四五六七八九十]|\d{1,2})年)" + _END
)
# 和2021年比呢 / 对比2021年 / 跟2021年相比: the conversation's year and that one, side by side.
_COMPARE_YEAR = re.compile(
    r"(?:那|那么)?(?:和|跟|与|同|对比|比较|相比)(?P<year>(?:19|20)\d{2}|[〇零一二三四五六七八九]{4})年?"
    r"(?:相比|比|比较|对比)?(?:一下|起来)?(?:呢|怎么样|如何|有什么变化|变化)?[？?。！!~\s]*"
)


def _shift_years(text: str, previous_years: str) -> str:
    """前一年 / 再往后一年 → the year before / after the conversation's (one year only)."""
    years = [int(y) for y in re.findall(r"(?:19|20)\d{2}", previous_years)]
    if len(set(years)) != 1:
        return text

    def shifted(m: re.Match) -> str:
        word = m.group(0)
        n = _SMALL.get(m.group("back") or m.group("fwd") or "一", 1)
        forward = bool(m.group("fwd")) or word[0] in "后下次第" or word.startswith(("往后", "向后", "晚", "再往后"))
        return f"{years[0] + (n if forward else -n)}年"

    return _SHIFT.sub(shifted, text)


def _switch_place(text: str, places: Sequence[str]) -> str:
    """换福田看看 → 福田看看 when a known place follows 换; 国家的呢 / 国家层面呢 → 全国 (国家 alone is no
    place: 国家高新技术企业)."""
    text = re.sub(r"^(?:那|那么)?国家(?=(?:的|层面|整体|总体)*(?:呢|嘞|吗|是多少|怎么样)?[？?。！!~\s]*$)",
                  "全国", text)
    m = _SWITCH.match(text)
    if m and any(text.startswith(name, m.end()) for name in (*places, *_NATIONAL)):
        return text[m.end():]
    return text


def understand(message: str, previous: Turn | None, places: Sequence[str]) -> Understanding:
    """The standalone question a message asks, given the conversation's previous turn (see module doc)."""
    text = fold_for_match(message).strip()
    if previous is None:
        return Understanding(text, FRESH)
    if asks_for_more(text):
        return Understanding(previous.understood_as, MORE)
    before = parts(previous.understood_as, places)
    text = _switch_place(_shift_years(_whole_place(text, before.place, places), before.years), places)
    across = _ACROSS_YEARS.fullmatch(text)
    if across and before.topic:
        merged = Parts(across.group("span"), before.place, before.topic, before.tail or "？")
        return Understanding(_asked(merged.compose()), YEAR, ("year",))
    compare = _COMPARE_YEAR.fullmatch(text)
    if compare and before.years and before.topic:
        other = _written_year(compare.group("year") + "年")
        if other not in before.years:
            merged = Parts(f"{before.years}和{other}", before.place, before.topic, before.tail or "？")
            return Understanding(_asked(merged.compose()), YEAR, ("year",))
    two_digit = _TWO_DIGIT_YEAR.sub(r"20\1", text)
    if two_digit != text:
        understood = _understand_after(two_digit, before, places)
        if understood.kind == YEAR:
            return understood
    return _understand_after(text, before, places)


def _understand_after(text: str, before: Parts, places: Sequence[str]) -> Understanding:
    """`understand` once the message is folded and its year and place words are resolved."""
    opener, mine, content = _read(text, places)
    if not content:
        if not (mine.years or mine.place):
            return Understanding(text, FRESH)
        changed = tuple(k for k, v in (("year", mine.years), ("place", mine.place)) if v)
        merged = Parts(mine.years or before.years, mine.place or before.place, before.topic, before.tail or "？")
        return Understanding(_asked(merged.compose()), YEAR if mine.years else PLACE, changed)
    elliptic = bool(_ELLIPSIS_END.search(text) or opener)
    predicate = bool(_PREDICATE_START.match(mine.topic)) if mine.topic else bool(mine.tail)
    bare = bool(_BARE_PREDICATE.match(text) or _BARE_PREDICATE.match(f"{mine.topic}{mine.tail}"))
    predicate = predicate or bare
    if mine.place and len(content) >= 2 and not elliptic and not bare:
        return Understanding(text, FRESH)
    if predicate:
        topic = _with_intent(subject(before.topic), before.topic, text)
        question_words = re.sub(r"^(?:那么|那)", "", f"{mine.topic}{mine.tail}")
        merged = Parts(mine.years or before.years, mine.place or before.place, topic, question_words)
        return Understanding(_asked(merged.compose()), MEASURE, ("measure",))
    # HQE's rule: a short message naming no place of its own is asked in the conversation's place and
    # year (有效发明专利多少件, 目标定了多少, 学位增加了多少); a longer one names a subject of its own.
    size = len(re.sub(r"\d+(?:\.\d+)?", "0", mine.topic))  # a number is one word (本土世界500强: 6)
    # (a verb of its own — 调解了多少矛盾纠纷 — makes it a question of its own)
    figure = _FIGURE.search(f"{mine.topic}{mine.tail}") and not re.search(r"[了过]", mine.topic)
    limit = MAX_CARRIED_FIGURE if figure else MAX_CARRIED
    carried = not mine.place and bool(before.place or before.years) and size <= limit
    if carried and not elliptic:
        measure = _with_intent(_replace_measure(before.topic, mine.topic), before.topic, text)
        merged = Parts(mine.years or before.years, before.place, measure, mine.tail or "？")
        return Understanding(_asked(merged.compose()), MEASURE, ("measure",))
    if elliptic:
        measure = content
        tail = before.tail or "？"
        merged = Parts(mine.years or before.years, mine.place or before.place,
                       _with_intent(_replace_measure(before.topic, measure), before.topic, text), tail)
        changed = ("measure",) + tuple(k for k, v in (("year", mine.years), ("place", mine.place)) if v)
        return Understanding(_asked(merged.compose()), MEASURE, changed)
    return Understanding(text, FRESH)


def needs_context(message: str, places: Sequence[str]) -> bool:
    """A message that only makes sense after another question (那2017年呢？, 龙华区呢, 增长了多少？,
    还有呢) — asked first, it has nothing to build on, and searching its few words answers nonsense."""
    text = fold_for_match(message).strip()
    if asks_for_more(text) or _BARE_PREDICATE.match(text):
        return True
    opener, p, content = _read(text, places)
    elliptic = bool(_ELLIPSIS_END.search(text) or opener)
    return bool(p.years or p.place) and elliptic and not content


def context_note(lang: str = "zh") -> str:
    """What a message that `needs_context` gets instead of passages."""
    if lang == "en":
        return ("This reads like a follow-up, but there is no earlier question to follow. "
                "Please ask the whole question, e.g. 2017年深圳地区生产总值是多少？")
    return "这像是接着上一个问题问的，但还没有上一个问题。请把问题说完整，例如：2017年深圳地区生产总值是多少？"


def _asked(standalone: str) -> str:
    """A rewritten question ends as a question does (目标定了多少 → …目标定了多少？)."""
    return standalone if re.search(r"[？?。！!]$", standalone) else f"{standalone}？"


def _with_intent(topic: str, previous_topic: str, message: str = "") -> str:
    """A new measure asked in a conversation about plans stays about plans: 赤字率定的多少 after
    专项债计划发多少 → 赤字率计划定多少 (a target is read from the year's own report, an actual figure
    from the next year's)."""
    word = next((w for w in _INTENT_WORDS if w in previous_topic), None)
    if word is None or any(w in topic or w in message for w in _INTENT_WORDS) or _ACTUAL.search(message):
        return topic
    return f"{topic}{word}"


def _whole_place(text: str, previous_place: str, places: Sequence[str]) -> str:
    """全省的情况呢 after a 深圳 question → 广东省的情况呢 (the province the previous place lies in)."""
    for word, level in _WHOLE.items():
        if word in text and previous_place:
            parent = _parent(previous_place, level, places)
            if parent:
                return text.replace(word, parent, 1)
    return text


def with_place(standalone: str, place: str, places: Sequence[str]) -> str:
    """The question asked in another place (an answered ask-back): 学位增加了多少 → 南山区学位增加了多少."""
    p = parts(standalone, places)
    return Parts(p.years, place, p.topic, p.tail).compose()


def with_year(standalone: str, year: int, places: Sequence[str]) -> str:
    """The question asked for another year: 罗湖区地区生产总值是多少？ → 2017年罗湖区地区生产总值是多少？"""
    p = parts(standalone, places)
    return Parts(f"{year}年", p.place, p.topic, p.tail).compose()


def remember(history: Sequence[Turn], turn: Turn, limit: int = MAX_TURNS) -> list[Turn]:
    """The conversation's turns with `turn` added, the oldest dropped past `limit`."""
    return [*history, turn][-limit:]
