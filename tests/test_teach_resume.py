"""Teach's Stop and resume, and feedback already taught: a stopped run kept beside the
adapters and resumed to the same adapter an uninterrupted run writes; a resume refused in one
sentence when the feedback or settings changed; a taught twin taught again only from what it
has not learned yet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.cli import main
from cognitivetwin_core.data.feedback import EDIT, add_feedback
from cognitivetwin_core.data.workspace import Workspace
from cognitivetwin_core.errors import CancelledError, InputError
from cognitivetwin_core.phase1.teach import teach_twin
from cognitivetwin_core.phase1.teach_checkpoint import stopped_teach, teach_checkpoint

EDITS = [
    ("what do you drink in the morning?", "I am an AI and do not drink.", "builder's tea, two sugars, always"),
    ("where did you grow up?", "I do not have a childhood.", "a tiny village outside york, mostly sheep"),
    ("weekend plans?", "As an assistant I have no plans.", "fell running if it stays dry, pub if not"),
]
FAST = dict(device="cpu", check_memory=False, learning_rate=2e-3)


@pytest.fixture(scope="module")
def parent(tiny_model_dir, tmp_path_factory) -> Path:
    """A LoRA adapter on the tiny base (with dropout, as a Phase 1 twin has; TRL turns it off while teaching)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from cognitivetwin_core.models.loader import load_base_model
    from cognitivetwin_core.phase1.adapter_archive import write_lineage

    folder = tmp_path_factory.mktemp("parent") / "twin"
    model, _tokenizer = load_base_model(tiny_model_dir)
    torch.manual_seed(0)
    config = LoraConfig(
        r=8, lora_alpha=16, lora_dropout=0.1, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"
    )
    get_peft_model(model, config).save_pretrained(str(folder))
    write_lineage(folder, {"base_model": str(tiny_model_dir)})
    return folder


def _workspace(tmp_path: Path, parent: Path) -> Workspace:
    workspace = Workspace.open(tmp_path / "ws")
    for context, reply, edit in EDITS:
        add_feedback(workspace, parent, context, reply, verdict=EDIT, edit=edit)
    return workspace


def _stop_after(steps: int):
    """(on_event, cancellation): Stop pressed as step `steps` is reported; the steps seen."""
    stop, seen = Cancellation(), []

    def on_event(event):
        if event.kind == "step":
            seen.append(event.step)
            if event.step == steps:
                stop.cancel()

    return on_event, stop, seen


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


@pytest.mark.slow
def test_a_stopped_teach_resumes_to_the_adapter_an_uninterrupted_run_writes(parent, tmp_path):
    import torch

    with _workspace(tmp_path, parent) as workspace:
        whole = teach_twin(workspace, parent, max_steps=4, **FAST)
        on_event, stop, seen = _stop_after(2)
        with pytest.raises(CancelledError, match="stopped at step 2 of 4"):
            teach_twin(workspace, parent, max_steps=4, on_event=on_event, cancellation=stop, **FAST)
        assert seen == [1, 2]
        state = stopped_teach(workspace, parent)
        assert state["step"] == 2 and state["total_steps"] == 4 and len(state["losses"]) == 2
        checkpoint = teach_checkpoint(workspace, parent).folder
        assert checkpoint.parent.parent == Path(workspace.adapters_dir)
        assert {p.name for p in checkpoint.iterdir()} == {
            "adapter_model.safetensors",
            "optimizer.pt",
            "extras.pt",
            "trainer_state.json",
        }
        assert [a["path"] for a in workspace.adapters()] == [str(whole.adapter_dir)]  # no version from the stop

        events = []
        resumed = teach_twin(workspace, parent, resume=True, device="cpu", check_memory=False, on_event=events.append)
        assert [e.step for e in events if e.kind == "step"] == [3, 4]  # the settings came from the checkpoint
        assert "resuming at step 3" in events[0].message
        assert resumed.steps == 4 and len(resumed.losses) == 4 and len(resumed.margins) == 4
        assert resumed.losses[:2] == state["losses"]
        assert json.loads((resumed.adapter_dir / "lineage.json").read_text())["resumed_at_step"] == 2
        assert stopped_teach(workspace, parent) is None and not checkpoint.exists()
    expected, got = _weights(whole.adapter_dir), _weights(resumed.adapter_dir)
    assert set(expected) == set(got)
    moved = sum(float((expected[k] - _weights(parent)[k]).abs().sum()) for k in expected)
    assert moved > 0  # the runs did train
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_resume_is_refused_in_one_sentence_when_feedback_or_settings_changed(parent, tmp_path, capsys):
    with _workspace(tmp_path, parent) as workspace:
        with pytest.raises(InputError, match="no stopped Teach of this twin"):
            teach_twin(workspace, parent, resume=True, **FAST)
        on_event, stop, _seen = _stop_after(1)
        with pytest.raises(CancelledError):
            teach_twin(workspace, parent, max_steps=3, on_event=on_event, cancellation=stop, **FAST)
        with pytest.raises(InputError, match="made before the max steps changed"):
            teach_twin(workspace, parent, resume=True, max_steps=5, **FAST)
        add_feedback(workspace, parent, "tea or coffee?", "I have no taste.", verdict=EDIT, edit="tea, obviously")
    capsys.readouterr()
    argv = ["teach", "--adapter", str(parent), "--workspace", str(tmp_path / "ws"), "--device", "cpu", "--resume"]
    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "made before the feedback changed" in err and "without resuming" in err
    with Workspace.open(tmp_path / "ws", read_only=True) as workspace:
        assert stopped_teach(workspace, parent)["step"] == 1  # a refused resume keeps the stopped run
        assert workspace.adapters() == []
    with Workspace.open(tmp_path / "ws") as workspace:
        events = []
        teach_twin(workspace, parent, max_steps=1, on_event=events.append, **FAST)
        assert "starting over (the run stopped at step 1 is kept until this one stops or finishes" in events[0].message
        assert stopped_teach(workspace, parent) is None  # the finished run supersedes it


