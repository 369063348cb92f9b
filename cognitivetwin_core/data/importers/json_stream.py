"""Incremental readers for big JSON files: JSON Lines, and top-level JSON arrays.

A ShareGPT or ChatGPT dump is one huge array, often cut off mid-file. The array reader
decodes one element at a time from a sliding text buffer (`JSONDecoder.raw_decode`, C
speed), so the file is never in memory twice, and when the file ends early every complete
element before the break is kept and the report says where the file ends. Bytes that are
not UTF-8 are carried as surrogate escapes so the one record holding them is rejected, not
the whole file.
"""

from __future__ import annotations

import codecs
import json
import os
import re
from collections.abc import Iterator
from typing import BinaryIO

from cognitivetwin_core.data.importers.report import ImportProgress, ImportReport, ProgressCallback, Rejection
from cognitivetwin_core.errors import InputError

_CHUNK = 1 << 20
# The largest record (a JSON line, an element of the array) decoded; a bigger one is
# skipped with a rejection, so one hostile record cannot take all memory. A long ChatGPT
# conversation with code is a few MiB.
MAX_RECORD_BYTES = 64 << 20
_PROGRESS_EVERY = 1 << 20
_WHITESPACE = " \t\r\n"
_decoder = json.JSONDecoder()


def file_size(stream: BinaryIO) -> int | None:
    try:
        return os.fstat(stream.fileno()).st_size
    except (OSError, AttributeError, ValueError):
        return None


class _Progress:
    def __init__(self, callback: ProgressCallback | None, total: int | None, report: ImportReport):
        self.callback = callback
        self.total = total
        self.report = report
        self.last = -_PROGRESS_EVERY

    def __call__(self, done: int, *, force: bool = False) -> None:
        if self.callback is not None and (force or done - self.last >= _PROGRESS_EVERY):
            self.last = done
            self.callback(
                ImportProgress(
                    done, self.total, "bytes", self.report.conversations_accepted, self.report.messages_accepted
                )
            )


def iter_json_lines(
    stream: BinaryIO, label: str, report: ImportReport, progress: ProgressCallback | None = None
) -> Iterator[tuple[int, object]]:
    """(line number, value) for each JSON line; bad lines go to the report with their position."""
    tick = _Progress(progress, file_size(stream), report)
    done = 0
    line_number = 0
    records = 0
    limit = MAX_RECORD_BYTES
    while raw := stream.readline(limit + 1):
        line_number += 1
        done += len(raw)
        tick(done)
        if len(raw) > limit and not raw.endswith(b"\n"):
            while (rest := stream.readline(_CHUNK)) and not rest.endswith(b"\n"):  # skip the rest of the line
                done += len(rest)
            done += len(rest)
            report.reject(Rejection(label, f"the line is longer than {_mib(limit)}; it was skipped", line=line_number))
            continue
        if line_number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        if not raw.strip():
            continue
        try:
            text = raw.rstrip(b"\r\n").decode("utf-8")
        except UnicodeDecodeError as exc:
            column = len(raw[: exc.start].decode("utf-8", "replace")) + 1
            report.reject(
                Rejection(label, f"not UTF-8 text (byte 0x{raw[exc.start]:02x})", line=line_number, column=column)
            )
            continue
        try:
            value = json.loads(text)
        except RecursionError:
            report.reject(Rejection(label, _TOO_DEEP, line=line_number))
            continue
        except json.JSONDecodeError as exc:
            if not raw.endswith(b"\n") and report.truncated_at is None:
                # The last line stops mid-record: the file was cut off.
                report.truncated_at = f"line {line_number}, column {len(text) + 1}: the last line is incomplete"
                report.reject(
                    Rejection(
                        label,
                        "the file ends in the middle of this record (truncated file)",
                        line=line_number,
                        column=len(text) + 1,
                    )
                )
            else:
                report.reject(Rejection(label, f"bad JSON: {exc.msg}", line=line_number, column=exc.colno))
            continue
        records += 1
        yield line_number, value
    tick(done, force=True)
    if not records and not report.rejected_total:
        # Not an import of nothing: most likely the wrong file, or one still being written.
        raise InputError(
            f"{label} holds no records (it is empty or only blank lines): check that it is the right file."
        )


