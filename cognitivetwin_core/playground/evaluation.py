"""Did Phase 1 learn the person? The twin against its base on replies it never saw.

    report = evaluate_adapter(adapter_dir, workspace=ws, model_dir=phase2_run, samples=8)
    report["perplexity"]   # {"base": 14.2, "twin": 9.7}: lower under the twin = it learned the person
    headline(report)       # "perplexity 14.2 → 9.7 (31% lower)", for the jobs table
    report_lines(report)   # the table and the best and worst examples, as text

Held-out conversations (playground/held_out.py): the validation file the adapter trained
with, else the workspace's conversations, built for the workspace's twin speaker exactly as
the Phase 1 export builds them, that share no person's turn with the adapter's training
data (checked by content). The loss is the mean next-token loss over the person's real
replies (the assistant turns, as Phase 1 trains them) under the same model with the adapter
off (the base) and on (the twin). For up to `samples` held-out replies, the base and the
twin answer the same context (seeded sampling). The answers are judged by judges that never
saw the twin's training (docs/judging.md): an authorship verifier fitted on the held-out
messages (`judge`), and a classifier asked to tell them from the real replies (`told_apart`,
ROC-AUC on stylometric features and on the frozen base's features). Given a Phase 2 run,
each answer also gets its style-head cosine, a detail only: that head learned from the same
messages as the twin. Saved as `evaluation.json` in the adapter folder, with the answers as
`examples`.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.errors import CancelledError, InputError
from cognitivetwin_core.models.generation import SamplingSettings
from cognitivetwin_core.playground.evaluation_file import COMPARED_STYLOMETRICS, EVALUATION_FILE, load_evaluation

__all__ = [
    "COMPARED_STYLOMETRICS",
    "EVALUATION_FILE",
    "evaluate_adapter",
    "headline",
    "load_evaluation",
    "report_lines",
]

DEFAULT_SAMPLES = 16


def stylometrics_of(text: str) -> dict[str, float]:
    from cognitivetwin_core.annotation.stylometrics import emoji_count, stylometric_dict

    values = stylometric_dict(text)
    out = {name: values[name] for name in COMPARED_STYLOMETRICS if name in values}
    out["emoji"] = float(emoji_count(text))
    return out


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _cosine(a, b) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def _stylometric_gap(values: dict[str, float], person: dict[str, float]) -> float:
    """Mean absolute difference over the compared stylometrics (emoji squashed into [0, 1))."""
    gaps = []
    for name in COMPARED_STYLOMETRICS:
        a, b = values.get(name, 0.0), person.get(name, 0.0)
        if name == "emoji":
            a, b = a / (a + 1.0), b / (b + 1.0)
        gaps.append(abs(a - b))
    return sum(gaps) / len(gaps)


def evaluate_adapter(
    adapter_dir: str | Path,
    *,
    base_model: str | Path | None = None,
    workspace=None,
    model_dir: str | Path | None = None,
    samples: int = DEFAULT_SAMPLES,
    max_new_tokens: int = 96,
    temperature: float = 0.7,
    seed: int = 0,
    device: str = "auto",
    max_length: int | None = None,
    progress: Callable[[str], None] | None = None,
    cancellation: Cancellation | None = None,
    twin=None,
    scorer=None,
    save: bool = True,
) -> dict:
    """Evaluate the adapter against its base (see the module text); returns the report and
    saves it as evaluation.json in the adapter folder. `twin`/`scorer`: already loaded ones."""
    from cognitivetwin_core.phase1.adapter_archive import adapter_base_model
    from cognitivetwin_core.phase1.assistant_tokens import evaluate_loss
    from cognitivetwin_core.phase2.person_style import sounds_like
    from cognitivetwin_core.playground.chat import ReplyScorer, load_twin
    from cognitivetwin_core.playground.held_out import held_out_set

    def say(message: str) -> None:
        if progress is not None:
            progress(message)

    def check_stop() -> None:
        if cancellation is not None and cancellation.cancelled:
            raise CancelledError("The evaluation was stopped; nothing was saved.")

    if samples < 0:
        raise InputError(f"--samples must be 0 or more, got {samples}.")
    adapter_dir = Path(adapter_dir)
    adapter_base_model(adapter_dir)  # refuses a folder that is no adapter before the data is read
    held = held_out_set(adapter_dir, workspace=workspace, seed=seed)
    conversations = held.conversations
    say(f"Held out: {held.source}; the person is {held.speaker} ({held.replies} of their replies).")
    if twin is None:
        say("Loading the base and the adapter…")
        twin = load_twin(adapter_dir, base_model, device=device)
    if scorer is None and model_dir:
        say("Loading the Phase 2 run…")
        scorer = ReplyScorer.for_run(model_dir, device=device)
    lineage_path = adapter_dir / "lineage.json"
    lineage = json.loads(lineage_path.read_text(encoding="utf-8")) if lineage_path.is_file() else {}
    max_length = max_length or int((lineage.get("settings") or {}).get("max_seq_length") or 512)

    model, tokenizer = twin.model, twin.tokenizer
    check_stop()
    say(f"Scoring the person's {held.replies} real replies under the base…")
    with twin.lock:
        with model.disable_adapter():
            base_loss = evaluate_loss(model, tokenizer, conversations, max_length=max_length)
        check_stop()
        say(f"Scoring the person's {held.replies} real replies under the twin…")
        twin_loss = evaluate_loss(model, tokenizer, conversations, max_length=max_length)

    # The held-out turns to answer: a seeded choice among every one of the person's turns.
    turns = [(ci, mi) for ci, c in enumerate(conversations) for mi, m in enumerate(c) if m["role"] == "assistant"]
    random.Random(seed).shuffle(turns)
    turns = turns[:samples]
    rows = []
    started = time.monotonic()
    for number, (ci, mi) in enumerate(turns, start=1):
        check_stop()
        say(f"Answering held-out message {number} of {len(turns)}{_eta(started, number - 1, len(turns))}…")
        context = conversations[ci][:mi]
        real = conversations[ci][mi]["content"]
        settings = SamplingSettings(temperature=temperature, max_new_tokens=max_new_tokens, seed=seed + number)
        twin_reply = twin.generate(context, settings, cancellation=cancellation).text
        check_stop()
        base_reply = twin.generate(context, settings, use_adapter=False, cancellation=cancellation).text
        row = {
            "context": context[-1]["content"] if context else "",
            "real": real,
            "twin": twin_reply,
            "base": base_reply,
            "conversation": held.ids[ci],
            "stylometrics": {
                "real": stylometrics_of(real),
                "twin": stylometrics_of(twin_reply),
                "base": stylometrics_of(base_reply),
            },
        }
        for who in ("twin", "base"):
            row[f"{who}_stylometric_gap"] = _stylometric_gap(row["stylometrics"][who], row["stylometrics"]["real"])
        if scorer is not None:
            real_signature = scorer.signature(real, context)
            for who, text in (("twin", twin_reply), ("base", base_reply)):
                score = scorer.score(text, context)
                row[f"{who}_to_real"] = _cosine(score.signature, real_signature) if score and real_signature else None
                row[f"{who}_sounds_like"] = (
                    sounds_like(score.signature, scorer.person_style.centroid)
                    if score is not None and scorer.person_style is not None
                    else None
                )
            row["real_sounds_like"] = (
                sounds_like(real_signature, scorer.person_style.centroid)
                if real_signature and scorer.person_style is not None
                else None
            )
        rows.append(row)

    check_stop()
    say("Judging the replies: who wrote them, and can they be told apart…")
    judge = _judge(held, turns, rows, seed=seed)
    told_apart = _told_apart(twin, rows, max_length=max_length, seed=seed)

    report = {
        "adapter": str(adapter_dir),
        "base_model": twin.base_model,
        "held_out": {
            "source": held.source,
            "person": held.speaker,
            "conversations": len(conversations),
            "replies": held.replies,
            "left_out_as_trained": held.excluded,
            "checked_by_content": held.checked_by_content,
        },
        "loss": {"base": base_loss, "twin": twin_loss},
        "perplexity": {"base": math.exp(min(base_loss, 50.0)), "twin": math.exp(min(twin_loss, 50.0))},
        "examples": rows,
        "judge": judge,
        "told_apart": told_apart,
        "stylometrics": _stylometric_summary(rows),
        "style": _style_summary(rows, scorer, model_dir),
        "settings": {
            "samples": samples,
            "max_new_tokens": max_new_tokens,
            "temperature": temperature,
            "seed": seed,
            "max_length": max_length,
        },
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    report["best"], report["worst"] = _best_and_worst(rows, scored=scorer is not None)
    if save:
        from cognitivetwin_core.atomic_files import write_json_atomically

        write_json_atomically(adapter_dir / EVALUATION_FILE, report)
    return report


def _eta(started: float, done: int, total: int) -> str:
    if done <= 0:
        return ""
    from cognitivetwin_core.durations import format_duration

    left = (time.monotonic() - started) / done * (total - done)
    return f", about {format_duration(left)} left"


def _judge(held, turns: list[tuple[int, int]], rows: list[dict], *, seed: int) -> dict:
    """The authorship judge over the held-out conversations; each row gains the judge's
    probability that the twin's and the base's answers are the person's."""
    from cognitivetwin_core.playground.judges.authorship import JudgedConversation, judge_authorship

    judged = [
        JudgedConversation([m["content"] for m in c if m["role"] == "assistant"], list(others))
        for c, others in zip(held.conversations, held.others)
    ]
    placed = []
    for (ci, _mi), row in zip(turns, rows):
        placed.append((ci, len(judged[ci].twin)))
        judged[ci].twin.append(row["twin"])
        judged[ci].base.append(row["base"])
    result = judge_authorship(judged, seed=seed)
    probabilities = result.pop("probabilities")
    for (ci, position), row in zip(placed, rows):
        for who in ("twin", "base"):
            scores = probabilities[who][ci]
            row[f"{who}_judged_yours"] = scores[position] if position < len(scores) else None
    return result


