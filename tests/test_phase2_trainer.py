"""The Phase 2 trainer on a tiny random base: split, events, files, stop, cancel, NaN guard,
resume after SIGKILL."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from cognitivetwin_core.errors import InputError
from tests.conftest import tiny_phase2_config
from tests.waits import WORK_TIMEOUT_S

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def small_demo(demo_conversations):
    return demo_conversations[:12]


def _config(tiny_model_dir, tmp_path, name="run", **overrides):
    """Three epochs with accumulation: enough for checkpoints, resume and the NaN guard."""
    return tiny_phase2_config(
        tiny_model_dir, tmp_path, name, **{"epochs": 3, "lr": 1e-3, "gradient_accumulation": 2, **overrides}
    )


def _run(config, conversations, on_event=None):
    from cognitivetwin_core.phase2.trainer import Phase2Trainer

    trainer = Phase2Trainer(config, conversations=conversations)
    events = []
    for event in trainer.run():
        events.append(event)
        if on_event:
            on_event(trainer, event)
    return trainer, events


def test_split_is_by_conversation_seeded_and_disjoint(tiny_model_dir, tmp_path):
    from cognitivetwin_core.phase2.config import Phase2Config
    from cognitivetwin_core.phase2.trainer import Phase2Trainer

    def split(seed, count=50):
        trainer = Phase2Trainer(Phase2Config(seed=seed, val_fraction=0.2, output_dir=str(tmp_path)), conversations=[])
        return trainer.split(count)

    train, val = split(1)
    assert len(val) == 10 and not set(train) & set(val) and sorted(train + val) == list(range(50))
    assert split(1) == (train, val)
    assert split(2)[1] != val
    assert split(1, count=2)[1] and split(1, count=2)[0]  # two conversations: one each


def test_run_events_files_and_no_leak(tiny_model_dir, tmp_path, small_demo):
    config = _config(tiny_model_dir, tmp_path)
    announced = []

    def read_checkpoint(trainer, event):
        if event.kind == "checkpoint":  # written on a thread: announced only once it is whole
            state = json.loads((Path(event.path) / "trainer_state.json").read_text())
            announced.append((event.epoch, state["epoch"]))

    trainer, events = _run(config, small_demo, read_checkpoint)
    kinds = [e.kind for e in events]
    assert kinds[0] == "encoding" and kinds[-1] == "finished"
    assert kinds.count("epoch") == 3 and kinds.count("checkpoint") == 3
    assert announced == [(1, 1), (2, 2), (3, 3)]
    assert not [t for t in threading.enumerate() if t.name.startswith("phase2-checkpoint")]
    steps = [e for e in events if e.kind == "step"]
    assert steps[-1].global_step == steps[-1].total_steps == 3 * 4  # 10 training conversations, 3 a batch
    assert set(steps[0].losses) == {"total", "style", "stylometric", "pattern", "planning"}
    assert steps[0].examples_per_s > 0 and steps[-1].eta_s == pytest.approx(0.0)
    assert all(step.device_memory is None for step in steps)  # the CPU: no device memory to report
    finished = events[-1]
    assert finished.outcome == "completed" and Path(finished.output_dir) == Path(config.output_dir).resolve()

    out = Path(config.output_dir)
    run = json.loads((out / "run.json").read_text())
    assert run["outcome"] == "completed" and run["ended_at"] and run["parameters"]["lr"] == 1e-3
    assert run["data"]["conversations"] == 12 and run["data"]["messages"] == sum(len(c.messages) for c in small_demo)
    val_ids = set(run["split"]["validation_ids"])
    train_ids = {c.id for c in small_demo} - val_ids
    assert val_ids and train_ids and len(val_ids) == run["split"]["validation_conversations"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2, 3]
    final = metrics["final"]["metrics"]
    for key in ("pattern_macro_f1_baseline", "planning_cosine_baseline", "style_retrieval_chance"):
        assert final[key] is not None
    assert _load(out).config.hidden_size == 64
    # Each plan step against its own baseline; the trajectory ablation per head; verdicts in words.
    assert len(final["planning_cosine_per_step"]) == len(final["planning_cosine_baseline_per_step"]) == 4
    assert final["planning_cosine_per_step"][0] is not None
    assert set(metrics["trajectory_ablation"]) == {"patterns", "planning", "style"}
    assert all(
        entry["true"] is not None and entry["shuffled"] is not None for entry in metrics["trajectory_ablation"].values()
    )
    assert run["trajectory_ablation"] == metrics["trajectory_ablation"]
    # Each gain's interval over the validation conversations holds the measured gain.
    intervals = final["intervals"]
    for key, baseline in (
        ("planning_cosine", "planning_cosine_baseline"),
        ("style_retrieval", "style_retrieval_chance"),
    ):
        low, high = intervals[key]
        assert low - 1e-9 <= final[key] - final[baseline] <= high + 1e-9, key
    assert len(intervals["planning_cosine_per_step"]) == 4 and intervals["pattern_macro_f1"] is not None
    for entry in metrics["trajectory_ablation"].values():
        low, high = entry["interval"]
        assert low <= high
    assert {v["head"] for v in metrics["verdicts"]} == {"patterns", "planning", "style"}
    assert metrics["best_epoch"] == run["best_epoch"] and metrics["best"]["epoch"] == metrics["best_epoch"]
    # A readable default name: base · data (count) · date.
    assert " · conversations (12 conv.) · " in run["name"] or " · data (12 conv.) · " in run["name"]


def _load(out):
    from cognitivetwin_core.phase2.twin_model import load_components

    return load_components(out)


def test_training_batches_hold_only_training_conversations(tiny_model_dir, tmp_path, small_demo, monkeypatch):
    from cognitivetwin_core.phase2.trainer import Phase2Trainer

    batches = []
    original = Phase2Trainer._group_losses

    def spy(self, components, group, **kwargs):
        if components.training:
            batches.extend(list(ids) for ids in group)
        return original(self, components, group, **kwargs)

    monkeypatch.setattr(Phase2Trainer, "_group_losses", spy)
    trainer, events = _run(_config(tiny_model_dir, tmp_path, epochs=2), small_demo)
    train_ids, val_ids = trainer.split(len(small_demo))
    trained = {i for batch in batches for i in batch}
    assert trained == set(train_ids) and not trained & set(val_ids)


def test_heads_train_on_one_cpu_thread_and_the_encoding_keeps_the_configured_threads(
    tiny_model_dir, tmp_path, small_demo, monkeypatch
):
    from cognitivetwin_core.phase2.trainer import Phase2Trainer
    from cognitivetwin_core.phase2.turn_encoder import TurnEncoder

    seen = {"encode": set(), "train": set()}
    pool, losses = TurnEncoder._pool_batch, Phase2Trainer._group_losses

    def pool_spy(self, batch):
        seen["encode"].add(torch.get_num_threads())
        return pool(self, batch)

    def losses_spy(self, *args, **kwargs):
        seen["train"].add(torch.get_num_threads())
        return losses(self, *args, **kwargs)

    monkeypatch.setattr(TurnEncoder, "_pool_batch", pool_spy)
    monkeypatch.setattr(Phase2Trainer, "_group_losses", losses_spy)
    config = _config(tiny_model_dir, tmp_path, epochs=1, num_threads=2, cache_dir=str(tmp_path / "cache"))
    _, events = _run(config, small_demo)
    assert events[-1].outcome == "completed"
    assert seen == {"encode": {2}, "train": {1}}
    assert torch.get_num_threads() == 2  # given back after training


def test_existing_output_needs_resume(tiny_model_dir, tmp_path, small_demo):
    _run(_config(tiny_model_dir, tmp_path, epochs=1), small_demo)
    with pytest.raises(InputError, match="--resume"):
        _run(_config(tiny_model_dir, tmp_path, epochs=1), small_demo)
    with pytest.raises(InputError, match="other data or settings.*lr"):
        _run(_config(tiny_model_dir, tmp_path, epochs=1, lr=5e-4, resume=True), small_demo)


@pytest.mark.slow
def test_resume_may_add_epochs_but_not_change_the_data_or_settings(tiny_model_dir, tmp_path, small_demo):
    _run(_config(tiny_model_dir, tmp_path, epochs=2), small_demo)
    with pytest.raises(InputError, match="other data or settings.*batch_size"):
        _run(_config(tiny_model_dir, tmp_path, epochs=4, batch_size=4, resume=True), small_demo)
    with pytest.raises(InputError, match="other data or settings.*data_hash"):
        _run(_config(tiny_model_dir, tmp_path, epochs=4, resume=True), small_demo[:10])
    with pytest.raises(InputError, match="already trained 2 epochs"):
        _run(_config(tiny_model_dir, tmp_path, epochs=2, resume=True), small_demo)
    _, events = _run(_config(tiny_model_dir, tmp_path, epochs=4, resume=True), small_demo)
    assert [e.epoch for e in events if e.kind == "epoch"] == [3, 4]
    assert events[-1].outcome == "completed"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2, 3, 4]


def test_cancel_from_another_thread_discards_the_run(tiny_model_dir, tmp_path, small_demo):
    def cancel_on_second_step(trainer, event):
        if event.kind == "step" and event.global_step == 4:
            worker = threading.Thread(target=trainer.request_cancel)
            worker.start()
            worker.join()

    _, events = _run(_config(tiny_model_dir, tmp_path), small_demo, cancel_on_second_step)
    assert events[-1].outcome == "cancelled"
    assert max(e.global_step for e in events if e.kind == "step") == 4  # checked before the next step
    assert not Path(tmp_path / "run").exists()


def test_cancel_during_encoding_stores_no_features(tiny_model_dir, tmp_path, small_demo):
    def cancel_at_first_batch(trainer, event):
        if event.kind == "encoding":
            trainer.request_cancel()

    config = _config(tiny_model_dir, tmp_path, cache_dir=str(tmp_path / "fresh-cache"), encode_batch_tokens=256)
    _, events = _run(config, small_demo, cancel_at_first_batch)
    assert events[-1].outcome == "cancelled"
    assert [e.kind for e in events].count("encoding") == 1
    assert not any((tmp_path / "fresh-cache").glob("*/index.json"))
    assert not Path(config.output_dir).exists()


def test_stop_and_save_keeps_a_usable_model(tiny_model_dir, tmp_path, small_demo):
    def stop_in_epoch_two(trainer, event):
        if event.kind == "step" and event.epoch == 2 and event.step == 1:
            trainer.request_stop(save=True)

    _, events = _run(_config(tiny_model_dir, tmp_path), small_demo, stop_in_epoch_two)
    finished = events[-1]
    assert finished.outcome == "stopped" and "--resume continues from epoch 2" in finished.message
    out = tmp_path / "run"
    components = _load(out)
    assert components.config.hidden_size == 64
    run = json.loads((out / "run.json").read_text())
    assert run["outcome"] == "stopped"
    # The finished epoch's metrics are reported (the summary once said "no epoch finished").
    epoch_one = next(e for e in events if e.kind == "epoch" and e.epoch == 1)
    assert finished.metrics == epoch_one.metrics
    assert "epoch 1's (the best on validation)" in finished.message
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["best_epoch"] == 1 and run["best_epoch"] == 1 and metrics["trajectory_ablation"]
    state = json.loads((out / "checkpoint" / "trainer_state.json").read_text())
    assert state["epoch"] == 1


def test_a_disk_that_fills_up_mid_run_ends_it_with_a_sentence_and_keeps_epoch_one(
    tiny_model_dir, tmp_path, small_demo, monkeypatch
):
    import errno

    import safetensors.torch

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    def fill_the_disk_in_epoch_two(trainer, event):
        # Epoch 1's checkpoint is written while epoch 2 trains: the disk fills once it is announced.
        if event.kind == "checkpoint" and event.epoch == 1:
            # Every write from here on fails as on a full disk: the JSON files (fsync) and the weights.
            monkeypatch.setattr("cognitivetwin_core.atomic_files.os.fsync", full)
            monkeypatch.setattr(safetensors.torch, "save_file", full)

    out = tmp_path / "run"
    saved = {}

    def remember(trainer, event):
        if event.kind == "checkpoint" and event.epoch == 1:
            saved.update({p.name: p.read_bytes() for p in (out / "checkpoint").iterdir()})
        fill_the_disk_in_epoch_two(trainer, event)

    _, events = _run(_config(tiny_model_dir, tmp_path), small_demo, remember)
    monkeypatch.undo()
    finished = events[-1]
    assert finished.outcome == "failed" and "disk is full" in finished.message and str(out) in finished.message
    assert "checkpoint is kept: resume the run" in finished.message
    assert not any(e.kind == "epoch" and e.epoch == 2 for e in events)
    assert saved and {p.name: p.read_bytes() for p in (out / "checkpoint").iterdir()} == saved, (
        "epoch 1's checkpoint is kept whole"
    )
    json.loads((out / "run.json").read_text())  # the last good record: whole, not half-written
    assert [p.name for p in out.rglob("*") if ".tmp" in p.name] == []

    # Space freed: the run resumes from its checkpoint and ends.
    _, events = _run(_config(tiny_model_dir, tmp_path, resume=True), small_demo)
    assert events[-1].outcome == "completed", events[-1].message
    assert min(e.epoch for e in events if e.kind == "epoch") == 2


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(
    tiny_model_dir, tmp_path, small_demo, monkeypatch
):
    from cognitivetwin_core.phase2.trainer import Phase2Trainer

    calls = {"train": 0}
    original = Phase2Trainer._group_losses

    def poisoned(self, components, group, **kwargs):
        parts, counts = original(self, components, group, **kwargs)
        if components.training:
            calls["train"] += 1
            if calls["train"] == 3:  # epoch 2, first step (4 batches an epoch, 2 an update)
                losses = parts[0]
                losses["planning"] = losses["planning"] * float("nan")
                losses["total"] = losses["total"] + losses["planning"]
        return parts, counts

    monkeypatch.setattr(Phase2Trainer, "_group_losses", poisoned)
    _, events = _run(_config(tiny_model_dir, tmp_path), small_demo)
    finished = events[-1]
    assert finished.outcome == "failed"
    assert "epoch 2, step 1: the planning loss became nan" in finished.message
    assert "last good checkpoint (epoch 1)" in finished.message and "lower the learning rate" in finished.message
    out = tmp_path / "run"
    assert json.loads((out / "checkpoint" / "trainer_state.json").read_text())["epoch"] == 1
    assert not (out / "model.safetensors").exists()
    assert json.loads((out / "run.json").read_text())["outcome"] == "failed"


_KILLED_RUN = r"""
import json, os, signal, sys
import torch
torch.set_num_threads(1)
from cognitivetwin_core.conversation import Conversation, Message
from cognitivetwin_core.phase2.config import Phase2Config
from cognitivetwin_core.phase2.trainer import Phase2Trainer
spec = json.loads(sys.argv[1])
from datetime import datetime
conversations = [
    Conversation(c["id"], "test", [
        Message(
            m["role"], m["content"], datetime.fromisoformat(m["at"]) if m["at"] else None, m["patterns"],
            speaker=m["speaker"],
        )
        for m in c["messages"]
    ], source_id=c["source_id"])
    for c in spec["data"]
]
trainer = Phase2Trainer(Phase2Config(**spec["config"]), conversations=conversations)
for event in trainer.run():
    if event.kind == "checkpoint" and event.epoch == 2:
        os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.slow
