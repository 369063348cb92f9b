"""Phase 1 on Together, before anything costs money: upload, limits, price estimate (see together_jobs.py)."""

from __future__ import annotations

from pathlib import Path

from cognitivetwin_core.data.privacy import UPLOAD_ADVICE, scan_chat_jsonl
from cognitivetwin_core.errors import InputError
from cognitivetwin_core.models.catalog import get_spec
from cognitivetwin_core.phase1.jobs import DryRun, Phase1Settings, ProgressCallback, validate_chat_jsonl
from cognitivetwin_core.phase1.together_errors import TogetherServiceError, translate
from cognitivetwin_core.phase1.together_records import sdk_dict

DEFAULT_LEARNING_RATE = 1e-4
CHAT_LINE = 'one {"messages": [...]} conversation with an assistant reply'


def apply_estimate(plan, estimate: dict) -> None:
    """Copy Together's price estimate onto a plan (a `DryRun`, or a Teach plan with the same fields)."""
    if estimate.get("estimation_available") is False:
        plan.estimate_note = str(estimate.get("unavailable_reason") or "estimate unavailable")
    else:
        plan.estimated_price = estimate.get("estimated_total_price")
        plan.estimated_tokens = estimate.get("estimated_train_token_count")
        plan.user_limit = estimate.get("user_limit")
        plan.allowed_to_proceed = estimate.get("allowed_to_proceed") is not False


class TogetherDryRun:
    """Upload the data, check the settings against the model's limits, ask Together for a price
    estimate."""

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
            limits = sdk_dict(self.client.fine_tuning.model_limits(model_name=model_id))
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
        estimate = sdk_dict(estimate)
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
