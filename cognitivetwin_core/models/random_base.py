"""Random-weight bases shaped like the catalog models, built in code (no downloads).

Tests and `benchmarks/phase2_scale.py` need a base of each catalog architecture laid out
exactly as Hugging Face loads the real one: Llama and Qwen3 as `*ForCausalLM`, Gemma 3 4B as
`Gemma3ForConditionalGeneration` (a `text_config` and a `vision_config`, no top-level
`hidden_size`), and text-only Gemma 3 as `Gemma3ForCausalLM`. `size="full"` gives the real
dimensions (for the benchmark); `size="tiny"` a few-layer, 64-wide copy of the same class.

The tokenizer is the embedded SmolLM2 tokenizer with the family's chat-template markers added
as special tokens and a family-style chat template, so rendering, role mapping and the
vocabulary size go through the same code paths as the real model.

Public:
    SHAPES: shape name -> family ("llama", "qwen3", "gemma3", "gemma3-text", "smollm2")
    build_random_base(shape, folder, size="tiny", dtype=torch.float32, seed=0, device="cpu") -> Path
"""

from __future__ import annotations

from pathlib import Path

from cognitivetwin_core.errors import InputError

SHAPES = {
    "tiny": "llama",
    "llama": "llama",
    "llama-3.2-1b": "llama",
    "llama-3.2-3b": "llama",
    "llama-3.1-8b": "llama",
    "qwen3": "qwen3",
    "qwen3-4b": "qwen3",
    "gemma3": "gemma3",
    "gemma-3-4b": "gemma3",
    "gemma3-text": "gemma3-text",
    "smollm2": "smollm2",
    "smollm2-135m": "smollm2",
}

# Real dimensions (from each model's published config.json).
_FULL = {
    "llama-3.2-1b": dict(hidden=2048, inter=8192, layers=16, heads=32, kv=8, head_dim=64, vocab=128256, tie=True),
    "llama-3.2-3b": dict(hidden=3072, inter=8192, layers=28, heads=24, kv=8, head_dim=128, vocab=128256, tie=True),
    "llama-3.1-8b": dict(hidden=4096, inter=14336, layers=32, heads=32, kv=8, head_dim=128, vocab=128256, tie=False),
    "qwen3-4b": dict(hidden=2560, inter=9728, layers=36, heads=32, kv=8, head_dim=128, vocab=151936, tie=True),
    "gemma-3-4b": dict(hidden=2560, inter=10240, layers=34, heads=8, kv=4, head_dim=256, vocab=262208, tie=True),
    "smollm2-135m": dict(hidden=576, inter=1536, layers=30, heads=9, kv=3, head_dim=64, vocab=49152, tie=True),
}
_TINY = dict(hidden=64, inter=128, layers=2, heads=4, kv=2, head_dim=16, vocab=0, tie=True)
_DEFAULT_FULL = {
    "llama": "llama-3.2-3b",
    "qwen3": "qwen3-4b",
    "gemma3": "gemma-3-4b",
    "gemma3-text": "gemma-3-4b",
    "smollm2": "smollm2-135m",
}

