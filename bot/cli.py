"""The `reportqa` command line: a thin shell over `retrieval` for staff.

Every command builds a `Settings` from the global options, calls the retrieval API and renders the
result (`bot.cli_render`). Nothing heavy is imported at module level: the retriever decides what to
load, so `reportqa outline` or a usage error never pays for torch.

Exit codes: 0 success / answered; 1 `ask`: not covered by the reports; 2 usage or input error (one
line on stderr: `reportqa: error: …`; `--debug` adds the traceback); 130 interrupted.
`ask -` (stdin, one question per line): 0 if every line was answered, 2 if any line was an error,
else 1 if any question was not covered.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer
from typer.core import TyperGroup

from retrieval.config import Settings
from retrieval.errors import CorpusError, InputError, ReportQAError

if TYPE_CHECKING:
    from retrieval.answer import Answer
    from retrieval.document import Report
    from retrieval.retriever import Retriever

PROG = "reportqa"
EXIT_OK, EXIT_NOT_COVERED, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
MAX_TOP_K = 50


class Mode(StrEnum):
    """Mirrors retrieval.retriever.MODES (a test keeps them equal) so --help works without importing it."""

    dense = "dense"
    lexical = "lexical"
    hybrid = "hybrid"


@dataclass
class CliState:
    """What the global options decided, shared with every command through the click context."""

    debug: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)

    def settings(self) -> Settings:
        return Settings(**self.overrides)

    def corpus_settings(self) -> Settings:
        """Settings whose corpus directories exist: a typo fails here, before any model loads."""
        settings = self.settings()
        for corpus_dir in settings.corpus_dirs:
            if not corpus_dir.is_dir():
                raise CorpusError(f"{corpus_dir}: corpus directory not found")
        return settings


def _reconfigure_utf8() -> None:
    """UTF-8 in and out whatever the locale: reports are Chinese and a C/latin-1 locale must not crash."""
    for stream, errors in ((sys.stdout, "replace"), (sys.stderr, "replace"), (sys.stdin, "surrogateescape")):
        if isinstance(stream, io.TextIOWrapper) and stream.encoding.lower().replace("-", "") != "utf8":
            with contextlib.suppress(ValueError, io.UnsupportedOperation):
                stream.reconfigure(encoding="utf-8", errors=errors)


def _error_line(message: str) -> None:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.stderr.flush()


class ReportQAGroup(TyperGroup):
    """The root command: maps every failure to one stderr line and an exit code instead of a traceback."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        _reconfigure_utf8()
        state = extra.setdefault("obj", CliState())
        try:
            code = super().main(
                args=args,
                prog_name=prog_name or PROG,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except typer.Exit as e:
            code = e.exit_code
        except (KeyboardInterrupt, typer.Abort):
            code = EXIT_INTERRUPTED
        except ReportQAError as e:
            if state.debug:
                traceback.print_exc()
            _error_line(str(e))
            code = EXIT_ERROR
        except typer.TyperException as e:  # usage errors: bad option, missing argument
            if state.debug:
                traceback.print_exc()
            message = e.format_message()
            if message:  # empty when `reportqa` alone printed the help
                ctx = getattr(e, "ctx", None)
                hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
                _error_line(message + hint)
            code = e.exit_code
        except Exception as e:  # a bug: one line unless --debug
            if state.debug:
                traceback.print_exc()
            else:
                _error_line(f"internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)")
            code = EXIT_ERROR
        code = code if isinstance(code, int) else EXIT_OK
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    cls=ReportQAGroup,
    name=PROG,
    help="Question answering over Chinese government reports, with exact section citations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
reports_app = typer.Typer(help="List, add or remove reports in the corpus manifest.", no_args_is_help=True)
index_app = typer.Typer(help="Build the search index or show its status.", no_args_is_help=True)
feedback_app = typer.Typer(
    help="Telegram question log: export 👎 questions for labelling, stats, purge, forget a chat.", no_args_is_help=True
)
app.add_typer(reports_app, name="reports")
app.add_typer(index_app, name="index")
app.add_typer(feedback_app, name="feedback")


@app.callback()
def global_options(
    ctx: typer.Context,
    corpus: Annotated[
        list[Path] | None,
        typer.Option(
            "--corpus",
            metavar="DIR",
            help="Corpus directory (with reports.toml); repeatable. Env REPORTQA_CORPUS "
            "(os.pathsep-separated). Default: the repository's corpus/.",
            show_default=False,
        ),
    ] = None,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            metavar="DIR",
            help="Data directory (models, index, logs). Env REPORTQA_HOME; default ./.reportqa",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            metavar="NAME|PATH",
            help="sentence-transformers model name or local path. Env REPORTQA_MODEL.",
        ),
    ] = None,
    today: Annotated[
        str | None,
        typer.Option(
            "--today",
            metavar="YYYY-MM-DD",
            help="The date 今年/去年 count from (reproducible answers and evals). Env REPORTQA_TODAY; "
            "default: the clock.",
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    """Question answering over Chinese government reports, with exact section citations."""
    from retrieval.years import parse_today

    state = ctx.ensure_object(CliState)
    state.debug = debug
    try:
        parse_today(today)
        parse_today(None if today is not None else os.environ.get("REPORTQA_TODAY"))
    except ValueError as e:
        raise InputError(f"--today / REPORTQA_TODAY: {e}") from None
    if today is not None:
        state.overrides["today"] = today.strip()
    if corpus:
        state.overrides["corpus_dirs"] = tuple(p.expanduser() for p in corpus)
    if home is not None:
        state.overrides["home"] = home.expanduser()
    if model is not None and model.strip():
        state.overrides["model"] = model.strip()


def _state(ctx: typer.Context) -> CliState:
    return ctx.ensure_object(CliState)


def _open_retriever(settings: Settings, rebuild: bool = False, verify: bool = False) -> Retriever:
    from retrieval.retriever import Retriever

    return Retriever.open(settings, progress=sys.stderr.isatty(), rebuild=rebuild, verify=verify)


def _print(text: Any, file: TextIO | None = None) -> None:
    """Print a str or rich Text with exactly one newline at its end."""
    from bot.cli_render import make_console, print_block

    print_block(make_console(file), text)


def _write_json(obj: Any) -> None:
    # U+2028/2029 are line breaks to many line splitters (Python's str.splitlines, JavaScript): escape
    # them so one answer stays one line.
    line = json.dumps(obj, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _text(value: Any) -> Any:
    """Parameter callback for text arguments (questions, ids, titles): recover UTF-8 under any locale.

    Paths are left alone: the OS wants their bytes exactly as given.
    """
    from bot.cli_input import argv_text

    if isinstance(value, str):
        return argv_text(value)
    if isinstance(value, list | tuple):
        return [argv_text(v) if isinstance(v, str) else v for v in value]
    return value


# ---------------------------------------------------------------------------------------------- ask


ASK_HELP = " ".join(
    (
        "Answer a question with cited report passages.",
        "Exit 0 answered, 1 not covered by the reports, 2 usage/input error.",
        'With "-" (one question per stdin line, one answer per line in order; a bad line gets an "error" field):',
        "exit 0 if all answered, 2 if any line was an error, else 1 if any was not covered.",
    )
)


@app.command(help=ASK_HELP)
def ask(
    ctx: typer.Context,
    question: Annotated[
        str,
        typer.Argument(help='The question, e.g. "调解了多少纠纷"; "-" reads one per line from stdin.', callback=_text),
    ],
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=MAX_TOP_K, help="How many passages to return.")] = 3,
    report: Annotated[
        list[str] | None, typer.Option("--report", "-r", help="Only search this report id; repeatable.", callback=_text)
    ] = None,
    mode: Annotated[Mode, typer.Option("--mode", help="Retrieval mode.")] = Mode.hybrid,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per question (the integration surface).")
    ] = False,
    year: Annotated[
        int | None,
        typer.Option("--year", min=1900, max=2100, help="Answer for this year (e.g. one of the other years offered)."),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option("--region", help="Only this region's reports (南山区, 深圳市, 国务院 …).", callback=_text),
    ] = None,
) -> None:
    """Answer a question with cited report passages (exit codes: see ASK_HELP)."""
    from bot.cli_input import check_question

    state = _state(ctx)
    reports = list(report) if report else None
    if question == "-":
        code = _ask_stream(state, top_k, reports, mode.value, as_json, year, region)
        raise typer.Exit(code)
    question = check_question(question)
    retriever = _open_retriever(state.corpus_settings())
    answer = retriever.ask(question, top_k=top_k, reports=reports, mode=mode.value, year=year, region=region)
    _show_answer(answer, as_json)
    raise typer.Exit(EXIT_OK if answer.answered else EXIT_NOT_COVERED)


