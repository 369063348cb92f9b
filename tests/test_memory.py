"""The memory check made from a model's config before loading: refusals are one sentence
with advice, a tiny model passes, and the CLI refuses before anything is loaded."""

from __future__ import annotations

import json

import pytest

from cognitivetwin_core.models import memory
from cognitivetwin_core.models.memory import GIB, ModelShape, check_memory, read_shape

LLAMA_8B = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": 128256,
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "tie_word_embeddings": False,
}
GEMMA3_4B = {
    "model_type": "gemma3",
    "text_config": {
        "hidden_size": 2560,
        "intermediate_size": 10240,
        "num_hidden_layers": 34,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "head_dim": 256,
        "vocab_size": 262208,
    },
    "vision_config": {"hidden_size": 1152, "intermediate_size": 4304, "num_hidden_layers": 27},
}


def _one_sentence(text: str) -> bool:
    return text.endswith(".") and ". " not in text.replace("e.g. ", "")


@pytest.fixture()
def llama_8b_dir(tmp_path):
    """An 8B base as the loader would see it: its config alone (no weights are needed to refuse)."""
    folder = tmp_path / "llama-8b"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LLAMA_8B))
    return folder


def test_parameters_from_config_match_the_published_sizes():
    llama = ModelShape.from_config(LLAMA_8B)
    assert 7.9e9 < llama.parameters() < 8.1e9  # Llama 3.1 8B: 8.03B
    assert llama.parameters(lm_head=False) == llama.parameters() - 128256 * 4096
    gemma = ModelShape.from_config(GEMMA3_4B)  # no top-level hidden_size: the text config is read
    assert gemma.hidden_size == 2560 and gemma.vision_parameters > 3e8
    assert 3.5e9 < gemma.parameters() < 4.6e9  # Gemma 3 4B: 4.3B with its vision tower
    assert gemma.parameters(vision=False) < gemma.parameters()


def test_an_impossible_load_is_refused_with_one_sentence_and_advice(llama_8b_dir):
    verdict = check_memory(llama_8b_dir, purpose="lora", free_ram=1 * GIB, gpu_available=False)
    assert not verdict.ok
    assert "needs about" in verdict.text and "but only 1.0 GiB is free" in verdict.text
    assert "smaller base" in verdict.text and _one_sentence(verdict.text), verdict.text
    with pytest.raises(memory.InsufficientMemoryError, match="needs about"):
        memory.require_memory(llama_8b_dir, purpose="encode", free_ram=1 * GIB, gpu_available=False)


def test_the_advice_names_the_gpu_a_smaller_batch_or_a_fitting_catalog_base(llama_8b_dir):
    on_cpu = check_memory(llama_8b_dir, purpose="lora", free_ram=8 * GIB, gpu_available=True)
    assert not on_cpu.ok and "on the GPU (--device cuda)" in on_cpu.text
    gpu = check_memory(
        llama_8b_dir,
        purpose="lora",
        device="cuda",
        dtype="bfloat16",
        batch_tokens=8192,
        free_ram=64 * GIB,
        free_device=12 * GIB,
    )
    assert not gpu.ok and "GPU memory" in gpu.text
    assert "smaller batch (--max-batch-tokens)" in gpu.text
    assert "choose a smaller base such as" in gpu.text
    assert _one_sentence(gpu.text), gpu.text


def test_the_same_base_fits_where_there_is_room(llama_8b_dir):
    encode = check_memory(
        llama_8b_dir,
        purpose="encode",
        device="cuda",
        dtype="bfloat16",
        batch_tokens=8192,
        free_ram=32 * GIB,
        free_device=139 * GIB,
    )
    assert encode.ok and "fits" in encode.text
    assert 15 * GIB < encode.estimate.device < 25 * GIB  # 15 GB of bf16 weights without the LM head
    assert encode.estimate.ram < 4 * GIB  # loaded straight onto the GPU


def test_a_tiny_model_passes_with_this_machines_free_memory(tiny_model_dir):
    for purpose in ("encode", "lora"):
        verdict = check_memory(tiny_model_dir, purpose=purpose)
        assert verdict.ok, verdict.text
        assert verdict.free_ram > 0


def test_a_catalog_base_not_on_disk_is_sized_from_the_catalog():
    shape, name = read_shape("llama-3.1-8b")
    assert name == "Llama 3.1 8B Instruct"
    assert 6.5e9 < shape.parameters() < 9.5e9


def test_cli_refuses_before_loading(llama_8b_dir, tmp_path, monkeypatch, capsys):
    from cognitivetwin_core.cli import main

    monkeypatch.setattr(memory, "free_memory", lambda device: (1 * GIB, None))

    def no_loading(*args, **kwargs):
        raise AssertionError("the base was loaded despite the memory check")

    monkeypatch.setattr("cognitivetwin_core.models.loader.load_base_model", no_loading)
    args = ["phase2", "train", "--data-file", "demo", "--base-model", str(llama_8b_dir)]
    code = main([*args, "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code != 0 and "needs about" in err and "smaller base" in err
    assert not (tmp_path / "out").exists()
