"""Imported text made safe to print on a terminal.

Titles and messages come from files anyone may have written: an escape sequence in them
would clear the screen, retitle the window or hide text. Control characters (C0 and C1,
DEL) and the bidirectional overrides are shown as visible escapes (`\\x1b`, `\\u202e`);
text that is not UTF-8 (from a file name) is shown as `\\xNN`.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE_ONE_LINE = re.compile(_UNSAFE.pattern[:-1] + "\t\n]")


def _escape(match: re.Match) -> str:
    char = match.group()
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: object, *, one_line: bool = False) -> str:
    """`text` with what a terminal would act on shown as escapes (tabs and newlines kept,
    unless `one_line`, where they are escaped too)."""
    return (_UNSAFE_ONE_LINE if one_line else _UNSAFE).sub(_escape, str(text))


def printable_json(text: str) -> str:
    """JSON (from json.dumps with ensure_ascii=False) with the raw C1 controls, bidirectional
    overrides and lone surrogates it leaves written as \\u escapes; still the same JSON."""
    return _UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