def _show_answer(answer: Answer, as_json: bool, extra: dict | None = None) -> None:
    if as_json:
        _write_json({**answer.to_dict(), **(extra or {})})
        return
    from bot.cli_render import is_plain, make_console, print_block, render_answer

    console = make_console()
    print_block(console, render_answer(answer, is_plain(console)))
    sys.stdout.flush()


def _ask_stream(
    state: CliState,
    top_k: int,
    reports: list[str] | None,
    mode: str,
    as_json: bool,
    year: int | None = None,
    region: str | None = None,
) -> int:
    """Questions from stdin, answers in order; the model loads once, at the first askable line."""
    from bot.cli_input import read_question_lines
    from retrieval.followup import remember

    retriever: Retriever | None = None
    any_error = any_not_covered = False
    dialogues: dict[str, list] = {}  # conversation id → its turns
    for line in read_question_lines(sys.stdin.buffer):
        error = line.error
        answer = None
        if error is None and line.question is not None:
            if retriever is None:
                retriever = _open_retriever(state.corpus_settings())
                for report_id in reports or ():
                    retriever.report(report_id)  # an unknown --report fails once, not on every line
            try:
                if line.conversation is None:
                    answer = retriever.ask(line.question, top_k=top_k, reports=reports, mode=mode, year=year,
                                           region=region)
                else:
                    history = dialogues.setdefault(line.conversation, [])
                    answer, turn = retriever.converse(line.question, history, top_k=top_k, reports=reports,
                                                      mode=mode, year=year, region=region)
                    dialogues[line.conversation] = remember(history, turn)
            except InputError as e:
                error = f"line {line.number}: {e}"
        extra = {"conversation": line.conversation} if line.conversation is not None else {}
        if answer is None:
            any_error = True
            if as_json:
                _write_json({"question": line.question, "answered": False, "results": [], "error": error, **extra})
            else:
                _error_line(error or f"line {line.number}: cannot be asked")
            continue
        any_not_covered |= not answer.answered
        if not as_json:
            _print(f"问 (Q{line.number}): {answer.question}")
        _show_answer(answer, as_json, extra)
    if any_error:
        return EXIT_ERROR
    return EXIT_NOT_COVERED if any_not_covered else EXIT_OK


