"""Phase 1 on Together: creating a job exactly once (intent records, reconcile; see together_jobs.py)."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime

from cognitivetwin_core.errors import InputError
from cognitivetwin_core.phase1.jobs import DryRun, read_jobs
from cognitivetwin_core.phase1.together_dry_run import DEFAULT_LEARNING_RATE
from cognitivetwin_core.phase1.together_errors import TogetherServiceError, translate
from cognitivetwin_core.phase1.together_records import sdk_dict

log = logging.getLogger(__name__)


class TogetherLaunch:
    """Create a job behind an intent record, and settle intents a crash left behind."""

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
                job = sdk_dict(self._create_client.fine_tuning.create(**kwargs))
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
            data = sdk_dict(item)
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
