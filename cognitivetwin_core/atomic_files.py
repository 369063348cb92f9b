"""Folders written whole or not at all: staged beside the target, then renamed into place.

A reader (or a crash) never sees a half-written adapter or checkpoint folder: the old one
stays until the new one is complete, and is removed only after the swap.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path


def replace_dir(new: Path, target: Path) -> None:
    """Move the complete folder `new` to `target`, replacing what was there."""
    if target.exists():
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex}"
        os.replace(target, old)
        os.replace(new, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, target)


def write_dir_atomically(final: Path, write: Callable[[Path], None]) -> None:
    """Write a folder through `write(staging)` and rename it into place (an old one is replaced)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        write(staging)
        replace_dir(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
