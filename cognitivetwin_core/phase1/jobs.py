"""Phase 1 (LoRA fine-tuning of the base) behind one interface for the CLI and the app.

Two backends share it: `TogetherJobManager` (`together_jobs.py`, a cloud job on Together AI)
and `LocalLoraJobs` (`local_jobs.py`, PEFT on this computer through `local_lora.py`).

    backend = open_backend("together", workspace, api_key=...)   # or open_backend("local", workspace)
    plan = backend.dry_run(data_path, settings, progress=None)    -> DryRun
    job_id = backend.launch(plan)                                 -> str (the job's id)
    update = backend.poll(job_id)                                 -> JobUpdate (one round, non-blocking friendly)
    update = backend.wait(job_id, on_update=None, cancellation=None) -> JobUpdate (terminal)
    backend.cancel(job_id)                                        -> JobUpdate
    adapter_dir = backend.download(job_id, output_dir=None, progress=None) -> Path
    backend.jobs()                                                -> list[JobRecord] (workspace records)
    backend.unfinished_jobs()                                     -> list[str] (monitoring to resume)

Every method is synchronous and does a bounded amount of work except `wait` (and the local
`download`, which waits for training); the app calls them from a worker thread (e.g.
`await asyncio.to_thread(backend.poll, job_id)` on the qasync loop). Errors are
`CognitiveTwinError`s whose message is one plain sentence.

Job records are `JobRecord`s: what the workspace stores about each job (one JSON object per
job, format unchanged) read into typed fields by `read_jobs(workspace)` and
`read_job(workspace, job_id)`. `JobRecord.from_dict` tolerates records of earlier versions
(a missing key gets its default) and keeps keys it does not know in `extra`, so `to_dict`
gives back everything stored. Backends write with `Workspace.upsert_phase1_job(job_id,
fields)`, which merges the fields into the stored record.

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
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.conversation import ROLES
from cognitivetwin_core.durations import format_duration
from cognitivetwin_core.errors import InputError

TERMINAL_STATUSES = ("completed", "cancelled", "error", "user_error")
FAILED_STATUSES = ("cancelled", "error", "user_error", "create_failed", "interrupted")


def is_terminal(status: str | None) -> bool:
    """Whether a job with this status has ended (completed, failed, cancelled or interrupted)."""
    return status in TERMINAL_STATUSES or status in FAILED_STATUSES


INTENT_PREFIX = "intent-"  # a Together launch not yet answered (see together_jobs.py)


@dataclass(frozen=True)
class JobRecord:
    """One Phase 1 job as stored in the workspace. Fields of one backend are left at their
    default on the other's jobs."""

    job_id: str
    backend: str | None = None  # "together" or "local"
    status: str | None = None  # as the backend last saw it (see TERMINAL_STATUSES)
    # What was trained.
    base_model: str | None = None
    model_id: str | None = None
    suffix: str | None = None
    data_path: str | None = None
    data_sha256: str | None = None
    settings: dict = field(default_factory=dict)  # Phase1Settings.to_dict()
    # Progress.
    events: list[dict] = field(default_factory=list)
    step: int | None = None
    total_steps: int | None = None
    epochs_completed: int | None = None
    eta_seconds: float | None = None
    error: str | None = None  # one plain sentence, for a failed or interrupted job
    # The result.
    adapter_id: str | None = None
    adapter_path: str | None = None
    # Times: the workspace's row (created_at, updated_at) and the backend's last write (updated).
    created_at: str | None = None
    updated_at: str | None = None
    updated: str | None = None
    # Together only.
    training_file: str | None = None
    validation_file: str | None = None
    estimate: dict = field(default_factory=dict)  # {"price", "tokens", "note"}
    intent_id: str | None = None
    intent_time: float | None = None
    created_remote: str | None = None
    events_seen: int = 0
    step_samples: list = field(default_factory=list)  # [[time, step], ...] for the ETA
    output_name: str | None = None
    duplicates: list[str] = field(default_factory=list)
    # Local only.
    work_dir: str | None = None
    owner_pid: int | None = None
    owner_started: float | None = None
    last_loss: float | None = None
    device: str | None = None
    precision: str | None = None
    trained_tokens: int | None = None
    tokens_per_second: float | None = None
    # Keys this version does not know, kept as stored.
    extra: dict[str, Any] = field(default_factory=dict)
    # The field keys the stored dict had: `to_dict` writes those and any set since, so a
    # stored record comes back key for key (no defaults added for keys it never had).
    _stored_keys: frozenset[str] = field(default=frozenset(), init=False, compare=False, repr=False)

    @property
    def is_intent(self) -> bool:
        """A Together launch whose job id is not known yet (or never was)."""
        return self.job_id.startswith(INTENT_PREFIX)

    @property
    def terminal(self) -> bool:
        return is_terminal(self.status)

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES

    @classmethod
    def from_dict(cls, data: dict) -> JobRecord:
        """The record of a stored dict; missing keys get defaults, unknown ones go to `extra`."""
        values: dict[str, Any] = {}
        for name in _NAMES:
            if name not in data:
                continue
            value = data[name]
            if name in _DICT_FIELDS:
                value = dict(value) if isinstance(value, dict) else {}
            elif name in _LIST_FIELDS:
                value = list(value) if isinstance(value, list) else []
            elif name == "events_seen":
                value = _int_or(value, 0)
            values[name] = value
        values["job_id"] = str(data.get("job_id") or "")
        record = cls(**values, extra={key: value for key, value in data.items() if key not in _DEFAULTS})
        object.__setattr__(record, "_stored_keys", frozenset(key for key in data if key in _DEFAULTS))
        return record

    def to_dict(self) -> dict:
        """The stored form: the unknown keys as they came, the fields the stored dict had, and
        any other field not at its default. `from_dict(record.to_dict()) == record`."""
        out = dict(self.extra)
        for name in _NAMES:
            value = getattr(self, name)
            if name == "job_id" or name in self._stored_keys or value != _DEFAULTS[name]:
                out[name] = _copied(value)
        return out


