"""Feedback records: stored with their context and adapter, listed, undone, exported for DPO/KTO,
kept across a restart, and never counted as held-out data."""

from __future__ import annotations

import json

import pytest

from cognitivetwin_core.cli import main
from cognitivetwin_core.data.feedback import (
    BAD,
    EDIT,
    GOOD,
    add_feedback,
    export_feedback,
    feedback_texts,
    list_feedback,
    undo_feedback,
)
from cognitivetwin_core.data.workspace import Workspace
from cognitivetwin_core.errors import InputError


@pytest.fixture
def adapter_dir(tmp_path):
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct"})
    )
    return folder


def test_cli_adds_lists_undoes_and_exports(tmp_path, adapter_dir, capsys):
    ws = str(tmp_path / "ws")
    common = ["--workspace", ws, "--adapter", str(adapter_dir), "--context", "fancy a cuppa?"]
    assert main(["feedback", "add", *common, "--reply", "I am an AI.", "--edit", "always, milk no sugar"]) == 0
    assert main(["feedback", "add", *common, "--reply", "Yes please!", "--good"]) == 0
    assert main(["feedback", "add", *common, "--reply", "As a language model…", "--bad"]) == 0
    assert main(["feedback", "list", "--workspace", ws, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.split("\n", 3)[-1])
    assert [r["verdict"] for r in listed] == [EDIT, GOOD, BAD]
    assert listed[0]["context"] == [{"role": "user", "content": "fancy a cuppa?"}]
    assert listed[0]["adapter"] == str(adapter_dir.resolve()) and listed[0]["created_at"]

    dpo, kto = tmp_path / "dpo.jsonl", tmp_path / "kto.jsonl"
    assert main(["feedback", "export", "--workspace", ws, "--format", "dpo", "--out", str(dpo)]) == 0
    assert main(["feedback", "export", "--workspace", ws, "--format", "kto", "--out", str(kto)]) == 0
    pairs = [json.loads(line) for line in dpo.read_text().splitlines()]
    assert len(pairs) == 1
    assert pairs[0]["chosen"] == [{"role": "assistant", "content": "always, milk no sugar"}]
    assert pairs[0]["rejected"] == [{"role": "assistant", "content": "I am an AI."}]
    assert pairs[0]["prompt"] == [{"role": "user", "content": "fancy a cuppa?"}]
    singles = [json.loads(line) for line in kto.read_text().splitlines()]
    assert [(s["completion"][0]["content"], s["label"]) for s in singles] == [
        ("always, milk no sugar", True),
        ("I am an AI.", False),
        ("Yes please!", True),
        ("As a language model…", False),
    ]

    assert main(["feedback", "undo", "--workspace", ws, "2"]) == 0
    assert main(["feedback", "undo", "--workspace", ws, "2"]) == 2
    assert "no feedback 2" in capsys.readouterr().err
    with Workspace.open(ws) as workspace:  # a new process: the records are in the database
        assert [r.id for r in list_feedback(workspace)] == [1, 3]


def test_bad_feedback_is_refused_in_words(tmp_path, adapter_dir):
    with Workspace.open(tmp_path / "ws") as workspace:
        with pytest.raises(InputError, match="same as the twin's reply"):
            add_feedback(workspace, adapter_dir, "hi", "hello", verdict=EDIT, edit=" hello ")
        with pytest.raises(InputError, match="no reply"):
            add_feedback(workspace, adapter_dir, "hi", "  ", verdict=GOOD)
        with pytest.raises(InputError, match="no edited reply"):
            export_feedback(workspace, "dpo", tmp_path / "out.jsonl")
        assert not (tmp_path / "out.jsonl").exists()
        assert list_feedback(workspace) == []
        with pytest.raises(InputError, match="no feedback 7"):
            undo_feedback(workspace, 7)


def test_feedback_texts_are_what_teaching_trains_on(tmp_path, adapter_dir):
    with Workspace.open(tmp_path / "ws") as workspace:
        add_feedback(workspace, adapter_dir, "hi", "Hello there. ", verdict=EDIT, edit="alright?")
        add_feedback(workspace, adapter_dir, [{"role": "user", "content": "q"}], "fine", verdict=BAD)
        assert feedback_texts(workspace) == {"Hello there.", "alright?", "fine"}


def test_terminal_chat_stores_verdicts_on_the_last_reply(tiny_adapter, isolated_user_dirs, monkeypatch, capsys):
    import io

    from cognitivetwin_core.paths import default_workspace_dir

    ws = default_workspace_dir()  # no --workspace: the feedback goes to the person's default workspace
    script = "hello there\n/edit ey up\nsecond message\n/good\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(script))
    argv = ["chat", "--adapter", str(tiny_adapter), "--device", "cpu"]
    assert main([*argv, "--max-new-tokens", "6", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "(feedback 1 stored: edit" in out and "(feedback 2 stored: good" in out
    with Workspace.open(ws) as workspace:
        first, second = list_feedback(workspace)
    assert first.context == [{"role": "user", "content": "hello there"}] and first.edit == "ey up"
    assert second.context[-1] == {"role": "user", "content": "second message"} and len(second.context) == 3
    assert first.reply and second.adapter == str(tiny_adapter.resolve())