@pytest.mark.slow
def test_a_taught_twin_learns_only_what_it_has_not_learned(parent, tmp_path, capsys):
    with _workspace(tmp_path, parent) as workspace:
        child = teach_twin(workspace, parent, max_steps=1, **FAST).adapter_dir
        assert json.loads((child / "lineage.json").read_text())["feedback_ids"] == [1, 2, 3]
    ws = str(tmp_path / "ws")
    folders = sorted(p.name for p in (tmp_path / "ws" / "adapters").iterdir())
    capsys.readouterr()
    assert main(["teach", "--adapter", str(child), "--workspace", ws, "--device", "cpu"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "All 3 verdicts on this twin were already taught" in err
    assert "--include-taught" in err
    assert sorted(p.name for p in (tmp_path / "ws" / "adapters").iterdir()) == folders  # nothing written

    with Workspace.open(ws) as workspace:
        new = add_feedback(workspace, child, "tea or coffee?", "I have no taste.", verdict=EDIT, edit="tea, obviously")
        grandchild = teach_twin(workspace, child, max_steps=1, **FAST)
        assert grandchild.feedback_ids == [new.id]
        again = teach_twin(workspace, child, max_steps=1, include_taught=True, **FAST)
        assert again.feedback_ids == [1, 2, 3, new.id]
    capsys.readouterr()
    assert main(["feedback", "list", "--workspace", ws]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"[taught into {child.name}, {again.adapter_dir.name}]" in lines[0]
    assert f"[taught into {grandchild.adapter_dir.name}, {again.adapter_dir.name}]" in lines[3]
    assert main(["feedback", "list", "--workspace", ws, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[3]["taught_into"] == [grandchild.adapter_dir.name, again.adapter_dir.name]


@pytest.mark.slow
def test_ctrl_c_in_the_terminal_keeps_the_run_and_resume_finishes_it(parent, tmp_path, capsys, monkeypatch):
    import os
    import signal

    from cognitivetwin_core.cli import teach_cmd

    _workspace(tmp_path, parent).close()
    printed, handler = teach_cmd._print_event, signal.getsignal(signal.SIGINT)

    def print_and_interrupt(event):
        printed(event)
        if event.kind == "step" and event.step == 1:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C as the first step is shown

    monkeypatch.setattr(teach_cmd, "_print_event", print_and_interrupt)
    argv = ["teach", "--adapter", str(parent), "--workspace", str(tmp_path / "ws"), "--device", "cpu"]
    assert main([*argv, "--max-steps", "3"]) != 0
    err = capsys.readouterr().err
    assert "Stopping after this step" in err and "stopped at step 1 of 3" in err and "--resume" in err
    monkeypatch.setattr(teach_cmd, "_print_event", printed)
    assert main([*argv, "--resume"]) == 0
    captured = capsys.readouterr()
    assert "resuming at step 2" in captured.err and "step 3/3: loss" in captured.err
    lineage = json.loads((Path(captured.out.strip().splitlines()[-1]) / "lineage.json").read_text())
    assert lineage["steps"] == 3 and lineage["resumed_at_step"] == 1
    assert signal.getsignal(signal.SIGINT) is handler  # the command put the previous handler back