# Each stored field's default (job_id has none); `extra` and the bookkeeping are not stored keys.
_DEFAULTS: dict[str, Any] = {
    spec.name: spec.default_factory() if spec.default_factory is not MISSING else spec.default
    for spec in fields(JobRecord)
    if spec.name not in ("extra", "_stored_keys")
}
_NAMES = tuple(_DEFAULTS)  # in declaration order
_DICT_FIELDS = frozenset({"settings", "estimate"})
_LIST_FIELDS = frozenset({"events", "step_samples", "duplicates"})


def _copied(value):
    """A list or dict copied, so changing `to_dict`'s answer never changes the (frozen) record."""
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def _int_or(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def read_jobs(workspace, backend: str | None = None) -> list[JobRecord]:
    """The workspace's Phase 1 jobs, oldest first (only `backend`'s when given)."""
    records = [JobRecord.from_dict(data) for data in workspace.phase1_jobs()]
    return [r for r in records if r.backend == backend] if backend is not None else records


def read_job(workspace, job_id: str) -> JobRecord | None:
    """The job `job_id` of the workspace, or None when it has no such job."""
    data = workspace.get_phase1_job(job_id)
    return JobRecord.from_dict(data) if data is not None else None


def unfinished_jobs(records: list[JobRecord], backend: str) -> list[str]:
    """The ids of `backend`'s jobs among `records` that have not ended (launch intents aside)."""
    return [r.job_id for r in records if r.backend == backend and not r.is_intent and not r.terminal]


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


def local_size_line(size: dict, epochs: int, max_steps: int | None) -> str:
    """The one token line of a local dry run, from `phase1.local_plan.LocalPlanSize` as a dict."""
    epochs = max(1, epochs)
    all_steps = size["steps_per_epoch"] * epochs
    if max_steps and size["total_steps"] < all_steps:
        run = f"the step cap stops it after {size['total_steps']} of {all_steps} steps"
    else:
        run = f"{size['total_steps']} steps over {epochs} epoch(s)"
    return (
        f"tokens: {size['tokens_per_epoch']:,} per pass over the data ({size['trained_tokens_per_epoch']:,} "
        f"of them your replies, the part it learns from); {size['tokens_to_train']:,} in this run: {run}"
    )


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
        lines = ["example turns, as they will be trained (the twin learns to write your reply):"]
        for number, example in enumerate(self.data.preview, start=1):
            for message in example["context"]:
                who = SIDE_WORDS.get(message["role"], message["role"])
                lines.append(f"  {number}. {who:>9} (context): {_one_line(message['content'], width)}")
            lines.append(f"  {number}.    you (learned): {_one_line(example['target'], width)}")
        return lines

    def _tokens_line(self) -> str:
        # A local dry run measures its data as the run will (phase1/local_plan.py): one count.
        size = self.limits.get("local_size")
        if size:
            return local_size_line(size, self.settings.epochs, self.settings.max_steps)
        tokens = int(self.estimated_tokens or self.data.approx_tokens * self.settings.epochs)
        return f"tokens: about {tokens:,} over {self.settings.epochs} epoch(s)"

    def summary_lines(self) -> list[str]:
        lines = [
            f"data: {self.data.path} ({self.data.examples} conversations, "
            f"{self.data.assistant_messages} replies of yours to learn from)",
            self._tokens_line(),
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
        # With the measured size, the token line says whether the step cap stops the run (and
        # after how many steps): the backend's "stops after N steps" would only contradict it.
        measured = bool(self.limits.get("local_size"))
        lines.extend(f"warning: {w}" for w in self.warnings if not (measured and w.startswith("stops after")))
        return lines


# In the training data the person's side is the "assistant" (the text the twin learns to
# write) and the other side the "user"; a person reads them as "you" and "them".
SIDE_WORDS = {"assistant": "you", "user": "them", "system": "setting"}


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
        cancellation: Cancellation | None = None,
    ) -> JobUpdate: ...

    def cancel(self, job_id: str) -> JobUpdate: ...

    def download(
        self, job_id: str, output_dir: str | Path | None = None, *, progress: ProgressCallback | None = None
    ) -> Path: ...

    def jobs(self) -> list[JobRecord]: ...

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