def _told_apart(twin, rows: list[dict], *, max_length: int, seed: int) -> dict:
    """ROC-AUC of telling the twin's (and the base's) answers from the real replies, on
    stylometric features and on the frozen base's features."""
    from cognitivetwin_core.playground.judges.separability import MEANING, stylometric_matrix, told_apart

    groups = [row["conversation"] for row in rows]
    texts = {who: [row[who] for row in rows] for who in ("real", "twin", "base")}
    result: dict = {"meaning": MEANING}
    style = {who: stylometric_matrix(texts[who]) for who in texts}
    result["stylometric"] = {who: told_apart(style["real"], style[who], groups, seed=seed) for who in ("twin", "base")}
    if rows:
        hidden = {who: frozen_base_features(twin, texts[who], max_length=max_length) for who in texts}
        result["base_features"] = {
            who: told_apart(hidden["real"], hidden[who], groups, seed=seed) for who in ("twin", "base")
        }
    return result


def frozen_base_features(twin, texts: list[str], *, max_length: int = 512) -> list[list[float]]:
    """The frozen base's reading of each text: its last hidden state averaged over the tokens."""
    import torch

    model, tokenizer = twin.model, twin.tokenizer
    device = next(model.parameters()).device
    features = []
    with twin.lock, torch.no_grad(), model.disable_adapter():
        for text in texts:
            encoded = tokenizer(text or " ", return_tensors="pt", truncation=True, max_length=max_length).to(device)
            hidden = model(**encoded, output_hidden_states=True).hidden_states[-1][0]
            features.append(hidden.float().mean(dim=0).cpu().tolist())
    return features


