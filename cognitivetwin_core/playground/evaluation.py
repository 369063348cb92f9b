"""Did Phase 1 learn the person? The twin against its base on replies it never saw.

    report = evaluate_adapter(adapter_dir, workspace=ws, model_dir=phase2_run, samples=8)
    report["perplexity"]   # {"base": 14.2, "twin": 9.7}: lower under the twin = it learned the person
    headline(report)       # "perplexity 14.2 → 9.7 (31% lower)", for the jobs table
    report_lines(report)   # the table and the best and worst examples, as text

Held-out conversations: the validation file the adapter trained with (its lineage names
it), else the workspace's conversations whose messages are not in the adapter's training
file, a seeded choice of them. The loss is the mean next-token loss over the person's real
replies (the assistant turns, as Phase 1 trains them) under the same model with the adapter
off (the base) and on (the twin). For up to `samples` held-out replies, the base and the
twin answer the same context (seeded sampling); each answer is compared with the real reply
by simple stylometrics and, given a Phase 2 run, by style signature (cosine to the real
reply's, and "sounds like you": cosine to the person's style centroid). Saved as
`evaluation.json` in the adapter folder.
"""

from __future__ import annotations

import json
import math
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cognitivetwin_core.errors import CancelledError, InputError
from cognitivetwin_core.models.generation import SamplingSettings

EVALUATION_FILE = "evaluation.json"
# The stylometrics compared with the person's: the ones a reader notices first.
COMPARED_STYLOMETRICS = ("length", "punctuation_rate", "question_rate", "exclamation_rate", "emoji")
DEFAULT_SAMPLES = 8
MAX_HELD_OUT_CONVERSATIONS = 200
DEFAULT_HELD_OUT_SHARE = 0.2


def _key(messages: list[dict]) -> tuple:
    return tuple((m["role"], m["content"].strip()) for m in messages)


