"""Will this base fit? A memory check made from the model's config before any weight is loaded.

An 8B base on a machine without the memory is otherwise killed by the operating system
with no message. `check_memory` estimates RAM and device memory for

- "encode": Phase 2's pass over the conversations (no LM head, no gradients), and
- "lora": local LoRA training (frozen weights, small trainable matrices, activations kept
  for the backward pass, the vocabulary projection at labelled positions),

compares them with what is free now (psutil; `torch.cuda.mem_get_info`) and returns a
`MemoryVerdict` whose `text` is one plain sentence, with advice when it does not fit. The
CLI calls `require_memory` before loading; the app shows `check_memory(...).text`. See
docs/models.md for the formulas in words.

The figures are estimates (within about 20% on the catalog bases): the check refuses only
what clearly cannot fit, with a 10% margin.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cognitivetwin_core.errors import CognitiveTwinError

GIB = 1024**3
# The Python interpreter, torch, tokenizers and the app itself, before any model.
PROCESS_OVERHEAD = int(1.0 * GIB)
# The CUDA context and the allocator's reserve on a GPU.
CUDA_CONTEXT = int(0.6 * GIB)
SAFETY = 0.9  # use at most 90% of what is free
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
PURPOSES = ("encode", "lora")


class InsufficientMemoryError(CognitiveTwinError):
    """The base, with this device, dtype and batch, does not fit in the memory that is free."""


@dataclass(frozen=True)
class ModelShape:
    """The sizes that decide memory, read from a Hugging Face config (text part only)."""

    hidden_size: int
    num_layers: int
    intermediate_size: int
    vocab_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    tie_embeddings: bool = True
    vision_parameters: int = 0  # a multimodal checkpoint's vision tower (Gemma 3 4B)

    @classmethod
    def from_config(cls, config: Mapping) -> ModelShape:
        """From a config.json dictionary; a multimodal one's `text_config` is used."""
        text = config.get("text_config") or config
        hidden = int(text.get("hidden_size") or text.get("n_embd") or text.get("d_model") or 0)
        layers = int(text.get("num_hidden_layers") or text.get("n_layer") or 0)
        if not hidden or not layers:
            raise ValueError("the config names no hidden_size / num_hidden_layers")
        heads = int(text.get("num_attention_heads") or max(1, hidden // 64))
        head_dim = int(text.get("head_dim") or hidden // heads)
        tie = config.get("tie_word_embeddings", text.get("tie_word_embeddings", True))
        return cls(
            hidden_size=hidden,
            num_layers=layers,
            intermediate_size=int(text.get("intermediate_size") or 4 * hidden),
            vocab_size=int(text.get("vocab_size") or config.get("vocab_size") or 32_000),
            num_heads=heads,
            num_kv_heads=int(text.get("num_key_value_heads") or heads),
            head_dim=head_dim,
            tie_embeddings=bool(tie),
            vision_parameters=_vision_parameters(config.get("vision_config")),
        )

    @property
    def layer_parameters(self) -> int:
        attention = 2 * self.hidden_size * self.num_heads * self.head_dim  # q and o
        attention += 2 * self.hidden_size * self.num_kv_heads * self.head_dim  # k and v
        return attention + 3 * self.hidden_size * self.intermediate_size  # gated MLP

    @property
    def embedding_parameters(self) -> int:
        return self.vocab_size * self.hidden_size

    def parameters(self, *, lm_head: bool = True, vision: bool = True) -> int:
        """Parameter count; without the LM head where only hidden states are needed."""
        total = self.num_layers * self.layer_parameters + self.embedding_parameters
        if lm_head and not self.tie_embeddings:
            total += self.embedding_parameters
        if vision:
            total += self.vision_parameters
        return total


def _vision_parameters(vision: Mapping | None) -> int:
    if not vision:
        return 0
    hidden = int(vision.get("hidden_size") or 0)
    layers = int(vision.get("num_hidden_layers") or 0)
    inter = int(vision.get("intermediate_size") or 4 * hidden)
    return layers * (4 * hidden * hidden + 2 * hidden * inter)


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int  # bytes of the model's weights in memory
    working: int  # activations, gradients, optimizer state: what the batch adds
    ram: int  # bytes of RAM the process will need
    device: int  # bytes of GPU memory (0 on the CPU and on Apple's shared memory)


@dataclass(frozen=True)
class MemoryVerdict:
    ok: bool
    text: str  # one plain sentence; the advice is in it when ok is False
    estimate: MemoryEstimate
    free_ram: int
    free_device: int | None  # None on the CPU


def estimate_memory(
    shape: ModelShape,
    *,
    purpose: str,
    device: str = "cpu",
    dtype: str = "float32",
    batch_tokens: int = 1024,
    lora_rank: int = 8,
    lora_modules: int = 2,
    gradient_checkpointing: bool = True,
) -> MemoryEstimate:
    """Bytes of RAM and device memory for `purpose` ("encode" or "lora") on `device`."""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}")
    width = DTYPE_BYTES[dtype]
    h, inter, tokens = shape.hidden_size, shape.intermediate_size, max(1, batch_tokens)
    # One decoder layer's live tensors: the residual, q/k/v/o, the MLP's three projections.
    layer_live = tokens * (6 * h + 3 * inter) * width
    if purpose == "encode":
        weights = shape.parameters(lm_head=False, vision=False) * width
        working = layer_live + tokens * h * 4  # plus the pooled float32 hidden states
    else:
        weights = shape.parameters(lm_head=True, vision=False) * width  # the text model alone (loader.py)
        lora = shape.num_layers * lora_modules * lora_rank * 2 * h
        trainable = lora * 4 * 4  # fp32 weights, gradients and Adam's two moments
        if gradient_checkpointing:
            saved = shape.num_layers * tokens * h * width + 2 * layer_live  # layer inputs + one recompute
        else:
            saved = shape.num_layers * layer_live
        # Worst case: every position is labelled; logits and their gradient in float32.
        vocabulary = 2 * tokens * shape.vocab_size * 4
        working = trainable + saved + vocabulary
    if device.startswith("cuda"):
        # Weights are loaded straight onto the GPU; RAM holds the process and a loading buffer.
        ram = PROCESS_OVERHEAD + weights // 10
        return MemoryEstimate(weights, working, ram, weights + working + CUDA_CONTEXT)
    return MemoryEstimate(weights, working, PROCESS_OVERHEAD + weights + working, 0)


def free_memory(device: str) -> tuple[int, int | None]:
    """(free RAM, free memory on `device`, None for the CPU and MPS), in bytes."""
    import psutil

    from cognitivetwin_core.models.devices import free_memory_bytes

    return int(psutil.virtual_memory().available), free_memory_bytes(device)


def read_shape(base: str | Path) -> tuple[ModelShape, str]:
    """(shape, display name) of a base: from its config.json on disk, else from the catalog."""
    from cognitivetwin_core.models.catalog import resolve_base

    resolved = resolve_base(base)
    name = str(resolved) if isinstance(resolved, Path) else resolved.display_name
    folder = resolved if isinstance(resolved, Path) else _folder_if_present(base)
    if folder is not None and (Path(folder) / "config.json").is_file():
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
        return ModelShape.from_config(config), name
    return catalog_shape(resolved), name


def catalog_shape(spec) -> ModelShape:
    """A rough shape for a catalog base that is not on disk: its hidden size and depth with
    the usual proportions (MLP 3.5x, a 128k vocabulary, grouped-query attention)."""
    h, layers = spec.hidden_size, spec.num_layers
    return ModelShape(h, layers, int(3.5 * h), 128_256, max(1, h // 128), max(1, h // 512), 128)


def _folder_if_present(base) -> Path | None:
    try:
        from cognitivetwin_core.models.loader import base_model_dir

        return Path(base_model_dir(base))
    except CognitiveTwinError:
        return None


def _gib(size: int) -> str:
    return f"{size / GIB:.1f} GiB"


def check_memory(
    base: str | Path | ModelShape,
    *,
    purpose: str,
    device: str = "cpu",
    dtype: str = "float32",
    batch_tokens: int = 1024,
    name: str | None = None,
    free_ram: int | None = None,
    free_device: int | None = None,
    gpu_available: bool | None = None,
    **estimate_options,
) -> MemoryVerdict:
    """Whether `base` fits for `purpose` on `device`; `free_*` and `gpu_available` may be
    given (tests, or a caller that measured them) instead of being read from this machine."""
    if isinstance(base, ModelShape):
        shape, label = base, name or "this base"
    else:
        shape, label = read_shape(base)
        label = name or label
    estimate = estimate_memory(
        shape, purpose=purpose, device=device, dtype=dtype, batch_tokens=batch_tokens, **estimate_options
    )
    if free_ram is None or (device.startswith("cuda") and free_device is None):
        measured_ram, measured_device = free_memory(device)
        free_ram = measured_ram if free_ram is None else free_ram
        free_device = measured_device if free_device is None else free_device
    task = "Encoding your conversations with" if purpose == "encode" else "Training LoRA on"
    short_ram = estimate.ram > SAFETY * free_ram
    short_device = device.startswith("cuda") and estimate.device > SAFETY * (free_device or 0)
    if not short_ram and not short_device:
        where = (
            f"{_gib(estimate.device)} of GPU memory" if device.startswith("cuda") else f"{_gib(estimate.ram)} of RAM"
        )
        return MemoryVerdict(True, f"{task} {label} needs about {where}; this fits.", estimate, free_ram, free_device)
    if short_device:
        need, free, kind = estimate.device, free_device or 0, "GPU memory"
    else:
        need, free, kind = estimate.ram, free_ram, "RAM"

    def fits(other: ModelShape) -> bool:
        smaller = estimate_memory(
            other, purpose=purpose, device=device, dtype=dtype, batch_tokens=batch_tokens, **estimate_options
        )
        return smaller.ram <= SAFETY * free_ram and (
            not device.startswith("cuda") or smaller.device <= SAFETY * (free_device or 0)
        )

    advice = _advice(shape, estimate, fits, purpose=purpose, device=device, gpu_available=gpu_available)
    text = f"{task} {label} needs about {_gib(need)} of {kind} but only {_gib(free)} is free: {advice}."
    return MemoryVerdict(False, text, estimate, free_ram, free_device)


def _advice(shape: ModelShape, estimate: MemoryEstimate, fits, *, purpose: str, device: str, gpu_available) -> str:
    options = []
    if not device.startswith("cuda"):
        if gpu_available is None:
            gpu_available = _cuda_present()
        if gpu_available:
            options.append("train on the GPU (--device cuda)")
    if estimate.working > estimate.weights / 4:
        flag = "--max-batch-tokens" if purpose == "lora" else "--encode-batch-tokens"
        options.append(f"use a smaller batch ({flag})")
    smaller = _smaller_catalog_base(shape, fits)
    options.append(f"choose a smaller base such as {smaller}" if smaller else "choose a smaller base")
    return ", or ".join(options)


def _cuda_present() -> bool:
    import sys

    torch = sys.modules.get("torch")  # no torch import just for advice
    return bool(torch is not None and torch.cuda.is_available())


def _smaller_catalog_base(shape: ModelShape, fits) -> str | None:
    """The largest catalog base smaller than `shape` that would fit."""
    from cognitivetwin_core.models.catalog import CATALOG

    size = shape.hidden_size * shape.num_layers
    smaller = [s for s in CATALOG.values() if s.hidden_size * s.num_layers < size and fits(catalog_shape(s))]
    if not smaller:
        return None
    return max(smaller, key=lambda s: s.hidden_size * s.num_layers).short_name


def require_memory(base, **options) -> MemoryVerdict:
    """`check_memory`, raising `InsufficientMemoryError` (its sentence) when it does not fit."""
    verdict = check_memory(base, **options)
    if not verdict.ok:
        raise InsufficientMemoryError(verdict.text)
    return verdict