def _stylometric_summary(rows: list[dict]) -> dict:
    if not rows:
        return {}
    summary = {}
    for who in ("real", "base", "twin"):
        summary[who] = {
            name: _mean(row["stylometrics"][who].get(name) for row in rows) for name in COMPARED_STYLOMETRICS
        }
    summary["gap"] = {who: _mean(row[f"{who}_stylometric_gap"] for row in rows) for who in ("base", "twin")}
    return summary


def _style_summary(rows: list[dict], scorer, model_dir) -> dict | None:
    if scorer is None:
        return None
    summary = {"phase2_run": str(model_dir) if model_dir else None, "unavailable": scorer.unavailable or None}
    for key in ("twin_to_real", "base_to_real", "twin_sounds_like", "base_sounds_like", "real_sounds_like"):
        summary[key] = _mean(row.get(key) for row in rows)
    return summary


def _best_and_worst(rows: list[dict], *, scored: bool, count: int = 2) -> tuple[list[int], list[int]]:
    """Indices of the examples where the twin came closest to / furthest from the person: by the
    independent judge, else the style head, else the stylometric gap."""
    if not rows:
        return [], []

    def closeness(i: int) -> float:
        row = rows[i]
        if row.get("twin_judged_yours") is not None:
            return row["twin_judged_yours"]
        if scored and row.get("twin_to_real") is not None:
            return row["twin_to_real"]
        return -row["twin_stylometric_gap"]

    order = sorted(range(len(rows)), key=closeness, reverse=True)
    count = min(count, len(rows) // 2) or 1
    best = order[:count]
    worst = [i for i in order[::-1][:count] if i not in best]  # one sample is only "best"
    return best, worst


# ----- reading it -------------------------------------------------------------------------------


def headline(report: dict | None) -> str:
    """One short phrase for a jobs table: the perplexity before and after and the judge's
    verdict, or ''."""
    if not report or "perplexity" not in report:
        return ""
    base, twin = report["perplexity"]["base"], report["perplexity"]["twin"]
    change = (base - twin) / base * 100 if base else 0.0
    text = f"perplexity {base:.1f} → {twin:.1f} ({abs(change):.0f}% {'lower' if change >= 0 else 'higher'})"
    judge = report.get("judge") or {}
    if judge.get("reliable") and judge.get("twin"):
        text += f"; judged to be you: twin {judge['twin']['share']:.0%}, base {judge['base']['share']:.0%}"
    elif judge.get("verdict"):
        text += f"; {judge['verdict']}"
    return text


def _fmt(value, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _clip(text: str, width: int = 200) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def report_lines(report: dict) -> list[str]:
    """The evaluation as plain text: the numbers, then the best and worst examples."""
    held = report["held_out"]
    person = held.get("person", "the person")
    lines = [f"Held-out data: {held['source']} ({held['replies']} replies of {person})."]
    if held.get("left_out_as_trained"):
        lines.append(f"  {held['left_out_as_trained']} conversations were left out: the adapter trained on them.")
    if held.get("checked_by_content") is False:
        lines.append("  The adapter's training file is gone: these may overlap what it trained on.")
    lines += [
        "",
        f"{'':<34}{'base':>12}{'twin':>12}",
        f"{'loss on the real replies':<34}{_fmt(report['loss']['base']):>12}{_fmt(report['loss']['twin']):>12}",
        f"{'perplexity (lower is better)':<34}{_fmt(report['perplexity']['base'], 2):>12}"
        f"{_fmt(report['perplexity']['twin'], 2):>12}",
    ]
    style = report.get("style")
    if style:
        lines.append(
            f"{'style like the real reply (cosine)':<34}{_fmt(style['base_to_real']):>12}{_fmt(style['twin_to_real']):>12}"
        )
        lines.append(
            f"{'sounds like you (style-head cosine)':<34}{_fmt(style['base_sounds_like']):>12}"
            f"{_fmt(style['twin_sounds_like']):>12}"
        )
        if style.get("real_sounds_like") is not None:
            lines.append(f"  (the person's own replies score {style['real_sounds_like']:.3f})")
        if style.get("unavailable"):
            lines.append(f"  {style['unavailable']}")
    else:
        lines.append("Style scores: none, as no Phase 2 run was given (its style head scores the replies).")
    stylometrics = report.get("stylometrics") or {}
    if stylometrics:
        lines.append("")
        lines.append(f"{'stylometrics (mean)':<34}{'person':>12}{'base':>12}{'twin':>12}")
        for name in COMPARED_STYLOMETRICS:
            lines.append(
                f"{name:<34}{_fmt(stylometrics['real'][name]):>12}{_fmt(stylometrics['base'][name]):>12}"
                f"{_fmt(stylometrics['twin'][name]):>12}"
            )
        gap = stylometrics["gap"]
        lines.append(f"{'mean gap from the real reply':<34}{'':>12}{_fmt(gap['base']):>12}{_fmt(gap['twin']):>12}")
    for title, indices in (("Best", report.get("best") or []), ("Worst", report.get("worst") or [])):
        for index in indices:
            row = report["examples"][index]
            lines += [
                "",
                f"{title} example (example {index + 1}):",
                f"  message: {_clip(row['context'])}",
                f"  person:  {_clip(row['real'])}",
                f"  twin:    {_clip(row['twin'])}",
                f"  base:    {_clip(row['base'])}",
            ]
    lines += judge_lines(report)
    lines += ["", f"Headline: {headline(report)}"]
    return lines


def judge_lines(report: dict) -> list[str]:
    """The independent judges in words: who wrote it, and can they be told apart."""
    from cognitivetwin_core.playground.judges.authorship import authorship_headline

    lines = []
    judge = report.get("judge")
    if judge:
        lines += ["", "Who wrote it? An independent judge (docs/judging.md):", f"  {authorship_headline(judge)}"]
        if judge.get("reliable"):
            lines.append(f"  {judge['verdict']}")
            lines.append(f"  (the bottom is {judge.get('floor_from', 'other people')}; scale: {judge['scale']})")
    told = report.get("told_apart") or {}
    for key, label in (("stylometric", "on style measures"), ("base_features", "on the base model's reading")):
        pair = told.get(key) or {}
        if pair.get("twin") or pair.get("base"):
            lines.append(
                f"Can a classifier tell them from your replies ({label}; {told.get('meaning', '')}): "
                f"twin {_auc(pair.get('twin'))}, base {_auc(pair.get('base'))}"
            )
    return lines


def _auc(value: dict | None) -> str:
    return "too few examples" if not value else f"{value['auc']:.2f} ({value['low']:.2f}–{value['high']:.2f})"