def held_out_conversations(
    adapter_dir: str | Path,
    *,
    workspace=None,
    share: float = DEFAULT_HELD_OUT_SHARE,
    seed: int = 0,
) -> tuple[list[list[dict]], str]:
    """(conversations in the Phase 1 format the adapter never trained on, where they came from)."""
    from cognitivetwin_core.data.exports import in_validation, together_example
    from cognitivetwin_core.phase1.adapter_archive import LINEAGE_NAME
    from cognitivetwin_core.phase1.jobs import read_chat_jsonl

    folder = Path(adapter_dir)
    lineage = {}
    if (folder / LINEAGE_NAME).is_file():
        lineage = json.loads((folder / LINEAGE_NAME).read_text(encoding="utf-8"))
    validation = (lineage.get("settings") or {}).get("validation_file")
    if validation and Path(validation).is_file():
        conversations = read_chat_jsonl(validation)
        if conversations:
            return conversations[:MAX_HELD_OUT_CONVERSATIONS], f"the validation split {validation}"
    if workspace is None:
        raise InputError(
            f"The adapter in {folder} was trained without a validation file that is still on disk: pass "
            "--workspace with the conversations to hold out (those it did not train on are used)."
        )
    trained: set[tuple] = set()
    data_path = lineage.get("data_path")
    known = bool(data_path and Path(data_path).is_file())
    if known:
        trained = {_key(c) for c in read_chat_jsonl(data_path)}
    candidates = []
    for conversation in workspace.iter_conversations():
        messages, _reason, _trimmed = together_example(conversation)
        if messages is None:
            continue
        if known:
            if _key(messages) in trained:
                continue
        elif not in_validation(conversation.id, share, seed):
            # The training file is gone: a seeded share of the conversations, which may overlap it.
            continue
        candidates.append(messages)
    if not candidates:
        raise InputError(
            f"The workspace {workspace.path} has no conversation the adapter did not train on: import "
            "others, or export with a validation share and train again."
        )
    random.Random(seed).shuffle(candidates)
    chosen = candidates[:MAX_HELD_OUT_CONVERSATIONS]
    source = f"{len(chosen)} conversations of the workspace {workspace.path} "
    source += "not in the adapter's training file" if known else "(a seeded share; the training file is gone)"
    return chosen, source


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
    stop_event: threading.Event | None = None,
    twin=None,
    scorer=None,
    save: bool = True,
) -> dict:
    """Evaluate the adapter against its base (see the module text); returns the report and
    saves it as evaluation.json in the adapter folder. `twin`/`scorer`: already loaded ones."""
    from cognitivetwin_core.phase1.adapter_archive import adapter_base_model
    from cognitivetwin_core.phase1.local_lora import evaluate_loss
    from cognitivetwin_core.phase2.person_style import sounds_like
    from cognitivetwin_core.playground.chat import ReplyScorer, load_twin

    def say(message: str) -> None:
        if progress is not None:
            progress(message)

    def check_stop() -> None:
        if stop_event is not None and stop_event.is_set():
            raise CancelledError("The evaluation was stopped; nothing was saved.")

    if samples < 0:
        raise InputError(f"--samples must be 0 or more, got {samples}.")
    adapter_dir = Path(adapter_dir)
    adapter_base_model(adapter_dir)  # refuses a folder that is no adapter before the data is read
    conversations, source = held_out_conversations(adapter_dir, workspace=workspace, seed=seed)
    say(f"Held out: {source}.")
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
    say("Scoring the real replies under the base…")
    with twin.lock:
        with model.disable_adapter():
            base_loss = evaluate_loss(model, tokenizer, conversations, max_length=max_length)
        check_stop()
        say("Scoring the real replies under the twin…")
        twin_loss = evaluate_loss(model, tokenizer, conversations, max_length=max_length)
    replies = sum(1 for c in conversations for m in c if m["role"] == "assistant")

    # The held-out turns to answer: a seeded choice among every assistant turn.
    turns = [(ci, mi) for ci, c in enumerate(conversations) for mi, m in enumerate(c) if m["role"] == "assistant"]
    random.Random(seed).shuffle(turns)
    turns = turns[:samples]
    rows = []
    for number, (ci, mi) in enumerate(turns, start=1):
        check_stop()
        say(f"Answering held-out message {number} of {len(turns)}…")
        context = conversations[ci][:mi]
        real = conversations[ci][mi]["content"]
        settings = SamplingSettings(temperature=temperature, max_new_tokens=max_new_tokens, seed=seed + number)
        twin_reply = twin.generate(context, settings, stop_event=stop_event).text
        check_stop()
        base_reply = twin.generate(context, settings, use_adapter=False, stop_event=stop_event).text
        row = {
            "context": context[-1]["content"] if context else "",
            "real": real,
            "twin": twin_reply,
            "base": base_reply,
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

    report = {
        "adapter": str(adapter_dir),
        "base_model": twin.base_model,
        "held_out": {"source": source, "conversations": len(conversations), "replies": replies},
        "loss": {"base": base_loss, "twin": twin_loss},
        "perplexity": {"base": math.exp(min(base_loss, 50.0)), "twin": math.exp(min(twin_loss, 50.0))},
        "samples": rows,
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
    """Indices of the samples where the twin came closest to / furthest from the real reply."""
    if not rows:
        return [], []

    def closeness(i: int) -> float:
        row = rows[i]
        if scored and row.get("twin_to_real") is not None:
            return row["twin_to_real"]
        return -row["twin_stylometric_gap"]

    order = sorted(range(len(rows)), key=closeness, reverse=True)
    count = min(count, len(rows) // 2) or 1
    best = order[:count]
    worst = [i for i in order[::-1][:count] if i not in best]  # one sample is only "best"
    return best, worst


# ----- reading it -------------------------------------------------------------------------------


def load_evaluation(adapter_dir: str | Path) -> dict | None:
    path = Path(adapter_dir) / EVALUATION_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None


def headline(report: dict | None) -> str:
    """One short phrase for a jobs table: the perplexity before and after, or ''."""
    if not report or "perplexity" not in report:
        return ""
    base, twin = report["perplexity"]["base"], report["perplexity"]["twin"]
    change = (base - twin) / base * 100 if base else 0.0
    text = f"perplexity {base:.1f} → {twin:.1f} ({abs(change):.0f}% {'lower' if change >= 0 else 'higher'})"
    style = report.get("style") or {}
    if style.get("twin_sounds_like") is not None:
        text += f"; sounds like you {style['twin_sounds_like']:.2f}"
    return text


def _fmt(value, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _clip(text: str, width: int = 200) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def report_lines(report: dict) -> list[str]:
    """The evaluation as plain text: the numbers, then the best and worst examples."""
    held = report["held_out"]
    lines = [
        f"Held-out data: {held['source']} ({held['replies']} replies of the person).",
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
            f"{'sounds like you (cosine)':<34}{_fmt(style['base_sounds_like']):>12}{_fmt(style['twin_sounds_like']):>12}"
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
            row = report["samples"][index]
            lines += [
                "",
                f"{title} example (sample {index + 1}):",
                f"  message: {_clip(row['context'])}",
                f"  person:  {_clip(row['real'])}",
                f"  twin:    {_clip(row['twin'])}",
                f"  base:    {_clip(row['base'])}",
            ]
    lines += ["", f"Headline: {headline(report)}"]
    return lines
