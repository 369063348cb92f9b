"""Where and how local LoRA trains: device precision, the modules LoRA wraps, the tokens a
step on the device's memory, and the memory check before loading.

- On a GPU (`device`, chosen as Phase 2 chooses it: models/devices.py): bf16 weights under
  bf16 autocast where the GPU does bf16 natively, and tokens per step sized to free memory.
  The memory check of models/memory.py runs before loading.
- LoRA wraps the language model's modules only: an image-text base (Gemma 3 4B) is loaded
  as its text model alone (models/loader.py), so no vision tower is wrapped.
"""

from __future__ import annotations

from pathlib import Path

from cognitivetwin_core.errors import InputError
from cognitivetwin_core.phase1.assistant_tokens import DEFAULT_BATCH_TOKENS
from cognitivetwin_core.phase1.jobs import Phase1Settings

LOCAL_DEFAULT_MODULES = ("q_proj", "v_proj")


PRECISIONS = ("auto", "fp32", "bf16")


def choose_precision(device: str, requested: str | None = "auto") -> str:
    """ "bf16" (bf16 weights, bf16 autocast) or "fp32" for `device`.

    auto: bf16 on a GPU that does it natively (compute capability 8.0+), fp32 elsewhere: on
    the CPU bf16 matmuls are slower than fp32 on most processors. "bf16" may be asked for on the CPU (autocast works there too).
    """
    import torch

    from cognitivetwin_core.models.devices import working_dtype

    requested = (requested or "auto").lower()
    if requested not in PRECISIONS:
        raise InputError(f"Unknown precision {requested!r}: use one of {', '.join(PRECISIONS)}.")
    if requested != "auto":
        return requested
    # Phase 2's choice (compute capability 8.0+), without fp16: training in it needs loss scaling.
    return "bf16" if working_dtype(device) == torch.bfloat16 else "fp32"


def language_model_targets(model, modules: list[str]) -> list[str] | str:
    """PEFT `target_modules` that reach the language model only.

    A text-only model: the short names as given. A model with other towers (Gemma 3's
    vision tower and projector share names such as q_proj): a regex anchored on the
    language model's own path, so nothing outside it is wrapped.
    """
    import re

    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    prefix = next((name for name, module in model.named_modules() if module is decoder), None)
    towers = [n for n, _ in model.named_modules() if n and ("vision" in n or "multi_modal" in n)]
    if not towers or not prefix:
        return modules
    names = "|".join(re.escape(m) for m in modules)
    return rf"{re.escape(prefix)}\..*\.({names})"


def auto_batch_tokens(model, device: str, *, max_length: int, precision: str) -> int:
    """Padded tokens a step: the CPU default, or on a GPU the most its free memory holds.

    Tried from 16k down to 1k tokens with the memory model of models/memory.py, against
    the GPU memory free once the weights are loaded (80% of it, for the allocator).
    """
    if not device.startswith("cuda"):
        return DEFAULT_BATCH_TOKENS
    from cognitivetwin_core.models.memory import ModelShape, estimate_memory, free_memory

    shape = ModelShape.from_config(model.config.to_dict())
    _ram, free = free_memory(device)
    for tokens in (16384, 8192, 4096, 2048):
        need = estimate_memory(
            shape, purpose="lora", device=device, dtype="bfloat16" if precision == "bf16" else "float32"
        ).working
        need = need * tokens // DEFAULT_BATCH_TOKENS
        if tokens >= max_length and need < 0.8 * (free or 0):
            return tokens
    return DEFAULT_BATCH_TOKENS


def local_memory_verdict(
    base_model: str | Path,
    settings: Phase1Settings | None = None,
    *,
    device: str | None = "auto",
    precision: str | None = "auto",
    max_batch_tokens: int | None = None,
    **free,
):
    """Whether local LoRA on `base_model` fits on `device` (a `MemoryVerdict`, whose text
    the CLI prints and the app shows before Start); `free` may inject free_ram/free_device."""
    from cognitivetwin_core.models.devices import select_device
    from cognitivetwin_core.models.memory import check_memory

    settings = settings or Phase1Settings(base_model=str(base_model))
    device = select_device(device)
    precision = choose_precision(device, precision)
    return check_memory(
        base_model,
        purpose="lora",
        device=device,
        dtype="bfloat16" if precision == "bf16" else "float32",
        batch_tokens=max_batch_tokens or DEFAULT_BATCH_TOKENS,
        lora_rank=settings.lora_r,
        lora_modules=len(settings.target_modules or LOCAL_DEFAULT_MODULES),
        gradient_checkpointing=device != "cpu",
        **free,
    )
