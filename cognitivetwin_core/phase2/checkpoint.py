"""Phase 2 checkpoints: everything needed to continue a killed run exactly where it was.

A checkpoint is a folder `<output>/checkpoint/` holding
- `components.safetensors`: the trainable weights (and feature statistics),
- `optimizer.safetensors`: the optimizer's tensors and the torch RNG states, with the
  optimizer's and the scheduler's other values as JSON in the file's metadata (checkpoints
  of earlier versions hold `optimizer.pt` instead, read with `torch.load(weights_only=True)`,
  which never unpickles code),
- `trainer_state.json`: epoch, global step, the metrics history and the run's identity,
- `best.safetensors`: the components of the best epoch so far (by validation), which become
  the run's model when it ends (absent in checkpoints written before best epochs were kept).

It is written to a temporary folder and swapped in by renames (the previous checkpoint is
kept as `checkpoint.old` until the new one is in place), so a kill at any moment leaves
one complete checkpoint.

The epoch loop takes a `snapshot` (copies of the tensors, on the CPU: the training goes on
changing the live ones) and hands it to a `CheckpointWriter`, which writes it on a thread
while the next epoch trains: the heads train on one thread, so the other core is free
(docs/phase2-training.md, "Checkpoints").
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

CHECKPOINT_DIR = "checkpoint"
_PREVIOUS = "checkpoint.old"
OPTIMIZER_FILE = "optimizer.safetensors"
_OPTIMIZER_PICKLE = "optimizer.pt"  # written before optimizer.safetensors; still read
_STRUCTURE = "structure"  # the metadata key of optimizer.safetensors holding the JSON


@dataclass
class Checkpoint:
    components_state: dict
    optimizer_state: dict
    scheduler_state: dict
    rng_state: dict
    trainer_state: dict
    best_state: dict | None = None


def snapshot(components, optimizer, scheduler, trainer_state: dict, best_state: dict | None = None) -> Checkpoint:
    """The state to checkpoint, copied (tensors to the CPU, containers anew), so that training
    may go on while it is written."""
    import torch

    from cognitivetwin_core.models.training import state_on_cpu

    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return Checkpoint(
        components_state=state_on_cpu(components.state_dict(), copy=True),
        optimizer_state=state_on_cpu(optimizer.state_dict(), copy=True),
        scheduler_state=state_on_cpu(scheduler.state_dict(), copy=True),
        rng_state=rng,
        # The epoch loop appends to its lists (the history); the entries are not changed.
        trainer_state={k: list(v) if isinstance(v, list) else v for k, v in trainer_state.items()},
        best_state=best_state,  # replaced, never changed in place, by the epoch loop
    )


def write_checkpoint(output_dir: Path, checkpoint: Checkpoint) -> Path:
    """Write `checkpoint` as `<output_dir>/checkpoint/`, whole or not at all."""
    from safetensors.torch import save_file

    output_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".checkpoint-", dir=output_dir))
    try:
        save_file(_contiguous(checkpoint.components_state), str(tmp / "components.safetensors"))
        if checkpoint.best_state is not None:
            save_file(_contiguous(checkpoint.best_state), str(tmp / "best.safetensors"))
        tensors, structure = _flatten(
            {
                "optimizer": checkpoint.optimizer_state,
                "scheduler": checkpoint.scheduler_state,
                "rng": checkpoint.rng_state,
            }
        )
        save_file(tensors, str(tmp / OPTIMIZER_FILE), metadata={_STRUCTURE: json.dumps(structure)})
        # Compact: read back by the trainer only, and its history grows every epoch.
        (tmp / "trainer_state.json").write_text(json.dumps(checkpoint.trainer_state), encoding="utf-8")
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


def save_checkpoint(
    output_dir: Path, components, optimizer, scheduler, trainer_state: dict, best_state: dict | None = None
) -> Path:
    return write_checkpoint(output_dir, snapshot(components, optimizer, scheduler, trainer_state, best_state))


def _contiguous(state: dict) -> dict:
    return {k: v.contiguous() for k, v in state.items()}


# State dicts as safetensors: every tensor under a key of its own ("t0", "t1", ...), and the
# nesting, with every other value, as JSON in which a tensor is {"__tensor__": key}. Integer
# dict keys (the optimizer's parameter indices) and tuples (Adam's betas) are kept as such.


def _flatten(value) -> tuple[dict, object]:
    tensors: dict = {}

    def walk(item):
        import torch

        if isinstance(item, torch.Tensor):
            key = f"t{len(tensors)}"
            tensors[key] = item.detach().to("cpu").contiguous()
            return {"__tensor__": key}
        if isinstance(item, dict):
            return {"__dict__": [[walk(k), walk(v)] for k, v in item.items()]}
        if isinstance(item, tuple):
            return {"__tuple__": [walk(v) for v in item]}
        if isinstance(item, list):
            return [walk(v) for v in item]
        if item is None or isinstance(item, (bool, int, float, str)):
            return item
        raise TypeError(f"A checkpoint cannot hold a {type(item).__name__}")

    return tensors, walk(value)


def _unflatten(structure, tensors: dict):
    if isinstance(structure, list):
        return [_unflatten(v, tensors) for v in structure]
    if isinstance(structure, dict):
        if "__tensor__" in structure:
            return tensors[structure["__tensor__"]]
        if "__tuple__" in structure:
            return tuple(_unflatten(v, tensors) for v in structure["__tuple__"])
        return {_unflatten(k, tensors): _unflatten(v, tensors) for k, v in structure["__dict__"]}
    return structure


def find_checkpoint(output_dir: Path) -> Path | None:
    for name in (CHECKPOINT_DIR, _PREVIOUS):
        folder = output_dir / name
        has_optimizer = (folder / OPTIMIZER_FILE).is_file() or (folder / _OPTIMIZER_PICKLE).is_file()
        if (folder / "trainer_state.json").is_file() and has_optimizer:
            return folder
    return None


def load_checkpoint(folder: Path) -> Checkpoint:
    from safetensors import safe_open
    from safetensors.torch import load_file

    if (folder / OPTIMIZER_FILE).is_file():
        with safe_open(str(folder / OPTIMIZER_FILE), framework="pt", device="cpu") as handle:
            structure = json.loads(handle.metadata()[_STRUCTURE])
        blob = _unflatten(structure, load_file(str(folder / OPTIMIZER_FILE), device="cpu"))
    else:
        import torch

        blob = torch.load(folder / _OPTIMIZER_PICKLE, map_location="cpu", weights_only=True)
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


class CheckpointWriter:
    """Writes one epoch's checkpoint at a time on a background thread.

    `start` hands over a snapshot (after the previous write was collected); `collect` gives
    (epoch, folder) once that write is on disk, raising its error if it failed. The epoch
    loop announces a checkpoint only when collected, so whoever acts on the announcement
    (a resume, a kill in a test) finds the files whole.
    """

    def __init__(self, output_dir: Path):
        self.output_dir = output_dir
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="phase2-checkpoint")
        self._pending: tuple[int, Future] | None = None

    def start(self, epoch: int, checkpoint: Checkpoint) -> None:
        if self._pending is not None:
            raise RuntimeError("collect the previous checkpoint before starting the next")
        self._pending = (epoch, self._executor.submit(write_checkpoint, self.output_dir, checkpoint))

    def collect(self, wait: bool = False) -> tuple[int, Path] | None:
        """(epoch, folder) of the write in flight once it has finished (waiting for it with
        `wait`), else None."""
        if self._pending is None:
            return None
        epoch, future = self._pending
        if not wait and not future.done():
            return None
        self._pending = None
        return epoch, future.result()

    def close(self) -> None:
        """Wait for the write in flight (its error, if any, is left to `collect`) and stop the thread."""
        self._executor.shutdown(wait=True)
