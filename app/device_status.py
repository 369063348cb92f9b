"""What the status bar says about the compute device, found without importing torch.

Importing torch costs seconds, so the window asks `nvidia-smi` (a cheap subprocess, run off
the GUI thread after the window is shown) and psutil instead; where torch is already
loaded (a tab used it) it asks torch directly.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.1f} GiB"


def _from_torch() -> str | None:
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if torch.cuda.is_available():
            free, _total = torch.cuda.mem_get_info()
            return f"GPU {torch.cuda.get_device_name(0)}, {_gib(free)} free"
    except Exception:  # a broken driver must not break the status bar
        return None
    return None


def _from_nvidia_smi() -> str | None:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,memory.free", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not out:
        return None
    name, _, free_mib = out.splitlines()[0].partition(",")
    try:
        return f"GPU {name.strip()}, {_gib(float(free_mib) * 2**20)} free"
    except ValueError:
        return f"GPU {name.strip()}"


def describe_device() -> str:
    """One line for the status bar, e.g. 'GPU NVIDIA H100, 77.1 GiB free' or 'CPU (2 cores), 5.3 GiB RAM free'."""
    gpu = _from_torch() or _from_nvidia_smi()
    if gpu:
        return gpu
    import psutil

    free = psutil.virtual_memory().available
    cores = psutil.cpu_count(logical=True) or 1
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return f"Apple GPU (MPS), {_gib(free)} unified memory free"
    return f"CPU ({cores} cores), {_gib(free)} RAM free"
