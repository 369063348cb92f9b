"""Files and folders written whole or not at all: staged beside the target, then renamed into place.

A reader (or a crash) never sees a half-written export, record, adapter or checkpoint: the
old one stays until the new one is complete, and is removed only after the swap. Every
write of a file the user or a later run reads goes through this module.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def open_atomically(path: str | Path, mode: str = "w", *, encoding: str | None = "utf-8") -> Iterator[IO]:
    """Write `path` through the yielded handle; it appears only if the block ends without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    binary = "b" in mode
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise


def write_text_atomically(path: str | Path, text: str, *, encoding: str = "utf-8") -> None:
    with open_atomically(path, "w", encoding=encoding) as handle:
        handle.write(text)


def write_bytes_atomically(path: str | Path, data: bytes) -> None:
    with open_atomically(path, "wb") as handle:
        handle.write(data)


def write_json_atomically(path: str | Path, data: Any, *, indent: int | None = 2, default=None) -> None:
    write_text_atomically(path, json.dumps(data, indent=indent, ensure_ascii=False, default=default) + "\n")


def write_via_path_atomically(path: str | Path, write: Callable[[Path], None]) -> None:
    """For writers that want a file name (safetensors, Qt's image save): `write(temporary)`,
    then the rename; `path` appears only if `write` succeeded."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}{path.suffix}")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


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
