"""CognitiveTwinV2: shapes, identity adapter, save/load round trip, device selection."""

from __future__ import annotations

import json

import pytest
import torch

from cognitivetwin_core.conversation import Message
from cognitivetwin_core.errors import CognitiveTwinError, InputError


@pytest.fixture(scope="module")
def tiny_twin(tiny_model_dir):
    from cognitivetwin_core.phase2.twin_model import create_cognitivetwin_v2

    torch.manual_seed(0)
    return create_cognitivetwin_v2(base_model_path=str(tiny_model_dir), device="cpu", plan_steps=3)


def _batch(tokenizer, texts):
    return tokenizer(texts, return_tensors="pt", padding=True)


def test_forward_shapes_and_normalised_signature(tiny_twin):
    enc = _batch(tiny_twin.tokenizer, ["Why does my loop fail?", "Here is the fix: `x = 1`."])
    coords = torch.tensor([[0.0, 0.33, 1.0, 0.0, 0.2], [1.0, 0.67, 0.1, 1.0, 0.6]])
    out = tiny_twin(
        input_ids=enc.input_ids,
        attention_mask=enc.attention_mask,
        trajectory_coords=coords,
        phase_id=torch.tensor([0, 5]),
        homogeneity=torch.tensor([1.0, 0.1]),
    )
    assert out.style_signature.shape == (2, 256)
    assert out.pattern_logits.shape == (2, 12)
    assert out.plan_steps.shape == (2, 3, 64)
    assert torch.allclose(out.style_signature.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert out["pattern_logits"] is out.pattern_logits
    style = tiny_twin.extract_style(input_ids=enc.input_ids, attention_mask=enc.attention_mask)
    assert style.shape == (2, 256)


def test_base_is_frozen_and_not_saved(tiny_twin, tmp_path):
    assert all(not p.requires_grad for p in tiny_twin.base.parameters())
    tiny_twin.train()
    assert not tiny_twin.base.training
    assert all(p.requires_grad for p in tiny_twin.trainable_parameters())
    tiny_twin.eval()
    tiny_twin.save_custom_components(tmp_path)
    from safetensors.torch import load_file

    keys = load_file(str(tmp_path / "model.safetensors")).keys()
    assert keys and not any("embed_tokens" in k or "layers." in k for k in keys)


def test_adapter_starts_as_identity_and_planning_as_current_message():
    from cognitivetwin_core.phase2.heads import PlanningHead
    from cognitivetwin_core.phase2.trajectory_adapter import TrajectoryAdapter

    torch.manual_seed(1)
    adapter = TrajectoryAdapter(32, bottleneck=16)
    h = torch.randn(4, 32)
    coords, phases, homog = torch.rand(4, 5), torch.tensor([0, 2, 4, 5]), torch.rand(4)
    assert torch.equal(adapter(h, coords, phases, homog), h)
    tokens = torch.randn(4, 7, 32)
    assert torch.equal(adapter(tokens, coords, phases, homog), tokens)
    plan = PlanningHead(32, plan_steps=4)(h)
    assert torch.equal(plan, h.unsqueeze(1).expand(4, 4, 32))
    # After a training step the adapter moves: identity only at initialisation.
    loss = adapter(h, coords, phases, homog).pow(2).sum()
    loss.backward()
    assert adapter.up.weight.grad.abs().sum() > 0


def test_pooling_matches_turn_encoder_for_a_single_message(tiny_twin):
    """forward(input_ids, pool_mask) and the conversation encoder pool the same tokens."""
    from cognitivetwin_core.phase2.turn_encoder import tokenize_conversation

    messages = [Message("user", "Could you explain recursion briefly?")]
    vectors = tiny_twin.encode_conversation(messages)
    tokenized = tokenize_conversation(tiny_twin.tokenizer, messages)
    ids = torch.tensor([tokenized.input_ids])
    mask = torch.zeros_like(ids)
    start, end = tokenized.pool_spans[0]
    mask[0, start:end] = 1
    pooled = tiny_twin.pool(ids, pool_mask=mask)
    assert torch.allclose(pooled[0], torch.from_numpy(vectors[0]), atol=1e-4)


def test_save_load_round_trip(tiny_twin, tiny_model_dir, tmp_path):
    from cognitivetwin_core.phase2.twin_model import create_cognitivetwin_v2

    with torch.no_grad():
        for p in tiny_twin.components.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        tiny_twin.components.set_feature_statistics(torch.randn(64), torch.rand(64) + 0.5)
    tiny_twin.save_custom_components(tmp_path / "run")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["hidden_size"] == 64 and config["base_model"] == str(tiny_model_dir)
    assert config["pattern_names"][0] == "question" and len(config["pattern_names"]) == 12

    hidden = torch.randn(3, 64)
    tiny_twin.eval()
    expected = tiny_twin(hidden_states=hidden)
    loaded = create_cognitivetwin_v2(components_dir=tmp_path / "run", load_base_model=False, device="cpu")
    loaded.eval()
    assert loaded.config.plan_steps == 3
    got = loaded(hidden_states=hidden)
    for name in ("style_signature", "pattern_logits", "plan_steps", "stylometrics"):
        assert torch.allclose(getattr(expected, name), getattr(got, name), atol=1e-6), name
    # The seed's entry point: a fresh model, then load_custom_components.
    fresh = create_cognitivetwin_v2(base_model_path=str(tiny_model_dir), load_base_model=False, device="cpu")
    fresh.load_custom_components(tmp_path / "run").eval()
    assert torch.allclose(fresh(hidden_states=hidden).plan_steps, expected.plan_steps, atol=1e-6)


def test_mismatched_hidden_size_is_refused(tiny_twin, tmp_path):
    from cognitivetwin_core.phase2.twin_model import TwinComponents, TwinConfig

    TwinComponents(TwinConfig(hidden_size=576)).to("cpu")
    from cognitivetwin_core.phase2.twin_model import save_components

    save_components(TwinComponents(TwinConfig(hidden_size=576, base_model="smollm2-135m")), tmp_path / "other")
    with pytest.raises(InputError, match="hidden size 576.*hidden size 64"):
        tiny_twin.load_custom_components(tmp_path / "other")
    with pytest.raises(InputError, match="holds no Phase 2 model"):
        tiny_twin.load_custom_components(tmp_path)


def test_device_selection(monkeypatch):
    from cognitivetwin_core.models import devices as device_selection

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device_selection.select_device("auto") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert device_selection.select_device("auto") == "mps"
    assert device_selection.autocast_dtype("mps", "llama") == torch.float16
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert device_selection.select_device("auto") == "cpu"
    assert device_selection.select_device(None) == "cpu"
    assert device_selection.autocast_dtype("cpu") is None
    with pytest.raises(CognitiveTwinError, match="no CUDA GPU"):
        device_selection.select_device("cuda")
    with pytest.raises(CognitiveTwinError, match="Unknown device"):
        device_selection.select_device("tpu")
    assert device_selection.is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate"))


def test_threads_leave_one_core_free(monkeypatch):
    from cognitivetwin_core.models.devices import configure_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setattr("os.cpu_count", lambda: 4)
        assert configure_threads(leave_one_core_free=True) == 3
        assert configure_threads(num_threads=1) == 1
        assert configure_threads() == 1  # nothing asked: left as is
    finally:
        torch.set_num_threads(before)


def test_a_run_saved_before_position_features_still_loads(tmp_path):
    """Format 1 folders (planning head without position features, unscaled) load and run."""
    from cognitivetwin_core.phase2.twin_model import (
        TwinComponents,
        TwinConfig,
        create_cognitivetwin_v2,
        save_components,
    )

    torch.manual_seed(4)
    old = TwinComponents(TwinConfig(hidden_size=576, planning_position=False, planning_scale=1.0))
    with torch.no_grad():
        old.planning_head.up.weight.normal_(0, 0.05)
    save_components(old, tmp_path / "old")
    config_path = tmp_path / "old" / "config.json"
    config = json.loads(config_path.read_text())
    config["format_version"] = 1
    del config["planning_position"], config["planning_scale"]
    config_path.write_text(json.dumps(config))

    loaded = create_cognitivetwin_v2(components_dir=tmp_path / "old", load_base_model=False, device="cpu").eval()
    assert loaded.config.planning_position is False and loaded.components.planning_head.position is None
    hidden = torch.randn(2, 576)
    old.eval()
    with torch.no_grad():
        expected = old(hidden, *_trajectory(2))
        got = loaded(hidden_states=hidden, trajectory_coords=_trajectory(2)[0], phase_id=_trajectory(2)[1])
    assert torch.allclose(expected.plan_steps, got.plan_steps, atol=1e-5)
    # ...and the playground analyses a message with it (pooled state given: no base needed).
    from cognitivetwin_core.playground.analysis import analyze

    result = analyze("why does it hang?", None, loaded, pooled=hidden[0].numpy())
    assert len(result.plan_vectors) == 4 and result.plan_horizons == [1, 2, 3, 4]
    assert len(result.pattern_probabilities) == 12
    # A new run's head reads the position: its plan steps move with the depth once trained.
    new = TwinComponents(TwinConfig(hidden_size=576)).eval()
    assert new.planning_head.position is not None
    with torch.no_grad():
        new.planning_head.up.weight.normal_(0, 0.05)
        coords, phases, homogeneity = _trajectory(2)
        deep = coords.clone()
        deep[:, 0] = 1.0
        moved = new(hidden, deep, phases, homogeneity).plan_steps - new(hidden, coords, phases, homogeneity).plan_steps
    assert moved.abs().max() > 1e-3


def _trajectory(batch):
    coords = torch.tensor([[0.0, 0.33, 1.0, 0.0, 0.5]]).expand(batch, 5).clone()
    return coords, torch.zeros(batch, dtype=torch.long), torch.ones(batch)
