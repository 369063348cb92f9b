"""Each Phase 2 head's verdict in plain words, from its validation metric and its baseline.

    head_verdicts(metrics) -> [HeadVerdict(head="patterns", level="much better",
        sentence="Patterns: recognises your patterns much better than guessing.", ...), ...]
    ablation_verdict(trajectory_ablation["planning"]) -> "Knowing where the turn sits in the
        conversation helps planning (0.52 vs 0.50 with shuffled positions)."

Levels, by how far the model is above its baseline: "much better", "better", "slightly
better", "no better", "worse". The margins differ per head because the metrics move on
different scales (an F1 gains tenths, a cosine between sentence states hundredths).
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

LEVELS = ("much better", "better", "slightly better", "no better", "worse")


@dataclass(frozen=True)
class HeadVerdict:
    head: str  # "patterns" | "planning" | "style"
    key: str  # the metric's key in metrics.json
    value: float
    baseline: float
    level: str  # one of LEVELS
    sentence: str

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
        }


def level_for(value: float, baseline: float, margins: tuple[float, float, float]) -> str:
    gain = value - baseline
    much, better, slightly = margins
    if gain >= much:
        return "much better"
    if gain >= better:
        return "better"
    if gain >= slightly:
        return "slightly better"
    if gain > -slightly:
        return "no better"
    return "worse"


def head_verdicts(metrics: dict | None) -> list[HeadVerdict]:
    """A verdict for each head that has a metric and a baseline in `metrics` (an epoch's)."""
    verdicts = []
    for key, baseline_key, head, doing, baseline_text, margins in _HEADS:
        value, baseline = (metrics or {}).get(key), (metrics or {}).get(baseline_key)
        if value is None or baseline is None:
            continue
        level = level_for(float(value), float(baseline), margins)
        sentence = f"{head.capitalize()}: {doing} {level} than {baseline_text}."
        verdicts.append(HeadVerdict(head, key, float(value), float(baseline), level, sentence))
    return verdicts


def ablation_verdict(head: str, ablation: dict | None) -> str | None:
    """One sentence on a head's `trajectory_ablation` entry ({"true", "shuffled"})."""
    if not ablation or ablation.get("true") is None or ablation.get("shuffled") is None:
        return None
    true, shuffled = float(ablation["true"]), float(ablation["shuffled"])
    head = {"patterns": "pattern recognition", "style": "the style signature"}.get(head, head)
    numbers = f"({true:.3f} with the true positions vs {shuffled:.3f} with shuffled ones)"
    if true - shuffled > 0.002:
        return f"Knowing where each message sits in its conversation helps {head} {numbers}."
    if shuffled - true > 0.002:
        return f"The position in the conversation misleads {head} {numbers}."
    return f"{head[0].upper()}{head[1:]} does not use the position in the conversation {numbers}."


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
    for horizon, (value, baseline) in enumerate(zip(values, baselines), start=1):
        if value is not None and baseline is not None:
            plan_steps.append(
                f"step {horizon} ({step_label(horizon)}): {value:.3f} vs {baseline:.3f} for the current message"
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
