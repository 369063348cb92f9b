"""Phase 1 on Together AI: upload, dry run, create, monitor, cancel, download (SDK 3.x).

`TogetherJobManager(workspace, api_key=..., base_url=None)` implements the `Phase1Backend`
interface of `phase1/jobs.py` (see there for the method list). Facts it relies on are in
`docs/together.md`; the ones that shaped this code:

- the base URL has no `/v1` (`TOGETHER_BASE_URL` is honoured when `base_url` is None);
- LoRA settings are only sent with `lora=True`;
- POSTs carry no idempotency key and the SDK retries 5xx/timeouts, so a create can start
  two jobs. The manager therefore writes an *intent* record (`intent-<uuid>`) before the
  call, creates with SDK retries off, and after any doubtful outcome (5xx, timeout, crash)
  lists the account's jobs to find the one it made (same training file, model, suffix).
  Extra matches are reported as duplicates (record field `duplicates`), never hidden.
  Once the Together id is known the record is stored under it and the intent removed;
  `reconcile()` (run when a manager opens) settles intents a crash left behind;
- downloads only work for `completed` jobs; the archive is streamed to disk, then
  extracted safely by `adapter_archive.py` and registered in the workspace.

Workspace records (`jobs.JobRecord`, from `Workspace.phase1_jobs()`), keyed by the Together id (`ft-...`):
`backend`="together", `status`, `base_model`, `model_id`, `suffix`, `training_file`,
`validation_file`, `data_path`, `data_sha256`, `settings`, `estimate`, `events` (all seen),
`events_seen`, `step`, `total_steps`, `epochs_completed`, `eta_seconds`, `output_name`,
`adapter_id`, `adapter_path`, `duplicates`, `error`.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cognitivetwin_core.data.privacy import UPLOAD_ADVICE, scan_chat_jsonl
from cognitivetwin_core.errors import InputError
from cognitivetwin_core.logging_setup import register_secret
from cognitivetwin_core.models.catalog import get_spec
from cognitivetwin_core.phase1.jobs import (
    TERMINAL_STATUSES,
    DryRun,
    JobRecord,
    JobUpdate,
    Phase1Settings,
    ProgressCallback,
    read_job,
    read_jobs,
    unfinished_jobs,
    validate_chat_jsonl,
)
from cognitivetwin_core.phase1.monitor import Backoff, follow
from cognitivetwin_core.phase1.together_errors import TogetherServiceError, translate

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.together.ai"
DEFAULT_LEARNING_RATE = 1e-4
MAX_EVENTS_KEPT = 300
CHAT_LINE = 'one {"messages": [...]} conversation with an assistant reply'


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _dump(obj) -> dict:
    """A pydantic SDK object as a plain dict with wire names (e.g. model_output_name)."""
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    return obj.model_dump(by_alias=True, mode="json")


def apply_estimate(plan, estimate: dict) -> None:
    """Copy Together's price estimate onto a plan (a `DryRun`, or a Teach plan with the same fields)."""
    if estimate.get("estimation_available") is False:
        plan.estimate_note = str(estimate.get("unavailable_reason") or "estimate unavailable")
    else:
        plan.estimated_price = estimate.get("estimated_total_price")
        plan.estimated_tokens = estimate.get("estimated_train_token_count")
        plan.user_limit = estimate.get("user_limit")
        plan.allowed_to_proceed = estimate.get("allowed_to_proceed") is not False


