"""Exports: Together JSONL with Together's checks, token counts with the base's tokenizer and
a validation split by conversation; the seed's trajectory JSONL; both round-trip through the
importers and are written atomically."""

import json
from datetime import UTC, datetime

import pytest

from cognitivetwin_core.cli import main as cli_main
from cognitivetwin_core.conversation import Conversation, Message
from cognitivetwin_core.data.exports import (
    TokenCounter,
    export_together,
    export_trajectory,
    in_validation,
    write_conversations_jsonl,
)
from cognitivetwin_core.data.importers import import_into, read_conversations
from cognitivetwin_core.data.workspace import Workspace
from cognitivetwin_core.errors import InputError


@pytest.fixture()
def demo_workspace(tmp_path):
    with Workspace.open(tmp_path / "ws") as workspace:
        import_into(workspace, "demo")
        # The demo makes its user side the twin; these tests export the AI's side, as the seed did.
        workspace.set_twin_speaker("assistant")
        yield workspace


def test_together_export_checks_counts_and_round_trips(demo_workspace, tmp_path, tiny_model_dir, embedded_tokenizer):
    extra = [
        Conversation("no-answer", "t", [Message("user", "Is anyone there?")]),
        Conversation("tool-only", "t", [Message("tool", "{}"), Message("assistant", "done")]),
    ]
    demo_workspace.add_conversations(extra)
    out = tmp_path / "together" / "train.jsonl"
    summary = export_together(demo_workspace, out, base_model=tiny_model_dir, validation_fraction=0.2, epochs=3)
    assert summary.context_length == 2048  # the tiny model's max_position_embeddings
    train = [json.loads(line) for line in out.read_text().splitlines()]
    valid = [json.loads(line) for line in summary.validation_path.read_text().splitlines()]
    assert summary.validation_path == tmp_path / "together" / "train.validation.jsonl"
    assert (summary.examples, summary.validation_examples) == (len(train), len(valid))
    assert summary.examples + summary.validation_examples == demo_workspace.count_conversations() - 2
    assert 0 < summary.validation_examples < summary.examples
    assert {s.conversation_id: s.reason for s in summary.skipped} == {
        "no-answer": "no assistant message to learn from",
        "tool-only": "no user message before the assistant's",
    }
    for example in train + valid:
        assert set(example) == {"messages"}
        assert example["messages"][-1]["role"] == "assistant"
        assert all(
            m["role"] in ("system", "user", "assistant", "tool") and m["content"].strip() for m in example["messages"]
        )

    # Token counts are the base tokenizer's chat-template lengths.
    def template_length(messages):
        encoded = embedded_tokenizer.apply_chat_template(messages, tokenize=True)
        return len(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)

    expected = [template_length(example["messages"]) for example in train]
    assert summary.tokens == sum(expected) and summary.max_example_tokens >= max(expected)
    assert summary.estimated_training_tokens == 3 * summary.tokens
    assert "Estimated training tokens for 3 epochs" in summary.text()
    # Round trip: export, import, same messages.
    conversations, report = read_conversations(out)
    assert report.ok and len(conversations) == len(train)
    assert [[{"role": m.role, "content": m.content} for m in c.messages] for c in conversations] == [
        example["messages"] for example in train
    ]


def test_validation_split_is_by_conversation_and_deterministic():
    ids = [f"conv-{i}" for i in range(2000)]
    chosen = [i for i in ids if in_validation(i, 0.1)]
    assert 150 < len(chosen) < 250
    assert chosen == [i for i in ids if in_validation(i, 0.1)]
    assert not any(in_validation(i, 0.0) for i in ids)


def test_examples_over_the_context_are_cut_to_fit(demo_workspace, tmp_path, tiny_model_dir, embedded_tokenizer):
    out = tmp_path / "t.jsonl"
    summary = export_together(demo_workspace, out, base_model=tiny_model_dir, max_tokens=300)
    examples = [json.loads(line)["messages"] for line in out.read_text().splitlines()]
    assert summary.cut > 0 and summary.max_example_tokens <= 300
    # A cut conversation gives several examples, so there are more examples than conversations kept.
    assert summary.examples > demo_workspace.count_conversations() - len(summary.skipped)
    for messages in examples:
        assert messages[-1]["role"] == "assistant" and any(m["role"] == "user" for m in messages)
        encoded = embedded_tokenizer.apply_chat_template(messages, tokenize=True)
        assert len(encoded["input_ids"] if hasattr(encoded, "keys") else encoded) <= 300
    assert "cut into several examples" in summary.text()


@pytest.mark.slow
def test_token_counter_without_a_chat_template(tiny_model_dir, embedded_tokenizer):
    counter = TokenCounter(tiny_model_dir)
    counter.has_template = False
    messages = [{"role": "user", "content": "hello there"}, {"role": "assistant", "content": "hi"}]
    plain = len(embedded_tokenizer("hello there", add_special_tokens=False)["input_ids"]) + len(
        embedded_tokenizer("hi", add_special_tokens=False)["input_ids"]
    )
    assert counter.count(messages) == plain + 8


