"""The playground core: analyze() on a model trained on the demo, the neighbour index, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cognitivetwin_core.conversation import Message
from cognitivetwin_core.errors import InputError

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("torch_one_thread")]


@pytest.fixture(scope="module")
def demo_model(phase2_demo_run):
    from cognitivetwin_core.playground.analysis import load_playground_model

    return load_playground_model(phase2_demo_run, device="cpu")


@pytest.fixture(scope="module")
def demo_index(demo_model, phase2_demo_run):
    from cognitivetwin_core.playground.analysis import NeighbourIndex

    index = NeighbourIndex.for_run(demo_model, phase2_demo_run)
    assert index is not None
    return index


def test_the_index_marks_the_persons_messages(demo_index, demo_conversations):
    # The run's person_style.json names the assistant role (the demo has no participant names).
    assert demo_index.person_speaker == "assistant"
    flagged = [(e.conversation_id, e.message_index) for e in demo_index.entries if e.person]
    expected = [(c.id, i) for c in demo_conversations for i, m in enumerate(c.messages) if m.role == "assistant"]
    assert flagged == expected
    assert demo_index.mark_person("user") == sum(m.role == "user" for c in demo_conversations for m in c.messages)
    demo_index.mark_person("assistant")


def test_analyze_fills_every_panel(demo_model, demo_index, demo_conversations):
    from cognitivetwin_core.annotation.patterns import PATTERN_NAMES
    from cognitivetwin_core.annotation.stylometrics import STYLOMETRIC_NAMES
    from cognitivetwin_core.playground.analysis import analyze

    conversation = demo_conversations[0]
    result = analyze(conversation.messages[2], conversation.messages[:2], demo_model, neighbours_index=demo_index)
    assert len(result.style_signature) == 256
    assert np.linalg.norm(result.style_signature) == pytest.approx(1.0, abs=1e-4)
    assert list(result.pattern_probabilities) == list(PATTERN_NAMES)
    assert all(0.0 < p < 1.0 for p in result.pattern_probabilities.values())
    assert list(result.stylometrics) == list(STYLOMETRIC_NAMES)
    assert result.trajectory["turn_index"] == 2 and result.trajectory["phase_name"]
    assert len(result.plan_steps) == 4
    for neighbours in result.plan_steps:
        scores = [n.score for n in neighbours]
        assert len(neighbours) == 3 and scores == sorted(scores, reverse=True)
        assert all(n.text and n.conversation_id.startswith("demo-") for n in neighbours)
    json.dumps(result.to_dict())  # exportable as is
    # The trained model knows a question when it sees one (patterns beat the prior on validation too).
    question = analyze("Why does my migration hang? Could you explain?", None, demo_model)
    assert question.pattern_probabilities["question"] > 0.5
    assert "question" in question.pattern_labels


def test_playground_pools_like_training(demo_model, demo_index, demo_conversations):
    """A workspace message analysed with its context has the pooled state training cached for it."""
    from cognitivetwin_core.playground.analysis import pooled_state

    conversation = demo_conversations[3]
    row = next(
        i for i, e in enumerate(demo_index.entries) if e.conversation_id == conversation.id and e.message_index == 1
    )
    pooled = pooled_state(demo_model, conversation.messages[:2])
    cached = demo_index.pooled(row)
    assert np.array_equal(demo_index.pooled_for(conversation.id, 1), cached)
    assert demo_index.pooled_for(conversation.id, 999) is None and demo_index.pooled_for("no-such", 0) is None
    assert np.allclose(pooled, cached, atol=2e-2 * np.abs(cached).max())
    # Its own vector is its nearest neighbour.
    z = demo_model.components.standardize(torch.from_numpy(pooled).unsqueeze(0))
    best = demo_index.nearest(z, top_k=1)[0][0]
    assert (best.conversation_id, best.message_index) == (conversation.id, 1) and best.score > 0.99


def test_a_workspace_message_uses_its_indexed_state_and_is_not_its_own_neighbour(
    demo_model, demo_index, demo_conversations, monkeypatch
):
    from cognitivetwin_core.playground.analysis import analyze

    conversation = demo_conversations[5]
    turn = 1
    assert demo_index.find(conversation.messages[: turn + 1]) == (conversation.id, turn)
    edited = [*conversation.messages[:turn], Message(conversation.messages[turn].role, "something else entirely")]
    assert demo_index.find(edited) is None
    calls = []
    monkeypatch.setattr(type(demo_model), "encode_conversation", lambda self, *a, **k: calls.append(1))
    given = analyze(
        conversation.messages[turn],
        conversation.messages[:turn],
        demo_model,
        neighbours_index=demo_index,
        top_k=len(demo_index),
        source=(conversation.id, turn),
    )
    found = analyze(
        conversation.messages[turn],
        conversation.messages[:turn],
        demo_model,
        neighbours_index=demo_index,
        top_k=len(demo_index),
    )
    assert calls == []  # the pooled state came from the index, not the base
    for result in (given, found):
        for neighbours in result.plan_steps:
            assert len(neighbours) == len(demo_index) - 1
            assert (conversation.id, turn) not in {(n.conversation_id, n.message_index) for n in neighbours}
    # Without exclude the same plan step does list the message.
    plan = torch.tensor(given.plan_vectors)
    assert any(
        (n.conversation_id, n.message_index) == (conversation.id, turn)
        for n in demo_index.nearest(plan, top_k=len(demo_index))[0]
    )
    # A given pooled state is used as is (no base forward either).
    pooled = demo_index.pooled_for(conversation.id, turn) * 0.5
    other = analyze("a typed message nobody wrote", None, demo_model, pooled=pooled)
    assert calls == [] and other.style_signature != given.style_signature


def test_repeat_analysis_reuses_the_pooled_state_and_trajectory_edits_change_outputs(demo_model, monkeypatch):
    from cognitivetwin_core.playground.analysis import analyze

    context = [Message("user", "my celery worker leaks memory"), Message("assistant", "Which version of Python?")]
    first = analyze("3.11, running in docker", context, demo_model, role="user")
    calls = []
    original = type(demo_model).encode_conversation
    monkeypatch.setattr(
        type(demo_model), "encode_conversation", lambda self, *a, **k: calls.append(1) or original(self, *a, **k)
    )
    again = analyze("3.11, running in docker", context, demo_model, role="user")
    assert calls == [] and again.style_signature == first.style_signature
    moved = analyze(
        "3.11, running in docker",
        context,
        demo_model,
        trajectory={"coordinates": [1.0, 0.33, 0.0, 1.0, 0.9], "phase_id": 5, "homogeneity": 0.0},
    )
    assert calls == []  # same text: only the small components run
    assert moved.trajectory["phase_name"] == "closing"
    assert moved.style_signature != first.style_signature
    assert moved.pattern_probabilities != first.pattern_probabilities
    assert -1.0 <= first.cosine(moved) < 1.0
    with pytest.raises(InputError, match="empty"):
        analyze("   ", None, demo_model)
    with pytest.raises(InputError, match="phase_id"):
        analyze("hi", None, demo_model, trajectory={"phase_id": 9})


def test_signature_map(demo_model, demo_index):
    points, project = demo_index.signature_map(demo_model)
    assert points.shape == (len(demo_index), 2) and np.isfinite(points).all()
    assert project(np.zeros(256)).shape == (2,)


def test_playground_cli(phase2_demo_run, tmp_path, capsys):
    from cognitivetwin_core.cli import main

    context = tmp_path / "context.jsonl"
    context.write_text(
        '{"role": "user", "content": "my tests are flaky"}\n{"role": "assistant", "content": "Which ones?"}\n'
    )
    code = main(
        [
            "playground",
            "--model-dir",
            str(phase2_demo_run),
            "--text",
            "the ones using time.sleep",
            "--context",
            str(context),
            "--device",
            "cpu",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "Pattern probabilities" in out and "step 4 (4 turns ahead):" in out and "Stylometric readout" in out
    assert out.count("[demo-") == 4 * 3
    code = main(["playground", "--model-dir", str(phase2_demo_run), "--text", "ok thanks", "--json", "--device", "cpu"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and len(data["style_signature"]) == 256 and len(data["pattern_probabilities"]) == 12
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"role": "user", "content": "a"}\n{"role": "robot", "content": "b"}\n')
    code = main(["playground", "--model-dir", str(phase2_demo_run), "--text", "x", "--context", str(bad)])
    assert code == 2 and "line 2: unknown role 'robot'" in capsys.readouterr().err


def test_stylometric_readout_follows_the_measured_features(demo_model, demo_index):
    """After the short demo run the readout tracks each message's measured stylometrics (it
    used to sit near 0.5 for every feature)."""
    from cognitivetwin_core.annotation.stylometrics import STYLOMETRIC_NAMES, stylometric_features

    coords = torch.tensor([t["coordinates"] for t in demo_index._trajectories], dtype=torch.float32)
    phases = torch.tensor([t["phase_id"] for t in demo_index._trajectories], dtype=torch.long)
    homogeneity = torch.tensor([t["homogeneity"] for t in demo_index._trajectories], dtype=torch.float32)
    pooled = torch.from_numpy(np.stack([demo_index.pooled(i) for i in range(len(demo_index))]))
    with torch.inference_mode():
        out = demo_model(hidden_states=pooled, trajectory_coords=coords, phase_id=phases, homogeneity=homogeneity)
    predicted = out.stylometrics.float().numpy()
    measured = np.array([stylometric_features(e.text) for e in demo_index.entries], dtype=np.float32)
    correlations = {}
    for j, name in enumerate(STYLOMETRIC_NAMES):
        if measured[:, j].std() > 1e-6 and predicted[:, j].std() > 1e-9:
            correlations[name] = float(np.corrcoef(predicted[:, j], measured[:, j])[0, 1])
    print("stylometric readout correlations:", {k: round(v, 2) for k, v in correlations.items()})
    assert len(correlations) >= len(STYLOMETRIC_NAMES) // 2
    assert np.median(list(correlations.values())) > 0.5
    # Not a constant: the readout's values spread like the measured ones.
    assert np.abs(predicted.mean(0) - 0.5).max() > 0.2
    assert (predicted.std(0) > 0.25 * measured.std(0)).sum() >= len(correlations) // 2
