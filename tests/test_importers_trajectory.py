"""Trajectory JSONL, the seed's Phase 2 format: one line per message with its context,
merged back into conversations with the given trajectory values kept."""

import json

import pytest

from cognitivetwin_core.data.importers import import_into, read_conversations
from cognitivetwin_core.data.workspace import Workspace

MESSAGES = [
    {"role": "user", "content": "Can you help me plan a lesson on fractions?"},
    {"role": "assistant", "content": "Of course. Start with halves and quarters of a pizza."},
    {"role": "user", "content": "Thanks, that's lovely."},
]


def seed_lines(conversation_id="conv-1", messages=MESSAGES):
    lines = []
    for index in range(len(messages)):
        depth = index / (len(messages) - 1)
        lines.append(
            {
                "conversation_id": conversation_id,
                "messages": json.loads(json.dumps(messages[: index + 1])),  # a copy per line, as in a file
                "trajectory": {
                    "coordinates": [depth, 0.33, 0.5, depth, 0.4],
                    "phase_id": min(5, int(depth * 5)),
                    "homogeneity": 0.5,
                    "turn_index": index,
                },
            }
        )
    return lines


def write(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def test_lines_merge_into_conversations_keeping_the_given_values(tmp_path):
    path = write(tmp_path / "train.jsonl", seed_lines("conv-1") + seed_lines("conv-2", MESSAGES[:2]))
    conversations, report = read_conversations(path)
    assert report.ok and report.importer == "trajectory-jsonl"
    assert [c.id for c in conversations] == ["conv-1", "conv-2"]
    assert [m.content for m in conversations[0].messages] == [m["content"] for m in MESSAGES]
    assert conversations[0].messages[2].trajectory == {
        "coordinates": [1.0, 0.33, 0.5, 1.0, 0.4],
        "phase_id": 5,
        "homogeneity": 0.5,
        "turn_index": 2,
    }
    assert report.messages_accepted == 5
    with Workspace.open(tmp_path / "ws") as workspace:
        import_into(workspace, path)
        annotations = workspace.annotations("conv-1")
        assert [a.homogeneity for a in annotations] == [0.5, 0.5, 0.5]  # kept, not recomputed
        workspace.refresh_annotations(recompute_given=True)
        assert workspace.annotations("conv-1")[0].homogeneity == 1.0


def test_a_whole_conversation_on_one_line_with_a_list_of_trajectories(tmp_path):
    trajectories = [line["trajectory"] for line in seed_lines()]
    path = write(tmp_path / "t.jsonl", [{"conversation_id": "w", "messages": MESSAGES, "trajectory": trajectories}])
    [conversation], report = read_conversations(path, importer="trajectory-jsonl")
    assert report.ok and conversation.messages[1].trajectory["turn_index"] == 1


@pytest.mark.parametrize(
    "mutate,field,reason",
    [
        (lambda r: r.pop("trajectory"), "trajectory", "missing trajectory"),
        (
            lambda r: r["trajectory"].update(coordinates=[0.1, 0.2]),
            "trajectory.coordinates",
            "coordinates must be a list of 5 numbers",
        ),
        (
            lambda r: r["trajectory"]["coordinates"].__setitem__(4, 1.7),
            "trajectory.coordinates[4]",
            "1.7 is outside [0.0, 1.0]",
        ),
        (
            lambda r: r["trajectory"]["coordinates"].__setitem__(0, "deep"),
            "trajectory.coordinates[0]",
            "must be a number, got 'deep'",
        ),
        (lambda r: r["trajectory"].update(phase_id=9), "trajectory.phase_id", "phase_id must be an integer 0-5, got 9"),
        (
            lambda r: r["trajectory"].update(turn_index=7),
            "trajectory.turn_index",
            "turn_index 7 is past the 2 messages of the line",
        ),
        (lambda r: r["messages"][0].update(role="narrator"), "messages[0].role", None),
        (lambda r: r["messages"][1].update(content=""), "messages[1].content", "empty content"),
    ],
)
def test_bad_lines_are_reported_with_line_and_field(tmp_path, mutate, field, reason):
    lines = seed_lines()
    mutate(lines[1])
    path = write(tmp_path / "t.jsonl", lines)
    conversations, report = read_conversations(path, importer="trajectory-jsonl")
    [rejection] = report.rejected
    assert (rejection.line, rejection.field) == (2, field)
    if reason:
        assert rejection.reason == reason
    # The other lines still make the conversation.
    assert len(conversations) == 1 and len(conversations[0].messages) == 3


def test_lines_that_disagree_with_their_conversation_are_rejected(tmp_path):
    lines = seed_lines()
    lines[2]["messages"][0] = {"role": "user", "content": "a different opening"}
    path = write(tmp_path / "t.jsonl", lines)
    conversations, report = read_conversations(path, importer="trajectory-jsonl")
    [rejection] = report.rejected
    assert rejection.line == 3 and rejection.field == "messages[0]" and "line 1" in rejection.reason
    assert len(conversations[0].messages) == 2


def test_truncated_and_non_utf8(tmp_path):
    lines = [json.dumps(line) for line in seed_lines()]
    path = tmp_path / "t.jsonl"
    path.write_bytes(
        (lines[0] + "\n" + lines[1].replace("lesson", "le\udcffson") + "\n").encode("utf-8", "surrogateescape")
        + lines[2][:30].encode()
    )
    conversations, report = read_conversations(path, importer="trajectory-jsonl")
    assert [(r.line, r.reason.split(" (")[0]) for r in report.rejected] == [
        (2, "not UTF-8 text"),
        (3, "the file ends in the middle of this record"),
    ]
    assert report.truncated_at.startswith("line 3")
    assert len(conversations[0].messages) == 1