def test_a_failed_export_leaves_the_old_file_alone(tmp_path, tiny_model_dir):
    out = tmp_path / "train.jsonl"
    out.write_text("previous content\n")
    nothing_to_learn = [Conversation("q", "t", [Message("user", "hello?")])]
    with pytest.raises(InputError, match="nothing was written"):
        export_together(nothing_to_learn, out, base_model=tiny_model_dir)
    assert out.read_text() == "previous content\n"

    def exploding():
        yield Conversation("a", "t", [Message("user", "hi"), Message("assistant", "hello")])
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError):
        export_trajectory(exploding(), out)
    assert out.read_text() == "previous content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.jsonl"]  # no temp files left


def test_trajectory_export_is_the_seed_format_and_round_trips(demo_workspace, tmp_path):
    given = {"coordinates": [0.5, 0.33, 0.9, 0.5, 0.2], "phase_id": 2, "homogeneity": 0.9, "turn_index": 0}
    stamp = datetime(2026, 2, 1, 9, 30, tzinfo=UTC)
    demo_workspace.add_conversations(
        [
            Conversation(
                "given",
                "t",
                [
                    Message("user", "What is a monad?", created_at=stamp, trajectory=given),
                    Message("assistant", "A monoid in the category of endofunctors.", created_at=stamp),
                ],
                source_id="given",  # as an import of a record with its own id stores it
            )
        ]
    )
    out = tmp_path / "phase2.jsonl"
    summary = export_trajectory(demo_workspace, out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert summary.lines == len(lines) == demo_workspace.count_messages()
    first = lines[0]
    assert set(first) == {"conversation_id", "messages", "trajectory", "patterns"}
    assert set(first["trajectory"]) == {"coordinates", "phase_id", "homogeneity", "turn_index"}
    assert len(first["trajectory"]["coordinates"]) == 5
    # One line per message, with the messages before it as context.
    same = [line for line in lines if line["conversation_id"] == "demo-sam-03"]
    assert [len(line["messages"]) for line in same] == [1, 2, 3]
    assert [line["trajectory"]["turn_index"] for line in same] == [0, 1, 2]
    assert [line["trajectory"] for line in lines if line["conversation_id"] == "given"][0] == given
    # Round trip: the same conversations, messages, timestamps and trajectory values.
    with Workspace.open(tmp_path / "ws2") as other:
        report = import_into(other, out)
        assert report.ok and report.importer == "trajectory-jsonl"
        assert other.data_hash() == demo_workspace.data_hash()
        for original in demo_workspace.iter_conversations():
            copy = other.get_conversation(original.id)
            assert [(m.role, m.content, m.created_at) for m in copy.messages] == [
                (m.role, m.content, m.created_at) for m in original.messages
            ]
            assert [a.trajectory for a in other.annotations(original.id)] == [
                a.trajectory for a in demo_workspace.annotations(original.id)
            ]


def test_lossless_chat_copy_round_trips(demo_workspace, tmp_path):
    out = tmp_path / "copy.jsonl"
    assert write_conversations_jsonl(demo_workspace.iter_conversations(), out) == demo_workspace.count_conversations()
    conversations, report = read_conversations(out)
    assert report.ok
    assert [(c.id, c.title, [(m.role, m.content, m.created_at) for m in c.messages]) for c in conversations] == [
        (c.id, c.title, [(m.role, m.content, m.created_at) for m in c.messages])
        for c in demo_workspace.iter_conversations()
    ]


def test_cli_export_and_list(tmp_path, capsys, tiny_model_dir):
    workspace = str(tmp_path / "ws")
    assert cli_main(["data", "import", "demo", "--workspace", workspace, "--quiet"]) == 0
    assert (
        cli_main(
            [
                "data",
                "export",
                "--workspace",
                workspace,
                "--format",
                "together",
                "--out",
                str(tmp_path / "t.jsonl"),
                "--base-model",
                str(tiny_model_dir),
            ]
        )
        == 0
    )
    assert (
        cli_main(
            ["data", "export", "--workspace", workspace, "--format", "trajectory", "--out", str(tmp_path / "p2.jsonl")]
        )
        == 0
    )
    assert cli_main(["data", "list", "--workspace", workspace, "--pattern", "reflection", "--limit", "3"]) == 0
    assert cli_main(["data", "show", "demo-sam-03", "--workspace", workspace, "--json"]) == 0
    assert cli_main(["data", "stats", "--workspace", workspace]) == 0
    out = capsys.readouterr().out
    assert "training examples" in out and "Wrote 237 lines" in out
    assert "demo-sam-03" in out and '"phase_id"' in out and "By pattern:" in out
    assert cli_main(["data", "show", "missing", "--workspace", workspace]) == 2
    assert "No conversation 'missing'" in capsys.readouterr().err
