"""An adapter-training run's checkpoint: one folder, written atomically (a temporary folder
renamed into place), read back on any device.

It holds the adapter weights (`adapter_model.safetensors`), the optimizer state
(`optimizer.pt`, our own file: saved from the CPU with `torch.save`, read back with
`map_location="cpu", weights_only=True`) and `trainer_state.json`, the run's own state whose
`fingerprint` says which data and settings it was made with. A run resumes only from a
checkpoint whose fingerprint matches its own (models/training.py `fingerprint_changes`).
A run may keep more of its state (a scheduler's, the random generators') in `extras.pt`,
saved and read back the same way as the optimizer's.

Local LoRA (phase1/local_lora.py) keeps one under its work folder; any other adapter
training (preference tuning) can keep its own the same way.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from cognitivetwin_core.atomic_files import write_dir_atomically
from cognitivetwin_core.models.training import fingerprint_changes, state_on_cpu

log = logging.getLogger(__name__)

STATE_FILE = "trainer_state.json"
WEIGHTS_FILE = "adapter_model.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
EXTRAS_FILE = "extras.pt"


class TrainingCheckpoint:
    """The checkpoint folder of one run (`enabled=False`: never read, as for a fresh start)."""

    def __init__(self, folder: str | Path, *, enabled: bool = True):
        self.folder = Path(folder)
        self.enabled = enabled

    def state(self) -> dict | None:
        """The saved `trainer_state.json`, or None (none, unreadable, or resuming disabled)."""
        path = self.folder / STATE_FILE
        if not (self.enabled and path.is_file()):
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def matching_state(self, fingerprint: dict) -> dict | None:
        """The saved state when it was made with the same data and settings, else None (logged)."""
        state = self.state()
        if state is None:
            return None
        changed = fingerprint_changes(state.get("fingerprint") or {}, fingerprint)
        if changed:
            log.info("checkpoint in %s not resumed: %s changed", self.folder, ", ".join(changed))
            return None
        return state

    def restore_adapter(self, model) -> bool:
        """Put the saved adapter weights into the PEFT `model`; False (nothing changed) when
        they do not fit it (PEFT would skip weights it has no place for, and the run would
        go on from fresh ones)."""
        from peft import get_peft_model_state_dict, set_peft_model_state_dict
        from safetensors.torch import load_file

        from cognitivetwin_core.models.adapters import decoder_path, renamed_adapter_keys

        weights = load_file(str(self.folder / WEIGHTS_FILE))
        # A Gemma 3 4B checkpoint from when the full image-text model was trained: its names.
        renames = renamed_adapter_keys(weights, decoder_path(model.get_base_model()))
        weights = {renames.get(k, k): v for k, v in weights.items() if renames.get(k, k) is not None}
        if set(weights) != set(get_peft_model_state_dict(model)):
            log.info("checkpoint in %s not resumed: its weights do not fit the model", self.folder)
            return False
        set_peft_model_state_dict(model, weights)
        return True

    def load_optimizer(self, optimizer) -> None:
        """Read the optimizer state onto the CPU; `load_state_dict` moves it onto the parameters' device."""
        import torch

        optimizer.load_state_dict(torch.load(self.folder / OPTIMIZER_FILE, map_location="cpu", weights_only=True))

    def load_extras(self) -> dict:
        """The `extras` written with the checkpoint ({} when there were none), on the CPU."""
        import torch

        path = self.folder / EXTRAS_FILE
        return torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else {}

    def write(self, adapter_weights: dict, optimizer, state: dict, *, extras: dict | None = None) -> Path:
        """Replace the checkpoint with these weights, the optimizer's state and `state` (atomically);
        `extras` (tensors and plain values) beside them."""
        import torch
        from safetensors.torch import save_file

        def write(folder: Path) -> None:
            weights = {k: v.detach().contiguous().cpu() for k, v in adapter_weights.items()}
            save_file(weights, str(folder / WEIGHTS_FILE))
            torch.save(state_on_cpu(optimizer.state_dict()), folder / OPTIMIZER_FILE)
            if extras:
                torch.save(state_on_cpu(extras), folder / EXTRAS_FILE)
            (folder / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")

        write_dir_atomically(self.folder, write)
        return self.folder