class TogetherJobManager:
    name = "together"

    def __init__(
        self,
        workspace,
        *,
        api_key: str | None,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        create_retries: int = 0,
        poll_interval: float = 5.0,
        max_poll_interval: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        reconcile: bool = True,
    ):
        if not api_key:
            raise TogetherServiceError(
                "No Together API key: save one in the Connections tab, or set TOGETHER_API_KEY for the CLI.",
                kind="auth",
            )
        register_secret(api_key)
        import together

        self.workspace = workspace
        self.base_url = (base_url or os.environ.get("TOGETHER_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        if self.base_url.endswith("/v1"):
            # The SDK adds /v1 itself; the 1.x default ended in /v1 and gives /v1/v1 404s.
            self.base_url = self.base_url[: -len("/v1")]
        self.client = together.Together(
            api_key=api_key, base_url=self.base_url, timeout=timeout, max_retries=max_retries
        )
        # Retrying a create can pay twice: the manager reconciles instead (see module doc).
        self._create_client = self.client.with_options(max_retries=create_retries)
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self._sleep = sleep
        if reconcile:
            self.reconcile()

    # ----- records ------------------------------------------------------------------------

    def _store(self, job_id: str, **fields) -> None:
        fields["updated"] = _now_iso()
        self.workspace.upsert_phase1_job(job_id, fields)

    def _record(self, job_id: str) -> JobRecord:
        record = read_job(self.workspace, job_id)
        if record is None or record.backend != "together":
            raise InputError(f"No Together job {job_id} in this workspace: see `cognitivetwin phase1 --list`.")
        return record

    def jobs(self) -> list[JobRecord]:
        return read_jobs(self.workspace, "together")

    def unfinished_jobs(self) -> list[str]:
        return unfinished_jobs(self.jobs(), "together")

    # ----- upload and dry run -------------------------------------------------------------

    def upload(
        self, path: str | Path, *, progress: ProgressCallback | None = None, line_format: str = CHAT_LINE
    ) -> str:
        """Upload a JSONL file for fine-tuning; return its file id once Together accepted it.
        `line_format` describes a valid line in the refusal of a rejected file."""
        path = Path(path)
        callback = (lambda event: progress(event.uploaded_bytes, event.total_bytes)) if progress else None
        try:
            uploaded = self.client.files.upload(path, purpose="fine-tune", check=True, progress_callback=callback)
        except Exception as exc:
            raise translate(exc, action=f"uploading {path.name}") from None
        return self._wait_file_processed(uploaded.id, path.name, line_format)

    def _wait_file_processed(self, file_id: str, name: str, line_format: str = CHAT_LINE, attempts: int = 30) -> str:
        delay = 0.5
        for _ in range(attempts):
            try:
                info = self.client.files.retrieve(file_id)
            except Exception as exc:
                raise translate(exc, action=f"checking the uploaded file {name}") from None
            status = (info.processing_status or "COMPLETED").upper()
            report = info.validation_report
            if report is not None and report.valid is False or status in ("FAILED", "INVALID_FORMAT"):
                reason = (report.error if report is not None else None) or status.lower()
                raise TogetherServiceError(
                    f"Together rejected the training file {name}: {reason}. Fix the file (each line "
                    f"{line_format}) and try again.",
                    kind="file_rejected",
                )
            if status == "COMPLETED":
                return file_id
            self._sleep(delay)
            delay = min(delay * 2, 10.0)
        raise TogetherServiceError(
            f"Together is still checking the training file {name}; try the dry run again in a minute.", kind="timeout"
        )

    def _model_id(self, base_model: str) -> str:
        try:
            spec = get_spec(base_model)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if not spec.together_available:
            raise InputError(
                f"{spec.display_name} is not fine-tuned on Together: use --local for it, "
                "or pick llama-3.2-3b, llama-3.2-1b, llama-3.1-8b, gemma-3-4b or qwen3-4b."
            )
        return spec.together_id

    def _training_type(self, settings: Phase1Settings) -> dict:
        return {
            "type": "Lora",
            "lora_r": settings.lora_r,
            "lora_alpha": int(settings.lora_alpha),
            "lora_dropout": settings.lora_dropout,
            "lora_trainable_modules": self._modules(settings),
        }

    @staticmethod
    def _modules(settings: Phase1Settings) -> str:
        return ",".join(settings.target_modules) if settings.target_modules else "all-linear"

    def _check_limits(self, settings: Phase1Settings, limits: dict, model_id: str) -> list[str]:
        problems = []
        lora = limits.get("lora_training") or {}
        if lora.get("max_rank") and settings.lora_r > lora["max_rank"]:
            problems.append(f"LoRA rank {settings.lora_r} is above {model_id}'s maximum {lora['max_rank']}")
        if limits.get("max_num_epochs") and settings.epochs > limits["max_num_epochs"]:
            problems.append(f"{settings.epochs} epochs is above the maximum {limits['max_num_epochs']}")
        if settings.epochs < 1:
            problems.append("epochs must be at least 1")
        lr = settings.learning_rate or DEFAULT_LEARNING_RATE
        if limits.get("max_learning_rate") and not (
            limits.get("min_learning_rate", 0) <= lr <= limits["max_learning_rate"]
        ):
            problems.append(
                f"learning rate {lr} is outside {limits.get('min_learning_rate')}..{limits['max_learning_rate']}"
            )
        if (
            isinstance(settings.batch_size, int)
            and lora.get("max_batch_size")
            and not (lora.get("min_batch_size", 1) <= settings.batch_size <= lora["max_batch_size"])
        ):
            problems.append(
                f"batch size {settings.batch_size} is outside {lora.get('min_batch_size')}..{lora['max_batch_size']}"
            )
        allowed = set(lora.get("target_modules") or [])
        if settings.target_modules and allowed and not set(settings.target_modules) <= allowed:
            unknown = sorted(set(settings.target_modules) - allowed)
            problems.append(
                f"target modules {', '.join(unknown)} are not trainable (choose from {', '.join(sorted(allowed))})"
            )
        if limits.get("max_num_checkpoints") and settings.n_checkpoints > limits["max_num_checkpoints"]:
            problems.append(
                f"{settings.n_checkpoints} checkpoints is above the maximum {limits['max_num_checkpoints']}"
            )
        if not 0 <= settings.lora_dropout < 1:
            problems.append("LoRA dropout must be in [0, 1)")
        return problems

    def dry_run(
        self, data_path: str | Path, settings: Phase1Settings, *, progress: ProgressCallback | None = None
    ) -> DryRun:
        """Validate and upload the data, read the model's limits and the API's price estimate."""
        model_id = self._model_id(settings.base_model)
        stats = validate_chat_jsonl(data_path)
        validation_stats = validate_chat_jsonl(settings.validation_file) if settings.validation_file else None
        try:
            limits = _dump(self.client.fine_tuning.model_limits(model_name=model_id))
        except Exception as exc:
            raise translate(exc, action=f"reading the limits of {model_id}", model=model_id) from None
        problems = self._check_limits(settings, limits, model_id)
        if problems:
            raise InputError(f"These Phase 1 settings do not fit {settings.base_model}: " + "; ".join(problems) + ".")
        privacy = scan_chat_jsonl(data_path)  # what leaves the computer, shown with the estimate
        training_file_id = self.upload(data_path, progress=progress)
        validation_file_id = self.upload(settings.validation_file) if validation_stats else None
        try:
            estimate = self.client.fine_tuning.estimate_price(
                training_file=training_file_id,
                model=model_id,
                n_epochs=settings.epochs,
                training_method={"method": "sft", "train_on_inputs": False},
                training_type=self._training_type(settings),
                **({"validation_file": validation_file_id} if validation_file_id else {}),
            )
        except Exception as exc:
            raise translate(exc, action="estimating the price", model=model_id) from None
        estimate = _dump(estimate)
        plan = DryRun(
            backend=self.name,
            settings=settings,
            data=stats,
            model_id=model_id,
            training_file_id=training_file_id,
            validation_file_id=validation_file_id,
            limits=limits,
            privacy_lines=privacy.lines(advice=UPLOAD_ADVICE),
            privacy_counts=dict(privacy.counts),
        )
        apply_estimate(plan, estimate)
        if not plan.allowed_to_proceed:
            plan.warnings.append("Together says this job exceeds the account's balance or limit")
        return plan

    # ----- create ---------------------------------------------------------------------------

    def _create_kwargs(self, plan: DryRun) -> dict:
        s = plan.settings
        kwargs = dict(
            training_file=plan.training_file_id,
            model=plan.model_id,
            n_epochs=s.epochs,
            learning_rate=s.learning_rate or DEFAULT_LEARNING_RATE,
            n_checkpoints=s.n_checkpoints,
            batch_size=s.batch_size if s.batch_size is not None else "max",
            lora=True,  # without it the SDK silently drops every LoRA setting
            lora_r=s.lora_r,
            lora_alpha=s.lora_alpha,
            lora_dropout=s.lora_dropout,
            lora_trainable_modules=self._modules(s),
            suffix=s.suffix,
            train_on_inputs=False,  # loss on the twin's own replies, as the local path
        )
        if plan.validation_file_id:
            kwargs.update(validation_file=plan.validation_file_id, n_evals=max(1, s.epochs))
        if plan.limits.get("lora_training"):
            from together.types import FinetuneModelLimits

            kwargs["model_limits"] = FinetuneModelLimits.model_validate(plan.limits)
        return kwargs

    def launch(self, plan: DryRun) -> str:
        """Create the job (the user confirmed `plan`'s cost); return its Together id."""
        if plan.backend != self.name or not plan.training_file_id:
            raise InputError("This plan was not made by a Together dry run: run the dry run first.")
        if not plan.allowed_to_proceed:
            raise TogetherServiceError(
                "Together says this job exceeds the account's balance or spending limit; add credit "
                "under Settings -> Billing on api.together.ai, or lower the epochs, and try again.",
                kind="credit",
            )
        common = dict(
            backend=self.name,
            base_model=plan.settings.base_model,
            model_id=plan.model_id,
            suffix=plan.settings.suffix,
            training_file=plan.training_file_id,
            validation_file=plan.validation_file_id,
            data_path=plan.data.path,
            data_sha256=plan.data.sha256,
            settings=plan.settings.to_dict(),
            estimate={"price": plan.estimated_price, "tokens": plan.estimated_tokens, "note": plan.estimate_note},
        )
        return self.create_job(common, self._create_kwargs(plan))

    def create_job(self, common: dict, kwargs: dict) -> str:
        """`fine_tuning.create(**kwargs)` behind an intent record (see the module doc); `common`
        is what the job's record keeps (`backend`, `model_id`, `training_file`, `suffix`, …,
        `intent_time`). Returns the Together id."""
        intent_id = f"intent-{uuid.uuid4()}"
        intent_time = common.setdefault("intent_time", time.time())
        model_id = common.get("model_id")
        # Intent first: a crash between the call and storing its answer is reconciled later.
        self._store(intent_id, status="creating", **common)
        job = None
        for attempt in range(4):
            try:
                job = _dump(self._create_client.fine_tuning.create(**kwargs))
                break
            except Exception as exc:
                error = translate(exc, action="creating the fine-tuning job", model=model_id)
                kind = getattr(error, "kind", "")
                if kind == "rate_limit" and attempt < 3:
                    self._sleep(2.0 * 2**attempt)  # refused outright: nothing was created
                    continue
                if kind in ("server", "timeout", "connection"):
                    # The job may exist although the answer was lost: look before retrying.
                    found = self._find_matching_remote(common, intent_time)
                    if found:
                        job = found[0]
                        break
                    if attempt < 3:
                        self._sleep(2.0 * 2**attempt)
                        continue
                if kind in ("server", "timeout", "connection"):
                    # Still unknown whether Together made it: the next reconcile() settles it.
                    self._store(intent_id, error=str(error))
                else:
                    self.workspace.delete_phase1_job(intent_id)  # refused outright: nothing exists
                raise error from None
        return self._adopt(intent_id, common, job)

    def _find_matching_remote(self, common: dict, since: float) -> list[dict]:
        """Jobs on the account that this intent could have created, oldest first."""
        try:
            listing = self.client.fine_tuning.list()
        except Exception as exc:
            log.warning("listing jobs to reconcile failed: %s", exc)
            return []
        matches = []
        for item in listing.data or []:
            data = _dump(item)
            if (
                data.get("training_file") == common["training_file"]
                and (data.get("suffix") or None) == (common.get("suffix") or None)
                and (not data.get("model") or data.get("model") == common["model_id"])
            ):
                created = data.get("created_at")
                try:
                    created_ts = datetime.fromisoformat(str(created).replace("Z", "+00:00")).timestamp()
                except ValueError:
                    created_ts = since
                if created_ts >= since - 300:  # clocks differ; files are unique per upload anyway
                    matches.append(data)
        matches.sort(key=lambda d: str(d.get("created_at")))
        return matches

    def _adopt(self, intent_id: str, common: dict, job: dict) -> str:
        job_id = job["id"]
        self._store(
            job_id,
            status=job.get("status") or "pending",
            created_remote=str(job.get("created_at")),
            output_name=job.get("model_output_name") or job.get("output_name"),
            events=[],
            events_seen=0,
            duplicates=[],
            intent_id=intent_id,
            **common,
        )
        self.workspace.delete_phase1_job(intent_id)
        duplicates = [d["id"] for d in self._find_matching_remote(common, common["intent_time"]) if d["id"] != job_id]
        if duplicates:
            self._store(job_id, duplicates=duplicates)
            log.warning("Together created duplicate jobs %s for %s", duplicates, job_id)
        return job_id

    def duplicates(self, job_id: str) -> list[str]:
        return list(self._record(job_id).duplicates)

    def reconcile(self) -> list[str]:
        """Settle intents left by a crash: adopt the job each one created, or mark it failed."""
        settled = []
        for record in read_jobs(self.workspace, self.name):
            if not record.is_intent or record.status != "creating":
                continue
            stored = record.to_dict()  # as stored: a key an older intent lacks stays absent
            found = self._find_matching_remote(stored, float(record.intent_time or 0))
            if found:
                common = {
                    k: stored.get(k)
                    for k in (
                        "backend",
                        "base_model",
                        "model_id",
                        "suffix",
                        "training_file",
                        "validation_file",
                        "data_path",
                        "data_sha256",
                        "settings",
                        "estimate",
                        "intent_time",
                    )
                }
                if "teach" in stored:  # a Teach job's parent and feedback (phase1/together_teach.py)
                    common["teach"] = stored["teach"]
                settled.append(self._adopt(record.job_id, common, found[0]))
            else:
                self._store(
                    record.job_id,
                    status="create_failed",
                    error="The app stopped while creating this job and Together has no such job.",
                )
        return settled

    # ----- monitoring -----------------------------------------------------------------------

    def poll(self, job_id: str) -> JobUpdate:
        """One round: retrieve the job and its events, store what is new, return it."""
        record = self._record(job_id)
        if job_id.startswith("intent-"):
            return JobUpdate(job_id, record.status or "creating", message=record.error or "")
        try:
            job = _dump(self.client.fine_tuning.retrieve(job_id))
            events = [_dump(e) for e in (self.client.fine_tuning.list_events(job_id).data or [])]
        except Exception as exc:
            raise translate(exc, action=f"checking job {job_id}") from None
        status = str(job.get("status") or "unknown").lower()
        if "." in status:  # a legacy Enum's str(): FinetuneJobStatus.STATUS_COMPLETED
            status = status.rsplit("_", 1)[-1]
        seen = record.events_seen
        if seen > len(events):  # the server trimmed its list: fall back to comparing content
            known = {(e.get("created_at"), e.get("type"), e.get("message")) for e in record.events}
            new = [e for e in events if (e.get("created_at"), e.get("type"), e.get("message")) not in known]
        else:
            new = events[seen:]
        step, total = record.step, record.total_steps
        for event in new:
            kind = str(event.get("type") or "").lower()
            if event.get("total_steps"):
                total = int(event["total_steps"])
            if event.get("step") is not None and kind in (
                "checkpoint_save",
                "epoch_complete",
                "eval_complete",
                "training_progress",
            ):
                step = max(int(event["step"]), int(step or 0))
            if kind == "training_start" and step is None:
                step = 0
        if status == "completed" and total:
            step = total
        now = time.time()
        samples = list(record.step_samples)
        if step is not None and (not samples or samples[-1][1] != step):
            samples = (samples + [[now, step]])[-20:]
        eta = self._eta(samples, total, job, status)
        all_events = (list(record.events) + new)[-MAX_EVENTS_KEPT:]
        message = (
            self._failure_message(job_id, status, all_events) if status in ("error", "user_error", "cancelled") else ""
        )
        fields = dict(
            status=status,
            events=all_events,
            events_seen=len(events),
            step=step,
            total_steps=total,
            epochs_completed=job.get("epochs_completed"),
            eta_seconds=eta,
            step_samples=samples,
            output_name=job.get("model_output_name") or record.output_name,
        )
        if message:
            fields["error"] = message
        self._store(job_id, **fields)
        return JobUpdate(
            job_id,
            status,
            new_events=new,
            step=step,
            total_steps=total,
            epochs_completed=job.get("epochs_completed"),
            eta_seconds=eta,
            adapter_path=record.adapter_path,
            message=message,
        )

    @staticmethod
    def _eta(samples: list, total: int | None, job: dict, status: str) -> float | None:
        if status in TERMINAL_STATUSES:
            return None
        if total and len(samples) >= 2:
            (t0, s0), (t1, s1) = samples[0], samples[-1]
            if s1 > s0 and t1 > t0:
                return max(0.0, (total - s1) * (t1 - t0) / (s1 - s0))
        progress = job.get("progress") or {}
        if progress.get("estimate_available") and progress.get("seconds_remaining") is not None:
            return float(progress["seconds_remaining"])
        return None

    @staticmethod
    def _failure_message(job_id: str, status: str, events: list[dict]) -> str:
        last = [str(e.get("message") or e.get("type")) for e in events[-3:]]
        detail = "; ".join(last) if last else "no events"
        if status == "user_error":
            return (
                f"Together stopped job {job_id} because of a problem with its inputs (last events: "
                f"{detail}); fix the data or settings and launch again."
            )
        if status == "cancelled":
            return (
                f"Job {job_id} was cancelled (last events: {detail}); if you did not cancel it, check "
                "the account's balance on api.together.ai."
            )
        return (
            f"Job {job_id} failed on Together's side (last events: {detail}); launch it again, and "
            "contact Together support if it keeps failing."
        )

    def wait(
        self,
        job_id: str,
        *,
        on_update: Callable[[JobUpdate], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        max_transient_failures: int = 8,
    ) -> JobUpdate:
        """Poll with backoff until the job ends (or `should_stop()`); return the last update."""
        return follow(
            lambda: self.poll(job_id),
            backoff=Backoff(self.poll_interval, self.max_poll_interval, max_failures=max_transient_failures),
            on_update=on_update,
            should_stop=should_stop,
            stop_message=f"Stopped watching job {job_id}; it keeps running on Together.",
            retry_on=(TogetherServiceError,),
            on_retry=lambda exc, delay: log.info(
                "transient failure watching %s (%s); retrying in %.0fs", job_id, getattr(exc, "kind", "?"), delay
            ),
            sleep=self._sleep,
        )

    def resume_monitoring(
        self, *, on_update: Callable[[JobUpdate], None] | None = None, should_stop: Callable[[], bool] | None = None
    ) -> dict[str, JobUpdate]:
        """After a restart: watch every unfinished job to its end (one after the other)."""
        return {
            job_id: self.wait(job_id, on_update=on_update, should_stop=should_stop) for job_id in self.unfinished_jobs()
        }

    def cancel(self, job_id: str) -> JobUpdate:
        record = self._record(job_id)
        if record.status in TERMINAL_STATUSES:
            raise InputError(f"Job {job_id} is already {record.status}; there is nothing to cancel.")
        try:
            job = _dump(self.client.fine_tuning.cancel(job_id))
        except Exception as exc:
            raise translate(exc, action=f"cancelling job {job_id}") from None
        status = str(job.get("status") or "cancel_requested").lower()
        self._store(job_id, status=status)
        return JobUpdate(job_id, status)

    def check(self, job_id: str) -> JobUpdate:
        """`poll` for a job that may not be in this workspace yet (e.g. made elsewhere)."""
        if read_job(self.workspace, job_id) is None:
            try:
                job = _dump(self.client.fine_tuning.retrieve(job_id))
            except Exception as exc:
                raise translate(exc, action=f"looking up job {job_id}") from None
            spec_model = job.get("model")
            self._store(
                job_id,
                backend=self.name,
                status=job.get("status"),
                model_id=spec_model,
                base_model=None,
                suffix=job.get("suffix"),
                training_file=job.get("training_file"),
                events=[],
                events_seen=0,
                output_name=job.get("model_output_name"),
            )
        return self.poll(job_id)

    # ----- download -------------------------------------------------------------------------

    def download(
        self,
        job_id: str,
        output_dir: str | Path | None = None,
        *,
        progress: ProgressCallback | None = None,
        checkpoint: str = "adapter",
        overwrite: bool = False,
    ) -> Path:
        """Download the finished job's adapter, extract it safely, register it; return its folder.

        An `output_dir` the user named must be missing, empty, or (with `overwrite`) one of our
        adapters: anything else is refused before the download starts.
        """
        from cognitivetwin_core.output_dirs import check_adapter_output
        from cognitivetwin_core.phase1.adapter_archive import extract_adapter_archive, write_lineage

        if output_dir:
            check_adapter_output(output_dir, overwrite=overwrite)

        update = self.check(job_id)
        if update.status != "completed":
            raise InputError(
                f"Job {job_id} is {update.status}, not completed: only a completed job can be "
                "downloaded (watch it with --wait-job)."
            )
        record = self._record(job_id)
        adapter_id = f"together-{job_id}"
        target = Path(output_dir) if output_dir else Path(self.workspace.adapters_dir) / adapter_id
        staging = Path(self.workspace.adapters_dir) / ".downloads"
        staging.mkdir(parents=True, exist_ok=True)
        part = staging / f"{job_id}.tar.zst.part"
        try:
            with self.client.fine_tuning.with_streaming_response.content(
                ft_id=job_id, checkpoint=checkpoint
            ) as response:
                total = int(response.headers.get("content-length") or 0)
                done = 0
                with open(part, "wb") as handle:
                    for chunk in response.iter_bytes(1 << 20):
                        handle.write(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, total or done)
                if total and done != total:
                    raise TogetherServiceError(
                        f"The download of job {job_id} stopped early ({done} of {total} bytes); try again.",
                        kind="connection",
                    )
        except TogetherServiceError:
            part.unlink(missing_ok=True)
            raise
        except Exception as exc:
            part.unlink(missing_ok=True)
            raise translate(exc, action=f"downloading the adapter of job {job_id}") from None
        archive = staging / f"{job_id}.tar.zst"
        os.replace(part, archive)
        config_changes: dict = {}
        try:
            if output_dir:  # checked again: the folder may have changed during the download
                check_adapter_output(output_dir, overwrite=overwrite)
            folder = extract_adapter_archive(archive, target, config_changes=config_changes)
        finally:
            archive.unlink(missing_ok=True)
        lineage = {
            "backend": self.name,
            "job_id": job_id,
            "base_model": record.base_model,
            "model_id": record.model_id,
            "output_name": record.output_name,
            "training_file": record.training_file,
            "data_path": record.data_path,
            "data_sha256": record.data_sha256,
            "settings": record.settings,
            "checkpoint": checkpoint,
            "downloaded_at": _now_iso(),
            **config_changes,
            # A Teach job (phase1/together_teach.py): its parent adapter and the feedback used.
            **(record.extra.get("teach") or {}),
        }
        write_lineage(folder, lineage)
        self.workspace.register_adapter(adapter_id, folder, lineage)
        self._store(job_id, adapter_id=adapter_id, adapter_path=str(folder))
        return folder
