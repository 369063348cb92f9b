"""Did teaching help? A taught twin against the version it was taught from (docs/judging.md §9).

    report = compare_versions(before_dir, after_dir, workspace=ws, max_examples=12)
    report["perplexity"]["verdict"]     # "better" / "worse" / "no clear change"
    report["authorship"]["sentence"]    # the change in plain words, with its scale
    comparison_lines(report)            # every judge in words, for the terminal

Both versions are judged on the SAME held-out examples: the conversations neither version
trained on (playground/held_out.py run for each, and only those in both sets kept, so the
exclusions are the union of both lineages' training files, the feedback and what memory can
recall). On top of that, no held-out conversation may contain a text of the feedback — the
twin's reply, the person's edit, or the message it answered — and this is checked after the
set is built (`FeedbackLeakError` if one slipped through: a bug, never shown as a score).

The judges, each with a scale and words that claim no more than its interval:

- held-out perplexity of the person's real replies under each version; the paired
  difference (after − before, mean loss per token) gets a bootstrap interval over
  conversations (phase2/held_out_intervals.py, the project's helper);
- the authorship judge (judges/authorship.py) on both versions' answers to the same
  held-out contexts: the share judged the person's, and the paired difference with its
  interval over conversations;
- the blind test, when the person has taken it on both versions (else "not run yet"): the
  share of pairs where they told the twin from themselves, Wilson intervals, and Newcombe's
  interval of the difference (the answers are independent choices, not conversations).

"better"/"worse" only when the interval lies wholly on one side of no change; otherwise "no
clear change". Saved as `teach_comparison.json` in the taught version's folder, which the
report (judges/report.py) shows.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.errors import CancelledError, CognitiveTwinError, InputError

COMPARISON_FILE = "teach_comparison.json"
DEFAULT_MAX_EXAMPLES = 12
# Below this many held-out conversations a bootstrap over them has too few distinct resamples
# for its interval to mean much: the numbers are shown, without a verdict.
MIN_CONVERSATIONS = 5
BETTER, WORSE, NO_CLEAR_CHANGE = "better", "worse", "no clear change"
NOT_RUN, TOO_LITTLE = "not run yet", "too little data to judge"

PERPLEXITY_SCALE = (
    "Perplexity: how surprised the twin is by your real held-out replies (1 = it predicts every word; "
    "lower = closer to you)."
)
AUTHORSHIP_SCALE = (
    "Share of the twin's answers an independent judge takes for yours (0% = never, 100% = always; "
    "your own real replies set the ceiling)."
)
BLIND_SCALE = (
    "Share of blind pairs where you told the twin from yourself (50% = guessing; lower = the twin passes "
    "for you more often)."
)


class FeedbackLeakError(CognitiveTwinError):
    """A feedback text reached the held-out set: a bug, so no score is shown."""


# ----- which version was taught from which ---------------------------------------------------------


def parent_version(adapter_dir: str | Path) -> Path | None:
    """The folder a taught version was taught from (its lineage's `parent_adapter`), or None."""
    from cognitivetwin_core.phase1.adapter_archive import read_lineage

    parent = (read_lineage(adapter_dir) or {}).get("parent_adapter")
    return Path(parent) if isinstance(parent, str) and parent else None


def load_comparison(adapter_dir: str | Path) -> dict | None:
    path = Path(adapter_dir) / COMPARISON_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except ValueError:
        return None


# ----- the held-out set both versions are judged on ------------------------------------------------


def _key(messages: list[dict]) -> str:
    return json.dumps([[m["role"], m["content"].strip()] for m in messages], ensure_ascii=False)


def feedback_exchange_texts(workspace) -> set[str]:
    """Every text of the feedback: the twin's replies, the edits and the messages they answered."""
    if workspace is None:
        return set()
    from cognitivetwin_core.data.feedback import list_feedback

    texts: set[str] = set()
    for record in list_feedback(workspace):
        texts |= {record.reply.strip(), (record.edit or "").strip()}
        if record.context:
            texts.add(str(record.context[-1]["content"]).strip())
    texts.discard("")
    return texts


def shared_held_out(before_dir: str | Path, after_dir: str | Path, *, workspace=None, seed: int = 0):
    """The held-out set of both versions (a HeldOut): conversations in both versions' held-out
    sets and free of any feedback text. Raises InputError when none is left."""
    from cognitivetwin_core.playground.held_out import HeldOut, held_out_set

    after = held_out_set(after_dir, workspace=workspace, seed=seed)
    before = held_out_set(before_dir, workspace=workspace, seed=seed)
    in_before = {_key(c) for c in before.conversations}
    feedback = feedback_exchange_texts(workspace)
    kept = [
        i
        for i, c in enumerate(after.conversations)
        if _key(c) in in_before and not any(m["content"].strip() in feedback for m in c)
    ]
    if not kept:
        raise InputError(
            f"No held-out conversation is left that neither {before_dir} nor {after_dir} trained on and that holds "
            "none of your feedback: import newer conversations to compare the two versions on."
        )
    held = HeldOut(
        [after.conversations[i] for i in kept],
        [after.ids[i] for i in kept],
        [after.others[i] for i in kept],
        after.source,
        after.speaker,
        after.excluded + len(after.conversations) - len(kept),
        after.checked_by_content and before.checked_by_content,
    )
    check_no_feedback(held, feedback)
    return held


def check_no_feedback(held, feedback_texts: set[str]) -> None:
    """Raise FeedbackLeakError if a feedback text is in the held-out set (never a silent score)."""
    for conversation in held.conversations:
        for message in conversation:
            if message["content"].strip() in feedback_texts:
                raise FeedbackLeakError(
                    "A text of your feedback is in the held-out set, so the comparison would count what the taught "
                    "twin learned from; nothing was scored. Please report this."
                )


# ----- the statistics (pure: the tests build cases on either side of no change) --------------------


def side_word(difference: dict | list | None, *, lower_is_better: bool) -> str:
    """better / worse only when the interval of (after − before) lies wholly on one side of 0."""
    from cognitivetwin_core.playground.judges.intervals import excludes_zero

    if isinstance(difference, list | tuple):
        difference = {"low": difference[0], "high": difference[1]}
    side = excludes_zero(difference)
    if side == 0:
        return NO_CLEAR_CHANGE
    return BETTER if (side < 0) == lower_is_better else WORSE


def perplexity_change(before: list[tuple[float, int]], after: list[tuple[float, int]], *, seed: int = 0) -> dict | None:
    """Per conversation (summed loss, tokens) under each version → both perplexities, the paired
    change of the mean loss per token with its bootstrap interval over conversations, and the
    verdict and sentence. None when no token was scored."""
    import numpy as np

    from cognitivetwin_core.phase2.held_out_intervals import ratio_gain, resample_weights

    pairs = [(b, a, n) for (b, n), (a, _m) in zip(before, after) if n]
    if not pairs:
        return None
    before_sums, after_sums, counts = (np.array(column, dtype=np.float64) for column in zip(*pairs))
    tokens = counts.sum()
    before_loss, after_loss = before_sums.sum() / tokens, after_sums.sum() / tokens
    interval = ratio_gain(resample_weights(len(pairs), seed), after_sums, before_sums, counts)
    if interval is None:
        interval = [after_loss - before_loss] * 2
    verdict = side_word(interval, lower_is_better=True) if len(pairs) >= MIN_CONVERSATIONS else TOO_LITTLE
    result = {
        "before": math.exp(min(before_loss, 50.0)),
        "after": math.exp(min(after_loss, 50.0)),
        "loss": {"before": float(before_loss), "after": float(after_loss)},
        # the change of perplexity as a ratio (after / before − 1), and its interval
        "change": {
            "value": math.exp(after_loss - before_loss) - 1,
            "low": math.exp(interval[0]) - 1,
            "high": math.exp(interval[1]) - 1,
        },
        "loss_difference": {"value": float(after_loss - before_loss), "low": interval[0], "high": interval[1]},
        "conversations": len(pairs),
        "tokens": int(tokens),
        "verdict": verdict,
        "scale": PERPLEXITY_SCALE,
    }
    result["sentence"] = _perplexity_sentence(result)
    return result


def _signed_percent(value: float) -> str:
    return f"{abs(value):.1%} {'lower' if value < 0 else 'higher'}"


def _perplexity_sentence(result: dict) -> str:
    change = result["change"]
    verdict = result["verdict"]
    if verdict == TOO_LITTLE:
        verdict += f" (fewer than {MIN_CONVERSATIONS} held-out conversations)"
    return (
        f"Held-out perplexity: {result['before']:.2f} before → {result['after']:.2f} after "
        f"({_signed_percent(change['value'])}; 95% interval {change['low']:+.1%} to {change['high']:+.1%}, over "
        f"{result['conversations']} conversations): {verdict}."
    )


def authorship_change(judge: dict) -> dict:
    """The authorship judge's result with `twin` = the taught version and `base` = the one before
    (judge_authorship), in before/after terms."""
    result = {
        "before": judge.get("base"),
        "after": judge.get("twin"),
        "difference": judge.get("twin_minus_base"),
        "ceiling": judge.get("real"),
        "floor": judge.get("others"),
        "reliable": bool(judge.get("reliable")),
        "scale": AUTHORSHIP_SCALE,
    }
    if not result["reliable"]:
        result["verdict"] = TOO_LITTLE
        result["sentence"] = f"Judged to be yours: {judge.get('verdict') or TOO_LITTLE}."
        return result
    result["verdict"] = side_word(result["difference"], lower_is_better=False)
    result["sentence"] = _authorship_sentence(result)
    return result


def _share(value: dict | None) -> str:
    return "—" if not value else f"{value['share']:.0%} ({value['low']:.0%}–{value['high']:.0%})"


def _authorship_sentence(result: dict) -> str:
    difference = result["difference"]
    change = (
        f"; change {difference['share'] * 100:+.0f} points (95% interval {difference['low'] * 100:+.0f} to "
        f"{difference['high'] * 100:+.0f})"
        if difference
        else ""
    )
    return (
        f"Judged to be yours: {_share(result['before'])} before → {_share(result['after'])} after{change}, your own "
        f"replies {_share(result['ceiling'])}: {result['verdict']}."
    )


def blind_change(before_tallies: dict, after_tallies: dict) -> dict:
    """The blind test per mode where both versions have answers ({"mine": BlindTally, ...} each):
    the share of pairs where the person told the twin from themselves, before and after, with
    Wilson intervals and Newcombe's interval of the difference; else "not run yet"."""
    from cognitivetwin_core.playground.judges.intervals import wilson

    modes = {}
    for mode, before in before_tallies.items():
        after = after_tallies.get(mode)
        if not before or not after or not before.answered or not after.answered:
            continue
        b, a = before.correct / before.answered, after.correct / after.answered
        (b_low, b_high), (a_low, a_high) = (
            wilson(before.correct, before.answered),
            wilson(after.correct, after.answered),
        )
        # Newcombe's hybrid score interval for a difference of two independent proportions.
        low = (a - b) - math.sqrt((a - a_low) ** 2 + (b_high - b) ** 2)
        high = (a - b) + math.sqrt((a_high - a) ** 2 + (b - b_low) ** 2)
        modes[mode] = {
            "before": {"share": b, "low": b_low, "high": b_high, "answered": before.answered},
            "after": {"share": a, "low": a_low, "high": a_high, "answered": after.answered},
            "difference": {"share": a - b, "low": low, "high": high},
            "verdict": side_word({"low": low, "high": high}, lower_is_better=True),
        }
    if not modes:
        return {
            "verdict": NOT_RUN,
            "modes": {},
            "scale": BLIND_SCALE,
            "sentence": "Blind test: not run yet on both versions (evaluate each, then take the blind test on each: "
            "`cognitivetwin judge blind --adapter DIR`, or the Playground's Blind test page).",
        }
    words = []
    for mode, value in modes.items():
        what = "picking your own reply" if mode == "mine" else "spotting the twin"
        words.append(
            f"{what}, you told the twin from yourself {_share(value['before'])} before "
            f"({value['before']['answered']} answers) → {_share(value['after'])} after "
            f"({value['after']['answered']}): {value['verdict']}"
        )
    verdicts = {v["verdict"] for v in modes.values()}
    verdict = verdicts.pop() if len(verdicts) == 1 else NO_CLEAR_CHANGE
    return {
        "verdict": verdict,
        "modes": modes,
        "scale": BLIND_SCALE,
        "sentence": "Blind test: " + "; ".join(words) + ".",
    }


# ----- the comparison -------------------------------------------------------------------------------


def compare_versions(
    before_dir: str | Path,
    after_dir: str | Path,
    *,
    workspace=None,
    base_model: str | Path | None = None,
    max_examples: int = DEFAULT_MAX_EXAMPLES,
    max_new_tokens: int = 64,
    temperature: float = 0.7,
    seed: int = 0,
    device: str = "auto",
    max_length: int | None = None,
    progress: Callable[[str], None] | None = None,
    cancellation: Cancellation | None = None,
    save: bool = True,
) -> dict:
    """Judge `after_dir` against `before_dir` on the same held-out examples (see the module text)."""
    from cognitivetwin_core.phase1.adapter_archive import adapter_base_model, read_lineage
    from cognitivetwin_core.phase1.assistant_tokens import conversation_losses
    from cognitivetwin_core.playground.judges.authorship import JudgedConversation, judge_authorship

    def say(message: str) -> None:
        if progress is not None:
            progress(message)

    def check_stop() -> None:
        if cancellation is not None and cancellation.cancelled:
            raise CancelledError("The comparison was stopped; nothing was saved.")

    if max_examples < 0:
        raise InputError(f"--max-examples must be 0 or more, got {max_examples}.")
    before_dir, after_dir = Path(before_dir).expanduser(), Path(after_dir).expanduser()
    for folder in (before_dir, after_dir):
        adapter_base_model(folder)  # refuses a folder that is no adapter before any data is read
    held = shared_held_out(before_dir, after_dir, workspace=workspace, seed=seed)
    conversations = held.conversations
    say(f"Held out for both versions: {len(conversations)} conversations, {held.replies} replies of {held.speaker}.")
    say("Loading the base and both versions…")
    versions = _Versions(before_dir, after_dir, base_model, device)
    settings = (read_lineage(after_dir) or {}).get("settings") or {}
    max_length = max_length or int(settings.get("max_seq_length") or 512)

    losses = {}
    for name in ("before", "after"):
        check_stop()
        say(f"Scoring your {held.replies} real replies under the version {name} teaching…")
        versions.use(name)
        losses[name] = conversation_losses(versions.model, versions.tokenizer, conversations, max_length=max_length)
    perplexity = perplexity_change(losses["before"], losses["after"], seed=seed)

    from cognitivetwin_core.models.generation import SamplingSettings

    turns = [(ci, mi) for ci, c in enumerate(conversations) for mi, m in enumerate(c) if m["role"] == "assistant"]
    random.Random(seed).shuffle(turns)
    turns = turns[:max_examples]
    judged = [
        JudgedConversation([m["content"] for m in c if m["role"] == "assistant"], list(others))
        for c, others in zip(conversations, held.others)
    ]
    rows = []
    for number, (ci, mi) in enumerate(turns, start=1):
        say(f"Both versions answer held-out message {number} of {len(turns)}…")
        context = conversations[ci][:mi]
        sampling = SamplingSettings(temperature=temperature, max_new_tokens=max_new_tokens, seed=seed + number)
        answers = {}
        for name in ("before", "after"):
            check_stop()
            versions.use(name)
            answers[name] = versions.generate(context, sampling, cancellation)
        judged[ci].base.append(answers["before"])
        judged[ci].twin.append(answers["after"])
        rows.append(
            {
                "context": context[-1]["content"] if context else "",
                "real": conversations[ci][mi]["content"],
                "before": answers["before"],
                "after": answers["after"],
                "conversation": held.ids[ci],
            }
        )
    check_stop()
    say("Judging who wrote the answers…")
    judge = judge_authorship(judged, seed=seed)
    judge.pop("probabilities", None)
    blind = _blind(workspace, before_dir, after_dir)

    report = {
        "before": str(before_dir),
        "after": str(after_dir),
        "base_model": versions.base_model,
        "held_out": {
            "source": held.source,
            "person": held.speaker,
            "conversations": len(conversations),
            "replies": held.replies,
            "left_out": held.excluded,
            "checked_by_content": held.checked_by_content,
            "feedback_texts_kept_out": len(feedback_exchange_texts(workspace)),
        },
        "perplexity": perplexity,
        "authorship": authorship_change(judge),
        "blind": blind,
        "examples": rows,
        "settings": {"max_examples": max_examples, "max_new_tokens": max_new_tokens, "seed": seed},
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if save:
        from cognitivetwin_core.atomic_files import write_json_atomically

        write_json_atomically(after_dir / COMPARISON_FILE, report)
    return report


def _blind(workspace, before_dir: Path, after_dir: Path) -> dict:
    if workspace is None:
        return blind_change({}, {})
    from cognitivetwin_core.data.blind_answers import MODES, blind_tally

    return blind_change(
        {mode: blind_tally(workspace, before_dir, mode) for mode in MODES},
        {mode: blind_tally(workspace, after_dir, mode) for mode in MODES},
    )


class _Versions:
    """One copy of the base with both versions' adapters ("before" and "after"), switched by name.
    Loaded here rather than with playground/chat.py's load_twin, which imports the judges."""

    def __init__(self, before_dir: Path, after_dir: Path, base_model, device: str):
        from cognitivetwin_core.models.devices import select_device
        from cognitivetwin_core.models.frozen_base import load_frozen_base
        from cognitivetwin_core.phase1.adapter_archive import adapter_base_model

        self.base_model = str(base_model) if base_model else adapter_base_model(after_dir)
        self.model, self.tokenizer = load_frozen_base(self.base_model, after_dir, device=select_device(device))
        self._names = {"after": self.model.active_adapter, "before": "before"}
        self.model.load_adapter(str(before_dir), adapter_name="before", is_trainable=False)

    def use(self, name: str) -> None:
        self.model.set_adapter(self._names[name])

    def generate(self, context: list[dict], settings, cancellation) -> str:
        from cognitivetwin_core.models.generation import generate_reply

        return generate_reply(self.model, self.tokenizer, context, settings, cancellation=cancellation).text


# ----- reading it -----------------------------------------------------------------------------------


def comparison_lines(report: dict) -> list[str]:
    """The comparison in words: where the data came from, then one sentence per judge with its scale."""
    held = report["held_out"]
    lines = [
        f"Before teaching: {report['before']}",
        f"After teaching:  {report['after']}",
        f"Both judged on the same held-out data: {held['conversations']} conversations, {held['replies']} replies of "
        f"{held['person']}; {held['left_out']} left out as trained on by either version, holding your feedback or "
        "recallable by memory.",
    ]
    if held.get("checked_by_content") is False:
        lines.append("  A training file is gone: these may overlap what a version trained on.")
    perplexity = report.get("perplexity")
    if perplexity:
        lines += ["", perplexity["sentence"], f"  {perplexity['scale']}"]
    else:
        lines += ["", "Held-out perplexity: no reply was left to score."]
    authorship = report["authorship"]
    lines += ["", authorship["sentence"], f"  {authorship['scale']}"]
    blind = report["blind"]
    lines += ["", blind["sentence"], f"  {blind['scale']}"]
    lines += [
        "",
        "'better' or 'worse' only when the 95% interval of the change lies wholly on one side of no change; "
        "otherwise 'no clear change'.",
    ]
    return lines


def comparison_summary(report: dict) -> str:
    """One line: each judge's verdict ("perplexity: better · judged yours: no clear change · blind test: not run yet")."""
    perplexity = (report.get("perplexity") or {}).get("verdict", TOO_LITTLE)
    return (
        f"perplexity: {perplexity} · judged yours: {report['authorship']['verdict']} · "
        f"blind test: {report['blind']['verdict']}"
    )
