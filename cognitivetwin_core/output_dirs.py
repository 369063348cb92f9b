"""Whether a folder the user named for a result may receive it, decided before anything is written.

The rule: never delete or replace what the user did not ask to replace. A missing or empty
folder is fine. A folder holding our own earlier result (an adapter with our lineage.json,
a Phase 2 run with our run.json) is replaced only when the user says so (--overwrite), or
continued (--resume for Phase 2). Anything else -- a folder of other files, an existing
file, a path below a file -- is refused with one sentence saying what to do. See
docs/output-folders.md.
"""

from __future__ import annotations

import json
from pathlib import Path

from cognitivetwin_core.errors import InputError, os_error

ADAPTER_MARKER = "lineage.json"  # written beside every adapter we download or train
PHASE2_MARKER = "run.json"  # written in every Phase 2 output folder

MISSING = "missing"
EMPTY = "empty"
ADAPTER = "adapter"
PHASE2_RUN = "phase2-run"
PHASE2_UNTRAINED = "phase2-untrained"  # our run.json only: a start that failed before training
FOREIGN = "foreign"


def _blocking_file(path: Path) -> Path | None:
    """The first existing ancestor of `path` that is a file (so nothing can be created below it)."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def _our_json(path: Path, key: str) -> bool:
    try:
        if path.stat().st_size > 16 << 20:
            return False
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and key in data


def classify(path: str | Path) -> str:
    """What is at `path`: one of MISSING, EMPTY, ADAPTER, PHASE2_RUN, PHASE2_UNTRAINED, FOREIGN.

    Raises InputError when `path` is a file, lies below a file, or cannot be read.
    """
    path = Path(path).expanduser()
    blocker = _blocking_file(path)
    if blocker is not None:
        raise InputError(f"{path} cannot be a folder because {blocker} is a file; choose another output folder.")
    if not path.exists() and not path.is_symlink():
        return MISSING
    if not path.is_dir():
        raise InputError(
            f"{path} is an existing file, not a folder; choose a new folder name (the file was left untouched)."
        )
    try:
        names = {entry.name for entry in path.iterdir()}
    except OSError as exc:
        raise InputError(f"Cannot read the folder {path} ({exc.strerror}); choose another output folder.") from None
    if not names:
        return EMPTY
    if ADAPTER_MARKER in names and "adapter_config.json" in names and _our_json(path / ADAPTER_MARKER, "backend"):
        return ADAPTER
    if PHASE2_MARKER in names and _our_json(path / PHASE2_MARKER, "run_id"):
        trained = {"checkpoint", "checkpoint.old", "model.safetensors"} & names
        return PHASE2_RUN if trained else PHASE2_UNTRAINED
    return FOREIGN


def _check_writable(folder: Path) -> None:
    """Refuse a place where nothing can be created (its nearest existing folder), before a
    long download or training run that would only fail at its end."""
    import os
    import tempfile

    existing = next((p for p in (folder, *folder.parents) if p.is_dir()), None)
    if existing is None:
        return
    try:
        probe = tempfile.mkdtemp(prefix=".write-check-", dir=existing)
    except OSError as exc:
        raise os_error(exc, "writing in", existing) from None
    os.rmdir(probe)


def check_adapter_output(path: str | Path, *, overwrite: bool = False) -> str:
    """Refuse an adapter destination that would replace what the user did not ask to replace.

    Returns what is there (MISSING, EMPTY, or ADAPTER when `overwrite` allows replacing it).
    """
    path = Path(path).expanduser()
    kind = classify(path)
    _check_writable(path.parent)  # the adapter is unpacked beside its folder, then moved in
    if kind in (MISSING, EMPTY):
        return kind
    if kind == ADAPTER:
        if overwrite:
            return kind
        raise InputError(
            f"{path} already holds an adapter: pass --overwrite to replace it, or choose a new output folder."
        )
    raise InputError(
        f"{path} already holds other files; choose a new or empty output folder (nothing in it was changed)."
    )


def check_phase2_output(path: str | Path, *, resume: bool = False, overwrite: bool = False) -> str:
    """Refuse a Phase 2 output folder that holds something we must not overwrite.

    Returns what is there: MISSING or EMPTY (a new run), PHASE2_UNTRAINED (our own failed
    start; reused), PHASE2_RUN (to be continued with `resume` or replaced with `overwrite`).
    """
    path = Path(path).expanduser()
    kind = classify(path)
    if kind in (MISSING, EMPTY, PHASE2_UNTRAINED):
        return kind
    if kind == PHASE2_RUN:
        if resume or overwrite:
            return kind
        raise InputError(
            f"{path} already holds a Phase 2 run: pass --resume to continue it, --overwrite to replace it, "
            "or choose a new output folder."
        )
    if resume:
        raise InputError(f"{path} holds no Phase 2 run to resume; check the folder, or start without --resume.")
    raise InputError(
        f"{path} already holds other files; choose a new or empty output folder (nothing in it was changed)."
    )
