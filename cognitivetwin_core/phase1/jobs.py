"""Phase 1 (LoRA fine-tuning of the base) behind one interface for the CLI and the app.

Two backends share it: `TogetherJobManager` (`together_jobs.py`, a cloud job on Together AI)
and `LocalLoraJobs` (this module, PEFT on this computer through `local_lora.py`).

    backend = open_backend("together", workspace, api_key=...)   # or open_backend("local", workspace)
    plan = backend.dry_run(data_path, settings, progress=None)    -> DryRun
    job_id = backend.launch(plan)                                 -> str (the job's id)
    update = backend.poll(job_id)                                 -> JobUpdate (one round, non-blocking friendly)
    update = backend.wait(job_id, on_update=None, should_stop=None) -> JobUpdate (terminal)
    backend.cancel(job_id)                                        -> JobUpdate
    adapter_dir = backend.download(job_id, output_dir=None, progress=None) -> Path
    backend.jobs()                                                -> list[dict] (workspace records)
    backend.unfinished_jobs()                                     -> list[str] (monitoring to resume)

Every method is synchronous and does a bounded amount of work except `wait` (and the local
`download`, which waits for training); the app calls them from a worker thread (e.g.
`await asyncio.to_thread(backend.poll, job_id)` on the qasync loop). Errors are
`CognitiveTwinError`s whose message is one plain sentence.

Both backends leave the same thing behind: an adapter folder
`<workspace>/adapters/<adapter_id>/` with `adapter_config.json`, `adapter_model.safetensors`
and `lineage.json`, registered with `Workspace.register_adapter`; Phase 2 takes either.

The Phase 1 JSONL is the Together conversation format: one `{"messages": [{"role",
"content"}, ...]}` object per line. `validate_chat_jsonl` checks it with line numbers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from cognitivetwin_core.conversation import ROLES
from cognitivetwin_core.durations import format_duration
from cognitivetwin_core.errors import InputError

TERMINAL_STATUSES = ("completed", "cancelled", "error", "user_error")
FAILED_STATUSES = ("cancelled", "error", "user_error", "create_failed", "interrupted")


def is_terminal(status: str | None) -> bool:
    """Whether a job with this status has ended (completed, failed, cancelled or interrupted)."""
    return status in TERMINAL_STATUSES or status in FAILED_STATUSES


def unfinished_jobs(records: list[dict], backend: str) -> list[str]:
    """The ids of `backend`'s jobs among `records` that have not ended (launch intents aside)."""
    return [
        r["job_id"]
        for r in records
        if r.get("backend") == backend and not r["job_id"].startswith("intent-") and not is_terminal(r.get("status"))
    ]


@dataclass
class Phase1Settings:
    """What a Phase 1 run is asked to do. `None` means "the backend's default"."""

    base_model: str = "llama-3.2-3b"  # catalog short name (Together) or name/folder (local)
    epochs: int = 3
    learning_rate: float | None = None  # Together: 1e-4; local: 5e-4
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] | None = None  # Together: all-linear; local: q_proj, v_proj
    batch_size: int | str | None = None  # Together: "max"; local: a token budget decides
    suffix: str | None = None
    validation_file: str | None = None
    n_checkpoints: int = 1
    max_seq_length: int = 512  # local only: longer conversations are cut
    max_steps: int | None = None  # local only: stop early (tests, quick tries)

    def to_dict(self) -> dict:
        out = asdict(self)
        if out["target_modules"] is not None:
            out["target_modules"] = list(out["target_modules"])
        return out


