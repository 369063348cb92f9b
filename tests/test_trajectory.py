"""5D trajectory annotation (docs/data-and-model.md): properties over many random conversations, the
phase bounds, homogeneity extremes, timestamps, determinism, kept imported values."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from cognitivetwin_core.annotation.trajectory import (
    ALGORITHM_VERSION,
    PHASE_NAMES,
    ROLE_CODES,
    TurnTrajectory,
    annotate,
    complexity,
    phase_for_depth,
)
from cognitivetwin_core.conversation import ROLES, Conversation, Message

WORDS = [
    "the",
    "cache",
    "query",
    "lesson",
    "student",
    "plan",
    "error",
    "because",
    "idea",
    "fix",
    "def",
    "return",
    "class",
    "why",
    "how",
    "thanks",
]


def random_conversation(rng: random.Random, *, timestamps: bool) -> Conversation:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    messages = []
    moment = start
    for _ in range(rng.randint(1, 30)):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 60)))
        if rng.random() < 0.2:
            text += "\n```python\nx = [i for i in range(3)]\n```"
        moment += timedelta(seconds=rng.randint(0, 600))
        messages.append(Message(rng.choice(ROLES), text, created_at=moment if timestamps else None))
    return Conversation("c", "test", messages)


def test_constants():
    assert isinstance(ALGORITHM_VERSION, int)
    assert len(PHASE_NAMES) == 6 and PHASE_NAMES[0] == "opening" and PHASE_NAMES[5] == "closing"


@pytest.mark.parametrize("seed", range(5))
def test_properties_on_random_conversations(seed):
    rng = random.Random(seed)
    for _ in range(40):
        conversation = random_conversation(rng, timestamps=rng.random() < 0.5)
        turns = annotate(conversation)
        assert len(turns) == len(conversation.messages)
        depths = [turn.coordinates[0] for turn in turns]
        assert depths == sorted(depths)  # depth is monotone
        assert depths[0] == 0.0
        if len(turns) > 1:
            assert depths[-1] == 1.0
        for index, (turn, message) in enumerate(zip(turns, conversation.messages)):
            assert isinstance(turn, TurnTrajectory)
            assert len(turn.coordinates) == 5
            assert all(0.0 <= value <= 1.0 for value in turn.coordinates), turn
            assert turn.turn_index == index
            assert turn.coordinates[1] == ROLE_CODES[message.role]
            assert turn.homogeneity == turn.coordinates[2]
            assert turn.phase_id == phase_for_depth(turn.coordinates[0])
        assert turns[0].homogeneity == 1.0
        assert annotate(conversation) == turns  # same input, same output


@pytest.mark.parametrize(
    "depth,phase",
    [
        (0.0, 0),
        (0.10, 0),
        (0.1000001, 1),
        (0.25, 1),
        (0.26, 2),
        (0.5, 2),
        (0.51, 3),
        (0.75, 3),
        (0.76, 4),
        (0.9, 4),
        (0.91, 5),
        (1.0, 5),
    ],
)
def test_phase_bounds_are_right_inclusive(depth, phase):
    assert phase_for_depth(depth) == phase


def test_phases_from_real_depths():
    # 11 messages: depths 0, 0.1, ..., 1.0 as i/(N-1) floats.
    conversation = Conversation("c", "t", [Message("user", f"m{i}") for i in range(11)])
    assert [turn.phase_id for turn in annotate(conversation)] == [0, 0, 1, 2, 2, 2, 3, 3, 4, 4, 5]
    single = annotate(Conversation("c", "t", [Message("user", "alone")]))
    assert single[0].coordinates[0] == 0.0 and single[0].phase_id == 0


def test_homogeneity_identical_is_one_and_disjoint_is_zero():
    turns = annotate(
        Conversation(
            "c",
            "t",
            [
                Message("user", "the quick brown fox"),
                Message("assistant", "The quick, brown fox!"),
                Message("user", "lazy dogs sleep"),
                Message("assistant", "lazy dogs sleep all day"),
            ],
        )
    )
    assert turns[1].homogeneity == 1.0
    assert turns[2].homogeneity == 0.0
    assert 0.0 < turns[3].homogeneity < 1.0


def test_temporal_uses_timestamps_when_they_differ():
    start = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    offsets = [0, 10, 90, 100]
    conversation = Conversation(
        "c", "t", [Message("user", f"m{i}", created_at=start + timedelta(seconds=s)) for i, s in enumerate(offsets)]
    )
    temporal = [turn.coordinates[3] for turn in annotate(conversation)]
    assert temporal == pytest.approx([0.0, 0.1, 0.9, 1.0])
    # Same timestamps everywhere, or one missing: temporal equals depth.
    for messages in (
        [Message("user", "a", created_at=start), Message("user", "b", created_at=start)],
        [Message("user", "a", created_at=start), Message("user", "b"), Message("user", "c", created_at=start)],
    ):
        turns = annotate(Conversation("c", "t", messages))
        assert [t.coordinates[3] for t in turns] == [t.coordinates[0] for t in turns]


def test_naive_and_aware_timestamps_mix():
    naive = datetime(2026, 1, 1, 12, 0)
    aware = datetime(2026, 1, 1, 12, 1, tzinfo=UTC)
    turns = annotate(
        Conversation("c", "t", [Message("user", "a", created_at=naive), Message("user", "b", created_at=aware)])
    )
    assert [t.coordinates[3] for t in turns] == [0.0, 1.0]


def test_complexity_bounds_and_monotone_ingredients():
    assert complexity("") == 0.0 and complexity("   \n") == 0.0
    short = complexity("ok")
    longer = complexity("ok " + "the model learns a compact representation of style. " * 10)
    assert 0.0 < short < longer <= 1.0
    plain = "We should ship the change on Monday after review"
    with_code = plain + "\n```python\nfor x in items:\n    total += price(x)\n```"
    assert complexity(with_code) > complexity(plain)
    repetitive = "word " * 40
    rich = " ".join(f"word{i}" for i in range(40))
    assert complexity(rich) > complexity(repetitive)
    choppy = "Yes. No. Maybe. Fine. Sure. Okay. Right. Good. " * 3
    flowing = ("Yes and no and maybe and fine and sure and okay and right and good " * 3).strip() + "."
    assert complexity(flowing) > complexity(choppy)
    assert complexity("x" * 1_000_000) <= 1.0


def test_given_trajectory_is_kept_unless_recompute():
    given = {"coordinates": [0.9, 0.1, 0.2, 0.3, 0.4], "phase_id": 4, "homogeneity": 0.2, "turn_index": 0}
    conversation = Conversation("c", "t", [Message("user", "hello", trajectory=given), Message("assistant", "hi")])
    kept = annotate(conversation)
    assert kept[0] == TurnTrajectory((0.9, 0.1, 0.2, 0.3, 0.4), 4, 0.2, 0)
    assert kept[1].coordinates[0] == 1.0
    recomputed = annotate(conversation, recompute=True)
    assert recomputed[0].coordinates[0] == 0.0 and recomputed[0].phase_id == 0
    assert kept[0].to_dict() == given


def test_empty_conversation_has_no_turns():
    assert annotate(Conversation("c", "t", [])) == []
