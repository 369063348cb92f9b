"""Phase 2 checkpoints: everything needed to continue a killed run exactly where it was.

A checkpoint is a folder `<output>/checkpoint/` holding
- `components.safetensors`: the trainable weights (and feature statistics),
- `optimizer.pt`: optimizer and scheduler state dicts and torch RNG states (our own
  tensors only; read back with `torch.load(weights_only=True)`, never unpickling code),
- `trainer_state.json`: epoch, global step, the metrics history and the run's identity,
- `best.safetensors`: the components of the best epoch so far (by validation), which become
  the run's model when it ends (absent in checkpoints written before best epochs were kept).

It is written to a temporary folder and swapped in by renames (the previous checkpoint is
kept as `checkpoint.old` until the new one is in place), so a kill at any moment leaves
one complete checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHECKPOINT_DIR = "checkpoint"
_PREVIOUS = "checkpoint.old"


@dataclass
class Checkpoint:
    components_state: dict
    optimizer_state: dict
    scheduler_state: dict
    rng_state: dict
    trainer_state: dict
    best_state: dict | None = None


def save_checkpoint(
    output_dir: Path, components, optimizer, scheduler, trainer_state: dict, best_state: dict | None = None
) -> Path:
    import torch
    from safetensors.torch import save_file

    output_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".checkpoint-", dir=output_dir))
    try:
        state = {k: v.detach().to("cpu").contiguous() for k, v in components.state_dict().items()}
        save_file(state, str(tmp / "components.safetensors"))
        if best_state is not None:
            save_file({k: v.contiguous() for k, v in best_state.items()}, str(tmp / "best.safetensors"))
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        torch.save(
            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng},
            tmp / "optimizer.pt",
        )
        (tmp / "trainer_state.json").write_text(json.dumps(trainer_state, indent=1), encoding="utf-8")
        target = output_dir / CHECKPOINT_DIR
        previous = output_dir / _PREVIOUS
        if previous.exists():
            shutil.rmtree(previous)
        if target.exists():
            os.replace(target, previous)
        os.replace(tmp, target)
        shutil.rmtree(previous, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def find_checkpoint(output_dir: Path) -> Path | None:
    for name in (CHECKPOINT_DIR, _PREVIOUS):
        folder = output_dir / name
        if (folder / "trainer_state.json").is_file() and (folder / "optimizer.pt").is_file():
            return folder
    return None


def load_checkpoint(folder: Path) -> Checkpoint:
    import torch
    from safetensors.torch import load_file

    blob = torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=True)
    best = folder / "best.safetensors"
    return Checkpoint(
        components_state=load_file(str(folder / "components.safetensors"), device="cpu"),
        optimizer_state=blob["optimizer"],
        scheduler_state=blob["scheduler"],
        rng_state=blob["rng"],
        trainer_state=json.loads((folder / "trainer_state.json").read_text(encoding="utf-8")),
        best_state=load_file(str(best), device="cpu") if best.is_file() else None,
    )


def restore_rng(rng_state: dict) -> None:
    import torch

    torch.set_rng_state(rng_state["torch"])
    if "cuda" in rng_state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng_state["cuda"])
