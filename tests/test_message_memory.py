"""Memory: the person's past messages indexed in the workspace, recalled by their words, put
in the twin's context and shown; the held-out share is never indexed."""

from __future__ import annotations

import json

import pytest

from cognitivetwin_core.cli import main
from cognitivetwin_core.conversation import Conversation, Message
from cognitivetwin_core.data.exports import in_validation
from cognitivetwin_core.data.message_memory import (
    HELD_OUT_SHARE,
    build_memory,
    has_memory,
    remembered_texts,
    search_memory,
)
from cognitivetwin_core.data.workspace import Workspace

FACT = "My dog is called Biscuit, she's a three-legged greyhound."


def _ids(held_out: bool, count: int) -> list[str]:
    ids = (f"planted-{i}" for i in range(1000))
    return [i for i in ids if in_validation(i, HELD_OUT_SHARE) == held_out][:count]


def _planted(conversation_id: str, question: str, answer: str) -> Conversation:
    return Conversation(conversation_id, "test", [Message("user", question), Message("assistant", answer)])


@pytest.fixture
def workspace(tmp_path, demo_conversations):
    kept, held = _ids(False, 2), _ids(True, 1)
    with Workspace.open(tmp_path / "ws") as workspace:
        workspace.add_conversations(demo_conversations)
        workspace.add_conversations(
            [
                _planted(kept[0], "what's your dog called again?", FACT),
                _planted(held[0], "where did you grow up?", "In Whitby, by the sea."),
            ]
        )
        yield workspace


def test_search_recalls_the_planted_fact_and_never_the_held_out_share(workspace, tmp_path):
    assert not has_memory(workspace) and search_memory(workspace, "dog") == []
    count = build_memory(workspace)
    assert count > 10 and has_memory(workspace)
    found = search_memory(workspace, "What is the name of your dog?")
    assert found and found[0].text == FACT and found[0].said_to == "what's your dog called again?"
    assert found[0].score > 0.3
    assert search_memory(workspace, "Whitby by the sea") == []  # held out for the judges
    texts = remembered_texts(workspace)
    assert FACT in texts and "In Whitby, by the sea." not in texts

    # An import updates an existing memory by itself (only the new conversations).
    from cognitivetwin_core.data.importers import import_into

    new = tmp_path / "more.jsonl"
    bands = [f"Easily band number {i}, saw them live in Sheffield." for i in range(12)]
    rows = [
        {"messages": [{"role": "user", "content": "favourite band?"}, {"role": "assistant", "content": band}]}
        for band in bands
    ]
    new.write_text("".join(json.dumps(row) + "\n" for row in rows))
    import_into(workspace, new, importer="chat-jsonl", me="assistant")
    # The ids are the workspace's own: those outside the held-out share are indexed, the others not.
    indexed = [
        c.messages[1].content
        for c in workspace.iter_conversations()
        if c.messages and c.messages[-1].content in bands and not in_validation(c.id, HELD_OUT_SHARE)
    ]
    assert indexed
    assert set(remembered_texts(workspace)) - texts == set(indexed)
    assert search_memory(workspace, "live in sheffield", limit=20, min_score=0.01)


def test_memory_cli_builds_and_searches(workspace, capsys):
    ws = str(workspace.path)
    assert main(["memory", "search", "dog", "--workspace", ws]) == 2
    assert "no memory yet" in capsys.readouterr().err
    assert main(["memory", "build", "--workspace", ws]) == 0
    assert "Memory built" in capsys.readouterr().out
    assert main(["memory", "search", "name of your dog", "--workspace", ws]) == 0
    assert FACT in capsys.readouterr().out.splitlines()[0]


class _RecordingTwin:
    """Stands in for the twin: records what it was given, answers with a fixed text."""

    adapter_dir = "adapter"
    base_model = "none"

    def __init__(self):
        self.seen = []

    def generate(self, messages, settings, **_):
        from cognitivetwin_core.models.generation import GeneratedReply

        self.seen.append(messages)
        return GeneratedReply("ok", tokens=1, stopped=False)


def test_chat_puts_remembered_messages_in_the_context(workspace):
    from cognitivetwin_core.playground.chat import ChatSession, workspace_memory

    build_memory(workspace)
    twin = _RecordingTwin()
    session = ChatSession(twin, system_prompt="Be brief.", memory=workspace_memory(workspace))
    shown = []
    turn = session.send("What is your dog called?", on_remembered=shown.append)
    assert [item.text for item in turn.remembered] == [FACT] == [item.text for item in shown[0]]
    system = twin.seen[0][0]
    assert system["role"] == "system" and system["content"].startswith("Be brief.") and FACT in system["content"]
    assert turn.context == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is your dog called?"},
    ]
    session.send("thanks")  # no memory matches: the next turn's context has none
    assert FACT not in json.dumps(twin.seen[1])


@pytest.mark.slow
def test_chat_with_memory_answers_with_the_fact(workspace, embedded_model_dir, tmp_path, capsys):
    import torch
    from peft import LoraConfig, get_peft_model

    from cognitivetwin_core.models.loader import load_base_model
    from cognitivetwin_core.phase1.adapter_archive import write_lineage

    model, _ = load_base_model("smollm2-135m")
    torch.manual_seed(0)
    adapter = tmp_path / "adapter"
    get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj"], task_type="CAUSAL_LM")).save_pretrained(
        str(adapter)
    )
    write_lineage(adapter, {"base_model": "smollm2-135m"})
    build_memory(workspace)
    argv = ["chat", "--adapter", str(adapter), "--workspace", str(workspace.path), "--device", "cpu"]
    argv += ["--prompt", "What is your dog called?", "--temperature", "0", "--max-new-tokens", "24"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"remembered: {FACT}" in out
    assert "Biscuit" in out.split("twin>", 1)[1]
    assert main([*argv, "--no-memory"]) == 0
    without = capsys.readouterr().out
    assert "remembered:" not in without and "Biscuit" not in without


def test_held_out_evaluation_leaves_out_remembered_and_taught_replies(workspace, tmp_path):
    from cognitivetwin_core.data.feedback import EDIT, add_feedback
    from cognitivetwin_core.phase1.adapter_archive import write_lineage
    from cognitivetwin_core.playground.held_out import held_out_set

    def chat(question, answer):
        return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]

    validation = tmp_path / "validation.jsonl"
    kept = chat("how was the match?", "dreadful, we lost four nil")
    rows = [chat("dog's name?", FACT), chat("tea?", "builder's, two sugars"), kept]
    validation.write_text("".join(json.dumps({"messages": row}) + "\n" for row in rows))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    write_lineage(adapter, {"settings": {"validation_file": str(validation)}})
    assert held_out_set(adapter, workspace=workspace).conversations == rows  # nothing recalled or taught yet
    build_memory(workspace)
    add_feedback(workspace, adapter, "tea?", "I don't drink.", verdict=EDIT, edit="builder's, two sugars")
    assert held_out_set(adapter, workspace=workspace).conversations == [kept]