# --------------------------------------------------------------------------------------------- chat


@app.command()
def chat(
    ctx: typer.Context,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=MAX_TOP_K)] = 3,
    report: Annotated[
        list[str] | None, typer.Option("--report", "-r", help="Start limited to these reports.", callback=_text)
    ] = None,
    mode: Annotated[Mode, typer.Option("--mode")] = Mode.hybrid,
) -> None:
    """Interactive session: questions, /more, /section 7.1, /report, /help, /quit."""
    from bot.chat import ChatSession, line_reader
    from bot.cli_render import make_console

    retriever = _open_retriever(_state(ctx).corpus_settings())
    console = make_console()
    session = ChatSession(retriever, console, top_k=top_k, mode=mode.value)
    if report:
        session.report(" ".join(report))
    interactive = sys.stdin.isatty()
    if interactive:
        console.print(f"reportqa chat — {len(retriever.reports)} report(s); /help lists the commands")
    raise typer.Exit(session.run(line_reader(interactive), echo=not interactive))


# ------------------------------------------------------------------------------------ outline, show


def _load_reports(settings: Settings) -> list[Report]:
    from retrieval.corpus import load_corpus

    return load_corpus(settings.corpus_dirs, parsed_cache=settings.parsed_cache_dir)


def _pick_report(reports: list[Report], report_id: str | None) -> Report:
    """The report named, or the only one; InputError naming the known ids otherwise."""
    if report_id is None:
        if len(reports) == 1:
            return reports[0]
        raise InputError(
            f"{len(reports)} reports are loaded; choose one with --report ID (see `reportqa reports list`)"
        )
    for rep in reports:
        if rep.meta.report_id == report_id:
            return rep
    known = ", ".join(r.meta.report_id for r in reports[:8]) + (", …" if len(reports) > 8 else "")
    raise InputError(f"unknown report id {report_id!r} (known: {known or 'none'})")


