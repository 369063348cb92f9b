"""How long something takes, in the few characters a status line or a table cell has."""

from __future__ import annotations

import math


def format_duration(seconds: float | None, *, clock: bool = False) -> str:
    """`seconds` as "1h02m", "3m05s" or "12s"; with `clock`, as "1:02:03" or "3:05".
    Unknown (None, NaN, infinite or negative) reads "–"."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "–"
    seconds = int(round(seconds)) if clock else int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if clock:
        return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
