"""Training feeds batches from data put on the device once, and reads losses on the host only
every N steps: the same numbers as reading every step (no GPU here: the CPU runs the same
code; on CUDA only the defaults differ)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _reference_gather(data, cached, conversation_ids, plan_steps):
    """The pre-change batch builder: rows from the memory map, targets built in Python."""
    rows = [np.asarray(cached.conversation(c), dtype=np.float32) for c in conversation_ids]
    index = torch.tensor([i for c in conversation_ids for i in range(data.offsets[c], data.offsets[c + 1])])
    targets, mask, conv_of = [], [], []
    position = 0
    for local, c in enumerate(conversation_ids):
        n = data.offsets[c + 1] - data.offsets[c]
        for t in range(n):
            targets.append([position + t + k if t + k < n else 0 for k in range(1, plan_steps + 1)])
            mask.append([1.0 if t + k < n else 0.0 for k in range(1, plan_steps + 1)])
            conv_of.append(local)
        position += n
    return {
        "pooled": torch.from_numpy(np.concatenate(rows, axis=0)),
        "coords": data.coords[index],
        "phases": data.phases[index],
        "homogeneity": data.homogeneity[index],
        "patterns": data.patterns[index],
        "stylometrics": data.stylometrics[index],
        "roles": data.roles[index],
        "conversation": torch.tensor(conv_of),
        "plan_targets": torch.tensor(targets, dtype=torch.long),
        "plan_mask": torch.tensor(mask),
    }


def _config(tiny_model_dir, tmp_path, name, **overrides):
    from cognitivetwin_core.phase2.config import Phase2Config

    settings = dict(
        base_model=str(tiny_model_dir),
        output_dir=str(tmp_path / name),
        epochs=2,
        device="cpu",
        cache_dir=str(tmp_path / "cache"),
        seed=5,
        num_threads=1,
    )
    settings.update(overrides)
    return Phase2Config(**settings)


def test_device_resident_batches_equal_the_memory_map_path(tiny_model_dir, tmp_path, demo_conversations):
    from cognitivetwin_core.phase2.feature_cache import encode_with_cache
    from cognitivetwin_core.phase2.trainer import Phase2Trainer

    conversations = demo_conversations[:10]
    trainer = Phase2Trainer(_config(tiny_model_dir, tmp_path, "r"), conversations=conversations)
    cached, _ = encode_with_cache(conversations, base_model=str(tiny_model_dir), cache_dir=tmp_path / "cache")
    trainer._data, trainer._cached, trainer._device = trainer._annotations(conversations), cached, "cpu"
    trainer.config = dataclasses.replace(trainer.config, plan_steps=3)
    for ids in ([0], [3, 1, 7], [9, 8, 2, 5, 4], list(range(10))):
        new = trainer._gather(ids)
        old = _reference_gather(trainer._data, cached, ids, 3)
        assert new.keys() == old.keys()
        for name in old:
            assert new[name].dtype == old[name].dtype, name
            assert torch.equal(new[name], old[name]), name


def test_defaults_follow_the_device():
    from cognitivetwin_core.phase2.config import Phase2Config

    left = Phase2Config()
    cpu = left.resolve_for_device("cpu")
    assert (cpu.batch_size, cpu.gradient_accumulation, cpu.log_every_steps) == (4, 4, 1)
    gpu = left.resolve_for_device("cuda:0")
    assert left.batch_size is None, "the config is never changed: resolving derives a new one"
    # The same conversations per update (16), a quarter of the steps, a host sync every 25.
    assert (gpu.batch_size, gpu.gradient_accumulation, gpu.log_every_steps) == (16, 1, 25)
    chosen = Phase2Config(batch_size=8, gradient_accumulation=2, log_every_steps=5).resolve_for_device("cuda")
    assert (chosen.batch_size, chosen.gradient_accumulation, chosen.log_every_steps) == (8, 2, 5)


@pytest.mark.slow
def test_logging_every_n_steps_trains_the_same_model(tiny_model_dir, tmp_path, demo_conversations):
    from cognitivetwin_core.phase2.trainer import Phase2Trainer

    conversations = demo_conversations[:24]
    runs = {}
    for every in (1, 3):
        config = _config(tiny_model_dir, tmp_path, f"every-{every}", log_every_steps=every)
        events = list(Phase2Trainer(config, conversations=conversations).run())
        assert events[-1].outcome == "completed", events[-1].message
        runs[every] = (events, json.loads((tmp_path / f"every-{every}" / "metrics.json").read_text()))
    steps_1 = [e for e in runs[1][0] if e.kind == "step"]
    steps_3 = [e for e in runs[3][0] if e.kind == "step"]
    per_epoch = steps_1[-1].steps_per_epoch  # 19 training conversations, 4 a batch: 5 steps
    assert len(steps_1) == 2 * per_epoch
    assert [e.step for e in steps_3] == [3, 5, 3, 5]  # every third step and each epoch's last
    # A read-out is the mean of the steps since the previous one.
    first_three = np.mean([e.losses["total"] for e in steps_1[:3]])
    assert steps_3[0].losses["total"] == pytest.approx(first_three, rel=1e-6)
    for a, b in zip(runs[1][1]["epochs"], runs[3][1]["epochs"]):
        assert a["train"] == pytest.approx(b["train"], rel=1e-9)
        assert a["metrics"] == b["metrics"]


def test_swapped_annotations_reach_the_batches(tiny_model_dir, tmp_path, demo_conversations):
    """Evaluating on altered annotations (a trajectory ablation swaps `_data`) must see them,
    though the features stay resident."""
    import copy

    from cognitivetwin_core.phase2.feature_cache import encode_with_cache
    from cognitivetwin_core.phase2.trainer import Phase2Trainer

    conversations = demo_conversations[:6]
    trainer = Phase2Trainer(_config(tiny_model_dir, tmp_path, "s"), conversations=conversations)
    cached, _ = encode_with_cache(conversations, base_model=str(tiny_model_dir), cache_dir=tmp_path / "cache")
    trainer._data, trainer._cached, trainer._device = trainer._annotations(conversations), cached, "cpu"
    trainer.config = dataclasses.replace(trainer.config, plan_steps=2)
    before = trainer._gather([0, 1])
    features = trainer._resident_data["features"]
    swapped = copy.copy(trainer._data)
    swapped.coords = trainer._data.coords + 1.0
    trainer._data = swapped
    after = trainer._gather([0, 1])
    assert torch.equal(after["coords"], before["coords"] + 1.0)
    assert trainer._resident_data["features"] is features  # not copied again
    assert torch.equal(after["pooled"], before["pooled"])


def _reference_losses(trainer, components, conversation_ids):
    """The pre-change losses of one batch: one pass, every mean over the whole batch."""
    import torch.nn.functional as F

    batch = trainer._gather(conversation_ids)
    z, out = trainer._forward(components, batch)
    group = batch["conversation"] * 8 + batch["roles"]
    positives = group[:, None] == group[None, :]
    eye = torch.eye(len(group), dtype=torch.bool)
    positives &= ~eye
    logits = (out.style_signature @ out.style_signature.T / trainer.config.temperature).masked_fill(eye, float("-inf"))
    anchors = positives.any(1)
    style = (
        torch.logsumexp(logits[anchors], dim=1)
        - torch.logsumexp(logits[anchors].masked_fill(~positives[anchors], float("-inf")), dim=1)
    ).mean()
    stylometric = (((out.stylometrics - batch["stylometrics"]) * trainer._stylometric_scale) ** 2).mean()
    pattern = F.binary_cross_entropy_with_logits(
        out.pattern_logits, batch["patterns"], pos_weight=trainer._pattern_pos_weight
    )
    cosine = F.cosine_similarity(out.plan_steps, z[batch["plan_targets"]], dim=-1)
    planning = ((1 - cosine) * batch["plan_mask"]).sum() / batch["plan_mask"].sum().clamp_min(1.0)
    weight = trainer.config.weight
    total = (
        weight("style") * style
        + weight("stylometric") * stylometric
        + weight("pattern") * pattern
        + weight("planning") * planning
    )
    return {"total": total, "style": style, "stylometric": stylometric, "pattern": pattern, "planning": planning}


def test_one_pass_over_an_update_gives_each_batch_its_own_losses_and_gradients(
    tiny_model_dir, tmp_path, demo_conversations
):
    """The batches of one update go through the heads in one pass (`_group_losses`): each
    batch's losses and the update's gradient are those of a pass and a backward per batch."""
    from cognitivetwin_core.phase2.feature_cache import encode_with_cache
    from cognitivetwin_core.phase2.trainer import Phase2Trainer

    conversations = demo_conversations[:12]
    trainer = Phase2Trainer(_config(tiny_model_dir, tmp_path, "g"), conversations=conversations)
    cached, _ = encode_with_cache(conversations, base_model=str(tiny_model_dir), cache_dir=tmp_path / "cache")
    trainer.config = trainer.config.resolve_for_device("cpu")
    trainer.encoding_settings = trainer.encoding_settings_for("cpu")
    components = trainer._setup_training(conversations, cached, "cpu", "digest").components
    components.eval()  # no dropout: one pass and four would draw different masks
    with torch.no_grad():  # trained-looking weights: a fresh adapter and planner are the identity
        for parameter in components.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    batches = [[0, 3, 5], [1, 2], [4, 6, 7, 8], [9]]

    expected, gradients = [], {}
    for ids in batches:
        components.zero_grad(set_to_none=True)
        losses = _reference_losses(trainer, components, ids)
        (losses["total"] / 4).backward()
        expected.append({name: float(value) for name, value in losses.items()})
        for name, parameter in components.named_parameters():
            if parameter.grad is not None:
                gradients[name] = gradients.get(name, 0) + parameter.grad.clone()

    components.zero_grad(set_to_none=True)
    group, examples = trainer._group_losses(components, batches)
    (sum(losses["total"] for losses in group) / 4).backward()
    offsets = trainer._data.offsets
    assert examples == [sum(offsets[c + 1] - offsets[c] for c in ids) for ids in batches]
    for losses, reference in zip(group, expected):
        assert {name: float(value) for name, value in losses.items()} == pytest.approx(reference, rel=1e-5, abs=1e-7)
    assert len({round(reference["total"], 6) for reference in expected}) == len(batches)  # four different batches
    assert gradients.keys() == {n for n, p in components.named_parameters() if p.grad is not None}
    for name, parameter in components.named_parameters():
        if name in gradients:
            assert torch.allclose(parameter.grad, gradients[name], rtol=1e-4, atol=1e-6), name
