"""Where and how an adapter trains on this computer: the device and its precision, the modules
LoRA wraps, the tokens a step on the device's memory, and the memory check before loading.

Any adapter-training run (local LoRA, preference tuning) plans with these:
`plan_device(device, precision, gradient_checkpointing)` gives a `DevicePlan` (device,
precision, dtype, `autocast()`); `require_lora_memory` checks before loading and
`local_memory_verdict` says the same for a form; `enable_gradient_checkpointing(model)`
and `language_model_targets(model, modules)` prepare the loaded model.

- On a GPU (`device`, chosen as Phase 2 chooses it: models/devices.py): bf16 weights under
  bf16 autocast where the GPU does bf16 natively, and tokens per step sized to free memory.
  The memory check of models/memory.py runs before loading.
- LoRA wraps the language model's modules only: an image-text base (Gemma 3 4B) is loaded
  as its text model alone (models/loader.py), so no vision tower is wrapped.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
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


@dataclass(frozen=True)
class DevicePlan:
    """Where a run trains and in which precision (bf16 weights under bf16 autocast, or fp32)."""

    device: str
    precision: str  # "bf16" or "fp32"
    gradient_checkpointing: bool

    @property
    def dtype_name(self) -> str:
        return "bfloat16" if self.precision == "bf16" else "float32"

    @property
    def dtype(self):
        import torch

        return getattr(torch, self.dtype_name)

    def autocast(self):
        """The context a forward pass runs in: bf16 autocast, or nothing in fp32."""
        if self.precision != "bf16":
            return contextlib.nullcontext()
        import torch

        return torch.autocast(device_type=self.device.split(":")[0], dtype=torch.bfloat16)


def plan_device(
    device: str | None = "auto", precision: str | None = "auto", gradient_checkpointing: bool | None = None
) -> DevicePlan:
    """The device (models/devices.py's choice for "auto"), its precision, and gradient
    checkpointing (by default on accelerators, whose memory is scarce; the CPU has RAM)."""
    from cognitivetwin_core.models.devices import select_device

    chosen = select_device(device)
    if gradient_checkpointing is None:
        gradient_checkpointing = chosen != "cpu"
    return DevicePlan(chosen, choose_precision(chosen, precision), bool(gradient_checkpointing))


def enable_gradient_checkpointing(model) -> None:
    """Recompute activations in the backward pass (non-reentrant: works with frozen inputs,
    so no input-grad hook is needed)."""
    enable = getattr(model, "activation_checkpointing_enable", None)  # transformers 5's name
    if enable is not None:
        enable({"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


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


def _lora_memory_arguments(
    base_model: str | Path, settings: Phase1Settings, plan: DevicePlan, batch_tokens: int | None
) -> dict:
    return {
        "purpose": "lora",
        "device": plan.device,
        "dtype": plan.dtype_name,
        "batch_tokens": batch_tokens or DEFAULT_BATCH_TOKENS,
        "lora_rank": settings.lora_r,
        "lora_modules": len(settings.target_modules or LOCAL_DEFAULT_MODULES),
        "gradient_checkpointing": plan.gradient_checkpointing,
    }


def require_lora_memory(
    base_model: str | Path, settings: Phase1Settings, plan: DevicePlan, batch_tokens: int | None
) -> None:
    """Raise the memory check's plain sentence when LoRA on `base_model` cannot fit (before loading)."""
    from cognitivetwin_core.models.memory import require_memory

    require_memory(base_model, **_lora_memory_arguments(base_model, settings, plan, batch_tokens))


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
    from cognitivetwin_core.models.memory import check_memory

    settings = settings or Phase1Settings(base_model=str(base_model))
    plan = plan_device(device, precision)
    return check_memory(base_model, **_lora_memory_arguments(base_model, settings, plan, max_batch_tokens), **free)
