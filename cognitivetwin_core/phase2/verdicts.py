"""Each Phase 2 head's verdict in plain words, from its validation metric, its baseline and
the 95% interval over validation conversations of their difference (phase2/held_out_intervals.py).

    head_verdicts(metrics) -> [HeadVerdict(head="patterns", level="much better",
        sentence="Patterns: recognises your patterns much better than guessing (+0.33, 95% interval
        +0.21 to +0.45).", ...), ...]
    ablation_verdict("planning", trajectory_ablation["planning"]) -> "Knowing where each message
        sits in its conversation helps planning (...)." only when its interval excludes zero.

A head is "better" only when the interval of (model − baseline) lies wholly above zero, and
"worse" only when it lies wholly below; otherwise "no clear difference" (so is a metrics.json
written before intervals were measured). How much better ("much better", "better", "slightly
better") then follows the gain, with margins per head because the metrics move on different
scales (an F1 gains tenths, a cosine between sentence states hundredths). Planning is "mixed"
when it is better overall but some step ahead is not above its own baseline.
Qt-free: the app and the CLI show these sentences as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

# (key, baseline key, head, what the head does, what the baseline does, margins: much, better, slightly)
_HEADS = (
    (
        "pattern_macro_f1",
        "pattern_macro_f1_baseline",
        "patterns",
        "recognises your patterns",
        "guessing",
        (0.15, 0.05, 0.01),
    ),
    (
        "planning_cosine",
        "planning_cosine_baseline",
        "planning",
        "predicts the next turns",
        "assuming the conversation stays where it is",
        (0.05, 0.02, 0.005),
    ),
    (
        "style_retrieval",
        "style_retrieval_chance",
        "style",
        "tells your messages in one conversation apart from others",
        "chance",
        (0.20, 0.07, 0.02),
    ),
)

UNCLEAR = "no clear difference"
LEVELS = ("much better", "better", "slightly better", UNCLEAR, "mixed", "worse")


@dataclass(frozen=True)
class HeadVerdict:
    head: str  # "patterns" | "planning" | "style"
    key: str  # the metric's key in metrics.json
    value: float
    baseline: float
    level: str  # one of LEVELS
    sentence: str
    interval: tuple[float, float] | None = None  # 95% interval of value − baseline over conversations

    @property
    def beats_baseline(self) -> bool:
        return self.level in LEVELS[:3]

    def to_dict(self) -> dict:
        return {
            "head": self.head,
            "key": self.key,
            "value": self.value,
            "baseline": self.baseline,
            "level": self.level,
            "sentence": self.sentence,
            "interval": list(self.interval) if self.interval else None,
        }


def level_for(
    value: float, baseline: float, margins: tuple[float, float, float], interval: tuple[float, float] | None
) -> str:
    """How the model compares with its baseline: better only when the interval of the gain is
    wholly above zero, worse only when wholly below (no interval: no claim either way)."""
    if interval is None or interval[0] <= 0.0 <= interval[1]:
        return UNCLEAR
    if interval[1] < 0.0:
        return "worse"
    gain = value - baseline
    much, better, _slightly = margins
    if gain >= much:
        return "much better"
    if gain >= better:
        return "better"
    return "slightly better"


def _interval_words(gain: float, interval) -> str:
    if interval is None:
        return f"{gain:+.3f}; no interval measured for this run"
    return f"{gain:+.3f}, 95% interval {interval[0]:+.3f} to {interval[1]:+.3f} over the held-out conversations"


def _steps_not_above(metrics: dict) -> list[int]:
    """The plan steps (1 = the next turn) whose value is not above their own baseline."""
    values = metrics.get("planning_cosine_per_step") or []
    baselines = metrics.get("planning_cosine_baseline_per_step") or []
    return [
        horizon
        for horizon, (value, baseline) in enumerate(zip(values, baselines), start=1)
        if value is not None and baseline is not None and value <= baseline
    ]


def head_verdicts(metrics: dict | None) -> list[HeadVerdict]:
    """A verdict for each head that has a metric and a baseline in `metrics` (an epoch's)."""
    metrics = metrics or {}
    intervals = metrics.get("intervals") or {}
    verdicts = []
    for key, baseline_key, head, doing, baseline_text, margins in _HEADS:
        value, baseline = metrics.get(key), metrics.get(baseline_key)
        if value is None or baseline is None:
            continue
        value, baseline = float(value), float(baseline)
        interval = tuple(intervals[key]) if intervals.get(key) else None
        level = level_for(value, baseline, margins, interval)
        numbers = _interval_words(value - baseline, interval)
        lagging = _steps_not_above(metrics) if head == "planning" else []
        if level == UNCLEAR:
            sentence = f"{head.capitalize()}: no clear difference from {baseline_text} ({numbers})."
        elif level == "worse":
            sentence = f"{head.capitalize()}: {doing} worse than {baseline_text} ({numbers})."
        elif lagging:
            level = "mixed"
            steps = ", ".join(step_label(h) for h in lagging)
            sentence = (
                f"{head.capitalize()}: mixed: {doing} better than {baseline_text} on the whole ({numbers}), "
                f"but not for {steps}."
            )
        else:
            sentence = f"{head.capitalize()}: {doing} {level} than {baseline_text} ({numbers})."
        verdicts.append(HeadVerdict(head, key, value, baseline, level, sentence, interval))
    return verdicts


def ablation_verdict(head: str, ablation: dict | None) -> str | None:
    """One sentence on a head's `trajectory_ablation` entry ({"true", "shuffled", "interval"}):
    a claim either way only when the interval of true − shuffled excludes zero."""
    if not ablation or ablation.get("true") is None or ablation.get("shuffled") is None:
        return None
    true, shuffled = float(ablation["true"]), float(ablation["shuffled"])
    interval = ablation.get("interval")
    head = {"patterns": "pattern recognition", "style": "the style signature"}.get(head, head)
    numbers = f"({true:.3f} with the true positions vs {shuffled:.3f} with shuffled ones; " + (
        f"95% interval of the difference {interval[0]:+.3f} to {interval[1]:+.3f})"
        if interval
        else "no interval measured)"
    )
    if interval and interval[0] > 0.0:
        return f"Knowing where each message sits in its conversation helps {head} {numbers}."
    if interval and interval[1] < 0.0:
        return f"The position in the conversation misleads {head} {numbers}."
    return f"No clear difference: {head} does not clearly use the position in the conversation {numbers}."


def run_score(metrics: dict | None) -> tuple[int, float] | None:
    """How good a finished run's saved model is, to pick the one to open first: (heads that beat
    their baseline, total gain over the baselines). None without validation metrics. Runs on
    other data are not strictly comparable; this only keeps a run that learned nothing (or
    overfitted and was saved late, in older runs) from being the one a person meets first."""
    verdicts = head_verdicts(metrics)
    if not verdicts:
        return None
    return sum(v.beats_baseline for v in verdicts), sum(v.value - v.baseline for v in verdicts)


def best_run_index(metrics_per_run: list[dict | None]) -> int | None:
    """The index of the best run by `run_score` (the first of equals); None if none has metrics."""
    scored = [(score, -i) for i, m in enumerate(metrics_per_run) if (score := run_score(m)) is not None]
    return -max(scored)[1] if scored else None


def step_label(horizon: int) -> str:
    """How far ahead a plan step looks, in words: "the next turn", "2 turns ahead"."""
    return "the next turn" if horizon == 1 else f"{horizon} turns ahead"


@dataclass(frozen=True)
class RunSummary:
    """A finished run's metrics.json in sentences, for the CLI and the app's summary card."""

    best_epoch: int | None
    epochs: int
    verdicts: list[HeadVerdict]
    plan_steps: list[str]  # "step 1 (the next turn): 0.555 vs 0.504 for the current message"
    ablation: list[str]
    warnings: list[str]  # overfitting, early stop, a rising loss
    notes: list[str]  # the loss trend when it is not a warning

    @property
    def overfitting(self) -> bool:
        return any(w.startswith("Overfitting") for w in self.warnings)


def summarize_run(metrics_file: dict | None) -> RunSummary:
    """Read a metrics.json (any version: older files simply give fewer sentences)."""
    data = metrics_file or {}
    epochs = [e for e in data.get("epochs") or [] if e.get("epoch") is not None]
    best_epoch = data.get("best_epoch")
    best = data.get("best") or next((e for e in epochs if e.get("epoch") == best_epoch), None)
    if best is None:
        best = data.get("final") or {}
    metrics = best.get("metrics") or {}
    plan_steps = []
    values = metrics.get("planning_cosine_per_step") or []
    baselines = metrics.get("planning_cosine_baseline_per_step") or []
    step_intervals = (metrics.get("intervals") or {}).get("planning_cosine_per_step") or []
    for horizon, (value, baseline) in enumerate(zip(values, baselines), start=1):
        if value is not None and baseline is not None:
            interval = step_intervals[horizon - 1] if horizon <= len(step_intervals) else None
            words = "no clear difference"
            if interval and interval[0] > 0.0:
                words = "better"
            elif interval and interval[1] < 0.0:
                words = "worse"
            plan_steps.append(
                f"step {horizon} ({step_label(horizon)}): {value:.3f} vs {baseline:.3f} for the current message"
                f" ({words})"
            )
    ablation = [
        sentence
        for head, entry in (data.get("trajectory_ablation") or {}).items()
        if (sentence := ablation_verdict(head, entry))
    ]
    warnings, notes = [], []
    overfit = data.get("overfitting")
    if isinstance(overfit, dict) and overfit.get("message"):
        warnings.append(overfit["message"])
    if data.get("early_stop"):
        notes.append(data["early_stop"])
    trend = data.get("loss_trend")
    if trend:
        (warnings if trend.startswith("The loss rose") else notes).append(trend)
    return RunSummary(best_epoch, len(epochs), head_verdicts(metrics), plan_steps, ablation, warnings, notes)