class _TextWindow:
    """A sliding window of decoded text over a binary stream, tracking line numbers."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        self.text = ""
        self.pos = 0
        self.eof = False
        self.bytes_read = 0
        self.line = 1  # line number at `self.counted`
        self.counted = 0
        self.column_offset = 0  # characters of the window's first line that are no longer in it
        self.first = True

    def more(self, at_least: int = _CHUNK) -> bool:
        """Append at least one more chunk; False at the end of the stream."""
        if self.eof:
            return False
        if self.pos > len(self.text) // 2:
            if self.counted <= self.pos:
                self.line += self.text.count("\n", self.counted, self.pos)
                self.counted = 0
            else:
                self.counted -= self.pos
            # Characters of the current line that slide out of the window, for columns.
            last_newline = self.text.rfind("\n", 0, self.pos)
            if last_newline >= 0:
                self.column_offset = self.pos - last_newline - 1
            else:
                self.column_offset += self.pos
            self.text = self.text[self.pos :]
            self.pos = 0
        raw = self.stream.read(max(at_least, _CHUNK))
        self.bytes_read += len(raw)
        if not raw:
            self.eof = True
            self.text += self.decoder.decode(b"", final=True)
            return False
        decoded = self.decoder.decode(raw)
        if self.first:
            decoded = decoded.removeprefix("\ufeff")
            self.first = False
        self.text += decoded
        return True

    def skip_whitespace(self) -> str | None:
        """The next non-space character (not consumed), or None at the end of the stream."""
        while True:
            text, pos = self.text, self.pos
            while pos < len(text) and text[pos] in _WHITESPACE:
                pos += 1
            self.pos = pos
            if pos < len(text):
                return text[pos]
            if not self.more():
                return None

    def line_of(self, pos: int) -> tuple[int, int]:
        """(line, column) of a position in the current window, both 1-based."""
        if pos >= self.counted:
            self.line += self.text.count("\n", self.counted, pos)
            self.counted = pos
            line = self.line
        else:
            line = self.line - self.text.count("\n", pos, self.counted)
        newline = self.text.rfind("\n", 0, pos)
        if newline < 0:
            return line, self.column_offset + pos + 1
        return line, pos - newline


_TOO_DEEP = "the record is nested too deeply (lists or objects inside each other); it was skipped"


def _mib(size: int) -> str:
    return f"{size / (1 << 20):g} MiB"


def _skip_value(window: _TextWindow) -> bool:
    """Move past the JSON array, object or string at `window.pos` without decoding it (it
    is too big or too deep to decode); memory stays a window. False if the file ends first."""
    depth = 0
    in_string = False
    pos = window.pos
    while True:
        text = window.text
        while pos < len(text):
            if in_string:
                quote = text.find('"', pos)
                if quote < 0:
                    pos = len(text)
                    break
                backslashes = 0
                while quote - 1 - backslashes >= pos and text[quote - 1 - backslashes] == "\\":
                    backslashes += 1
                pos = quote + 1
                if backslashes % 2 == 0:
                    in_string = False
                    if depth == 0:
                        window.pos = pos
                        return True
                continue
            match = _STRUCTURE.search(text, pos)
            if match is None:
                pos = len(text)
                break
            char = match.group()
            pos = match.end()
            if char == '"':
                in_string = True
            elif char in "[{":
                depth += 1
            else:
                depth -= 1
                if depth <= 0:
                    window.pos = pos
                    return True
        # Backslashes at the window's end may escape a quote in the next chunk: scan them again.
        keep = len(text) - len(text.rstrip("\\")) if in_string else 0
        window.pos = max(window.pos, pos - keep)
        if not window.more():
            return False
        pos = window.pos


_STRUCTURE = re.compile(r'["\[\]{}]')


def _incomplete(error: json.JSONDecodeError, text: str) -> bool:
    """Whether a decode error is just the window (or the file) ending inside the value."""
    return error.msg.startswith("Unterminated string") or len(text) - error.pos <= 16


def iter_json_records(
    stream: BinaryIO, label: str, report: ImportReport, progress: ProgressCallback | None = None
) -> Iterator[tuple[int, int, object]]:
    """(record index, line, value) for each element of a top-level JSON array (or each of a
    sequence of top-level objects). A truncated file yields every complete element first,
    then sets `report.truncated_at`; a syntax error is reported with its line and column."""
    tick = _Progress(progress, file_size(stream), report)
    window = _TextWindow(stream)
    first = window.skip_whitespace()
    if first is None:
        report.reject(Rejection(label, "the file is empty", line=1))
        return
    in_array = first == "["
    if in_array:
        window.pos += 1
    elif first != "{":
        line, column = window.line_of(window.pos)
        report.reject(
            Rejection(label, "bad JSON: expected a list '[' of records or an object '{'", line=line, column=column)
        )
        return
    index = 0
    while True:
        char = window.skip_whitespace()
        if char is None:
            if in_array:
                line, column = window.line_of(window.pos)
                _truncated(report, label, index, line, column, "before the closing ']'")
            break
        if in_array and char == "]" and index == 0:
            window.pos += 1
            break
        start = window.pos
        skipped = None
        try:
            value, end = _decoder.raw_decode(window.text, start)
        except RecursionError:
            skipped = _TOO_DEEP
        except json.JSONDecodeError as exc:
            incomplete = _incomplete(exc, window.text)
            if incomplete and len(window.text) - start > MAX_RECORD_BYTES:
                skipped = f"the record is larger than {_mib(MAX_RECORD_BYTES)}; it was skipped"
            elif incomplete and window.more(len(window.text)):
                continue  # read more (doubling) and decode the element again
            else:
                start = window.pos  # more() may have slid the window
                line, column = window.line_of(start)
                if incomplete:
                    _truncated(report, label, index, line, column, "inside this record")
                else:
                    error_line, error_column = window.line_of(exc.pos)
                    report.reject(
                        Rejection(
                            label,
                            f"bad JSON: {exc.msg}; the rest of the file was not read",
                            line=error_line,
                            column=error_column,
                            record=index,
                        )
                    )
                break
        line, column = window.line_of(start)
        if skipped is not None:
            report.reject(Rejection(label, skipped, line=line, column=column, record=index))
            window.pos = start
            if not _skip_value(window):
                _truncated(report, label, index, line, column, "inside this record")
                break
        else:
            window.pos = end
            yield index, line, value
        index += 1
        tick(window.bytes_read)
        if not in_array:
            continue
        char = window.skip_whitespace()
        if char == ",":
            window.pos += 1
        elif char == "]":
            window.pos += 1
            break
        elif char is None:
            line, column = window.line_of(window.pos)
            _truncated(report, label, index, line, column, "before the closing ']'")
            break
        else:
            line, column = window.line_of(window.pos)
            report.reject(
                Rejection(
                    label,
                    f"bad JSON: expected ',' or ']' after record {index - 1}, "
                    f"found {char!r}; the rest of the file was not read",
                    line=line,
                    column=column,
                    record=index,
                )
            )
            break
    tick(window.bytes_read, force=True)


def _truncated(report: ImportReport, label: str, index: int, line: int, column: int, where: str) -> None:
    report.truncated_at = (
        f"line {line}, column {column}, {where} (record {index}); {index} complete records before it were read"
    )
    report.reject(
        Rejection(label, f"the file ends early, {where} (truncated file)", line=line, column=column, record=index)
    )
