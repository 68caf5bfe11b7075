"""The one retrieval API the CLI and the Telegram bot call.

    r = Retriever.open(Settings())          # loads corpus + model + index, building what is stale
    ans = r.ask("2019年调解了多少矛盾纠纷", top_k=3)
    ans.answered, ans.hits[0].citation, ans.hits[0].highlight

A question goes: validate → scope (reports it names) → normalise → dense leg (FAISS) + lexical leg
(BM25) → fuse (`retrieval.rank`) → covered or not (`retrieval.refusal`) → answer sentence per hit
(`retrieval.highlight`). Everything user-caused raises a ReportQAError subclass with a one-line message.
"""

from __future__ import annotations

import gc
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date

import numpy as np

from retrieval.answer import Answer, Hit, report_label
from retrieval.config import Settings
from retrieval.document import Report, ReportMeta, Section
from retrieval.errors import InputError
from retrieval.followup import INCOMPLETE, MORE, Turn, context_note, needs_context, understand
from retrieval.highlight import (
    asks_for_number,
    asks_for_share,
    choose_sentence,
    gloss_token_weights,
    measure_terms,
)
from retrieval.index_store import IndexStore
from retrieval.indexing import LoadedIndex, ensure_index, open_readonly, plan, stale_reports
from retrieval.lexical import tokenize
from retrieval.normalize import fold_for_match, normalize_question
from retrieval.passages import Passage, flatten
from retrieval.periods import REVIEW
from retrieval.refusal import RefusalFeatures, is_chinese, is_covered
from retrieval.scope import detect_scope, question_places
from retrieval.scoring import PassageScorer
from retrieval.shelf import AskContext, Shelf
from retrieval.time_select import (
    coverage_note,
    kind_mismatch_note,
    nearest_years,
    newest_at_most,
    uncovered_note,
)
from retrieval.translate import gloss, question_lang
from retrieval.years import QuestionTime, question_time, replace_relative, strip_years

MODES = ("dense", "lexical", "hybrid")
MAX_QUESTION_CHARS = 1000  # longer input is rejected with InputError, not truncated silently
MAX_TOP_K = 50


@dataclass(frozen=True)
class IndexStatus:
    model: str
    dim: int
    reports: int
    paragraphs: int
    corpus_hash: str
    stale: bool  # the corpus, model or parser changed since the index was built
    stale_reports: tuple[str, ...]  # report ids to (re)index
    size_bytes: int
    built_at: str | None


def validate_question(question: object) -> str:
    """The question stripped, or InputError saying plainly what is wrong with it."""
    if not isinstance(question, str):
        raise InputError("the question must be text")
    q = question.strip()
    if not q:
        raise InputError("the question is empty")
    if len(q) > MAX_QUESTION_CHARS:
        raise InputError(f"the question is too long ({len(q)} characters; at most {MAX_QUESTION_CHARS})")
    printable = sum(1 for c in q if unicodedata.category(c)[0] in "LNPSZ" or c.isspace())
    if printable < max(1, 0.7 * len(q)) or "\ufffd" in q and q.count("\ufffd") > 0.2 * len(q):
        raise InputError("the question is not readable text")
    if not any(unicodedata.category(c)[0] in "LN" for c in q):
        raise InputError("the question has no words in it")
    return q


