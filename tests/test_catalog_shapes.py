"""Every catalog architecture end to end on a tiny random-weight base of its real layout:
loading only the language model, encoding, Phase 2 training, the playground."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import TINY_SHAPES

pytestmark = pytest.mark.usefixtures("torch_one_thread")

BACKBONE_CLASS = {
    "llama": "LlamaModel",
    "qwen3": "Qwen3Model",
    "gemma3": "Gemma3TextModel",  # the language model only: no vision tower, no LM head
    "gemma3-text": "Gemma3TextModel",
}


@pytest.mark.slow
@pytest.mark.parametrize("shape", TINY_SHAPES)
def test_frozen_base_is_the_language_model_backbone_only(tiny_catalog_model, shape):
    import torch

    from cognitivetwin_core.models.frozen_base import load_frozen_base
    from cognitivetwin_core.phase2.twin_model import base_hidden_size

    folder = tiny_catalog_model(shape)
    model, tokenizer = load_frozen_base(str(folder), device="cpu")
    assert type(model).__name__ == BACKBONE_CLASS[shape]
    names = [name for name, _ in model.named_parameters()]
    assert not any("lm_head" in n or "vision" in n or "multi_modal" in n for n in names)
    assert all(p.dtype == torch.float32 and not p.requires_grad for p in model.parameters())
    assert base_hidden_size(str(folder)) == 64
    # The backbone's weights are the checkpoint's, not a fresh initialisation.
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as handle:
        key = next(k for k in handle.keys() if k.endswith("layers.0.self_attn.q_proj.weight") and "vision" not in k)  # noqa: SIM118 (safe_open is not iterable)
        assert torch.equal(handle.get_tensor(key), model.layers[0].self_attn.q_proj.weight)


@pytest.mark.slow
@pytest.mark.parametrize("shape", TINY_SHAPES)
def test_encode_train_and_playground_on_each_shape(tiny_catalog_model, shape, tmp_path, demo_conversations):
    from cognitivetwin_core.phase2.config import Phase2Config
    from cognitivetwin_core.phase2.trainer import Phase2Trainer
    from cognitivetwin_core.playground.analysis import NeighbourIndex, analyze, load_playground_model

    folder = tiny_catalog_model(shape)
    conversations = demo_conversations[:8]
    config = Phase2Config(
        base_model=str(folder),
        output_dir=str(tmp_path / "run"),
        epochs=2,
        batch_size=3,
        gradient_accumulation=1,
        device="cpu",
        cache_dir=str(tmp_path / "cache"),
        num_threads=1,
    )
    events = list(Phase2Trainer(config, conversations=conversations).run())
    finished = events[-1]
    assert finished.kind == "finished" and finished.outcome == "completed", finished.message
    assert [e.kind for e in events].count("epoch") == 2
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    final = metrics["final"]["metrics"]
    assert final["planning_cosine"] is not None and np.isfinite(final["planning_cosine"])
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["hidden_size"] == 64 and saved["encoding"]["max_window_tokens"] == 1024

    model = load_playground_model(tmp_path / "run", device="cpu")
    index = NeighbourIndex.build(model, conversations, cache_dir=tmp_path / "cache")
    assert len(index) == sum(len(c.messages) for c in conversations)
    # The playground keyed the features as training did: the one cache entry was reused.
    assert len([p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]) == 1
    conversation = conversations[0]
    result = analyze(conversation.messages[2], conversation.messages[:2], model, neighbours_index=index)
    assert len(result.style_signature) == 256 and len(result.plan_steps) == 4
    assert all(np.isfinite(p) for p in result.pattern_probabilities.values())
