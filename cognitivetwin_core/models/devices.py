"""Which device Phase 2 runs on, its mixed-precision dtype, and the CPU thread budget.

`auto` picks CUDA, then Apple MPS, then the CPU. Asking for a device that is not there is
an error a user can fix (a message, not a traceback). torch is imported inside functions.
"""

from __future__ import annotations

import os

from cognitivetwin_core.errors import CognitiveTwinError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def _mps_available(torch) -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def select_device(requested: str | None = "auto") -> str:
    """'cuda', 'cuda:N', 'mps' or 'cpu' for a request of auto/cpu/cuda[:N]/mps."""
    import torch

    requested = (requested or "auto").strip().lower()
    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if _mps_available(torch):
            return "mps"
        return "cpu"
    if requested == "cpu":
        return "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise CognitiveTwinError(
                "--device cuda was asked for but PyTorch sees no CUDA GPU here (a CPU-only build or no "
                "driver); use --device auto or --device cpu."
            )
        if ":" in requested:
            index = int(requested.split(":", 1)[1])
            if index >= torch.cuda.device_count():
                raise CognitiveTwinError(
                    f"--device {requested} does not exist: this machine has {torch.cuda.device_count()} CUDA "
                    "device(s); use --device cuda."
                )
        return requested
    if requested == "mps":
        if not _mps_available(torch):
            raise CognitiveTwinError("--device mps was asked for but Apple MPS is not available; use --device auto.")
        return "mps"
    raise CognitiveTwinError(f"Unknown device {requested!r}; use one of: {', '.join(DEVICE_CHOICES)}.")


def autocast_dtype(device: str):
    """The mixed-precision dtype for encoding on `device` (None on CPU: float32 there)."""
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return None


def configure_threads(num_threads: int | None = None, leave_one_core_free: bool = False) -> int:
    """Set torch's intra-op threads when asked; return the count in effect.

    `leave_one_core_free` keeps the GUI responsive while training runs beside it (the app sets it).
    """
    import torch

    if num_threads:
        torch.set_num_threads(max(1, int(num_threads)))
    elif leave_one_core_free:
        torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    return torch.get_num_threads()


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    oom_type = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