class Retriever:
    """Loaded corpus + index; thread-safe for concurrent `ask` calls."""

    def __init__(
        self,
        settings: Settings,
        reports: list[Report],
        passages: list[Passage],
        embedder,
        index: LoadedIndex,
        name: str,
    ):
        self.settings = settings
        self._reports = reports
        self._by_id = {r.meta.report_id: i for i, r in enumerate(reports)}
        self._passages = passages  # flatten(reports): row i of every index is passage i
        self._report_of = np.array([p.report_index for p in self._passages], dtype=np.int64)
        self._embedder = embedder
        self._index = index
        self._name = name
        self._scorer = PassageScorer(passages, index, embedder)
        self._fingerprint: tuple | None = None  # corpus files as opened (set by `open`)
        self._shelf = Shelf(reports, passages, self._scorer)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        settings: Settings | None = None,
        *,
        progress: bool = False,
        rebuild: bool = False,
        verify: bool = False,
        embedder=None,
    ) -> Retriever:
        """Load the corpus, model and index; (re)build the index for changed reports first.

        A report file that cannot be parsed is left out with a logged warning rather than taking
        every other report down with it; `reportqa reports add` refuses such files up front.
        """
        from retrieval.corpus import corpus_fingerprint, load_corpus

        settings = settings or Settings()
        fingerprint = corpus_fingerprint(settings.corpus_dirs)
        reports = load_corpus(settings.corpus_dirs, skip_invalid=True, parsed_cache=settings.parsed_cache_dir)
        # The ~100k objects of a loaded corpus live as long as the retriever and hold no reference
        # cycles: keep the cyclic collector from walking them again on every full collection (that
        # was 0.15–0.2 s of a cold `ask`). A retriever replaced later is still freed by refcounting.
        gc.freeze()
        retriever = cls.from_reports(
            reports, settings, progress=progress, rebuild=rebuild, verify=verify, embedder=embedder
        )
        retriever._fingerprint = fingerprint
        return retriever

    def corpus_changed(self) -> bool:
        """True when the corpus files on disk differ from what this retriever was opened on (stat only)."""
        from retrieval.corpus import corpus_fingerprint

        return self._fingerprint is not None and corpus_fingerprint(self.settings.corpus_dirs) != self._fingerprint

    def reopened(self, *, progress: bool = False) -> Retriever:
        """A new retriever over the corpus as it is now (re-embedding only changed reports).

        The current one keeps answering until the caller swaps in the new one; on any error the
        caller keeps the old one and reports the error.
        """
        return Retriever.open(self.settings, progress=progress, embedder=self._embedder)

    @classmethod
    def from_reports(
        cls,
        reports: list[Report],
        settings: Settings | None = None,
        *,
        name: str = "corpus",
        progress: bool = False,
        rebuild: bool = False,
        verify: bool = False,
        embedder=None,
    ) -> Retriever:
        """A retriever over reports already in memory (the eval harness uses this for CMRC).

        verify: check every stored per-report vector file too, not only the files serving reads
        (`reportqa index build` does; see `retrieval.indexing.ensure_index`)."""
        settings = settings or Settings()
        if embedder is None:
            from retrieval.embedding import load_embedder

            embedder = load_embedder(settings, progress=progress)
        store = IndexStore(settings.index_dir / name)
        passages = flatten(reports)
        if settings.index_readonly or store.read_only():
            index = open_readonly(store, reports, passages, embedder)
        else:
            index = ensure_index(store, reports, passages, embedder, progress=progress, rebuild=rebuild,
                                 verify=verify)
        if hasattr(embedder, "release_passage_encoder"):
            embedder.release_passage_encoder()  # serving needs the query path only (saves ~600 MB)
        return cls(settings, reports, passages, embedder, index, name)

    # -- corpus access ------------------------------------------------------------------------

    @property
    def reports(self) -> list[ReportMeta]:
        return [r.meta for r in self._reports]

    def report(self, report_id: str) -> Report:
        """The parsed report; InputError if the id is unknown."""
        i = self._by_id.get(report_id)
        if i is None:
            known = ", ".join(list(self._by_id)[:5])
            raise InputError(f"unknown report id {report_id!r} (known: {known})")
        return self._reports[i]

    def section(self, report_id: str, section_id: str) -> Section:
        """A section of a report; InputError if either id is unknown."""
        sec = self.report(report_id).section(section_id)
        if sec is None:
            raise InputError(f"report {report_id!r} has no section {section_id!r}")
        return sec

    def status(self) -> IndexStatus:
        m = self._index.manifest
        return IndexStatus(
            model=m.model_id,
            dim=m.dim,
            reports=len(self._reports),
            paragraphs=len(self._passages),
            corpus_hash=m.corpus_hash,
            stale=self.corpus_changed(),  # the corpus on disk moved on since this retriever was opened
            stale_reports=(),
            size_bytes=IndexStore(self.settings.index_dir / self._name).size_bytes(),
            built_at=m.built_at or None,
        )

    # -- asking -------------------------------------------------------------------------------

    def ask(
        self,
        question: str,
        top_k: int = 3,
        reports: Sequence[str] | None = None,
        mode: str = "hybrid",
        offset: int = 0,
        *,
        year: int | None = None,
        today: date | None = None,
        region: str | None = None,
    ) -> Answer:
        """Answer a question: hits ranked offset..offset+top_k; InputError for empty/overlong input.

        year: ask about that year only (the CLI's --year, Telegram's year buttons);
        today: the date relative years (今年, 去年) count from (default: settings.today or the clock);
        region: only that region's reports (盐田区, 深圳市 …; a chat's scope, an answered ask-back).
        """
        return self.ask_explained(question, top_k, reports, mode, offset, year=year, today=today, region=region)[0]

    def ask_explained(
        self,
        question: str,
        top_k: int = 3,
        reports: Sequence[str] | None = None,
        mode: str = "hybrid",
        offset: int = 0,
        *,
        year: int | None = None,
        today: date | None = None,
        region: str | None = None,
    ) -> tuple[Answer, RefusalFeatures | None]:
        """`ask`, plus the features the covered/not-covered decision was made on (for calibration)."""
        answer, features = self._ask(question, top_k, reports, mode, offset, year=year, today=today, region=region)
        return replace(answer, lang=question_lang(answer.question)), features

    def _ask(
        self,
        question: str,
        top_k: int,
        reports: Sequence[str] | None,
        mode: str,
        offset: int,
        *,
        year: int | None,
        today: date | None,
        region: str | None,
    ) -> tuple[Answer, RefusalFeatures | None]:
        q = validate_question(question)
        if mode not in MODES:
            raise InputError(f"unknown mode {mode!r} (choose one of {', '.join(MODES)})")
        if not 1 <= top_k <= MAX_TOP_K:
            raise InputError(f"top_k must be between 1 and {MAX_TOP_K}")
        if offset < 0:
            raise InputError("offset must not be negative")
        if year is not None and not 1900 <= year <= 2100:
            raise InputError(f"year must be between 1900 and 2100, got {year}")
        allowed_reports = [self._by_id[self.report(r).meta.report_id] for r in reports] if reports else None
        if region is not None:
            in_region = self._shelf.region_reports(region)
            allowed_reports = [i for i in (allowed_reports or in_region) if i in set(in_region)]

        plain = fold_for_match(q)
        chinese = is_chinese(plain)
        lang = question_lang(q)
        # An English question is read through its Chinese gloss (places, years, the reports' terms);
        # the dense leg keeps the English.
        english = gloss(plain, self._scorer.known_term) if lang == "en" else None
        searched = english.text if english is not None and english.text else q
        folded = plain if searched == q else fold_for_match(f"{q} {searched}")
        metas = [self._reports[i].meta for i in (allowed_reports or range(len(self._reports)))]
        scope = detect_scope(folded, metas)
        in_scope = [self._by_id[rid] for rid in scope.report_ids] if scope.report_ids else allowed_reports
        when = question_time(folded, today or self._today(), year=year)

        def prepare(in_scope):
            """Everything that depends on which reports are in scope: coverage, relative years, queries."""
            scoped = in_scope if in_scope is not None else range(len(self._reports))
            place_mask = None
            if in_scope is not None:
                place_mask = np.isin(self._report_of, np.array(sorted(in_scope), dtype=np.int64))
            reviewed, planned = self._shelf.covered_years(scoped)
            relative_map, relative_fallback = _resolve_relative(when, reviewed, planned)
            asked_years = tuple(sorted(set(when.explicit) | set(relative_map.values())))
            text = replace_relative(searched, relative_map)
            lexical_q = normalize_question(text)
            if scope.report_ids is not None:
                # The place chose the reports; inside them its name only favours sentences that repeat
                # it (刚刚过去的2019年，是罗湖区…) over the one with the figure.
                lexical_q = _without(lexical_q, scope.places)
            return scoped, place_mask, reviewed, planned, relative_fallback, asked_years, text, lexical_q

        scoped, place_mask, reviewed, planned, relative_fallback, asked_years, text, lexical_q = prepare(in_scope)
        dense_q = normalize_question(text if english is None else q, expand_synonyms=False)
        qs = self._scorer.query(dense_q, lexical_q, mode, chinese, glossed=bool(english and english.terms))
        base = self._scorer.rank(qs, place_mask, asked_years)
        if len(base.ids) == 0:
            return Answer(question=q, answered=False, hits=[], normalized_question=lexical_q, mode=mode,
                          years=when.years), None

        ambiguous = None
        if scope.report_ids is None and region is None and not reports and self._shelf.regions_count > 1:
            ambiguous = self._shelf.ambiguous_regions(base, tokenize(lexical_q))
            if ambiguous:  # answer from the best region; the others are offered (asking back)
                in_scope = self._shelf.region_reports(ambiguous[0])
                scoped, place_mask, reviewed, planned, relative_fallback, asked_years, text, lexical_q = prepare(
                    in_scope
                )
                qs = self._scorer.with_lexical(qs, lexical_q)
                base = self._scorer.rank(qs, place_mask, asked_years)
                if len(base.ids) == 0:
                    return Answer(question=q, answered=False, hits=[], normalized_question=lexical_q, mode=mode,
                                  years=when.years), None

        q_tokens = tokenize(lexical_q)
        # Place names chose the report; inside a paragraph they would pull the highlight towards any
        # sentence that names the city rather than the one that answers.
        focus = lexical_q
        for place in sorted(set(scope.places) | set(question_places(folded)), key=len, reverse=True):
            focus = focus.replace(place, " ")
        yearless_q = _without(normalize_question(strip_years(text)), scope.places if scope.report_ids else ())
        yearless_focus = _without(yearless_q, question_places(folded))
        value = (measure_terms(yearless_focus), asks_for_share(folded)) if asks_for_number(folded) else None
        weights = None
        if english is not None:
            weights = gloss_token_weights(english.text.split(), tokenize, set(scope.places) | set(english.places))
        context = AskContext(q, qs, q_tokens, tokenize(focus), mode, when, place_mask, scoped, folded,
                              yearless_q, tokenize(yearless_focus), value, token_weights=weights)

        if when.timeline:
            answer, _ = self._shelf.timeline(context, base, asked_years, top_k, offset, self._hit)
            return replace(answer, ambiguous=ambiguous if answer.answered else None), None

        ranked, note, others, conflict = base, None, (), False
        if len(asked_years) == 1:
            y = asked_years[0]
            tier, tier_kind = self._shelf.year_tier(y, when.intent, place_mask)
            if tier is None:  # no part of any report in scope is about that year
                conflict = True
                others = nearest_years(reviewed | planned, y)
                note = uncovered_note(y, others, lang)
            else:
                narrower = place_mask is None or tier.sum() < place_mask.sum()
                if narrower and tier.sum() < len(self._passages):
                    ranked = self._scorer.rank(context.yearless(self._scorer), tier, (), context.value)
                    context = replace(context, focus_tokens=context.yearless_focus)
                else:
                    ranked = self._scorer.rank(qs, tier, asked_years)
                top = self._passages[int(ranked.ids[0])] if len(ranked.ids) else None
                if relative_fallback and top is not None:
                    note = coverage_note(report_label(top.report.meta.title, top.report.meta.year),
                                         top.period.year or y, top.period.kind, lang)
                elif top is not None and tier_kind is None:
                    note = kind_mismatch_note(y, when.intent, top.period.kind, lang)
                others = self._shelf.other_years_for(base, ranked, when.intent, (y,), q_tokens)
        elif not asked_years:
            ranked, others = self._shelf.latest(base, context, when.intent, place_mask, q_tokens)

        if len(ranked.ids) == 0:
            ranked = base
        top_id = int(ranked.ids[0])
        features = RefusalFeatures(
            dense=float(ranked.dense[0]),
            coverage=self._scorer.coverage(q_tokens, top_id),
            chinese=chinese,
            year_conflict=conflict,
            place_conflict=_place_conflict(folded, [self._reports[i] for i in scoped]),
        )
        answered = is_covered(features, mode)
        hits = [
            self._hit(int(ranked.ids[rank]), rank + 1, float(ranked.fused[rank]), context)
            for rank in range(offset, min(offset + top_k, len(ranked.ids)))
        ]
        answer = Answer(
            question=q, answered=answered, hits=hits, normalized_question=lexical_q, mode=mode,
            years=when.years, other_years=others, note=note,
            # "Which region?" is only worth asking when the answer is there; a refusal is the answer.
            ambiguous=ambiguous if answered else None,
        )
        return answer, features

    # -- conversations ------------------------------------------------------------------------

    def converse(
        self,
        message: str,
        history: Sequence[Turn] = (),
        *,
        top_k: int = 3,
        reports: Sequence[str] | None = None,
        mode: str = "hybrid",
        today: date | None = None,
        region: str | None = None,
        year: int | None = None,
    ) -> tuple[Answer, Turn]:
        """Answer a message of a conversation: a follow-up is first understood as a standalone
        question from the previous turn (`retrieval.followup`); returns the answer (its
        `understood_as` is what was searched) and the turn to remember.

        region/year/reports: the conversation's own scope (/region, /year, /report). A region picked
        by asking back becomes part of the standalone question (盐田区 + the question), so follow-ups
        carry it like any place the user named.
        """
        q = validate_question(message)
        previous = history[-1] if history else None
        if previous is None and needs_context(q, self.known_places):
            lang = question_lang(q)
            answer = Answer(q, False, note=context_note(lang), understood_as=q, followup=INCOMPLETE, lang=lang)
            return answer, Turn(q, q)
        understood = understand(q, previous, self.known_places)
        if understood.kind == MORE and previous is not None:
            offset = previous.offset + top_k
            answer = self.ask(previous.understood_as, top_k, reports, mode, offset, year=previous.year or year,
                              today=today, region=region)
            turn = replace(previous, question=q, offset=offset, hits=_refs(answer))
        else:
            answer = self.ask(understood.standalone, top_k, reports, mode, 0, year=year, today=today, region=region)
            turn = Turn(q, understood.standalone, answer.years, self._places_of(understood.standalone),
                        _refs(answer), 0, region, year)
        return replace(answer, question=q, understood_as=understood.standalone, followup=understood.kind,
                       lang=question_lang(q)), turn

    @property
    def regions(self) -> list[str]:
        """The regions the reports are about, in corpus order (衡阳市, 深圳市, 南山区 …)."""
        return self._shelf.regions

    @property
    def known_places(self) -> tuple[str, ...]:
        """Every place name a question may use for a report's region (衡阳市 and 衡阳 …), longest first."""
        return self._shelf.known_places

    def resolve_region(self, name: str) -> str:
        """The region a name means (光明 → 光明区); InputError naming the known regions."""
        return self._shelf.resolve_region(name)

    def _places_of(self, text: str) -> tuple[str, ...]:
        folded = fold_for_match(text)
        return tuple(p for p in self.known_places if p in folded)

    def _today(self) -> date:
        if self.settings.today:
            try:
                return date.fromisoformat(self.settings.today)
            except ValueError:
                raise InputError(f"REPORTQA_TODAY / --today must be a date (YYYY-MM-DD), "
                                 f"got {self.settings.today!r}") from None
        return date.today()

    def _hit(self, pid: int, rank: int, score: float, ctx: AskContext) -> Hit:
        p = self._passages[pid]
        para = p.paragraph
        sentences = p.sentences
        qvec = ctx.qs.qvec
        choice = choose_sentence(
            [s.text for s in sentences],
            question=ctx.question,
            query_tokens=ctx.focus_tokens,
            sentence_tokens=self._scorer.tokens_of_sentences(pid),
            idf=self._scorer.idf,
            dense_sims=self._scorer.sentence_sims(pid, ctx.qs) if qvec is not None else None,
            value_terms=ctx.value[0] if ctx.value else (),
            token_weights=ctx.token_weights,
        )
        s = sentences[choice.index]
        start, end, text = s.start - para.start, s.end - para.start, s.text
        meta = p.report.meta
        return Hit(
            rank=rank,
            score=score,
            report_id=meta.report_id,
            report_title=meta.title,
            report_date=meta.date,
            section_id=p.section.section_id,
            section_label=p.section.label,
            section_title=p.section.title,
            citation=p.citation,
            text=para.text,
            highlight=text,
            highlight_start=start,
            highlight_end=end,
            paragraph_index=para.index,
            source_start=para.start,
            source_end=para.end,
            period=p.period.year,
            period_kind=p.period.kind,
        )


