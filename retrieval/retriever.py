"""The one retrieval API the CLI and the Telegram bot call.

    r = Retriever.open(Settings())          # loads corpus + model + index, building what is stale
    ans = r.ask("2019年调解了多少矛盾纠纷", top_k=3)
    ans.answered, ans.hits[0].citation, ans.hits[0].highlight

Everything user-caused raises a ReportQAError subclass with a one-line message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from retrieval.answer import Answer
from retrieval.config import Settings
from retrieval.document import Report, ReportMeta, Section

MODES = ("dense", "lexical", "hybrid")
MAX_QUESTION_CHARS = 1000  # longer input is rejected with InputError, not truncated silently


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


class Retriever:
    """Loaded corpus + index; thread-safe for concurrent `ask` calls."""

    @classmethod
    def open(cls, settings: Settings | None = None, *, progress: bool = False) -> Retriever:
        """Load the corpus, model and index; (re)build the index for changed reports first."""
        raise NotImplementedError

    @property
    def reports(self) -> list[ReportMeta]:
        raise NotImplementedError

    def report(self, report_id: str) -> Report:
        """The parsed report; InputError if the id is unknown."""
        raise NotImplementedError

    def section(self, report_id: str, section_id: str) -> Section:
        """A section of a report; InputError if either id is unknown."""
        raise NotImplementedError

    def ask(
        self,
        question: str,
        top_k: int = 3,
        reports: Sequence[str] | None = None,
        mode: str = "hybrid",
        offset: int = 0,
    ) -> Answer:
        """Answer a question: hits ranked offset..offset+top_k; InputError for empty/overlong input."""
        raise NotImplementedError

    def status(self) -> IndexStatus:
        raise NotImplementedError