@app.command()
def outline(
    ctx: typer.Context,
    report: Annotated[str | None, typer.Argument(help="Report id; default: every report.", callback=_text)] = None,
) -> None:
    """Print the parsed outline: section ids, labels, titles, paragraph counts."""
    from bot.cli_render import render_outline

    reports = _load_reports(_state(ctx).corpus_settings())
    chosen = [_pick_report(reports, report)] if report else reports
    for i, rep in enumerate(chosen):
        if i:
            _print("")
        _print(render_outline(rep))


@app.command()
def show(
    ctx: typer.Context,
    section_id: Annotated[str, typer.Argument(help="Section id as in the outline, e.g. 7.1", callback=_text)],
    report: Annotated[
        str | None, typer.Option("--report", "-r", help="Report id (needed when several are loaded).", callback=_text)
    ] = None,
) -> None:
    """Print a whole section of a report."""
    from bot.cli_render import render_section

    rep = _pick_report(_load_reports(_state(ctx).corpus_settings()), report)
    section = rep.section(section_id.strip())
    if section is None:
        rid = rep.meta.report_id
        raise InputError(f"report {rid} has no section {section_id!r} (see `reportqa outline {rid}`)")
    _print(render_section(rep, section))


# ------------------------------------------------------------------------------------------ reports


@reports_app.command("list")
def reports_list(ctx: typer.Context) -> None:
    """The reports of every corpus directory: id, region, kind, year, the years it covers, date, title."""
    from bot.cli_render import render_reports
    from retrieval.corpus import load_corpus
    from retrieval.periods import coverage, report_periods

    settings = _state(ctx).corpus_settings()
    reports = load_corpus(settings.corpus_dirs, skip_invalid=True, parsed_cache=settings.parsed_cache_dir)
    periods = {r.meta.report_id: coverage(report_periods(r)).describe() for r in reports}
    _print(render_reports([r.meta for r in reports], periods))


@reports_app.command("add")
def reports_add(
    ctx: typer.Context,
    files: Annotated[
        list[Path],
        typer.Argument(help="Report files (text, Markdown, HTML, PDF, DOCX, DOC/WPS) or directories of them."),
    ],
    title: Annotated[
        str | None, typer.Option("--title", help="Report title; default: the title found in the text.", callback=_text)
    ] = None,
    date: Annotated[str | None, typer.Option("--date", help="ISO date (YYYY-MM-DD) it was signed.")] = None,
    issuer: Annotated[
        str | None, typer.Option("--issuer", help="Who issued it (衡阳市人民政府).", callback=_text)
    ] = None,
    report_id: Annotated[
        str | None, typer.Option("--id", help="Report id; default: the file name stem.", callback=_text)
    ] = None,
    year: Annotated[
        int | None, typer.Option("--year", min=1000, max=2999, help="Report year; default: from the title.")
    ] = None,
    region: Annotated[
        str | None, typer.Option("--region", help="Region (南山区, 深圳市, 国务院); default: from the title.",
                                 callback=_text)
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="Kind (政府工作报告, 条例 …); default: from the title.", callback=_text),
    ] = None,
) -> None:
    """Parse each FILE (or every report file of a DIR), show what was detected and add them to the
    first corpus directory's manifest. A file that cannot be parsed is named and skipped (exit 1)."""
    from bot.cli_render import render_added, render_outline
    from retrieval.corpus import add_reports, expand_report_files, load_report

    settings = _state(ctx).corpus_settings()
    corpus_dir = settings.corpus_dirs[0]
    paths = expand_report_files(files)
    overrides = dict(title=title, date=date, issuer=issuer, report_id=report_id, year=year, region=region, kind=kind)
    with _progress(len(paths), "parsing") as step:
        result = add_reports(corpus_dir, paths, on_file=step, **overrides)
    if len(paths) == 1 and result.skipped:
        raise CorpusError(result.skipped[0][1])
    if len(paths) == 1:
        _print(render_outline(load_report(corpus_dir, result.added[0])))
    _print(render_added(result, corpus_dir / "reports.toml"))
    raise typer.Exit(EXIT_NOT_COVERED if result.skipped else EXIT_OK)


