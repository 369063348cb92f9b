"""The frozen base a twin reads: the base model, with a Phase 1 LoRA adapter applied if given,
its parameters frozen, in eval mode, on the chosen device(s). One call for every reader
(Phase 2 encoding, the playground's chat, benchmarks)."""

from __future__ import annotations

from pathlib import Path

from cognitivetwin_core.errors import InputError


def load_frozen_base(
    base_model: str | Path,
    adapter_dir: str | Path | None = None,
    *,
    device: str = "cpu",
    dtype=None,
    device_map: str | None = None,
    tokenizer=None,
    merge_adapter: bool = False,
):
    """(model, tokenizer): the base, with the LoRA adapter applied if given; frozen, eval mode.
    `tokenizer`: the base's, when the caller already has it (not loaded again).

    `merge_adapter`: for readers that never switch the adapter off (Phase 2 encoding, the
    playground's analysis): the LoRA weights are folded into the base's, so a forward pass costs
    what the base's does (unmerged, SmolLM2 on the CPU read 10% slower with a q/v adapter and 25%
    with an all-linear one). Not where the chat compares twin and base on one copy of the weights,
    and not for a base spread over several GPUs or quantized (PEFT cannot fold exactly there).

    Without an adapter only the language model's backbone is loaded (no LM head, no vision
    tower): pooled states need nothing else. With one, the language model's causal LM is
    loaded (still no vision tower), as Phase 1 trained the adapter on it; an adapter trained
    on a full image-text model is renamed to fit it (models/adapters.py). `dtype` None: the working dtype for the device and the
    model's family (models/devices.py). The weights are read straight onto the device; a base
    larger than one GPU is spread over all of them (`device_map="auto"`, see docs/gpu.md).
    """
    from cognitivetwin_core.models.devices import working_dtype
    from cognitivetwin_core.models.loader import load_base_model, load_config, text_config, weights_bytes

    if dtype is None:
        dtype = working_dtype(device, getattr(text_config(load_config(base_model)), "model_type", None))
    if device_map is None:
        device_map = _device_map_for(base_model, device, dtype, weights_bytes)
    model, tokenizer = load_base_model(
        base_model,
        dtype=dtype,
        device=device,
        backbone_only=not adapter_dir,
        device_map=device_map,
        tokenizer=tokenizer,
    )
    if adapter_dir:
        adapter_dir = Path(adapter_dir)
        if not (adapter_dir / "adapter_config.json").is_file():
            raise InputError(
                f"{adapter_dir} is not a LoRA adapter folder (no adapter_config.json): point to a Phase 1 output."
            )
        from cognitivetwin_core.models.adapters import apply_adapter

        try:
            model = apply_adapter(model, adapter_dir)
        except (ValueError, RuntimeError, KeyError) as exc:
            raise InputError(
                f"The adapter in {adapter_dir} does not fit the base {base_model} ({exc}); choose the adapter "
                "trained on this base."
            ) from None
        if merge_adapter and device_map is None and not getattr(model, "is_quantized", False):
            model = model.merge_and_unload()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    model.eval()
    if device_map is None:
        model.to(device)
    return model, tokenizer


def _device_map_for(base_model, device: str, dtype, weights_bytes) -> str | None:
    """ "auto" when the weights (in `dtype`) would not fit in 90% of the chosen GPU's free memory
    and there are more GPUs to spread them over; None otherwise (one device)."""
    if not device.startswith("cuda"):
        return None
    import torch

    from cognitivetwin_core.models.devices import free_memory_bytes

    if torch.cuda.device_count() < 2:
        return None
    on_disk = weights_bytes(base_model)
    # Stored weights are mostly bf16/fp16 (2 bytes) on the Hub; fp32 doubles them.
    needed = on_disk * (2 if dtype == torch.float32 else 1)
    free = free_memory_bytes(device) or 0
    return "auto" if needed > 0.9 * free else None
