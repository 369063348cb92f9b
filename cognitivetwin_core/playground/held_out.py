"""The held-out set: the person's conversations an adapter never trained on (docs/judging.md).

    held = held_out_set(adapter_dir, workspace=ws)
    held.conversations   # Phase 1 format: the person's turns are the `assistant` turns
    held.others          # per conversation, the other participants' own messages (the judge's impostors)
    held.source          # where they came from, in words

The examples are built exactly as the Phase 1 export builds them (`together_example` with
the workspace's twin speaker), so the `assistant` turns are the person's whoever they are.
Whether an example was trained on is decided by content, never by file: each person's turn
is hashed with the turn before it, and an example sharing any such hash with the adapter's
training file (or, for a Teach run, its parents' files) is left out. Windows cut from a long
conversation therefore count as trained too.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from cognitivetwin_core.errors import InputError

MAX_HELD_OUT_CONVERSATIONS = 200
DEFAULT_HELD_OUT_SHARE = 0.2


@dataclass
class HeldOut:
    conversations: list[list[dict]]
    ids: list[str]
    others: list[list[str]]
    source: str
    speaker: str  # the person, in words ("Maya", "the assistant role")
    excluded: int = 0  # candidates left out because the adapter trained on them
    checked_by_content: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def replies(self) -> int:
        return sum(1 for c in self.conversations for m in c if m["role"] == "assistant")


def turn_hashes(messages: list[dict]) -> set[str]:
    """One hash per person's turn, with the turn before it: the content of what was learned."""
    hashes = set()
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = messages[index - 1]["content"].strip() if index else ""
        digest = hashlib.sha256(json.dumps([before, message["content"].strip()]).encode("utf-8")).hexdigest()
        hashes.add(digest)
    return hashes


def _lineage(folder: Path) -> dict:
    from cognitivetwin_core.phase1.adapter_archive import LINEAGE_NAME

    path = folder / LINEAGE_NAME
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _training_files(folder: Path) -> tuple[list[Path], bool]:
    """(the training files of the adapter and of its parents, whether every one is still on disk)."""
    files, complete, seen = [], True, set()
    while folder is not None and folder not in seen:
        seen.add(folder)
        lineage = _lineage(folder)
        data_path = lineage.get("data_path")
        if data_path and Path(data_path).is_file():
            files.append(Path(data_path))
        else:
            complete = False
        parent = lineage.get("parent_adapter") or lineage.get("parent")
        folder = Path(parent) if isinstance(parent, str) and Path(parent).is_dir() else None
    return files, complete


def held_out_set(
    adapter_dir: str | Path,
    *,
    workspace=None,
    share: float = DEFAULT_HELD_OUT_SHARE,
    seed: int = 0,
) -> HeldOut:
    """The conversations the adapter never trained on (see the module text)."""
    from cognitivetwin_core.data.exports import in_validation, together_example
    from cognitivetwin_core.data.twin_speaker import describe
    from cognitivetwin_core.phase1.jobs import read_chat_jsonl

    folder = Path(adapter_dir)
    lineage = _lineage(folder)
    files, complete = _training_files(folder)
    trained: set[str] = set()
    for path in files:
        for example in read_chat_jsonl(path):
            trained |= turn_hashes(example)

    def untrained(messages: list[dict]) -> bool:
        return not (turn_hashes(messages) & trained)

    validation = (lineage.get("settings") or {}).get("validation_file")
    if validation and Path(validation).is_file():
        conversations = read_chat_jsonl(validation)
        kept = [c for c in conversations if untrained(c)][:MAX_HELD_OUT_CONVERSATIONS]
        if kept:
            return HeldOut(
                kept,
                [f"validation-{i}" for i in range(len(kept))],
                [[m["content"] for m in c if m["role"] == "user"] for c in kept],
                f"the validation split {validation}",
                "the person (the assistant turns of the split)",
                len(conversations) - len(kept),
                bool(files),
            )
    if workspace is not None:
        speaker = workspace.twin_speaker()
        chosen, ids, others, excluded = [], [], [], 0
        for conversation in workspace.iter_conversations():
            messages, _reason, _trimmed = together_example(conversation, speaker)
            if messages is None:
                continue
            if complete and not untrained(messages):
                excluded += 1
                continue
            if not complete and not in_validation(conversation.id, share, seed):
                continue  # the training file is gone: a seeded share, which may overlap it
            chosen.append(messages)
            ids.append(conversation.id)
            others.append(
                [m.content for m in conversation.messages if m.content.strip() and not _is_persons(m, speaker)]
            )
        if not chosen:
            raise InputError(
                f"The workspace {workspace.path} has no conversation in which {describe(speaker)} answers that "
                "the adapter did not train on: import newer conversations, or export with a validation share "
                "and train again."
            )
        order = list(range(len(chosen)))
        random.Random(seed).shuffle(order)
        order = order[:MAX_HELD_OUT_CONVERSATIONS]
        source = f"{len(order)} conversations of the workspace {workspace.path} "
        source += "the adapter did not train on" if complete else "(a seeded share; the training file is gone)"
        return HeldOut(
            [chosen[i] for i in order],
            [ids[i] for i in order],
            [others[i] for i in order],
            source,
            describe(speaker),
            excluded,
            complete,
        )
    raise InputError(
        f"The adapter in {folder} was trained without a validation file that is still on disk: pass "
        "--workspace with the conversations to hold out (those it did not train on are used)."
    )


def _is_persons(message, speaker: str) -> bool:
    from cognitivetwin_core.data.twin_speaker import is_person

    if message.role in ("system", "tool") and message.speaker is None:
        return True  # neither the person's nor another participant's words
    return is_person(message, speaker)