@contextlib.contextmanager
def _progress(total: int, what: str):
    """A progress bar on a terminal's stderr for many files; nothing otherwise."""
    if total < 2 or not sys.stderr.isatty():
        yield lambda _path: None
        return
    from rich.progress import Progress

    from bot.cli_render import make_console

    with Progress(console=make_console(sys.stderr), transient=True) as bar:
        task = bar.add_task(what, total=total)

        def step(path: Path) -> None:
            bar.update(task, advance=1, description=f"{what} {path.name[:40]}")

        yield step


@reports_app.command("remove")
def reports_remove(
    ctx: typer.Context,
    report_id: Annotated[str, typer.Argument(help="Report id, as in `reportqa reports list`.", callback=_text)],
    delete_file: Annotated[
        bool, typer.Option("--delete-file", help="Also delete the report file from the corpus directory.")
    ] = False,
) -> None:
    """Remove a report from the manifest of the corpus directory that lists it."""
    from retrieval.corpus import discover, remove_report

    settings = _state(ctx).corpus_settings()
    for corpus_dir in settings.corpus_dirs:
        if any(m.report_id == report_id for m in discover(corpus_dir)):
            remove_report(corpus_dir, report_id, delete_file=delete_file)
            _print(f"removed {report_id} from {corpus_dir / 'reports.toml'}")
            return
    raise InputError(f"unknown report id {report_id!r} (see `reportqa reports list`)")


# -------------------------------------------------------------------------------------------- index


@index_app.command("build")
def index_build(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Rebuild everything, not only what changed.")] = False,
) -> None:
    """Build (or update) the model and index now, checking every stored file, then print the index status."""
    from bot.cli_render import index_status_fields, render_status

    retriever = _open_retriever(_state(ctx).corpus_settings(), rebuild=force, verify=True)
    _print(render_status(index_status_fields(retriever.status())))


@index_app.command("status")
def index_status(ctx: typer.Context) -> None:
    """Model, counts, corpus hash, stale or not, index size — without loading the model."""
    from bot.cli_render import index_status_fields, render_status
    from retrieval.retriever import index_status as read_status

    _print(render_status(index_status_fields(read_status(_state(ctx).corpus_settings()))))


# ------------------------------------------------------------------------------------- eval, bench


