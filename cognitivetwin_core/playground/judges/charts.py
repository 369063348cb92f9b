"""Small charts for the report, drawn as SVG with no plotting library and embedded as images
(`<img src="data:image/svg+xml;base64,…">`), so the page is one self-contained, printable file.

    horizontal_bars([("twin", 0.61, 0.48, 0.72), ("base", 0.08, 0.0, 0.2)], maximum=1.0, percent=True)
"""

from __future__ import annotations

import base64
from html import escape

COLOURS = ("#2f6fb0", "#d9822b", "#3a9a5b", "#a1449b", "#7a7a7a", "#b03a3a")
_FONT = "font-family='Helvetica, Arial, sans-serif' font-size='12'"


def as_image(svg: str, alt: str) -> str:
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return f'<img class="chart" alt="{escape(alt)}" src="data:image/svg+xml;base64,{data}">'


def _label(value: float, percent: bool) -> str:
    return f"{value:.0%}" if percent else f"{value:.2f}"


def horizontal_bars(
    rows: list[tuple[str, float | None, float | None, float | None]],
    *,
    maximum: float = 1.0,
    percent: bool = False,
    reference: float | None = None,
    width: int = 560,
) -> str:
    """One bar per row (label, value, low, high), with its interval as a whisker; `reference`
    draws a dashed line (0.5 for "cannot tell apart")."""
    left, right, bar, gap = 170, 70, 18, 10
    height = 20 + len(rows) * (bar + gap)
    span = width - left - right
    maximum = maximum or 1.0

    def x(value: float) -> float:
        return left + max(0.0, min(value, maximum)) / maximum * span

    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' {_FONT}>"]
    parts.append(f"<line x1='{left}' y1='5' x2='{left}' y2='{height - 5}' stroke='#999'/>")
    for index, (label, value, low, high) in enumerate(rows):
        top = 10 + index * (bar + gap)
        colour = COLOURS[index % len(COLOURS)]
        parts.append(f"<text x='{left - 8}' y='{top + 13}' text-anchor='end'>{escape(label)}</text>")
        if value is None:
            parts.append(f"<text x='{left + 6}' y='{top + 13}' fill='#777'>not measured</text>")
            continue
        parts.append(f"<rect x='{left}' y='{top}' width='{x(value) - left:.1f}' height='{bar}' fill='{colour}'/>")
        if low is not None and high is not None:
            middle = top + bar / 2
            parts.append(
                f"<line x1='{x(low):.1f}' y1='{middle}' x2='{x(high):.1f}' y2='{middle}' stroke='#222' "
                "stroke-width='1.5'/>"
            )
            for end in (low, high):
                parts.append(
                    f"<line x1='{x(end):.1f}' y1='{top + 4}' x2='{x(end):.1f}' y2='{top + bar - 4}' stroke='#222'/>"
                )
        parts.append(f"<text x='{x(max(value, high or value)) + 6:.1f}' y='{top + 13}'>{_label(value, percent)}</text>")
    if reference is not None:
        parts.append(
            f"<line x1='{x(reference):.1f}' y1='5' x2='{x(reference):.1f}' y2='{height - 5}' stroke='#b03a3a' "
            "stroke-dasharray='4 3'/>"
        )
    parts.append("</svg>")
    return "".join(parts)


def grouped_bars(categories: list[str], series: list[tuple[str, list[float | None]]], *, width: int = 640) -> str:
    """Bars grouped by category (values 0–1), one colour per series, with a legend."""
    top, bottom, left = 30, 60, 30
    height = 220
    plot = height - top - bottom
    group = (width - left - 10) / max(1, len(categories))
    bar = group * 0.8 / max(1, len(series))
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' {_FONT}>"]
    parts.append(f"<line x1='{left}' y1='{top + plot}' x2='{width - 10}' y2='{top + plot}' stroke='#999'/>")
    for number, (name, _values) in enumerate(series):
        colour = COLOURS[number % len(COLOURS)]
        parts.append(f"<rect x='{left + number * 110}' y='6' width='12' height='12' fill='{colour}'/>")
        parts.append(f"<text x='{left + number * 110 + 16}' y='16'>{escape(name)}</text>")
    for c, category in enumerate(categories):
        start = left + c * group + group * 0.1
        for number, (_name, values) in enumerate(series):
            value = values[c]
            if value is None:
                continue
            h = max(0.0, min(1.0, value)) * plot
            colour = COLOURS[number % len(COLOURS)]
            parts.append(
                f"<rect x='{start + number * bar:.1f}' y='{top + plot - h:.1f}' width='{bar - 1:.1f}' "
                f"height='{h:.1f}' fill='{colour}'/>"
            )
        parts.append(
            f"<text x='{start + group * 0.4:.1f}' y='{top + plot + 14}' text-anchor='middle' font-size='10'>"
            f"{escape(category.replace('_', ' '))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
