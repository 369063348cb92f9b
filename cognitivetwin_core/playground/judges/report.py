"""The report: one self-contained HTML page per twin, or comparing several (docs/judging.md).

    write_report([adapter_a, adapter_b], "report.html", workspace=ws)

It reads each adapter's evaluation.json (and the blind-test answers in the workspace) and
shows: perplexity base vs twin on held-out replies, the authorship judge with its ceiling and
floor, whether a classifier can tell the replies apart, the blind test, the person's
stylometric profile beside the twin's and the base's, and the best and worst examples side
by side. Charts are SVG images embedded in the page (charts.py); it prints on A4.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from cognitivetwin_core.errors import InputError
from cognitivetwin_core.playground.judges.charts import as_image, grouped_bars, horizontal_bars

STYLE = """
body{font-family:Helvetica,Arial,sans-serif;max-width:960px;margin:2em auto;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:1.6em}
.note{color:#555;font-size:.9em}.verdict{font-weight:bold}
table{border-collapse:collapse;width:100%;font-size:.9em}td,th{border:1px solid #ddd;padding:4px 6px;
vertical-align:top;text-align:left}th{background:#f3f3f3}.chart{display:block;margin:.6em 0;max-width:100%}
@media print{body{margin:0;max-width:none}h2{page-break-after:avoid}.chart,table{page-break-inside:avoid}}
"""


def _name(adapter: Path, report: dict) -> str:
    lineage_path = adapter / "lineage.json"
    lineage = json.loads(lineage_path.read_text(encoding="utf-8")) if lineage_path.is_file() else {}
    rank = (lineage.get("settings") or {}).get("lora_r")
    base = Path(str(report.get("base_model") or lineage.get("base_model") or "")).name
    details = ", ".join(x for x in (f"rank {rank}" if rank else "", base) if x)
    return f"{adapter.name} ({details})" if details else adapter.name


def load_reports(adapters: list[str | Path]) -> list[tuple[str, Path, dict]]:
    from cognitivetwin_core.playground.evaluation_file import load_evaluation

    loaded = []
    for adapter in adapters:
        folder = Path(adapter).expanduser()
        report = load_evaluation(folder)
        if report is None:
            raise InputError(
                f"{folder} has no evaluation.json: evaluate it first (`cognitivetwin phase1 --evaluate {folder} "
                "--workspace DIR`), or pick an evaluated adapter."
            )
        loaded.append((_name(folder, report), folder, report))
    return loaded


def _pct(value: dict | None) -> str:
    if not value:
        return "—"
    return f"{value['share']:.0%} ({value['low']:.0%}–{value['high']:.0%})"


def _auc(value: dict | None) -> str:
    return "too few examples" if not value else f"{value['auc']:.2f} ({value['low']:.2f}–{value['high']:.2f})"


def report_html(loaded: list[tuple[str, Path, dict]], blind: dict[str, dict] | None = None) -> str:
    """The page for the loaded evaluations; `blind`: per adapter path, {"mine": tally, "twin": tally}."""
    from cognitivetwin_core.playground.evaluation_file import COMPARED_STYLOMETRICS
    from cognitivetwin_core.playground.judges.blind import score_text

    blind = blind or {}
    several = len(loaded) > 1
    title = "Is it you? " + (" vs ".join(name for name, _, _ in loaded) if several else loaded[0][0])
    body = [f"<h1>{escape(title)}</h1>"]
    first = loaded[0][2]["held_out"]
    body.append(
        f"<p class='note'>Held-out data: {escape(first['source'])}; {first['replies']} replies of "
        f"{escape(first.get('person', 'the person'))}. None of it was used to train the twin. Made "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}.</p>"
    )

    body.append("<h2>How surprised is each model by your real replies? (perplexity, lower = closer)</h2>")
    rows, peak = [], 0.0
    for name, _, report in loaded:
        perplexity = report["perplexity"]
        peak = max(peak, perplexity["base"], perplexity["twin"])
        rows += [
            (f"{name[:18]} base", perplexity["base"], None, None),
            (f"{name[:18]} twin", perplexity["twin"], None, None),
        ]
    body.append(as_image(horizontal_bars(rows, maximum=peak * 1.1), "perplexity base vs twin"))

    body.append("<h2>Who wrote it? An independent judge</h2>")
    for name, _, report in loaded:
        judge = report.get("judge") or {}
        if several:
            body.append(f"<h3>{escape(name)}</h3>")
        if not judge:
            body.append("<p>Not judged (evaluated by an older version).</p>")
            continue
        chart = [
            ("your real replies", *_triple(judge.get("real"))),
            ("other people", *_triple(judge.get("others"))),
            ("the twin", *_triple(judge.get("twin"))),
            ("the base", *_triple(judge.get("base"))),
        ]
        body.append(as_image(horizontal_bars(chart, percent=True), f"judged to be you, {name}"))
        body.append(f"<p class='verdict'>{escape(judge.get('verdict', ''))}</p>")
        body.append(
            f"<p class='note'>{escape(judge.get('scale', ''))} Bars: share; whiskers: 95% interval over "
            "conversations.</p>"
        )

    body.append("<h2>Can a classifier tell the replies from yours? (ROC-AUC; 0.5 = cannot)</h2>")
    rows = []
    for _, folder, report in loaded:
        told = report.get("told_apart") or {}
        short = folder.name[:16] + " " if several else ""
        for key, label in (("stylometric", "style"), ("base_features", "model")):
            for who in ("twin", "base"):
                value = (told.get(key) or {}).get(who)
                numbers = (value["auc"], value["low"], value["high"]) if value else (None, None, None)
                rows.append((f"{short}{who} ({label})", *numbers))
    body.append(as_image(horizontal_bars(rows, reference=0.5), "classifier ROC-AUC"))
    body.append(
        "<p class='note'>The closer to the dashed line (0.5), the harder the replies are to tell from "
        "yours. 'style': length, punctuation, questions and other style measures; 'model': how the "
        "frozen base model reads them.</p>"
    )

    body.append("<h2>The blind test: which one did you write?</h2>")
    any_blind = False
    for name, folder, _ in loaded:
        for mode, tally in (blind.get(str(folder)) or {}).items():
            if tally is None or not (tally.answered or tally.skipped):
                continue
            any_blind = True
            low_high = horizontal_bars([(f"{mode} mode", *_wilson_triple(tally))], percent=True, reference=0.5)
            body.append(f"<p>{escape(name)}, {escape(mode)} mode: {escape(score_text(tally, mode))}</p>")
            body.append(as_image(low_high, f"blind test {name} {mode}"))
    if not any_blind:
        body.append(
            "<p>Not taken yet: <code>cognitivetwin judge blind --adapter DIR</code>, or the Blind test "
            "page in the Playground.</p>"
        )

    body += before_and_after_html(loaded)

    body.append("<h2>Your style beside the twin's and the base's (means over the examples)</h2>")
    for name, _, report in loaded:
        summary = report.get("stylometrics") or {}
        if not summary:
            continue
        if several:
            body.append(f"<h3>{escape(name)}</h3>")
        names = [n for n in COMPARED_STYLOMETRICS if n != "emoji"]
        series = [
            (label, [summary[who].get(n) for n in names])
            for who, label in (("real", "you"), ("twin", "twin"), ("base", "base"))
        ]
        body.append(as_image(grouped_bars(names, series), f"style profile {name}"))

    body.append("<h2>Best and worst examples</h2>")
    for name, _, report in loaded:
        examples = report.get("examples") or report.get("samples") or []
        if several:
            body.append(f"<h3>{escape(name)}</h3>")
        table = ["<table><tr><th></th><th>message</th><th>you</th><th>twin</th><th>base</th></tr>"]
        for title_, indices in (("best", report.get("best") or []), ("worst", report.get("worst") or [])):
            for index in indices:
                if index >= len(examples):
                    continue
                row = examples[index]
                table.append(
                    f"<tr><td>{title_}</td>"
                    + "".join(f"<td>{escape(str(row.get(k, '')))}</td>" for k in ("context", "real", "twin", "base"))
                    + "</tr>"
                )
        table.append("</table>")
        body.append("".join(table))
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>" + "\n".join(body) + "</body></html>"
    )


def before_and_after_html(loaded: list[tuple[str, Path, dict]]) -> list[str]:
    """For each taught version: its comparison with the version before (teach_comparison.py)."""
    from cognitivetwin_core.playground.judges.teach_comparison import comparison_lines, load_comparison, parent_version

    body = []
    for name, folder, _ in loaded:
        if parent_version(folder) is None:
            continue
        body.append(f"<h2>Before and after teaching: {escape(name)}</h2>")
        comparison = load_comparison(folder)
        if comparison is None:
            body.append(
                f"<p>Not compared yet: <code>cognitivetwin judge compare --after {escape(str(folder))}</code>, or "
                '"Compare with the version before" on the Playground\'s Chat page.</p>'
            )
            continue
        body += [f"<p>{escape(line)}</p>" for line in comparison_lines(comparison) if line]
    return body


def _triple(value: dict | None) -> tuple:
    return (None, None, None) if not value else (value["share"], value["low"], value["high"])


def _wilson_triple(tally) -> tuple:
    from cognitivetwin_core.playground.judges.intervals import wilson

    if not tally.answered:
        return None, None, None
    low, high = wilson(tally.correct, tally.answered)
    return tally.correct / tally.answered, low, high


def write_report(adapters: list[str | Path], out: str | Path, *, workspace=None) -> Path:
    """Write the page for the adapters to `out` (atomically); returns its path."""
    from cognitivetwin_core.atomic_files import open_atomically

    loaded = load_reports(adapters)
    blind = {}
    if workspace is not None:
        from cognitivetwin_core.data.blind_answers import MODES, blind_tally

        blind = {str(folder): {mode: blind_tally(workspace, folder, mode) for mode in MODES} for _, folder, _ in loaded}
    out = Path(out)
    with open_atomically(out) as handle:
        handle.write(report_html(loaded, blind))
    return out