@app.command("eval")
def eval_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Questions file (JSON lines with gold section ids).")],
    mode: Annotated[list[Mode] | None, typer.Option("--mode", help="Mode to evaluate; repeatable.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
    split: Annotated[str | None, typer.Option(
        "--split", metavar="NAME",
        help="Only the questions of this split (e.g. tune): the others are not asked or shown.",
    )] = None,
) -> None:
    """Section-level top-1, recall@3, MRR@10, refusal precision/recall, answer-sentence hit rate.

    Library questions (with "report", "today", "timeline") are scored on the report level; a file
    with a "conversation" field per line is a dialogue set, played turn by turn (follow-ups).

    A SQuAD-style .json file (e.g. ../shared/benchmarks/cmrc2018/cmrc2018_dev.json) is a passage benchmark
    instead: its contexts are indexed on their own and passage R@1/R@5/MRR@10 are printed per mode.
    """
    from retrieval.evaluate import evaluate_questions, evaluate_squad, is_squad_file, load_questions, only_split
    from retrieval.evaluate_dialogues import evaluate_dialogues, is_dialogue_file, load_dialogues

    modes = [m.value for m in mode] if mode else [Mode.hybrid.value]
    if split is not None and is_squad_file(file):
        raise InputError(f"{file}: --split applies to question and dialogue files, not a SQuAD benchmark")
    if is_dialogue_file(file):
        # a dialogue belongs to the split of its turns (one whose turns differ belongs to neither)
        dialogues = only_split(load_dialogues(file), split, str(file),
                               split_of=lambda d: "+".join(sorted({t.split for t in d})))
        result = evaluate_dialogues(_open_retriever(_state(ctx).corpus_settings()), dialogues, source=str(file))
    elif is_squad_file(file):
        result = evaluate_squad(file, _state(ctx).corpus_settings(), modes, progress=sys.stderr.isatty())
    else:
        questions = only_split(load_questions(file), split, str(file))  # fails before the model loads
        retriever = _open_retriever(_state(ctx).corpus_settings())
        result = evaluate_questions(retriever, questions, modes, source=str(file))
    if as_json:
        _write_json(result.to_dict())
    else:
        _print(result.to_text())


@app.command()
def bench(
    ctx: typer.Context,
    full: Annotated[bool, typer.Option("--full", help="Also index and query all of ../shared/corpora.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")] = False,
    keep: Annotated[
        Path | None,
        typer.Option("--keep", help="Build into DIR/seed and DIR/full and keep them (usable as --home)."),
    ] = None,
    runs: Annotated[
        int, typer.Option("--runs", min=1, max=10, help="Whole runs; every number is the median over them.")
    ] = 1,
) -> None:
    """Query latency, cold start, index build time and peak RSS."""
    from retrieval.bench import median_of, run_bench

    settings = _state(ctx).corpus_settings()
    result = median_of([run_bench(settings, full_corpora=full, keep=keep) for _ in range(runs)])
    if as_json:
        _write_json(result.to_dict())
    else:
        _print(result.to_text())


# ------------------------------------------------------------------------------ telegram, feedback


@app.command()
def telegram(
    ctx: typer.Context,
    webhook: Annotated[bool, typer.Option(
        "--webhook", help="Serve Telegram's webhook POSTs (TELEGRAM_WEBHOOK_LISTEN/_PATH/_SECRET) instead of polling."
    )] = False,
    set_webhook_url: Annotated[str | None, typer.Option(
        "--set-webhook", metavar="URL", help="Register URL as the bot's webhook once (a deploy step) and exit."
    )] = None,
) -> None:
    """Run the Telegram bot until SIGTERM/SIGINT: long polling, or --webhook. Needs TELEGRAM_BOT_TOKEN."""
    from bot.telegram.app import run_bot, run_webhook, set_webhook

    if set_webhook_url is not None:
        raise typer.Exit(set_webhook(set_webhook_url))
    settings = _state(ctx).corpus_settings()
    raise typer.Exit(run_webhook(settings) if webhook else run_bot(settings))


@feedback_app.command("export")
def feedback_export(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the draft eval file.")] = Path(
        "feedback-draft-eval.jsonl"
    ),
) -> None:
    """Write the questions users marked 👎 as a draft eval file for staff to label."""
    from bot.question_log import export_draft_eval

    settings = _state(ctx).settings()
    count = export_draft_eval(settings.home, out)
    _print(f"wrote {count} question(s) to {out}")


@contextlib.contextmanager
def _question_log(ctx: typer.Context):
    """The bot's existing question log (an error if the bot never ran with this home), closed after."""
    from bot.question_log import open_existing

    log = open_existing(_state(ctx).settings().home)
    try:
        yield log
    finally:
        log.close()


@feedback_app.command("stats")
def feedback_stats(ctx: typer.Context) -> None:
    """How many questions the bot has logged, the oldest and the newest."""
    with _question_log(ctx) as log:
        count, oldest, newest = log.stats()
    _print(f"{count} question(s); oldest {oldest or '-'}; newest {newest or '-'}")


@feedback_app.command("purge")
def feedback_purge(
    ctx: typer.Context,
    days: Annotated[int, typer.Option("--days", help="Delete questions asked more than this many days ago.")],
) -> None:
    """Delete logged questions older than --days now (the bot also does this by REPORTQA_LOG_RETENTION_DAYS)."""
    with _question_log(ctx) as log:
        removed = log.purge_older_than(days)
    _print(f"deleted {removed} question(s) older than {days} days")


@feedback_app.command("forget-chat")
def feedback_forget_chat(
    ctx: typer.Context,
    chat_id: Annotated[int, typer.Argument(help="Telegram chat id (for a private chat, the user's id).")],
) -> None:
    """Delete every logged question of one chat (a user's request to be forgotten)."""
    with _question_log(ctx) as log:
        removed = log.forget_chat(chat_id)
    _print(f"deleted {removed} question(s) of that chat")


def main() -> None:
    """Console-script entry point (`reportqa`)."""
    app()


if __name__ == "__main__":
    main()
