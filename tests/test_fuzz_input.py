"""Hostile input against the retrieval API and the bot's messages, fast (no embedding model).

`Retriever.ask` runs its whole pipeline here (validation, normalisation, scope, lexical and dense
legs, fusion, refusal, answer sentence) over the seed report with a small hashed-bigram embedder:
the property is about what the pipeline does with strange text, not about meaning. The real
model's encoder gets the same inputs in tests/test_fuzz_cli.py and tests/test_reliability_bot.py.

Properties:
- `ask` returns an Answer whose hits point at their own text, or raises InputError — nothing else;
- every message the bot builds from an answer (whatever the question and passage text hold) is
  HTML Telegram accepts, within 4096 UTF-16 units, with callback_data within 64 bytes; the
  plain-text fallback is the same visible text.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from conftest import SEED_FILE
from fake_telegram import ApiError, check_markup, visible_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.telegram import messages as tm
from bot.telegram.handlers import ReportBot, clean_question
from bot.telegram.settings import BotOptions
from retrieval.answer import Answer, Hit, citation
from retrieval.config import Settings
from retrieval.document import ReportMeta, Section
from retrieval.errors import InputError
from retrieval.retriever import MAX_QUESTION_CHARS, Retriever

# ------------------------------------------------------------------------------------- inputs

# The fixed list: what a citizen, a curious user or an attacker might type.
# (id, text, refused: True = must be an InputError, False = must be answered, None = either)
HOSTILE: list[tuple[str, str, bool | None]] = [
    ("rtl-override", "\u202e调解了多少\u202c矛盾纠纷\u200f？", False),
    ("zero-width", "调\u200b解\u200d了多少纠纷\ufeff", False),
    ("control-chars", "调解\x00\x07\x1b[31m纠纷", None),
    ("html-injection", "<b>调解</b>了多少纠纷</blockquote>&amp;&<a href='x'>", False),
    ("markdown-injection", "*调解* _了_ `多少` [纠纷](http://x) ~~?~~ ||x|| \\", False),
    ("emoji-only", "😀🎉👍🏽👨‍👩‍👧", True),
    ("punctuation-only", "？？？！！。。。，，,,..;;——……", True),
    ("sql", "'; DROP TABLE questions; -- 调解了多少纠纷", False),
    ("sql-or", '" OR 1=1 --', False),
    ("long-single-token", "调" * MAX_QUESTION_CHARS, False),
    ("long-latin-token", "x" * MAX_QUESTION_CHARS, False),
    ("long-number", "1" * MAX_QUESTION_CHARS, False),
    ("100kb", "问" * 100_000, True),
    ("lone-surrogate", "调解\ud800了多少纠纷", False),
    ("combining-marks", "调\u0301\u0301\u0301解纠纷" + "\u0300" * 50, None),
    ("mixed-scripts", "調解了多少糾紛 how many disputes مرحبا שלום", False),
    ("odd-spaces", "\u3000\u00a0调解\u2028纠纷\u3000", False),
    ("fullwidth", "ＳＥＬＥＣＴ　＊　ＦＲＯＭ　调解", False),
    ("newlines", "调解\n\n纠纷\r\n多少\r", None),
    ("whitespace-only", " \t\u3000\n ", True),
    ("url", "https://t.me/reportqa_test_bot?start=sec_7_1", False),
    ("bot-command", "/start@other_bot sec_99", False),
    ("private-use", "\ue000\uf8ff调解", None),
    ("tag-chars", "\U000e0041\U000e0042调解纠纷", None),
    ("cjk-ext-b", "𠀀𠀁𪚥调解了多少矛盾纠纷", False),
    ("year-only", "2019", False),
    ("format-string", "%s %d {0} {question} ${HOME} $(id)", False),
    ("path-traversal", "../../../../etc/passwd", False),
]

_pieces = st.sampled_from(
    [
        "调解",
        "矛盾纠纷",
        "2019年",
        "衡阳",
        "多少",
        "？",
        "<b>",
        "</blockquote>",
        "&",
        "&amp;",
        "*",
        "_",
        "`",
        "'",
        '"',
        ";--",
        "\u202e",
        "\u200f",
        "\u200b",
        "\ufeff",
        "\x00",
        "\x1b",
        "\n",
        "\u3000",
        "😀",
        "👨‍👩‍👧",
        "𠀀",
        "七、(一)",
        "第十条",
        "SELECT",
        "a" * 200,
        "调" * 300,
    ]
)
questions = st.one_of(
    st.text(max_size=80),
    st.text(st.characters(categories=["Cs", "Co", "Cf", "Cc", "Mn", "So", "Zs"]), max_size=40),
    st.lists(_pieces, max_size=25).map("".join),
    st.lists(st.one_of(_pieces, st.text(max_size=4)), max_size=30).map("".join),
)


# ------------------------------------------------------------------------------------- retriever


class HashEmbedder:
    """Hashed character bigrams, L2-normalised: deterministic vectors without a model."""

    dim = 64
    model_id = "hash-bigram-64"

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for a, b in zip(text, text[1:], strict=False):
            v[int(hashlib.md5((a + b).encode("utf-8", "surrogatepass")).hexdigest(), 16) % self.dim] += 1
        n = np.linalg.norm(v)
        return v / n if n else v

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vec(t) for t in texts])

    def encode_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory) -> Retriever:
    from retrieval.corpus import load_corpus

    settings = Settings(corpus_dirs=(SEED_FILE.parent,), home=tmp_path_factory.mktemp("fuzz-home"))
    return Retriever.from_reports(load_corpus(settings.corpus_dirs), settings, embedder=HashEmbedder())


def check_answer(answer: Answer, question: str) -> None:
    """What a caller relies on: hits in rank order, each citing a section and pointing at its own text."""
    assert isinstance(answer, Answer)
    assert answer.question == question.strip()
    assert [h.rank for h in answer.hits] == list(range(1, len(answer.hits) + 1))
    for h in answer.hits:
        assert h.citation and h.section_id and h.text
        assert h.text[h.highlight_start : h.highlight_end] == h.highlight


def ask_or_refuse(retriever: Retriever, question: str) -> Answer | None:
    try:
        answer = retriever.ask(question, top_k=4)
    except InputError as exc:
        message = str(exc)
        assert message and "\n" not in message and len(message) < 300  # one line a user can read
        return None
    check_answer(answer, question)
    return answer


@pytest.mark.parametrize(("text", "refused"), [(t, r) for _, t, r in HOSTILE], ids=[i for i, _, _ in HOSTILE])
def test_fixed_hostile_questions_get_an_answer_or_a_one_line_input_error(retriever, text, refused):
    answer = ask_or_refuse(retriever, text)
    if refused is not None:
        assert (answer is None) == refused


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(questions)
def test_ask_never_raises_anything_but_input_error(retriever, question):
    ask_or_refuse(retriever, question)


@settings(max_examples=100, deadline=None)
@given(questions, st.integers(0, 60), st.sampled_from(["dense", "lexical", "hybrid"]))
def test_paging_and_modes_of_hostile_questions(retriever, question, offset, mode):
    try:
        answer = retriever.ask(question, top_k=3, mode=mode, offset=offset)
    except InputError:
        return
    assert all(h.rank > offset for h in answer.hits)


# ------------------------------------------------------------------------------------- bot messages

_META = ReportMeta("hengyang-2019-fazhi", "衡阳市2019年度法治政府建设情况报告", "x.txt", signed="2020-03-17")
_nonblank = st.text(min_size=1, max_size=80).filter(str.strip)
_texts = st.one_of(st.text(min_size=1, max_size=400), st.lists(_pieces, min_size=1, max_size=40).map("".join))


@st.composite
def hits(draw: st.DrawFn, rank: int) -> Hit:
    """A hit whose passage, labels and titles hold arbitrary text (a report can contain anything)."""
    text = draw(_texts)
    start = draw(st.integers(0, len(text)))
    end = draw(st.integers(start, len(text)))
    label, title = draw(st.text(max_size=20)), draw(st.text(max_size=60))
    return Hit(
        rank=rank,
        score=0.5,
        report_id=draw(st.sampled_from([_META.report_id, "另一份报告-2020"])),
        report_title=draw(_nonblank),  # the manifest requires a title
        report_date=draw(st.one_of(st.none(), st.text(max_size=12))),
        section_id=draw(st.from_regex(r"[1-9]\d{0,2}(\.[1-9]\d{0,2}){0,3}", fullmatch=True)),
        section_label=label,
        section_title=title,
        citation=draw(st.one_of(st.just(""), st.just(citation(_META.title, label, title)), _nonblank)),
        text=text,
        highlight=text[start:end],
        highlight_start=start,
        highlight_end=end,
    )


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    n = draw(st.integers(1, 4))
    question = clean_question(draw(questions)) or "?"  # as the bot passes it on
    return Answer(question=question, answered=draw(st.booleans()), hits=[draw(hits(i + 1)) for i in range(n)])


class _NoRetriever:
    reports: list[ReportMeta] = []


_BOT = ReportBot(_NoRetriever(), log=None, options=BotOptions())  # type: ignore[arg-type]


def assert_sendable(text: str, markup=None) -> None:
    """As the fake server (which checks what Telegram checks) would accept it, HTML and plain fallback."""
    try:
        shown = visible_text(text, "HTML")
        check_markup(markup.to_dict() if markup is not None else None)
    except ApiError as exc:
        raise AssertionError(f"Telegram would refuse this message: {exc.description}\n{text!r}") from None
    assert visible_text(tm.html_to_plain(text), None) == shown


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answers(), st.integers(1, 10**12), st.integers(0, 999), st.sampled_from([None, 1, -1]))
def test_every_answer_page_is_valid_html_within_limits(answer, row, page, vote):
    text, markup = _BOT._page(answer, row, page, vote)
    assert_sendable(text, markup)
    for article in tm.inline_articles(answer, "k" * 12):
        assert_sendable(article.input_message_content.message_text)
        assert article.title.strip()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(_texts, st.booleans()), min_size=1, max_size=12), st.text(max_size=40), st.text(max_size=80))
def test_section_parts_of_arbitrary_text_are_valid_html_within_limits(blocks, label, title):
    section = Section("7.1", label, title, level=2, start=0, end=0)
    parts = tm.split_parts(tm.section_header(_META, section), blocks)
    for part in parts:
        assert_sendable(part)


@pytest.mark.parametrize("raw", [t for _, t, _ in HOSTILE], ids=[i for i, _, _ in HOSTILE])
def test_refusals_echoing_input_are_valid_html(raw):
    text = clean_question(raw)
    for reply in (
        tm.escape(tm.UNUSABLE_QUESTION.format(detail=text[:300])),
        tm.escape(tm.TOO_LONG.format(length=len(text), limit=MAX_QUESTION_CHARS)),
        tm.render_not_covered(Answer(question=text or "?", answered=False)),
    ):
        assert_sendable(reply)


def test_the_fake_server_would_catch_an_unescaped_reply():
    """The checks above can fail: raw markup from a question is refused as Telegram refuses it."""
    with pytest.raises(AssertionError, match="can't parse entities"):
        assert_sendable("❓ <b>调解</b></blockquote>&")


@settings(max_examples=200, deadline=None)
@given(questions)
def test_cleaned_question_is_one_line_of_encodable_text(raw):
    cleaned = clean_question(raw)
    cleaned.encode("utf-8")  # no lone surrogates: the log and Telegram can take it
    assert cleaned == cleaned.strip() and "\n" not in cleaned and "  " not in cleaned
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in cleaned)


def test_a_question_typed_on_several_lines_is_asked_not_refused(retriever):
    raw = "请问：\n2019年\n衡阳\n调解了\n多少\n矛盾纠纷？\n"
    for question in (raw, clean_question(raw), "调解\n\n纠纷\r\n多少"):
        answer = retriever.ask(question)
        assert answer.hits and answer.hits[0].section_id == "7.1", question
