"""An export as the tool wrote it: a folder, or a zip of that folder, read the same way.

Meta's "Download your information", Discord's data package, Google Takeout and sigtop write a
tree of files; people import the folder or the zip they downloaded. `ExportTree` lists the
files as relative POSIX paths and opens one at a time, so an importer never unpacks the zip
and never holds more than the file it reads.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


class ExportTree:
    """The files of a folder or zip (`names`, relative POSIX paths), opened one at a time."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._zip: zipfile.ZipFile | None = None
        if self.path.is_dir():
            root = str(self.path)
            names = []
            for folder, _dirs, files in os.walk(root):
                relative = os.path.relpath(folder, root)
                for name in files:
                    names.append(name if relative == "." else f"{relative}/{name}".replace(os.sep, "/"))
            self.names = sorted(names)
        elif self.path.is_file() and zipfile.is_zipfile(self.path):
            self._zip = zipfile.ZipFile(self.path)
            self.names = sorted(info.filename for info in self._zip.infolist() if not info.is_dir())
        else:
            # One file: its whole path, so layout patterns ("messages/inbox/<chat>/message_1.json",
            # "Groups/<DM>/messages.json") still see the folders it sits in.
            self.names = [self.path.as_posix()]

    def open(self, name: str) -> BinaryIO:
        if self._zip is not None:
            return self._zip.open(name)
        if self.path.is_dir():
            return open(self.path / name, "rb")
        return open(self.path, "rb")

    def read_bytes(self, name: str) -> bytes:
        with self.open(name) as stream:
            return stream.read()

    def label(self, name: str) -> str:
        """Where a file is, for the report: the folder's file, or `archive.zip:member`."""
        if self._zip is not None:
            return f"{self.path}:{name}"
        if self.path.is_dir():
            return str(self.path / name)
        return str(self.path)

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> ExportTree:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def matching(self, suffix: str) -> Iterator[str]:
        lowered = suffix.lower()
        return (name for name in self.names if name.lower().endswith(lowered))


def load_json(tree: ExportTree, name: str):
    """One JSON file of the tree (small files: an account file, one chat part)."""
    import json

    return json.loads(tree.read_bytes(name).decode("utf-8-sig"))
