"""Gemma 3 4B with a Phase 1 adapter. Hugging Face loads `google/gemma-3-4b-it` as
`Gemma3ForConditionalGeneration` (a `text_config`, a vision tower); every path that applies an
adapter (Phase 2 encoding, the playground chat and evaluation, the twin export) loads the text
model alone, and adapters named after the full model's layout apply to it. The tiny base here
is saved exactly as transformers saves that class (see models/random_base.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.paths import resources_dir
from cognitivetwin_core.phase1.jobs import Phase1Settings, read_chat_jsonl

pytestmark = pytest.mark.usefixtures("torch_one_thread")

TOWERS = ("vision", "multi_modal")


@pytest.fixture(scope="module")
def gemma3(tiny_catalog_model) -> Path:
    folder = tiny_catalog_model("gemma3")
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["Gemma3ForConditionalGeneration"] and "hidden_size" not in config
    return folder


def _ids():
    import torch

    return torch.tensor([[2, 105, 2364, 107, 3, 1841, 900, 412, 77, 106, 107, 105, 4368]])


def _logits(model):
    import torch

    with torch.no_grad():
        return model(input_ids=_ids()).logits.float()


def _full_model(folder):
    from transformers import Gemma3ForConditionalGeneration

    return Gemma3ForConditionalGeneration.from_pretrained(folder).eval()


def _no_towers(model) -> bool:
    return not any(t in name for name, _ in model.named_parameters() for t in TOWERS)


def test_the_base_loads_as_its_text_model_with_the_full_models_outputs(gemma3):
    import torch

    from cognitivetwin_core.models.loader import load_base_model

    model, _ = load_base_model(gemma3)
    assert type(model).__name__ == "Gemma3ForCausalLM" and _no_towers(model)
    assert torch.allclose(_logits(model), _logits(_full_model(gemma3)), atol=1e-6)


def _adapter_on_full_model(folder: Path, out: Path, target_modules, *, hub_layout: bool = False) -> Path:
    """A LoRA adapter made with PEFT on the full image-text model, with random (non-zero)
    weights. `hub_layout`: its names rewritten to transformers 4's layout
    (`language_model.model.layers`), as most Gemma 3 adapters on the Hub are."""
    import torch
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file, save_file

    torch.manual_seed(5)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=target_modules, init_lora_weights=False)
    get_peft_model(_full_model(folder), config).save_pretrained(out)
    if hub_layout:
        weights = load_file(str(out / "adapter_model.safetensors"))
        save_file(
            {k.replace(".model.language_model.", ".language_model.model."): v for k, v in weights.items()},
            str(out / "adapter_model.safetensors"),
        )
        settings = json.loads((out / "adapter_config.json").read_text())
        settings["target_modules"] = r"language_model\.model\..*\.(q_proj|v_proj)"
        (out / "adapter_config.json").write_text(json.dumps(settings))
    return out


@pytest.mark.slow
@pytest.mark.parametrize(
    "layout",
    [
        "anchored on the language model (transformers 5)",
        "short names, vision tower wrapped too",
        "transformers 4 / Hub layout",
    ],
)
def test_an_adapter_made_on_the_full_model_applies_to_the_text_model(gemma3, tmp_path, layout):
    import torch
    from peft import PeftModel
    from safetensors import safe_open

    from cognitivetwin_core.models.frozen_base import load_frozen_base

    anchored = r"model\.language_model\..*\.(q_proj|v_proj)"
    targets = ["q_proj", "v_proj"] if layout.startswith("short") else anchored
    adapter = _adapter_on_full_model(gemma3, tmp_path / "adapter", targets, hub_layout=layout.startswith("trans"))
    with safe_open(str(adapter / "adapter_model.safetensors"), "pt") as handle:
        keys = list(handle.keys())
    assert all("language_model" in k for k in keys if "vision" not in k)
    assert any("vision" in k for k in keys) == layout.startswith("short")
    # What the full model with this adapter says (the vision tower's LoRA does not touch text).
    reference_adapter = adapter
    if layout.startswith("trans"):  # the same weights in the layout this transformers loads
        reference_adapter = _adapter_on_full_model(gemma3, tmp_path / "reference", anchored)
    full = PeftModel.from_pretrained(_full_model(gemma3), str(reference_adapter))
    expected = _logits(full)

    model, _ = load_frozen_base(gemma3, adapter, device="cpu")
    assert isinstance(model, PeftModel) and _no_towers(model)
    assert type(model.get_base_model()).__name__ == "Gemma3ForCausalLM"
    wrapped = [n for n, m in model.named_modules() if hasattr(m, "lora_A")]
    assert len(wrapped) == 4 and all(re.fullmatch(r".*model\.layers\.\d\.self_attn\.[qv]_proj", n) for n in wrapped)
    got = _logits(model)
    assert torch.allclose(got, expected, atol=1e-5)
    with model.disable_adapter():
        base = _logits(model)
    assert not torch.allclose(got, base, atol=1e-3)  # the adapter's weights are applied


@pytest.mark.slow
def test_a_local_lora_on_gemma3_4b_drives_encoding_the_playground_and_the_export(gemma3, tmp_path):
    import numpy as np
    import torch
    from safetensors import safe_open

    from cognitivetwin_core.data.importers import read_conversations
    from cognitivetwin_core.models.loader import load_base_model
    from cognitivetwin_core.phase1.local_lora import train_local_lora
    from cognitivetwin_core.phase1.twin_export import export_twin
    from cognitivetwin_core.phase2.feature_cache import encode_with_cache
    from cognitivetwin_core.playground.chat import load_twin

    conversations = read_chat_jsonl(resources_dir() / "demo" / "conversations.jsonl")[:4]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"messages": c}) + "\n" for c in conversations), encoding="utf-8")
    settings = Phase1Settings(base_model=str(gemma3), epochs=2, max_seq_length=96, learning_rate=5e-3)
    result = train_local_lora(data, gemma3, tmp_path / "adapter", settings, device="cpu", max_batch_tokens=200)
    with safe_open(str(result.adapter_dir / "adapter_model.safetensors"), "pt") as handle:
        keys = list(handle.keys())
    # Trained on the text model: its layout, nothing of a vision tower.
    assert keys and all(k.startswith("base_model.model.model.layers.") for k in keys), keys

    # The playground (chat and evaluation load the twin this way).
    twin = load_twin(result.adapter_dir, gemma3, device="cpu")
    assert _no_towers(twin.model) and type(twin.model.get_base_model()).__name__ == "Gemma3ForCausalLM"
    tuned = _logits(twin.model)
    with twin.model.disable_adapter():
        assert not torch.allclose(tuned, _logits(twin.model), atol=1e-4)

    # Phase 2 encoding with the adapter: other vectors than the bare base's.
    messages = read_conversations("demo")[0][:3]
    with_adapter, _ = encode_with_cache(
        messages, base_model=gemma3, adapter_dir=result.adapter_dir, cache_dir=tmp_path / "cache", device="cpu"
    )
    bare, _ = encode_with_cache(messages, base_model=gemma3, cache_dir=tmp_path / "cache", device="cpu")
    a, b = np.asarray(with_adapter.features, dtype=np.float32), np.asarray(bare.features, dtype=np.float32)
    assert a.shape == b.shape and np.isfinite(a).all() and not np.allclose(a, b, atol=1e-3)

    # The export merges the adapter into the text model.
    export = export_twin(result.adapter_dir, tmp_path / "export", base_model=gemma3)
    merged_config = json.loads((tmp_path / "export" / "merged" / "config.json").read_text())
    assert merged_config["architectures"] == ["Gemma3ForCausalLM"] and "vision_config" not in merged_config
    merged, _ = load_base_model(tmp_path / "export" / "merged")
    assert torch.allclose(_logits(merged), tuned, atol=1e-4)
    assert export is not None


@pytest.mark.slow
def test_a_local_lora_checkpoint_of_the_full_model_resumes_on_the_text_model(gemma3, tmp_path):
    """A Gemma 3 4B run checkpointed when the full image-text model was trained (names
    `model.language_model.layers…`) continues on the text model with its weights."""
    import torch
    from safetensors.torch import load_file, save_file

    from cognitivetwin_core.errors import CancelledError
    from cognitivetwin_core.phase1.local_lora import LocalLoraRun, train_local_lora

    conversations = read_chat_jsonl(resources_dir() / "demo" / "conversations.jsonl")[:4]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"messages": c}) + "\n" for c in conversations), encoding="utf-8")
    settings = Phase1Settings(base_model=str(gemma3), epochs=3, max_seq_length=96)
    work, steps, stop = tmp_path / "work", [], Cancellation()
    options = dict(work_dir=work, device="cpu", max_batch_tokens=200)
    with pytest.raises(CancelledError):
        train_local_lora(
            data,
            gemma3,
            tmp_path / "out",
            settings,
            on_event=lambda e: e.kind == "step" and (steps.append(e.step) or len(steps) < 2 or stop.cancel()),
            cancellation=stop,
            **options,
        )
    path = work / "checkpoint" / "adapter_model.safetensors"
    saved = load_file(str(path))
    old_names = {
        k.replace("base_model.model.model.", "base_model.model.model.language_model."): v for k, v in saved.items()
    }
    save_file(old_names, str(path))

    run = LocalLoraRun(data, gemma3, tmp_path / "out", settings, **options)
    run.prepare()
    assert run.resume() and run.step_index == 2
    from peft import get_peft_model_state_dict

    loaded = get_peft_model_state_dict(run.model)
    assert loaded.keys() == saved.keys()
    assert all(torch.equal(loaded[k], saved[k]) for k in saved)

    save_file({k + "_unknown": v for k, v in saved.items()}, str(path))  # names that fit nothing
    fresh = LocalLoraRun(data, gemma3, tmp_path / "out", settings, **options)
    fresh.prepare()
    assert not fresh.resume() and fresh.step_index == 0


def test_an_untied_lm_head_is_read_from_the_checkpoint(gemma3, tmp_path):
    """The Hub layout keeps an untied head at `language_model.lm_head.weight`: it is renamed to
    the text model's `lm_head`, not into its decoder."""
    import shutil

    import torch
    from transformers import Gemma3ForConditionalGeneration

    from cognitivetwin_core.models.loader import load_base_model

    config = Gemma3ForConditionalGeneration.config_class.from_pretrained(gemma3)
    config.tie_word_embeddings = config.text_config.tie_word_embeddings = False
    torch.manual_seed(1)
    full = Gemma3ForConditionalGeneration(config).eval()
    folder = tmp_path / "untied"
    full.save_pretrained(folder)
    for path in gemma3.iterdir():
        if "token" in path.name or path.suffix == ".jinja":
            shutil.copy(path, folder)
    model, _ = load_base_model(folder)
    assert not model.config.tie_word_embeddings and _no_towers(model)
    assert torch.equal(model.lm_head.weight, full.lm_head.weight)
    assert not torch.equal(model.lm_head.weight, model.model.embed_tokens.weight)
    assert torch.allclose(_logits(model), _logits(full), atol=1e-6)
