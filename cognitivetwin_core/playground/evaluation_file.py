"""evaluation.json beside an adapter: its name, its reading, and the stylometrics it compares.
Shared by the evaluation that writes it and the judges that read it (docs/judging.md)."""

from __future__ import annotations

import json
from pathlib import Path

EVALUATION_FILE = "evaluation.json"
# The stylometrics compared with the person's: the ones a reader notices first.
COMPARED_STYLOMETRICS = ("length", "punctuation_rate", "question_rate", "exclamation_rate", "emoji")


def load_evaluation(adapter_dir: str | Path) -> dict | None:
    path = Path(adapter_dir) / EVALUATION_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
