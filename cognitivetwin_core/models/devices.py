"""Which device Phase 2 runs on, its mixed-precision dtype, and the CPU thread budget.

`auto` picks CUDA, then Apple MPS, then the CPU. Asking for a device that is not there is
an error a user can fix (a message, not a traceback). torch is imported inside functions.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

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


# Families whose activations stay inside fp16's range (about 65,504). Gemma's grow past it
# (its embeddings are scaled by sqrt(hidden)); Qwen's outliers are large too: fp32 for them
# where bf16 is not native.
FP16_SAFE_MODEL_TYPES = frozenset({"llama", "mistral"})
# bf16 runs natively (tensor cores) from compute capability 8.0 (Ampere) on.
BF16_MIN_CAPABILITY = (8, 0)


def working_dtype(device: str, model_type: str | None = None):
    """The dtype the frozen base is loaded and run in on `device` (see docs/gpu.md).

    CUDA: bf16 from compute capability 8.0; below, fp16 for families safe in it, else fp32.
    MPS: fp16 for safe families, else fp32. CPU: fp32 (bf16 matmuls are slower there on most
    CPUs, and the cached vectors stay as they always were).
    """
    import torch

    safe_in_fp16 = (model_type or "").lower() in FP16_SAFE_MODEL_TYPES
    if device.startswith("cuda"):
        index = int(device.split(":", 1)[1]) if ":" in device else torch.cuda.current_device()
        if tuple(torch.cuda.get_device_capability(index)) >= BF16_MIN_CAPABILITY:
            return torch.bfloat16
        return torch.float16 if safe_in_fp16 else torch.float32
    if device == "mps":
        return torch.float16 if safe_in_fp16 else torch.float32
    return torch.float32


def autocast_dtype(device: str, model_type: str | None = None):
    """The mixed-precision dtype for encoding on `device` (None: no autocast, plain float32)."""
    import torch

    dtype = working_dtype(device, model_type)
    return None if dtype == torch.float32 else dtype


def cuda_device_count() -> int:
    """How many CUDA GPUs PyTorch sees here (0 without CUDA); the app asks its helper child."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def free_memory_bytes(device: str) -> int | None:
    """Free memory on a CUDA device (None elsewhere: the CPU and MPS report nothing useful)."""
    import torch

    if not device.startswith("cuda"):
        return None
    index = int(device.split(":", 1)[1]) if ":" in device else torch.cuda.current_device()
    free, _total = torch.cuda.mem_get_info(index)
    return int(free)


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


@contextmanager
def one_thread_on_cpu(device: str):
    """Run the block on one torch thread when `device` is the CPU; restore the count after.

    For Phase 2's small heads: their tensors are a few dozen rows wide, so a second thread
    only adds a hand-over per operation, and on a busy machine every one of them waits for
    a thread the scheduler has put aside. Ten demo epochs took 2.6 s on one thread and 63 s
    on two with the machine's two cores shared (docs/gpu.md, "Training batches").
    """
    if not device.startswith("cpu"):
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    oom_type = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
