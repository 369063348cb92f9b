"""Will Phase 2's encoding pass fit? The memory verdict for a base, a device and a batch,
shared by `phase2 train` (which refuses before loading) and the app's Phase 2 tab (which
shows it before Start). The estimate itself is models/memory.py's."""

from __future__ import annotations

from pathlib import Path


def encode_memory_verdict(
    base_model: str | Path, *, device: str | None = "auto", encode_batch_tokens: int | None = None, **free
):
    """A `MemoryVerdict` for encoding with `base_model` on `device` (auto resolved here).

    An automatic batch is sized to what is free once the weights are loaded, so the
    smallest batch the encoder would use is what must fit.
    """
    from cognitivetwin_core.models.devices import select_device, working_dtype
    from cognitivetwin_core.models.memory import check_memory
    from cognitivetwin_core.phase2.turn_encoder import CPU_BATCH_TOKENS, default_window_tokens

    device = select_device(device)
    batch = encode_batch_tokens or (default_window_tokens(device) if device.startswith("cuda") else CPU_BATCH_TOKENS)
    return check_memory(
        base_model,
        purpose="encode",
        device=device,
        dtype=str(working_dtype(device)).removeprefix("torch."),
        batch_tokens=batch,
        **free,
    )