_LLAMA_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
_CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# As Gemma's own: no system role (folded into the first user turn), 'assistant' is 'model'.
_GEMMA_TEMPLATE = (
    "{{ bos_token }}{% if messages and messages[0]['role'] == 'system' %}"
    "{% set prefix = messages[0]['content'] | trim + '\n\n' %}{% set rest = messages[1:] %}"
    "{% else %}{% set prefix = '' %}{% set rest = messages %}{% endif %}"
    "{% for m in rest %}{% if m['role'] == 'assistant' %}{% set role = 'model' %}"
    "{% else %}{% set role = m['role'] %}{% endif %}"
    "<start_of_turn>{{ role }}\n{% if loop.first %}{{ prefix }}{% endif %}{{ m['content'] | trim }}"
    "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
_FAMILY_TOKENS = {
    "llama": (["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"], _LLAMA_TEMPLATE),
    "qwen3": (["<|im_start|>", "<|im_end|>", "<think>", "</think>"], _CHATML_TEMPLATE),
    "gemma3": (
        ["<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>", "<image_soft_token>"],
        _GEMMA_TEMPLATE,
    ),
    "gemma3-text": (["<start_of_turn>", "<end_of_turn>"], _GEMMA_TEMPLATE),
    "smollm2": ([], None),  # the embedded tokenizer's own ChatML template
}


def family_of(shape: str) -> str:
    try:
        return SHAPES[shape]
    except KeyError:
        raise InputError(f"Unknown model shape {shape!r}; use one of: {', '.join(SHAPES)}.") from None


_TEXT_MODEL_TYPE = {
    "llama": "llama",
    "smollm2": "llama",
    "qwen3": "qwen3",
    "gemma3": "gemma3_text",
    "gemma3-text": "gemma3_text",
}


def text_model_type(shape: str) -> str:
    """The language model's `model_type` of a shape (what the precision choice looks at)."""
    return _TEXT_MODEL_TYPE[family_of(shape)]


def _tokenizer(family: str):
    from cognitivetwin_core.models.loader import load_tokenizer

    tokenizer = load_tokenizer("smollm2-135m")
    added, template = _FAMILY_TOKENS[family]
    if added:
        tokenizer.add_special_tokens({"additional_special_tokens": added})
    if template:
        tokenizer.chat_template = template
    return tokenizer


def _dims(shape: str, family: str, size: str) -> dict:
    if size == "tiny":
        return dict(_TINY)
    if size != "full":
        raise InputError(f"Unknown size {size!r}: use tiny or full.")
    return dict(_FULL[shape if shape in _FULL else _DEFAULT_FULL[family]])


def build_config(shape: str, size: str = "tiny", vocab_size: int | None = None, special: dict | None = None):
    """The transformers config of a random base of `shape` (see SHAPES)."""
    family = family_of(shape)
    d = _dims(shape, family, size)
    vocab = max(d["vocab"], vocab_size or 0)
    special = special or {}
    common = dict(
        vocab_size=vocab,
        hidden_size=d["hidden"],
        intermediate_size=d["inter"],
        num_hidden_layers=d["layers"],
        num_attention_heads=d["heads"],
        num_key_value_heads=d["kv"],
        head_dim=d["head_dim"],
        tie_word_embeddings=d["tie"],
        **special,
    )
    if family in ("llama", "smollm2"):
        from transformers import LlamaConfig

        return LlamaConfig(max_position_embeddings=8192 if family == "smollm2" else 131072, **common)
    if family == "qwen3":
        from transformers import Qwen3Config

        return Qwen3Config(max_position_embeddings=40960, **common)
    from transformers import Gemma3TextConfig

    text = Gemma3TextConfig(
        max_position_embeddings=131072,
        sliding_window=1024 if size == "full" else 32,
        query_pre_attn_scalar=d["head_dim"],
        **common,
    )
    if family == "gemma3-text":
        return text
    from transformers import Gemma3Config, SiglipVisionConfig

    if size == "full":
        vision = SiglipVisionConfig(
            hidden_size=1152,
            intermediate_size=4304,
            num_hidden_layers=27,
            num_attention_heads=16,
            image_size=896,
            patch_size=14,
            vision_use_head=False,
        )
        tokens_per_image = 256
    else:
        vision = SiglipVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=28,
            patch_size=14,
            vision_use_head=False,
        )
        tokens_per_image = 4
    return Gemma3Config(
        text_config=text.to_dict(),
        vision_config=vision.to_dict(),
        mm_tokens_per_image=tokens_per_image,
        image_token_index=special.get("image_token_index", 0),
        boi_token_index=special.get("boi_token_index", 0),
        eoi_token_index=special.get("eoi_token_index", 0),
        tie_word_embeddings=d["tie"],
    )


def _model_class(family: str):
    if family == "gemma3":
        from transformers import Gemma3ForConditionalGeneration

        return Gemma3ForConditionalGeneration
    if family == "gemma3-text":
        from transformers import Gemma3ForCausalLM

        return Gemma3ForCausalLM
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM


def build_random_base(
    shape: str, folder: str | Path, *, size: str = "tiny", dtype=None, seed: int = 0, device: str = "cpu"
) -> Path:
    """Save a random-weight base of `shape` with its tokenizer into `folder`; return the folder."""
    import torch

    family = family_of(shape)
    folder = Path(folder)
    tokenizer = _tokenizer(family)
    special = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if family == "gemma3":
        ids = tokenizer.convert_tokens_to_ids(["<image_soft_token>", "<start_of_image>", "<end_of_image>"])
        special.update(image_token_index=ids[0], boi_token_index=ids[1], eoi_token_index=ids[2])
    config = build_config(shape, size, vocab_size=len(tokenizer), special=special)
    dtype = dtype or torch.float32
    torch.manual_seed(seed)
    cls = _model_class(family)
    with torch.device(device):
        model = (
            cls.from_config(config, dtype=dtype)
            if hasattr(cls, "from_config")
            else cls._from_config(config, dtype=dtype)
        )
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    del model
    return folder
