"""Colours and labels for the trajectory annotation, shared by every view that draws it."""

from __future__ import annotations

from cognitivetwin_core.annotation.trajectory import COORDINATE_NAMES, PHASE_NAMES

# One colour per phase (0 opening .. 5 closing): cool to warm along the conversation.
PHASE_COLORS = ("#1c7ed6", "#1098ad", "#37b24d", "#f59f00", "#f76707", "#c2255c")
COORDINATE_COLORS = ("#364fc7", "#0ca678", "#e8590c", "#ae3ec9", "#c92a2a")
# The exact names (the glossary's terms, shown in tooltips) and the plain words shown instead.
COORDINATE_TERMS = tuple(name.replace("_", " ") for name in COORDINATE_NAMES)
COORDINATE_LABELS = ("how far in", "who is speaking", "repeats the last", "time along", "complexity")
assert len(COORDINATE_LABELS) == len(COORDINATE_NAMES)
GLOSSARY_WORDS = "trajectory " + " ".join(COORDINATE_TERMS)  # for a painted widget's `glossary` property


def phase_label(phase_id: int) -> str:
    if 0 <= phase_id < len(PHASE_NAMES):
        return PHASE_NAMES[phase_id]
    return f"phase {phase_id}"


def phase_color(phase_id: int) -> str:
    return PHASE_COLORS[phase_id] if 0 <= phase_id < len(PHASE_COLORS) else "#868e96"
