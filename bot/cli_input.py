"""Questions as the CLI receives them: argv strings and stdin lines, checked before any model loads.

The rules are the retriever's (`validate_question`); applying them here, before `Retriever.open`, means
an empty or 100 KB question fails at once with one clear line instead of after the model loads, and a
junk line in an `ask --json -` batch never loads anything. Reading stdin as bytes lets a line that is
not UTF-8 be reported as such instead of crashing the decoder.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from retrieval.errors import InputError


def max_question_chars() -> int:
    from retrieval.retriever import MAX_QUESTION_CHARS

    return MAX_QUESTION_CHARS


def argv_text(arg: str) -> str:
    """An argument as the UTF-8 the terminal most likely sent, whatever locale Python decoded it with.

    Under a C/ASCII or latin-1 locale (without Python's UTF-8 mode) a Chinese argument arrives as
    surrogates or mojibake; re-decoding its original bytes as UTF-8 recovers it. Bytes that are not
    UTF-8 stay as Python decoded them (and are then rejected as not text where that matters).
    """
    if sys.getfilesystemencoding().lower().replace("-", "") == "utf8":
        return arg
    try:
        return os.fsencode(arg).decode("utf-8")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return arg


def check_question(text: str) -> str:
    """The question stripped; InputError if it is empty, overlong or not text (the retriever's rules)."""
    from retrieval.retriever import validate_question

    return validate_question(text)


@dataclass(frozen=True)
class InputLine:
    number: int  # 1-based
    question: str | None  # the decoded line; None when it is not UTF-8 or too long to keep
    error: str | None  # why the line cannot be asked, None if it can
    conversation: str | None = None  # a JSON-object line's "conversation" id: lines sharing it are a dialogue


def _json_line(number: int, text: str) -> InputLine:
    """A `{"conversation": "…", "question": "…"}` line (conversation optional)."""
    import json

    try:
        obj = json.loads(text)
    except ValueError:
        return InputLine(number, None, f"line {number}: starts with {{ but is not a JSON object")
    if not isinstance(obj, dict) or not isinstance(obj.get("question"), str):
        return InputLine(number, None, f'line {number}: a JSON line needs a "question" string')
    conversation = obj.get("conversation")
    if conversation is not None and not isinstance(conversation, str | int):
        return InputLine(number, None, f'line {number}: "conversation" must be a string')
    conversation = None if conversation is None else str(conversation)
    try:
        return InputLine(number, check_question(obj["question"]), None, conversation)
    except InputError as e:
        keep = obj["question"] if len(obj["question"]) <= max_question_chars() else None
        return InputLine(number, keep, f"line {number}: {e}", conversation)


def read_question_lines(stream: BinaryIO) -> Iterator[InputLine]:
    """One InputLine per line of a byte stream, read as it arrives (a pipe partner gets answers as it writes).

    A line is a question, or a JSON object `{"conversation": "id", "question": "…"}`: lines with the
    same conversation id are one dialogue, in order (follow-ups are understood from the previous line).

    Lines are read with a byte cap, so a gigabyte without a newline costs bounded memory: anything
    longer than 4 bytes per allowed character is reported as too long and skipped to its newline.
    """
    limit = max_question_chars()
    cap = 8 * limit + 256  # a JSON line escapes each character in up to 6 bytes, plus its keys
    number = 0
    while True:
        raw = stream.readline(cap)
        if not raw:
            return
        number += 1
        if not raw.endswith(b"\n") and len(raw) >= cap:
            while True:  # drain the rest of the overlong line
                rest = stream.readline(1 << 16)
                if not rest or rest.endswith(b"\n"):
                    break
            yield InputLine(number, None, f"line {number}: question too long (the limit is {limit} chars)")
            continue
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            text = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            yield InputLine(number, None, f"line {number}: not UTF-8 text (binary data?)")
            continue
        if text.lstrip().startswith("{"):
            yield _json_line(number, text)
            continue
        try:
            question = check_question(text)
        except InputError as e:
            keep = text if len(text) <= limit else None
            yield InputLine(number, keep, f"line {number}: {e}")
            continue
        yield InputLine(number, question, None)
