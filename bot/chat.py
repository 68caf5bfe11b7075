"""`reportqa chat`: an interactive question session over one loaded Retriever.

Lines are questions unless they start with "/" (see HELP). The session keeps what `/more` needs (the
last question and how far it has paged) and the report filter `/report` sets. It reads lines from any
callable, so a pipe drives it exactly like a terminal does; on a terminal, importing `readline` gives
`input()` line editing and arrow-key history.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from bot.cli_render import NO_MORE, is_plain, print_block, render_answer, render_reports, render_section
from retrieval.errors import InputError, ReportQAError

if TYPE_CHECKING:
    from retrieval.retriever import Retriever

PROMPT = "reportqa> "
HELP = """\
Type a question (中文 or English) and press Enter. Follow-ups build on the last question:
那2017年呢？ / 福田区呢？ / 固定资产投资呢？ / 增长了多少？ / 还有呢 — the answer shows how it was understood.
  /more              next results for the last question
  /section ID [REP]  print a whole section, e.g. /section 7.1
  /report            list the reports; /report ID [ID …] limits questions to them; /report all clears
  /region [NAME]     limit questions to one region (南山区, 深圳市 …); /region all clears
  /year [YEAR]       answer for one year; /year all clears
  /reset             forget the conversation (follow-ups start fresh; the limits stay)
  /help              this text
  /quit              leave (Ctrl-D / Ctrl-C work too)"""


@dataclass
class ChatSession:
    """One conversation: settings for every question plus what `/more` and `/section` refer back to."""

    retriever: Retriever
    console: Console
    top_k: int = 3
    mode: str = "hybrid"
    report_filter: list[str] = field(default_factory=list)
    last_question: str | None = None
    offset: int = 0
    last_report_id: str | None = None  # the report of the last answer's top hit
    region: str | None = None  # /region: the session's own scope
    year: int | None = None  # /year
    history: list = field(default_factory=list)  # the conversation's turns (retrieval.followup.Turn)

    def say(self, text: str | Text, style: str | None = None) -> None:
        print_block(self.console, text, style=style)

    def handle(self, line: str) -> bool:
        """Act on one input line; False means the session should end."""
        line = line.strip()
        if not line:
            return True
        if line.startswith("/"):
            name, _, arg = line[1:].partition(" ")
            command = COMMANDS.get(name.lower())
            if command is None:
                self.say(f"unknown command /{name}; /help lists the commands")
                return True
            return command(self, arg.strip())
        self.ask(line)
        return True

    def ask(self, question: str) -> None:
        from retrieval.followup import remember

        answer, turn = self.retriever.converse(
            question, self.history, top_k=self.top_k, reports=self.report_filter or None, mode=self.mode,
            region=self.region, year=self.year,
        )
        self.history = remember(self.history, turn)
        self.last_question, self.offset = turn.understood_as, turn.offset
        if answer.hits:
            self.last_report_id = answer.hits[0].report_id
        if answer.followup == "more" and not answer.hits:
            self.say(NO_MORE)
            return
        self.say(render_answer(answer, is_plain(self.console)))

    def more(self, _arg: str) -> bool:
        if self.last_question is None:
            self.say("ask a question first; /more shows its next results")
            return True
        self.ask("还有呢")
        return True

    def region_command(self, arg: str) -> bool:
        name = arg.strip()
        if not name:
            self.say("regions: " + "、".join(self.retriever.regions))
            self.say(f"questions go to: {self.region or 'all regions'}")
            return True
        if name.lower() in ("all", "*"):
            self.region = None
            self.say("questions go to: all regions")
            return True
        self.region = self.retriever.resolve_region(name)  # InputError for an unknown region
        self.history = []
        self.say(f"questions go to: {self.region}")
        return True

    def year_command(self, arg: str) -> bool:
        value = arg.strip()
        if not value:
            self.say(f"year: {self.year or 'as asked'}")
            return True
        if value.lower() in ("all", "*"):
            self.year = None
            self.say("year: as asked")
            return True
        if not (value.isdigit() and 1900 <= int(value) <= 2100):
            raise InputError(f"/year needs a year such as 2019, not {value!r}")
        self.year = int(value)
        self.say(f"year: {self.year}")
        return True

    def reset(self, _arg: str) -> bool:
        self.history = []
        self.last_question, self.offset = None, 0
        self.say("conversation forgotten; the next question starts fresh")
        return True

    def section(self, arg: str) -> bool:
        parts = arg.split()
        if not parts or len(parts) > 2:
            self.say("usage: /section ID [REPORT], e.g. /section 7.1")
            return True
        report_id = parts[1] if len(parts) == 2 else self._current_report()
        report = self.retriever.report(report_id)
        self.say(render_section(report, self.retriever.section(report_id, parts[0])))
        return True

    def _current_report(self) -> str:
        """The report `/section` means when none is named: the filter's, the only one, the last answer's."""
        if len(self.report_filter) == 1:
            return self.report_filter[0]
        metas = self.retriever.reports
        if len(metas) == 1:
            return metas[0].report_id
        if self.last_report_id:
            return self.last_report_id
        raise InputError("several reports are loaded; name one: /section ID REPORT (see /report)")

    def report(self, arg: str) -> bool:
        ids = arg.split()
        if not ids:
            self.say(render_reports(self.retriever.reports))
            current = ", ".join(self.report_filter) if self.report_filter else "all reports"
            self.say(f"questions go to: {current}")
            return True
        if [i.lower() for i in ids] in (["all"], ["*"]):
            self.report_filter = []
            self.say("questions go to: all reports")
            return True
        for report_id in ids:
            self.retriever.report(report_id)  # InputError for an unknown id, before changing anything
        self.report_filter = ids
        self.last_question = None
        self.history = []
        self.say(f"questions go to: {', '.join(ids)}")
        return True

    def help(self, _arg: str) -> bool:
        self.say(HELP)
        return True

    def quit(self, _arg: str) -> bool:
        return False

    def run(self, read_line: Callable[[str], str], prompt: str = PROMPT, echo: bool = False) -> int:
        """Handle lines until /quit, EOF or Ctrl-C; a bad line prints its error and the session goes on.

        echo: print the prompt and the line read (for piped input, so the transcript shows the questions).
        """
        while True:
            try:
                line = read_line("" if echo else prompt)
            except (EOFError, KeyboardInterrupt):
                if not echo:
                    self.say("")
                return 0
            if echo:
                self.say(prompt + line.rstrip("\r\n"))
            try:
                if not self.handle(line):
                    return 0
            except ReportQAError as e:
                self.say(f"error: {e}", style="red")
            except KeyboardInterrupt:
                self.say("")
                return 0


COMMANDS: dict[str, Callable[[ChatSession, str], bool]] = {
    "more": ChatSession.more,
    "section": ChatSession.section,
    "report": ChatSession.report,
    "reports": ChatSession.report,
    "region": ChatSession.region_command,
    "year": ChatSession.year_command,
    "reset": ChatSession.reset,
    "help": ChatSession.help,
    "?": ChatSession.help,
    "quit": ChatSession.quit,
    "exit": ChatSession.quit,
    "q": ChatSession.quit,
}


def line_reader(interactive: bool) -> Callable[[str], str]:
    """`input` with readline editing and history on a terminal; plain line reads from a pipe."""
    if interactive:
        with contextlib.suppress(ImportError):  # platforms without readline still get plain input()
            import readline  # noqa: F401  (importing it is what enables history in input())
        return input

    def read(_prompt: str) -> str:
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        return line

    return read
