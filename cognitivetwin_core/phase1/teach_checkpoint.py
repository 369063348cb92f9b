"""A stopped Teach run, kept so that it can be resumed.

    checkpoint = teach_checkpoint(workspace, parent_dir)   # a TrainingCheckpoint
    stopped_teach(workspace, parent_dir)                   # its state ({"step", "total_steps", ...}) or None

Stop (phase1/teach.py) keeps the run in a checkpoint of the kind local LoRA keeps
(phase1/training_checkpoint.py): the adapter being taught as safetensors, the optimizer's
state, and in its extras the scheduler's state and the random generators'. It lives under
the workspace's adapters folder in a folder named for the parent adapter
(`adapters/.teach-checkpoints/<parent name>-<hash of its path>`): a twin has at most one
stopped Teach. Its fingerprint names the feedback used, the parent's weights and the
settings; `teach --resume` continues it only when they are unchanged, and otherwise says in
one sentence what changed. A finished run removes it.

The data order is fixed before training: `ordered_rows` lays out every step's examples (the
rows shuffled afresh each pass, seeded), so a resumed run trains the remaining steps on the
same examples, in the same order, as an uninterrupted run would. See
docs/teaching-and-memory.md.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime
from pathlib import Path

from cognitivetwin_core.errors import InputError
from cognitivetwin_core.models.training import fingerprint_changes
from cognitivetwin_core.phase1.training_checkpoint import TrainingCheckpoint

CHECKPOINTS_FOLDER = ".teach-checkpoints"
# Settings a resumed run takes from the checkpoint when the caller leaves them out.
RESUMABLE_SETTINGS = ("max_steps", "learning_rate")


def teach_checkpoint(workspace, parent_dir: str | Path) -> TrainingCheckpoint:
    """The checkpoint folder of the stopped Teach of the twin in `parent_dir`."""
    parent = Path(parent_dir).expanduser().resolve()
    digest = hashlib.sha256(str(parent).encode("utf-8")).hexdigest()[:10]
    return TrainingCheckpoint(Path(workspace.adapters_dir) / CHECKPOINTS_FOLDER / f"{parent.name}-{digest}")


def stopped_teach(workspace, parent_dir: str | Path) -> dict | None:
    """The saved state of the twin's stopped Teach (`step`, `total_steps`, ...), or None."""
    if workspace is None or not parent_dir:
        return None
    return teach_checkpoint(workspace, parent_dir).state()


def teach_fingerprint(parent: Path, base: str, method: str, feedback_ids: list[int], settings: dict) -> dict:
    """What must be unchanged for a stopped run to go on: the parent's weights, the feedback, the settings."""
    from cognitivetwin_core.phase1.jobs import file_sha256

    return {
        "parent_sha256": file_sha256(parent / "adapter_model.safetensors"),
        "base": str(base),
        "method": method,
        "feedback_ids": list(feedback_ids),
        **settings,
    }


def saved_state_to_resume(checkpoint: TrainingCheckpoint) -> dict:
    """The stopped run's state; refused in one sentence when there is none."""
    state = checkpoint.state()
    if state is None:
        raise InputError(
            f"There is no stopped Teach of this twin to resume (nothing in {checkpoint.folder}): teach it without "
            "resuming."
        )
    return state


def refuse_changed(checkpoint: TrainingCheckpoint, saved: dict, fingerprint: dict) -> None:
    """One sentence when the feedback, the parent or the settings differ from the stopped run's."""
    changed = fingerprint_changes(saved.get("fingerprint") or {}, fingerprint)
    if not changed:
        return
    words = {"feedback_ids": "the feedback", "parent_sha256": "the twin's weights"}
    what = ", ".join(words.get(key, "the " + key.replace("_", " ")) for key in changed)
    raise InputError(
        f"The stopped Teach in {checkpoint.folder} was made before {what} changed, so it cannot be resumed: "
        "teach again without resuming to start over (the stopped run is then replaced)."
    )


def ordered_rows(rows: list[dict], steps: int, batch_size: int, seed: int) -> list[dict]:
    """Every step's examples in training order: `steps * batch_size` rows, the rows shuffled
    afresh (seeded) on each pass over them."""
    order: list[int] = []
    passes = 0
    while len(order) < steps * batch_size:
        indices = list(range(len(rows)))
        random.Random(seed + passes).shuffle(indices)
        order.extend(indices)
        passes += 1
    return [rows[i] for i in order[: steps * batch_size]]


def random_state() -> dict:
    """The random generators' state (the CPU's, and the CUDA devices' once in use)."""
    import torch

    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_random_state(state: dict) -> None:
    import torch

    if "cpu" in state:
        torch.set_rng_state(state["cpu"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_stopped(checkpoint: TrainingCheckpoint, model, optimizer, scheduler, rng: dict, state: dict) -> Path:
    """Write the stopped run (atomically): the adapter being taught, the optimizer, the scheduler and generators."""
    from peft import get_peft_model_state_dict

    weights = get_peft_model_state_dict(model, adapter_name="default")
    extras = {"scheduler": scheduler.state_dict() if scheduler is not None else {}, "rng": rng}
    state = {**state, "stopped_at": datetime.now(UTC).isoformat(timespec="seconds")}
    return checkpoint.write(weights, optimizer, state, extras=extras)


def resume_callback(checkpoint: TrainingCheckpoint):
    """A TRL/transformers callback that puts the stopped run's optimizer, scheduler and random
    state back just before the first resumed step (after the trainer has made its optimizer
    and seeded the generators, and after the data loader has drawn its seed)."""
    from transformers import TrainerCallback

    class RestoreStoppedRun(TrainerCallback):
        restored = False

        def on_step_begin(self, args, state, control, optimizer=None, lr_scheduler=None, **kwargs):
            if self.restored:
                return
            self.restored = True
            checkpoint.load_optimizer(optimizer)
            extras = checkpoint.load_extras()
            if lr_scheduler is not None and extras.get("scheduler"):
                lr_scheduler.load_state_dict(extras["scheduler"])
            restore_random_state(extras.get("rng") or {})

    return RestoreStoppedRun()