def test_resume_after_sigkill_matches_an_uninterrupted_run(tiny_model_dir, tmp_path, small_demo):
    from dataclasses import asdict

    epochs = 4
    full_config = _config(tiny_model_dir, tmp_path, name="full", epochs=epochs)
    _run(full_config, small_demo)
    expected = json.loads((tmp_path / "full" / "metrics.json").read_text())

    killed_config = _config(tiny_model_dir, tmp_path, name="killed", epochs=epochs)
    spec = {
        "config": asdict(killed_config),
        "data": [
            {
                "id": c.id,
                "messages": [
                    {
                        "role": m.role,
                        "content": m.content,
                        "patterns": m.patterns,
                        "at": m.created_at.isoformat() if m.created_at else None,
                        "speaker": m.speaker,
                    }
                    for m in c.messages
                ],
                "source_id": c.source_id,  # part of the conversation's identity, so of the data hash
            }
            for c in small_demo
        ],
    }
    # The subprocess must see the same conversations as the in-process runs (ids and text).
    process = subprocess.run(
        [sys.executable, "-c", _KILLED_RUN, json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=WORK_TIMEOUT_S,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    assert process.returncode == -9, process.stderr[-2000:]
    killed = tmp_path / "killed"
    assert json.loads((killed / "run.json").read_text())["outcome"] == "running"
    assert json.loads((killed / "checkpoint" / "trainer_state.json").read_text())["epoch"] == 2
    assert not (killed / "model.safetensors").exists()

    resumed_config = _config(tiny_model_dir, tmp_path, name="killed", epochs=epochs, resume=True)
    _, events = _run(resumed_config, small_demo)
    assert [e.epoch for e in events if e.kind == "epoch"] == [3, 4]
    assert events[-1].outcome == "completed"
    got = json.loads((killed / "metrics.json").read_text())
    assert [e["epoch"] for e in got["epochs"]] == [1, 2, 3, 4]
    for want, have in zip(expected["epochs"], got["epochs"]):
        for key, value in want["metrics"].items():
            if key == "intervals":  # [low, high] per head (per step for planning): the same resamples
                for head, interval in value.items():
                    flat = np.ravel(np.array(interval, dtype=float))
                    assert np.ravel(np.array(have["metrics"][key][head], dtype=float)) == pytest.approx(flat, abs=1e-5)
            elif value is not None:
                assert have["metrics"][key] == pytest.approx(value, abs=1e-5), (want["epoch"], key)
        assert have["validation"]["total"] == pytest.approx(want["validation"]["total"], abs=1e-5)
    from safetensors.torch import load_file

    a, b = load_file(str(tmp_path / "full" / "model.safetensors")), load_file(str(killed / "model.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_workspace_source_records_the_run(tiny_model_dir, tmp_path, small_demo):
    from cognitivetwin_core.data.workspace import Workspace
    from cognitivetwin_core.phase2.trainer import Phase2Trainer

    workspace = Workspace.open(tmp_path / "ws")
    workspace.add_conversations(small_demo)
    config = _config(tiny_model_dir, tmp_path, epochs=1, output_dir=None, cache_dir=None)  # the workspace's cache
    trainer = Phase2Trainer(config, workspace=workspace)
    events = list(trainer.run())
    assert events[-1].outcome == "completed"
    record = workspace.get_phase2_run(trainer.run_id)
    assert record["outcome"] == "completed" and record["data"]["kind"] == "workspace"
    assert Path(record["output_dir"]).parent == workspace.runs_dir
    assert any((workspace.cache_dir / "phase2-features").glob("*/features.npy"))
    workspace.close()


def test_one_source_of_a_workspace_is_what_trains(tiny_model_dir, tmp_path, small_demo):
    """The app passes the workspace and a source; the trainer reads just that source's conversations."""

    from cognitivetwin_core.data.workspace import Workspace
    from cognitivetwin_core.phase2.trainer import Phase2Trainer

    workspace = Workspace.open(tmp_path / "ws")
    other = [dataclasses.replace(c, source="other") for c in small_demo[8:]]
    workspace.add_conversations(small_demo[:8] + other)
    with pytest.raises(InputError, match="give the workspace too"):
        Phase2Trainer(_config(tiny_model_dir, tmp_path, source="other"), conversations=small_demo)
    trainer = Phase2Trainer(_config(tiny_model_dir, tmp_path, epochs=1, source="other"), workspace=workspace)
    events = list(trainer.run())
    assert events[-1].outcome == "completed", events[-1].message
    data = json.loads((tmp_path / "run" / "run.json").read_text())["data"]
    assert (data["source"], data["conversations"]) == ("other", 4)
    missing = Phase2Trainer(_config(tiny_model_dir, tmp_path, "none", source="nowhere"), workspace=workspace)
    with pytest.raises(InputError, match="no conversations with messages from the source “nowhere”"):
        list(missing.run())
    workspace.close()


def test_settings_are_checked_once_when_made_and_never_changed():

    from cognitivetwin_core.phase2.config import Phase2Config

    with pytest.raises(InputError, match="epochs must be at least 1; batch size must be at least 1"):
        Phase2Config(epochs=0, batch_size=0)
    config = Phase2Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 3
    with pytest.raises(InputError, match="plan steps"):
        dataclasses.replace(config, plan_steps=0)  # a derived config is checked too


def test_trajectory_jsonl_file_source(tiny_model_dir, tmp_path, small_demo):
    """The seed's trajectory JSONL (one line per turn with the conversation so far) trains as is."""
    from cognitivetwin_core.data.exports import export_trajectory
    from cognitivetwin_core.phase2.trainer import Phase2Trainer

    path = tmp_path / "phase2_training_data.jsonl"
    export_trajectory(small_demo, path)
    first = json.loads(path.read_text().splitlines()[0])
    assert {"messages", "trajectory", "conversation_id"} <= set(first)
    trainer = Phase2Trainer(_config(tiny_model_dir, tmp_path, epochs=1), data_file=path)
    events = list(trainer.run())
    assert events[-1].outcome == "completed"
    assert trainer.run_record["data"]["conversations"] == 12


def test_bad_inputs_are_refused_before_anything_is_written(tiny_model_dir, tmp_path, small_demo):
    from cognitivetwin_core.phase2.config import Phase2Config
    from cognitivetwin_core.phase2.trainer import Phase2Trainer

    with pytest.raises(InputError, match="epochs must be at least 1"):
        Phase2Trainer(Phase2Config(epochs=0, output_dir=str(tmp_path / "x")), conversations=small_demo)
    with pytest.raises(InputError, match="does not exist"):
        list(Phase2Trainer(_config(tiny_model_dir, tmp_path, name="y"), data_file=tmp_path / "missing.jsonl").run())
    with pytest.raises(InputError, match="at least 2 conversations"):
        list(Phase2Trainer(_config(tiny_model_dir, tmp_path, name="z"), conversations=small_demo[:1]).run())
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists() and not (tmp_path / "z").exists()


def test_out_of_memory_says_what_to_lower(tiny_model_dir, tmp_path, small_demo, monkeypatch):
    from cognitivetwin_core.phase2 import turn_encoder

    def out_of_memory(self, conversations, cancellation=None):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        yield  # a generator, like the real one

    monkeypatch.setattr(turn_encoder.TurnEncoder, "iter_encode", out_of_memory)
    config = _config(tiny_model_dir, tmp_path, cache_dir=str(tmp_path / "oom-cache"))
    _, events = _run(config, small_demo)
    assert events[-1].outcome == "failed"
    assert "Out of memory" in events[-1].message and "batch size" in events[-1].message
    assert json.loads((tmp_path / "run" / "run.json").read_text())["outcome"] == "failed"


def test_best_epoch_is_kept_overfitting_flagged_and_early_stopping(tiny_model_dir, tmp_path, small_demo, monkeypatch):
    """Validation loss falls to epoch 2 then rises: epoch 2's components are the model, the
    rise is flagged, and patience 3 stops the run after epoch 5 of 8."""
    from safetensors.torch import load_file

    from cognitivetwin_core.phase2.trainer import Phase2Trainer

    validation = iter([3.0, 2.0, 2.5, 2.6, 2.7, 2.8, 2.9, 3.0])
    original = Phase2Trainer.evaluate
    snapshots = {}

    def evaluate(self, components, ids):
        at_epoch_end = components.training  # the ablation evaluates a copy in eval mode
        losses, metrics, per_pattern = original(self, components, ids)
        if at_epoch_end:
            losses["total"] = next(validation)
            snapshots[len(snapshots) + 1] = {k: v.clone() for k, v in components.state_dict().items()}
        return losses, metrics, per_pattern

    monkeypatch.setattr(Phase2Trainer, "evaluate", evaluate)
    config = _config(tiny_model_dir, tmp_path, epochs=8, patience=3, lr=3e-3)
    _, events = _run(config, small_demo)
    finished = events[-1]
    assert finished.outcome == "completed"
    assert [e.epoch for e in events if e.kind == "epoch"] == [1, 2, 3, 4, 5]
    assert "Stopped early after epoch 5" in finished.message and "model of epoch 2" in finished.message
    out = tmp_path / "run"
    metrics = json.loads((out / "metrics.json").read_text())
    run = json.loads((out / "run.json").read_text())
    assert metrics["best_epoch"] == run["best_epoch"] == 2
    assert "Stopped early" in metrics["early_stop"]
    train = [e["train"]["total"] for e in metrics["epochs"]]
    if train[-1] < train[1]:  # overfitting also needs training loss to keep falling
        assert metrics["overfitting"]["best_epoch"] == 2 and "validation loss rose" in metrics["overfitting"]["message"]
    saved = load_file(str(out / "model.safetensors"))
    for name in ("planning_head.up.weight", "pattern_head.net.4.weight"):
        assert torch.equal(saved[name], snapshots[2][name])
        assert not torch.equal(saved[name], snapshots[5][name])
    assert finished.metrics == metrics["epochs"][1]["metrics"]


@pytest.mark.slow
def test_name_is_given_kept_on_resume_and_editable(tiny_model_dir, tmp_path, small_demo):
    from cognitivetwin_core.phase2.run_names import rename_run

    config = dataclasses.replace(_config(tiny_model_dir, tmp_path, epochs=1), name="  Sam, first   try ")
    _run(config, small_demo)
    out = tmp_path / "run"
    assert json.loads((out / "run.json").read_text())["name"] == "Sam, first try"
    rename_run(out, "Sam, renamed")
    # As the app resumes: with the run's saved parameters.
    resumed = dataclasses.replace(_config(tiny_model_dir, tmp_path, epochs=2, resume=True), name=config.name)
    _run(resumed, small_demo)
    run = json.loads((out / "run.json").read_text())
    assert run["name"] == "Sam, renamed" and run["outcome"] == "completed"