@dataclass
class DatasetStats:
    path: str
    sha256: str
    examples: int
    messages: int
    assistant_messages: int
    characters: int
    # Two or three examples exactly as they will be trained: {"context": [{"role", "content"}],
    # "target": the assistant text learned}; the dry run shows them (`example_lines`).
    preview: list[dict] = field(default_factory=list)

    @property
    def approx_tokens(self) -> int:
        # About 4 characters per token for English text; the API's estimate is authoritative.
        return max(1, self.characters // 4)


@dataclass
class DryRun:
    """Everything a user confirms before a launch (and what `launch` needs)."""

    backend: str
    settings: Phase1Settings
    data: DatasetStats
    model_id: str  # Together id, or the local base's name/folder
    training_file_id: str | None = None
    validation_file_id: str | None = None
    estimated_price: float | None = None  # dollars; None when not available (or local)
    estimated_tokens: int | None = None
    allowed_to_proceed: bool = True
    user_limit: float | None = None
    estimate_note: str = ""
    limits: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # The privacy check of the text to upload (Together only; `PrivacySummary.lines()`), and
    # its counts by kind; empty for local training, where nothing leaves the computer.
    privacy_lines: list[str] = field(default_factory=list)
    privacy_counts: dict = field(default_factory=dict)

    @property
    def example_turns(self) -> list[dict]:
        """Example turns as trained: the context and the target text (the app's Phase 1 tab shows them)."""
        return self.data.preview

    def example_lines(self, width: int = 160) -> list[str]:
        if not self.data.preview:
            return []
        lines = ["example turns, as they will be trained (the twin learns to write the target):"]
        for number, example in enumerate(self.data.preview, start=1):
            for message in example["context"]:
                lines.append(f"  {number}. {message['role']:>9} (context): {_one_line(message['content'], width)}")
            lines.append(f"  {number}.    target (learned): {_one_line(example['target'], width)}")
        return lines

    def summary_lines(self) -> list[str]:
        lines = [
            f"data: {self.data.path} ({self.data.examples} conversations, "
            f"{self.data.assistant_messages} assistant messages)",
            f"tokens: about {int(self.estimated_tokens or self.data.approx_tokens * self.settings.epochs):,} "
            f"over {self.settings.epochs} epoch(s)",
            f"base model: {self.settings.base_model} ({self.model_id})",
        ]
        if self.backend == "together":
            if self.estimated_price is not None:
                lines.append(
                    f"estimated price: ${self.estimated_price:.2f}"
                    + (f" (account limit ${self.user_limit:.2f})" if self.user_limit else "")
                )
            else:
                lines.append(f"estimated price: not available ({self.estimate_note or 'no estimate'})")
            lora = self.limits.get("lora_training") or {}
            if lora:
                lines.append(
                    f"model limits: LoRA rank <= {lora.get('max_rank')}, batch "
                    f"{lora.get('min_batch_size')}-{lora.get('max_batch_size')}, epochs <= "
                    f"{self.limits.get('max_num_epochs')}, context {self.limits.get('max_seq_length_sft')}"
                )
        lines.extend(self.example_lines())
        lines.extend(self.privacy_lines)
        lines.extend(f"warning: {w}" for w in self.warnings)
        return lines


def _one_line(text: str, width: int) -> str:
    flat = " / ".join(part.strip() for part in text.splitlines() if part.strip())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def preview_examples(conversations: list[list[dict]], count: int = 3) -> list[dict]:
    """Up to `count` examples as trained: each one's last assistant turn is the target and the
    turn before it the context (longer conversations first shown, for a fuller picture)."""
    chosen = [c for c in conversations if len(c) >= 2][:count] or conversations[:count]
    previews = []
    for messages in chosen:
        last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        context = [
            {"role": m["role"], "content": m["content"]}
            for m in messages[max(0, last - 1) : last]
            if m["role"] != "system"
        ]
        previews.append({"context": context, "target": messages[last]["content"]})
    return previews


@dataclass
class JobUpdate:
    """One round of monitoring: the job's state and what is new since the last round."""

    job_id: str
    status: str
    new_events: list[dict] = field(default_factory=list)
    step: int | None = None
    total_steps: int | None = None
    epochs_completed: int | None = None
    eta_seconds: float | None = None
    adapter_path: str | None = None
    message: str = ""  # for a failed job: the last events, in plain words

    @property
    def terminal(self) -> bool:
        return is_terminal(self.status)

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES

    @property
    def fraction(self) -> float | None:
        if self.status == "completed":
            return 1.0
        if self.step is not None and self.total_steps:
            return min(1.0, self.step / self.total_steps)
        return None

    def status_line(self) -> str:
        parts = [f"{self.job_id}: {self.status}"]
        if self.step is not None and self.total_steps:
            parts.append(f"step {self.step}/{self.total_steps}")
        if self.epochs_completed is not None:
            parts.append(f"epochs done {self.epochs_completed}")
        if self.eta_seconds is not None and not self.terminal:
            parts.append(f"ETA {format_duration(self.eta_seconds)}")
        return ", ".join(parts)


ProgressCallback = Callable[[int, int], None]  # (done, total) bytes or steps


class Phase1Backend(Protocol):
    name: str

    def dry_run(
        self, data_path: str | Path, settings: Phase1Settings, *, progress: ProgressCallback | None = None
    ) -> DryRun: ...

    def launch(self, plan: DryRun) -> str: ...

    def poll(self, job_id: str) -> JobUpdate: ...

    def wait(
        self,
        job_id: str,
        *,
        on_update: Callable[[JobUpdate], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> JobUpdate: ...

    def cancel(self, job_id: str) -> JobUpdate: ...

    def download(
        self, job_id: str, output_dir: str | Path | None = None, *, progress: ProgressCallback | None = None
    ) -> Path: ...

    def jobs(self) -> list[dict]: ...

    def unfinished_jobs(self) -> list[str]: ...


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_chat_jsonl(path: str | Path) -> list[list[dict]]:
    """The conversations of a Phase 1 JSONL file; bad lines raise InputError naming the line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"The Phase 1 data file {path} does not exist: export it from the Data tab "
            "or `cognitivetwin data export`, or pass --data FILE."
        )
    conversations: list[list[dict]] = []
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 (opened apart so only open() errors are translated here)
    except OSError as exc:
        raise InputError(f"Cannot read the Phase 1 data file {path}: {exc.strerror}.") from exc
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{path}, line {number}"
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    raise InputError(
                        f'{where} is not valid JSON ({exc.msg}): each line must be one {{"messages": [...]}} object.'
                    ) from None
                messages = record.get("messages") if isinstance(record, dict) else None
                if not isinstance(messages, list) or not messages:
                    raise InputError(
                        f'{where} has no "messages" list: each line must be one '
                        '{"messages": [{"role", "content"}, ...]} object.'
                    )
                for index, message in enumerate(messages):
                    role = message.get("role") if isinstance(message, dict) else None
                    if role not in ROLES:
                        raise InputError(
                            f"{where}, message {index + 1}: role {role!r} is not one of {', '.join(ROLES)}."
                        )
                    if not isinstance(message.get("content"), str):
                        raise InputError(f'{where}, message {index + 1}: "content" must be text.')
                if not any(m["role"] == "assistant" for m in messages):
                    raise InputError(
                        f"{where} has no assistant message, so there is nothing to learn "
                        "from it: remove the line or add the reply."
                    )
                conversations.append(messages)
        except UnicodeDecodeError:
            raise InputError(f"{path} is not UTF-8 text: export it again as UTF-8 JSONL.") from None
    if not conversations:
        raise InputError(f"{path} holds no conversations: import some data first.")
    return conversations


def validate_chat_jsonl(path: str | Path) -> DatasetStats:
    conversations = read_chat_jsonl(path)
    return DatasetStats(
        path=str(Path(path)),
        sha256=file_sha256(Path(path)),
        examples=len(conversations),
        messages=sum(len(c) for c in conversations),
        assistant_messages=sum(1 for c in conversations for m in c if m["role"] == "assistant"),
        characters=sum(len(m["content"]) for c in conversations for m in c),
        preview=preview_examples(conversations),
    )
