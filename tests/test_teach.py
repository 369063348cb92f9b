"""Teach: the twin's own adapter continued from feedback, a new version with lineage; on the
edited pairs the taught twin prefers the person's wording more than its parent did. (The same
on the built-in base, with the before/after judged on held-out chats in the same run:
tests/test_teach_comparison.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cognitivetwin_core.cli import main
from cognitivetwin_core.data.feedback import BAD, EDIT, GOOD, add_feedback
from cognitivetwin_core.data.workspace import Workspace
from cognitivetwin_core.errors import InputError

EDITS = [
    ("what do you drink in the morning?", "I am an AI and do not drink.", "builder's tea, two sugars, always"),
    ("where did you grow up?", "I do not have a childhood.", "a tiny village outside york, mostly sheep"),
    ("weekend plans?", "As an assistant I have no plans.", "fell running if it stays dry, pub if not"),
    ("favourite food?", "I cannot eat food.", "my nan's lamb hotpot, nothing comes close"),
]


def _parent_adapter(base: str | Path, folder: Path) -> Path:
    """A LoRA adapter on `base` (freshly initialised: it writes exactly what the base writes)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from cognitivetwin_core.models.loader import load_base_model
    from cognitivetwin_core.phase1.adapter_archive import write_lineage

    model, _tokenizer = load_base_model(base)
    torch.manual_seed(0)
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    get_peft_model(model, config).save_pretrained(str(folder))
    write_lineage(folder, {"base_model": str(base)})
    return folder


def _gaps_and_perplexity(base, adapter: Path) -> tuple[list[float], float]:
    """Per edited pair log p(edit) − log p(twin's reply), and the edits' perplexity, under base + adapter."""
    import math

    from cognitivetwin_core.models.adapters import apply_adapter
    from cognitivetwin_core.models.loader import load_base_model
    from cognitivetwin_core.phase1.teach import reply_log_probs

    model, tokenizer = load_base_model(base)
    model = apply_adapter(model, adapter).eval()
    gaps, edit_logps, edit_tokens = [], 0.0, 0
    for context, reply, edit in EDITS:
        prompt = [{"role": "user", "content": context}]
        edit_lp, reply_lp = reply_log_probs(model, tokenizer, prompt, [edit, reply])
        gaps.append(edit_lp - reply_lp)
        edit_logps += edit_lp
        edit_tokens += len(tokenizer(edit + tokenizer.eos_token, add_special_tokens=False)["input_ids"])
    return gaps, math.exp(-edit_logps / edit_tokens)


def _teach(base, tmp_path: Path, argv_extra=()) -> tuple[Path, Path, list[str]]:
    parent = _parent_adapter(base, tmp_path / "parent")
    ws = tmp_path / "ws"
    with Workspace.open(ws) as workspace:
        for context, reply, edit in EDITS:
            add_feedback(workspace, parent, context, reply, verdict=EDIT, edit=edit)
        add_feedback(workspace, parent, "hello", "Hi! How can I help?", verdict=GOOD)
    return parent, ws, ["teach", "--adapter", str(parent), "--workspace", str(ws), "--device", "cpu", *argv_extra]


def _check_taught(base, parent: Path, ws: Path, output: str) -> None:
    new = Path(output.strip().splitlines()[-1])
    assert new.is_dir() and new != parent and (parent / "adapter_model.safetensors").is_file()
    lineage = json.loads((new / "lineage.json").read_text())
    assert lineage["parent_adapter"] == str(parent.resolve())
    assert lineage["method"] == "dpo" and lineage["feedback_ids"] == [1, 2, 3, 4]  # the edits; the thumb is not a pair
    assert len(lineage["margins"]) == lineage["steps"] and lineage["margins"][-1] > 0
    pairs = lineage["edited_pairs"]  # measured by Teach itself, against TRL's frozen copy of the parent
    assert pairs["pairs"] == 4 and pairs["after"] > pairs["before"] and pairs["improved"] >= 3
    assert f"on {pairs['improved']} of them" in output
    with Workspace.open(ws, read_only=True) as workspace:
        assert [a["path"] for a in workspace.adapters()] == [str(new)]
    before, perplexity_before = _gaps_and_perplexity(base, parent)
    after, perplexity_after = _gaps_and_perplexity(base, new)
    assert sum(after) / len(after) > sum(before) / len(before)
    assert sum(a > b for a, b in zip(after, before)) >= 3
    assert perplexity_after < perplexity_before


@pytest.mark.slow
def test_teach_on_a_tiny_base_prefers_the_edits(tiny_model_dir, tmp_path, capsys):
    parent, ws, argv = _teach(tiny_model_dir, tmp_path, ["--max-steps", "6", "--learning-rate", "2e-3"])
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "step 6/6: loss" in captured.err and "reward margin" in captured.err
    _check_taught(tiny_model_dir, parent, ws, captured.out)


@pytest.mark.slow
def test_teach_needs_an_edit_or_both_thumbs(tiny_model_dir, tmp_path):
    from cognitivetwin_core.phase1.teach import teach_twin

    parent = _parent_adapter(tiny_model_dir, tmp_path / "parent")
    with Workspace.open(tmp_path / "ws") as workspace:
        with pytest.raises(InputError, match="no feedback"):
            teach_twin(workspace, parent, device="cpu")
        add_feedback(workspace, parent, "hi", "hello", verdict=GOOD)
        with pytest.raises(InputError, match="only thumbs up"):
            teach_twin(workspace, parent, device="cpu")
        add_feedback(workspace, parent, "hi", "go away", verdict=BAD)
        result = teach_twin(workspace, parent, device="cpu", max_steps=2, check_memory=False)
        assert result.method == "kto" and result.feedback_ids == [1, 2] and result.steps == 2
        assert len(result.margins) == 2


@pytest.mark.slow
def test_stop_leaves_no_new_version(tiny_model_dir, tmp_path):
    from cognitivetwin_core.cancellation import Cancellation
    from cognitivetwin_core.errors import CancelledError
    from cognitivetwin_core.phase1.teach import teach_twin

    parent = _parent_adapter(tiny_model_dir, tmp_path / "parent")
    with Workspace.open(tmp_path / "ws") as workspace:
        add_feedback(workspace, parent, "hi", "hello", verdict=EDIT, edit="ey up")
        stopped = Cancellation()
        stopped.cancel()
        with pytest.raises(CancelledError, match="stopped at step 1 of 5"):
            teach_twin(workspace, parent, device="cpu", max_steps=5, cancellation=stopped)
        # The stopped run is kept for a resume (tests/test_teach_resume.py), but no new version.
        assert workspace.adapters() == [] and [p.name for p in Path(workspace.adapters_dir).iterdir()] == [
            ".teach-checkpoints"
        ]
