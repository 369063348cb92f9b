"""The random-weight catalog shapes are laid out as Hugging Face loads the real models."""

from __future__ import annotations

import json

import pytest

from tests.conftest import TINY_SHAPES

EXPECTED_ARCHITECTURE = {
    "llama": "LlamaForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "gemma3": "Gemma3ForConditionalGeneration",
    "gemma3-text": "Gemma3ForCausalLM",
}


@pytest.mark.slow
@pytest.mark.parametrize("shape", TINY_SHAPES)
def test_tiny_shape_is_laid_out_like_the_real_model(tiny_catalog_model, shape):
    from transformers import AutoConfig, AutoTokenizer

    folder = tiny_catalog_model(shape)
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == [EXPECTED_ARCHITECTURE[shape]]
    if shape == "gemma3":
        # As google/gemma-3-4b-it: no top-level hidden_size, a text and a vision config.
        assert "hidden_size" not in config
        assert config["text_config"]["hidden_size"] == 64
        assert "vision_config" in config
    loaded = AutoConfig.from_pretrained(folder)
    assert loaded.get_text_config().hidden_size == 64
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert loaded.get_text_config().vocab_size >= len(tokenizer)
    text = tokenizer.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}], tokenize=False
    )
    assert "hi" in text and "Be brief." in text
