"""About how long a local Phase 1 (LoRA) run takes, before it has been measured."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# Rough training speed when nothing was measured yet: LoRA costs about 4 x parameters FLOPs per
# token (forward, and backward through the activations); sustained float32 FLOP/s per device.
FLOPS_PER_TOKEN_PER_PARAMETER = 4.0
ASSUMED_FLOPS = {"cpu": 1.5e10, "cuda": 2.0e12}


def parameter_count(base_model: str) -> float:
    """About how many parameters the base has, from its config.json or the catalog."""
    from cognitivetwin_core.models.catalog import resolve_base

    resolved = resolve_base(base_model)
    config = {}
    folder = resolved if isinstance(resolved, Path) else None
    if folder is None and resolved.embedded:
        try:
            from cognitivetwin_core.models.loader import base_model_dir

            folder = Path(base_model_dir(base_model))
        except Exception:  # the estimate must not fail a dry run
            folder = None
    if folder is not None and (folder / "config.json").is_file():
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    hidden = int(config.get("hidden_size") or getattr(resolved, "hidden_size", 0) or 1024)
    layers = int(config.get("num_hidden_layers") or getattr(resolved, "num_layers", 0) or 16)
    intermediate = int(config.get("intermediate_size") or 4 * hidden)
    vocab = int(config.get("vocab_size") or 128_256)
    # Attention (4 h^2) and the gated MLP (3 h i) per layer, plus the vocabulary projection.
    return float(layers * (4 * hidden * hidden + 3 * hidden * intermediate) + vocab * hidden)


def estimate_local_seconds(
    tokens: int, base_model: str, *, measured_tokens_per_second: float | None = None, device: str | None = None
) -> tuple[float, str]:
    """(seconds, how it was estimated) for training `tokens` tokens locally on `device`.

    Measured speed (phase1/throughput.py: earlier runs of this base on this kind of device)
    when there is one, else a guess from the parameter count.
    """
    if measured_tokens_per_second:
        return (
            tokens / measured_tokens_per_second,
            f"measured {measured_tokens_per_second:,.0f} tokens/s on this computer",
        )
    if device is None:
        # Only look at CUDA if torch is already loaded: the estimate must not import it.
        torch = sys.modules.get("torch")
        device = "cuda" if torch is not None and torch.cuda.is_available() else "cpu"
    device = "cuda" if device.startswith("cuda") else "cpu"  # MPS: no better guess than the CPU's
    params = parameter_count(base_model)
    cores = max(1, (os.cpu_count() or 2) - 1)
    flops = ASSUMED_FLOPS[device] * (cores if device == "cpu" else 1)
    rate = flops / (FLOPS_PER_TOKEN_PER_PARAMETER * params)
    return (
        tokens / rate,
        f"rough guess for {device.upper()}, about {rate:,.0f} tokens/s; the ETA gets exact once it runs",
    )


def tokens_per_second(trained_tokens: float | None, seconds: float) -> float | None:
    """The measured speed of a finished run, or None when it trained nothing."""
    if not trained_tokens or seconds is None:
        return None
    return trained_tokens / max(1e-3, seconds)
