"""The bundled demo dataset: 44 conversations written for this project (resources/demo)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cognitivetwin_core.conversation import Conversation
from cognitivetwin_core.data.importers import chat_jsonl
from cognitivetwin_core.data.importers.report import ImportReport, ProgressCallback
from cognitivetwin_core.paths import resources_dir

NAME = "demo"
TITLE = "Demo conversations (bundled)"
FILE_FILTER = ""


def demo_dataset_path() -> Path:
    return resources_dir() / "demo" / "conversations.jsonl"


def read(path: Path | None, report: ImportReport, progress: ProgressCallback | None = None) -> Iterator[Conversation]:
    return chat_jsonl.read(path or demo_dataset_path(), report, progress, source=NAME)
