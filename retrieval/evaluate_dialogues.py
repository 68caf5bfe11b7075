"""`reportqa eval` on dialogue files: follow-up questions scored turn by turn.

A dialogue file is JSON Lines with a `"conversation"` id per line (turns of one dialogue contiguous,
in order): `question` (what the user typed), `type` (fresh | year | place | measure | more),
`standalone` (the question a careful human rewrites the turn into), `report` (+ optional
`gold_sections`) and `answer_key` of the passage that answers it, `today`, `split`
(see corpus/eval/README.md). Each dialogue is played through `Retriever.converse` and each turn is
scored:

- turn right: hit 1 from the gold report (and section, when given) with the answer key in its
  highlighted sentence — for `more` turns: the previous question paged, the key among the hits;
- like standalone: the turn's hit 1 is the passage that asking the gold `standalone` gives (the
  issue's "answered like its standalone question");
- leak: a `fresh` turn after the first that was rewritten with context (it must stand alone);
- rewrite exact: understood_as equals the gold standalone (after folding; informative only).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

from retrieval.errors import InputError
from retrieval.normalize import fold_for_match

TYPES = ("fresh", "year", "place", "measure", "more")


@dataclass(frozen=True)
class DialogueTurn:
    conversation: str
    turn: int
    question: str
    type: str
    standalone: str
    report: str | None
    gold_sections: tuple[str, ...]
    answer_key: str | None
    today: str | None
    split: str


@dataclass
class TurnResult:
    conversation: str
    turn: int
    type: str
    split: str
    question: str
    understood_as: str
    kind: str  # how the system understood it
    right: bool
    like_standalone: bool
    leak: bool
    rewrite_exact: bool
    top: str
    seconds: float


@dataclass
class DialogueMetrics:
    turns: int = 0
    followups: int = 0
    turn_accuracy: float | None = None
    followup_like_standalone: float | None = None
    fresh_after_context: int = 0
    leaks: int = 0
    rewrite_exact: float | None = None


@dataclass
class DialogueReport:
    source: str
    rows: dict[str, DialogueMetrics] = field(default_factory=dict)  # split or split/type → metrics
    results: list[TurnResult] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "dialogues": {k: asdict(v) for k, v in self.rows.items()},
            "failures": [asdict(r) for r in self.results if not r.right or r.leak or not r.like_standalone],
        }

    def to_text(self, max_failures: int = 20) -> str:
        head = (f"{'split/type':16} {'turns':>5} {'follow':>6} {'right':>6} {'likeSA':>6} {'freshCtx':>8} "
                f"{'leaks':>5} {'exact':>6}")
        lines = [f"dialogues: {self.source}", "right = right report (section) and answer key highlighted; likeSA = "
                 "follow-up's hit 1 is the standalone question's hit 1; leaks = fresh turns rewritten with context",
                 head, "-" * len(head)]
        for name, m in self.rows.items():
            lines.append(
                f"{name:16} {m.turns:5d} {m.followups:6d} {_f(m.turn_accuracy)} {_f(m.followup_like_standalone)} "
                f"{m.fresh_after_context:8d} {m.leaks:5d} {_f(m.rewrite_exact)}"
            )
        fails = [r for r in self.results if not r.right or r.leak or (r.type != "fresh" and not r.like_standalone)]
        if fails:
            lines.append(f"\n{len(fails)} turns with a miss (first {max_failures}):")
            for r in fails[:max_failures]:
                what = [w for w, bad in (("wrong", not r.right), ("LEAK", r.leak),
                                         ("unlike standalone", r.type != "fresh" and not r.like_standalone)) if bad]
                lines.append(f"  [{r.conversation}#{r.turn} {r.split} {r.type}→{r.kind}] {r.question} "
                             f"⇒ {r.understood_as} -> {r.top}: {', '.join(what)}")
        return "\n".join(lines)


def _f(v: float | None) -> str:
    return "   -  " if v is None else f"{v:6.3f}"


def is_dialogue_file(path: Path) -> bool:
    """A JSON Lines file whose first object has a "conversation" field."""
    try:
        with Path(path).open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    obj = json.loads(line)
                    return isinstance(obj, dict) and "conversation" in obj
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return False


def load_dialogues(path: Path) -> list[list[DialogueTurn]]:
    """Dialogues in file order; InputError naming the line for anything malformed."""
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read dialogue file ({e})") from e
    dialogues: dict[str, list[DialogueTurn]] = {}
    for n, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            turn = DialogueTurn(
                conversation=str(d["conversation"]), turn=int(d.get("turn", 0)), question=str(d["question"]),
                type=str(d.get("type", "fresh")), standalone=str(d.get("standalone") or d["question"]),
                report=d.get("report"), gold_sections=tuple(str(s) for s in d.get("gold_sections") or ()),
                answer_key=d.get("answer_key"), today=d.get("today"), split=str(d.get("split", "all")),
            )
            if turn.type not in TYPES:
                raise ValueError(f"type must be one of {', '.join(TYPES)}")
            if turn.today:
                date.fromisoformat(turn.today)
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(f"{path}:{n}: not a valid dialogue line ({e})") from e
        dialogues.setdefault(turn.conversation, []).append(turn)
    if not dialogues:
        raise InputError(f"{path}: no dialogue turns in file")
    return list(dialogues.values())


def _same(a: str, b: str) -> bool:
    return fold_for_match(a).rstrip("？?。 ") == fold_for_match(b).rstrip("？?。 ")


def _top(answer) -> str:
    h = answer.hits[0] if answer.hits else None
    return f"{h.report_id}#{h.section_id}#{h.paragraph_index}" if h else "-"


def _right(t: DialogueTurn, answer) -> bool:
    if t.type == "more":
        if not t.answer_key:
            return bool(answer.hits)
        key = fold_for_match(t.answer_key)
        return any(key in fold_for_match(h.text) and t.report in (None, h.report_id) for h in answer.hits)
    if t.report is None:
        return not answer.answered
    h = answer.hits[0] if answer.hits else None
    if h is None or not answer.answered or h.report_id != t.report:
        return False
    if t.gold_sections and h.section_id not in t.gold_sections:
        return False
    return not t.answer_key or fold_for_match(t.answer_key) in fold_for_match(h.highlight)


def evaluate_dialogues(retriever, dialogues: Sequence[Sequence[DialogueTurn]], source: str = "",
                       page_size: int = 3) -> DialogueReport:
    import time

    from retrieval.followup import FRESH, remember

    report = DialogueReport(source=source)
    for dialogue in dialogues:
        history: list = []
        previous_standalone = None
        for t in dialogue:
            today = date.fromisoformat(t.today) if t.today else None
            started = time.perf_counter()
            answer, turn = retriever.converse(t.question, history, top_k=page_size, today=today)
            seconds = time.perf_counter() - started
            history = remember(history, turn)
            if t.type == "more":
                paged = answer.understood_as == (previous_standalone or answer.understood_as)
                like = paged and answer.followup == "more"
            else:
                alone = retriever.ask(t.standalone, top_k=page_size, today=today)
                like = _top(alone) == _top(answer)
            leak = t.type == "fresh" and t.turn > 1 and answer.followup != FRESH
            report.results.append(TurnResult(
                conversation=t.conversation, turn=t.turn, type=t.type, split=t.split, question=t.question,
                understood_as=answer.understood_as, kind=answer.followup, right=_right(t, answer),
                like_standalone=like, leak=leak,
                rewrite_exact=_same(answer.understood_as, t.standalone),
                top=_top(answer), seconds=seconds,
            ))
            previous_standalone = answer.understood_as
    for split in sorted({r.split for r in report.results}):
        rs = [r for r in report.results if r.split == split]
        report.rows[split] = _aggregate(rs)
        for kind in TYPES:
            of_kind = [r for r in rs if r.type == kind]
            if of_kind:
                report.rows[f"{split[:4]}/{kind}"] = _aggregate(of_kind)
    if len({r.split for r in report.results}) > 1:
        report.rows["all"] = _aggregate(report.results)
    return report


def _aggregate(rs: Sequence[TurnResult]) -> DialogueMetrics:
    follow = [r for r in rs if r.type != "fresh"]
    fresh_ctx = [r for r in rs if r.type == "fresh" and r.turn > 1]

    def rate(items, pred):
        return sum(1 for r in items if pred(r)) / len(items) if items else None

    return DialogueMetrics(
        turns=len(rs),
        followups=len(follow),
        turn_accuracy=rate(rs, lambda r: r.right),
        followup_like_standalone=rate(follow, lambda r: r.like_standalone),
        fresh_after_context=len(fresh_ctx),
        leaks=sum(r.leak for r in fresh_ctx),
        rewrite_exact=rate(follow, lambda r: r.rewrite_exact),
    )
