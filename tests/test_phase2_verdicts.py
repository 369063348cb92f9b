"""Plain-word verdicts (each head against its baseline, the loss trend, overfitting) and
readable run names."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from cognitivetwin_core.errors import InputError


def test_loss_trend_says_rising_falling_or_flat():
    from cognitivetwin_core.training_verdicts import loss_trend

    rising = loss_trend([2.0, 2.1, 2.6, 3.0, 3.4])
    assert rising.kind == "rising"
    assert "not learning from this data; try a lower learning rate" in rising.message
    assert loss_trend([3.0, 2.5, 2.0, 1.6]).kind == "falling"
    assert loss_trend([2.0, 2.01, 1.99, 2.0]).kind == "flat"
    assert loss_trend([1.0, float("nan")]).kind == "unknown"
    # Phase 1's per-step curve: a couple of steps is too early to call a rise (the tab and the
    # log line say the same thing).
    short = loss_trend([2.0, 2.4, 2.5], min_points=8)
    assert short.kind == "unknown" and "too few to tell" in short.message and short.message.startswith("The loss")
    assert loss_trend([2.0, 2.1, 2.6, 3.0, 3.4, 3.5, 3.6, 3.9], min_points=8).kind == "rising"


def test_overfitting_needs_validation_rising_while_training_falls():
    from cognitivetwin_core.training_verdicts import overfitting

    train = [3.0, 2.5, 2.0, 1.6, 1.3, 1.1]
    flag = overfitting(train, [2.6, 2.4, 2.7, 3.0, 3.4, 3.8])
    assert flag is not None and flag.best_epoch == 2 and flag.since_epoch == 3
    assert "validation loss rose (2.40 to 3.80)" in flag.message
    assert overfitting(train, [2.6, 2.4, 2.3, 2.2, 2.1, 2.0]) is None  # still improving
    assert overfitting(train, [2.6, 2.4, 2.7, 2.3, 2.5, 2.6]) is None  # best is late: too soon to say
    assert overfitting([3.0, 3.1, 3.2, 3.3], [2.0, 2.1, 2.2, 2.3]) is None  # training is not falling either
    assert overfitting(train, [None] * 6) is None


def test_head_verdicts_in_words():
    from cognitivetwin_core.phase2.verdicts import ablation_verdict, head_verdicts

    metrics = {
        "pattern_macro_f1": 0.44,
        "pattern_macro_f1_baseline": 0.11,
        "planning_cosine": 0.476,
        "planning_cosine_baseline": 0.468,
        "style_retrieval": 0.14,
        "style_retrieval_chance": 0.136,
        "intervals": {
            "pattern_macro_f1": [0.21, 0.45],
            "planning_cosine": [0.002, 0.014],
            "style_retrieval": [-0.03, 0.04],
        },
    }
    verdicts = {v.head: v for v in head_verdicts(metrics)}
    assert verdicts["patterns"].sentence == (
        "Patterns: recognises your patterns much better than guessing "
        "(+0.330, 95% interval +0.210 to +0.450 over the held-out conversations)."
    )
    assert verdicts["planning"].level == "slightly better" and verdicts["planning"].beats_baseline
    assert "slightly better than assuming the conversation stays where it is" in verdicts["planning"].sentence
    assert verdicts["style"].level == "no clear difference" and not verdicts["style"].beats_baseline
    assert verdicts["style"].sentence.startswith("Style: no clear difference from chance")
    worse = head_verdicts(
        {"pattern_macro_f1": 0.05, "pattern_macro_f1_baseline": 0.11, "intervals": {"pattern_macro_f1": [-0.1, -0.02]}}
    )
    assert [v.level for v in worse] == ["worse"]
    assert head_verdicts({}) == [] and head_verdicts(None) == []
    assert "helps planning" in ablation_verdict("planning", {"true": 0.52, "shuffled": 0.50, "interval": [0.01, 0.03]})
    assert "No clear difference" in ablation_verdict(
        "patterns", {"true": 0.44, "shuffled": 0.44, "interval": [-0.01, 0.01]}
    )
    assert ablation_verdict("style", None) is None


def test_better_is_said_only_when_the_interval_excludes_zero():
    """The wave's 0.518 vs 0.468 was called "much better"; a gain that big whose interval over
    conversations includes zero is no clear difference, as is one with no interval measured."""
    from cognitivetwin_core.phase2.verdicts import ablation_verdict, head_verdicts, summarize_run

    wide = {
        "planning_cosine": 0.518,
        "planning_cosine_baseline": 0.468,
        "intervals": {"planning_cosine": [-0.01, 0.11]},
    }
    (verdict,) = head_verdicts(wide)
    assert verdict.level == "no clear difference" and "better" not in verdict.sentence
    (older,) = head_verdicts({"planning_cosine": 0.518, "planning_cosine_baseline": 0.468})
    assert older.level == "no clear difference" and "no interval measured" in older.sentence
    sure = {**wide, "planning_cosine": 0.53, "intervals": {"planning_cosine": [0.02, 0.08]}}
    assert head_verdicts(sure)[0].level == "much better"
    # A step ahead below its own baseline: the headline is "mixed", never plainly "better".
    lagging = {
        **sure,
        "planning_cosine_per_step": [0.60, 0.44],
        "planning_cosine_baseline_per_step": [0.45, 0.49],
        "intervals": {"planning_cosine": [0.02, 0.08], "planning_cosine_per_step": [[0.1, 0.2], [-0.09, -0.01]]},
    }
    (mixed,) = head_verdicts(lagging)
    assert mixed.level == "mixed" and not mixed.beats_baseline and "not for 2 turns ahead" in mixed.sentence
    steps = summarize_run({"epochs": [{"epoch": 1, "metrics": lagging}], "best_epoch": 1}).plan_steps
    assert steps[0].endswith("(better)") and steps[1].endswith("(worse)")
    assert "No clear difference" in ablation_verdict(
        "planning", {"true": 0.518, "shuffled": 0.507, "interval": [-0.004, 0.03]}
    )


def test_intervals_are_seeded_and_follow_the_spread_over_conversations():
    import numpy as np

    from cognitivetwin_core.phase2.held_out_intervals import pattern_f1_gain, ratio_gain, resample_weights

    weights = resample_weights(30, seed=3)
    assert np.array_equal(weights, resample_weights(30, seed=3)) and weights.sum(1).tolist() == [30.0] * len(weights)
    counts = np.full(30, 10.0)
    steady = ratio_gain(weights, np.full(30, 6.0), np.full(30, 5.0), counts)  # +0.1 in every conversation
    assert steady == [pytest.approx(0.1), pytest.approx(0.1)]
    rng = np.random.default_rng(0)
    noisy = rng.normal(0.0, 2.0, 30)  # no gain on average, a large spread between conversations
    low, high = ratio_gain(weights, 5.0 + noisy, np.full(30, 5.0), counts)
    assert low < noisy.mean() / 10 < high and low < 0 < high
    # Patterns: perfect predictions against a 0.5 prior; every resample's gain is the same.
    labels = (rng.random((30, 2)) < 0.3).astype(float) * 10
    gain = pattern_f1_gain(weights, (labels, labels, labels), counts, np.array([0.5, 0.5]))
    assert gain is not None and gain[0] > 0


def test_default_run_name_and_rename(tmp_path):
    from cognitivetwin_core.data.importers.demo import demo_dataset_path
    from cognitivetwin_core.phase2.run_names import default_run_name, rename_run, run_name

    when = datetime(2026, 12, 3, 14, 5)
    data = {"kind": "file", "path": str(demo_dataset_path()), "conversations": 44}
    assert default_run_name("smollm2-135m", data, when) == "SmolLM2 135M · demo (44 conv.) · 3 Dec 14:05"
    ws = {"kind": "workspace", "path": str(tmp_path / "Sam's chats"), "conversations": 12}
    assert default_run_name(str(tmp_path / "my-base"), ws, when) == "my-base · Sam's chats (12 conv.) · 3 Dec 14:05"

    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"run_id": "r1", "started_at": "2026-12-03T14:05:00+00:00"}))
    assert "SmolLM2" not in run_name({"run_id": "r1"}) and run_name({"run_id": "r1"}) == "r1"
    record = rename_run(run, "  First   try ")
    assert record["name"] == "First try"
    assert json.loads((run / "run.json").read_text())["name"] == "First try"
    with pytest.raises(InputError, match="cannot be empty"):
        rename_run(run, "   ")
    with pytest.raises(InputError, match="no run.json"):
        rename_run(tmp_path, "x")


def test_the_best_run_is_the_one_that_beats_most_baselines():
    from cognitivetwin_core.phase2.verdicts import best_run_index

    overfit = {"pattern_macro_f1": 0.0, "pattern_macro_f1_baseline": 0.11, "planning_cosine": 0.46}
    overfit["planning_cosine_baseline"] = 0.47
    good = {"pattern_macro_f1": 0.44, "pattern_macro_f1_baseline": 0.11}
    good |= {"planning_cosine": 0.52, "planning_cosine_baseline": 0.47}
    good["intervals"] = {"pattern_macro_f1": [0.2, 0.4], "planning_cosine": [0.01, 0.09]}
    assert best_run_index([overfit, None, good]) == 2
    assert best_run_index([good, good]) == 0
    assert best_run_index([None, {}]) is None


def test_the_playground_opens_the_best_run_by_name_not_the_newest(tmp_path):
    from cognitivetwin_core.data.workspace import Workspace
    from cognitivetwin_core.phase2.run_names import rename_run
    from cognitivetwin_core.playground.session import model_runs, preferred_run

    good = {"pattern_macro_f1": 0.44, "pattern_macro_f1_baseline": 0.11}
    good |= {"planning_cosine": 0.52, "planning_cosine_baseline": 0.47}
    overfit = {"pattern_macro_f1": 0.0, "pattern_macro_f1_baseline": 0.11}
    overfit |= {"planning_cosine": 0.46, "planning_cosine_baseline": 0.47}
    with Workspace.open(tmp_path / "ws") as workspace:
        for run_id, metrics, started in (("old-good", good, "01"), ("new-overfit", overfit, "02")):
            folder = workspace.runs_dir / run_id
            folder.mkdir(parents=True)
            (folder / "config.json").write_text("{}")
            (folder / "model.safetensors").write_bytes(b"")
            record = {"run_id": run_id, "output_dir": str(folder), "outcome": "completed"}
            record |= {"started_at": f"2026-12-{started}T10:00:00+00:00", "final_metrics": metrics}
            (folder / "run.json").write_text(json.dumps(record))
            workspace.upsert_phase2_run(run_id, record)
        rename_run(workspace.runs_dir / "old-good", "The good one")
        choices = model_runs(workspace)
    assert [c.run_dir.name for c in choices] == ["new-overfit", "old-good"]  # newest first
    assert choices[1].label.startswith("The good one · completed")
    assert preferred_run(choices) == 1