def _refs(answer: Answer) -> tuple[str, ...]:
    return tuple(f"{h.report_id}#{h.section_id}" for h in answer.hits)


def _resolve_relative(when: QuestionTime, reviewed: set[int], planned: set[int]) -> tuple[dict[str, int], bool]:
    """今年/去年 → the year searched: the year itself when a report in scope covers it the way the
    question asks (a figure: a review of it; a target: a plan for it), else the newest year before it
    that is (the caller adds the note): 去年 asked when the newest report only plans last year gets
    the newest figure there is, not last year's target. Returns the mapping and whether it fell back."""
    covered_for_intent = reviewed if when.intent == REVIEW else planned
    mapping: dict[str, int] = {}
    fallback = False
    for word, y in when.relative:
        target = y
        if not when.timeline and y not in covered_for_intent:
            newest = newest_at_most(covered_for_intent, y)
            if newest is None and y not in (reviewed | planned):
                newest = newest_at_most(reviewed | planned, y)
            target = newest or y
            fallback = fallback or target != y
        mapping[word] = target
    return mapping, fallback


def _without(text: str, words: Sequence[str]) -> str:
    """The text with the given words (longest first) blanked out; unchanged if that leaves nothing."""
    out = text
    for word in sorted(words, key=len, reverse=True):
        out = out.replace(word, " ")
    return out if out.strip() else text


def _place_conflict(folded_question: str, reports: Sequence[Report]) -> bool:
    """The question names a place (from the gazetteer) that none of the reports in scope mentions."""
    places = question_places(folded_question)
    return any(all(place not in r.text for r in reports) for place in places)

def index_status(settings: Settings) -> IndexStatus:
    """Status of the persisted index without loading the model (for `reportqa index status`)."""
    from retrieval.corpus import load_corpus
    from retrieval.embedding import model_id_for

    reports = load_corpus(settings.corpus_dirs, skip_invalid=True, parsed_cache=settings.parsed_cache_dir)
    passages = flatten(reports)
    store = IndexStore(settings.index_dir / "corpus")
    model_id = model_id_for(settings)
    todo = plan(store, model_id, reports, passages)
    manifest = todo.manifest
    stale = stale_reports(todo.keys, reports, manifest)
    return IndexStatus(
        model=model_id,
        dim=manifest.dim if manifest else 0,
        reports=len(reports),
        paragraphs=len(passages),
        corpus_hash=manifest.corpus_hash if manifest else "",
        stale=bool(stale) or manifest is None,
        stale_reports=tuple(stale),
        size_bytes=store.size_bytes(),
        built_at=manifest.built_at if manifest else None,
    )
