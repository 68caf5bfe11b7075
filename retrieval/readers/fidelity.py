"""How faithfully a published file (PDF/DOCX) parses, against the text version of the same report.

    result = compare_trees(parse_report(text, meta), parse_report(pdf_text, meta))
    result.sections_equal, result.paragraph_agreement

Pure. Used by `scripts/check_published_fidelity.py` (the table) and by the tests (the assertions).
The title line and the signing date must be found as in the text. Sections must match exactly
(ids, labels, titles, in order). Paragraphs are compared per section after whitespace is removed
(justified PDF lines and hand-spaced titles add spaces Chinese does not have): agreement =
paragraphs equal / paragraphs in the larger of the two, over the whole report.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from retrieval.document import Report


@dataclass
class Fidelity:
    sections_equal: bool
    sections_expected: int
    sections_got: int
    paragraphs_expected: int
    paragraphs_got: int
    paragraphs_equal: int
    title_equal: bool  # the title line the parser found (metadata detection reads it)
    signed_equal: bool  # the signing date from the signature block
    first_differences: list[str] = field(default_factory=list)

    @property
    def paragraph_agreement(self) -> float:
        total = max(self.paragraphs_expected, self.paragraphs_got)
        return self.paragraphs_equal / total if total else 1.0


def _norm(text: str) -> str:
    return "".join(text.split())


def compare_trees(expected: Report, got: Report, *, expected_title: str | None = None, keep: int = 5) -> Fidelity:
    """expected_title: the title the published file should open with when the text version has no
    title line of its own (a saved web page whose title was in the page's chrome)."""
    exp_secs = [(s.section_id, s.label, s.title) for s in expected.walk()]
    got_secs = [(s.section_id, s.label, s.title) for s in got.walk()]
    diffs: list[str] = []
    if exp_secs != got_secs:
        for a, b in zip(exp_secs, got_secs, strict=False):
            if a != b:
                diffs.append(f"section {a} != {b}")
                break
        if len(exp_secs) != len(got_secs):
            diffs.append(f"{len(exp_secs)} sections expected, {len(got_secs)} found")
    exp_by = {s.section_id: [_norm(p.text) for p in s.paragraphs] for s in expected.walk()}
    got_by = {s.section_id: [_norm(p.text) for p in s.paragraphs] for s in got.walk()}
    equal = 0
    for sid in exp_by.keys() | got_by.keys():
        a, b = exp_by.get(sid, []), got_by.get(sid, [])
        matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
        equal += sum(block.size for block in matcher.get_matching_blocks())
        if len(diffs) < keep:
            for tag, i1, i2, j1, j2 in matcher.get_opcodes():
                if tag != "equal" and len(diffs) < keep:
                    diffs.append(f"{sid}: {' | '.join(a[i1:i2])[:80]!r} → {' | '.join(b[j1:j2])[:80]!r}")
    title_equal = _norm(expected.parsed_title or expected_title or "") == _norm(got.parsed_title or "")
    signed_equal = expected.signed_date == got.signed_date
    if not title_equal:
        diffs.insert(0, f"title {expected.parsed_title!r} → {got.parsed_title!r}")
    if not signed_equal:
        diffs.insert(0, f"signed {expected.signed_date!r} → {got.signed_date!r}")
    return Fidelity(
        title_equal=title_equal,
        signed_equal=signed_equal,
        sections_equal=exp_secs == got_secs,
        sections_expected=len(exp_secs),
        sections_got=len(got_secs),
        paragraphs_expected=sum(len(v) for v in exp_by.values()),
        paragraphs_got=sum(len(v) for v in got_by.values()),
        paragraphs_equal=equal,
        first_differences=diffs,
    )
