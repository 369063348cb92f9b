"""Times in the Phase 1 log pane and jobs table: a record's ISO time as a timestamp, the clock time
of a line or an event.
"""

from __future__ import annotations

from datetime import UTC, datetime


def parse_time(value) -> float | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def clock_stamp() -> str:
    return datetime.now().strftime("%H:%M:%S")


def event_stamp(event: dict) -> str:
    ts = parse_time(event.get("created_at"))
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S") if ts else clock_stamp()
