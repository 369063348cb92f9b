"""Teach a Together twin: Together's preference fine-tuning (DPO) continuing from the twin's own job.

    job_id = together_parent_job(workspace, adapter_dir)       # None: not a Together twin
    pairs = preference_pairs(workspace, adapter_dir)            # refuses in words without an edit
    plan = plan_together_teach(workspace, adapter_dir, manager, pairs)  # upload + price estimate
    job_id = launch_together_teach(manager, plan)               # a Phase 1 job record

The local Teach (phase1/teach.py) trains the adapter here; a twin whose adapter came from a
Together job is taught where it was trained instead. The person's edits become pairs in
Together's preference format, one JSON object a line:
`{"input": {"messages": [...]}, "preferred_output": [{"role": "assistant", "content": edit}],
"non_preferred_output": [{"role": "assistant", "content": the twin's reply}]}`. Together's DPO
needs pairs, so thumbs alone are refused (the local path can use KTO for them).

The job is created with `training_method="dpo"` and `from_checkpoint=<the parent job id>` (no
`model`: the SDK refuses both), so it starts from the twin's own weights and inherits its LoRA
settings. `rpo_alpha` adds a supervised term on the preferred replies, as the local run's SFT
term does. The create goes through `TogetherJobManager.create_job` (intent record, reconcile),
and the record carries a `teach` dict (parent adapter, parent job, feedback ids) that the
download copies into the new adapter's lineage, so `teach_feedback.ancestry` follows it. Monitoring and
download are the ordinary Phase 1 ones (`phase1 --wait-job`, `--download`, the app's job table).
See docs/together.md and docs/teaching-and-memory.md.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from cognitivetwin_core.errors import InputError

DEFAULT_EPOCHS = 3  # a few dozen pairs: each pass is one or two batches
DEFAULT_LEARNING_RATE = 1e-5  # Together's own default; DPO moves a tuned model gently
DPO_METHOD = "dpo"
PREFERENCE_LINE = (
    'one {"input": {"messages": [...]}, "preferred_output": [...], "non_preferred_output": [...]} pair, '
    "each output one assistant message"
)
PRIVACY_ADVICE = (
    "This text would be uploaded. To leave it out, remove the feedback that holds it "
    "(`cognitivetwin feedback list`, then `cognitivetwin feedback undo ID`) and teach again."
)


@dataclass
class PreferencePairs:
    parent_dir: Path
    parent_job: str
    lines: list[dict]  # Together's preference format
    feedback_ids: list[int]


@dataclass
class TogetherTeachPlan:
    """What a Teach job on Together would send, and its price (what `--dry-run` shows)."""

    pairs: PreferencePairs
    base_model: str | None
    model_id: str | None
    data_path: Path
    data_sha256: str
    request: dict  # the `fine_tuning.create` parameters
    settings: dict
    limits: dict = field(default_factory=dict)
    estimated_price: float | None = None
    estimated_tokens: int | None = None
    estimate_note: str = ""
    allowed_to_proceed: bool = True
    user_limit: float | None = None
    privacy_lines: list[str] = field(default_factory=list)  # what the scan found in the text sent

    @property
    def backend(self) -> str:
        """As a Phase 1 `DryRun` names it (the app's launch confirmation reads it)."""
        return "together"

    def summary_lines(self) -> list[str]:
        shown = {k: v for k, v in self.request.items() if k != "model_limits"}
        lines = [
            f"preference pairs: {len(self.pairs.lines)} (your edits preferred to the twin's replies), "
            f"written to {self.data_path}",
            f"continues Together job {self.pairs.parent_job} ({self.base_model or self.model_id or 'its base'})",
            "create request: " + json.dumps(shown, ensure_ascii=False, sort_keys=True),
            "first line sent: " + json.dumps(self.pairs.lines[0], ensure_ascii=False),
        ]
        if self.estimated_price is not None:
            limit = f" (account limit ${self.user_limit:.2f})" if self.user_limit else ""
            lines.append(f"estimated price: ${self.estimated_price:.2f}{limit}")
        else:
            lines.append(f"estimated price: not available ({self.estimate_note or 'no estimate'})")
        return lines + self.privacy_lines


def together_parent_job(workspace, adapter_dir: str | Path) -> str | None:
    """The Together job the adapter was downloaded from (its lineage, else the job records)."""
    from cognitivetwin_core.phase1.adapter_archive import read_lineage
    from cognitivetwin_core.phase1.jobs import read_jobs

    folder = Path(adapter_dir).expanduser().resolve()
    lineage = read_lineage(folder) or {}
    if lineage.get("backend") == "together" and lineage.get("job_id"):
        return str(lineage["job_id"])
    for record in read_jobs(workspace, "together"):
        if record.adapter_path and Path(record.adapter_path).expanduser().resolve() == folder:
            return record.job_id
    return None


def preference_line(row: dict) -> dict:
    """One TRL preference row (prompt / chosen / rejected) in Together's preference format."""
    return {
        "input": {"messages": row["prompt"]},
        "preferred_output": row["chosen"],
        "non_preferred_output": row["rejected"],
    }


def preference_pairs(workspace, adapter_dir: str | Path, *, include_taught: bool = False) -> PreferencePairs:
    """The edited replies on this twin (and the versions it came from) as Together pairs, less
    those already taught into them unless `include_taught`."""
    from cognitivetwin_core.data.feedback import dpo_rows
    from cognitivetwin_core.phase1.teach_feedback import feedback_to_teach

    parent = Path(adapter_dir).expanduser().resolve()
    if not (parent / "adapter_config.json").is_file():
        raise InputError(f"{parent} is not an adapter folder (it has no adapter_config.json).")
    job_id = together_parent_job(workspace, parent)
    if job_id is None:
        raise InputError(
            f"The adapter in {parent} did not come from a Together job (its lineage.json names none): "
            "leave out --together to teach it on this computer."
        )
    rows = dpo_rows(feedback_to_teach(workspace, parent, include_taught=include_taught))
    if not rows and not include_taught and dpo_rows(feedback_to_teach(workspace, parent, include_taught=True)):
        raise InputError(
            "Every edited reply on this twin was already taught into it, and Together's preference tuning needs "
            "pairs: edit a new reply first, or relearn what it already learned (--include-taught)."
        )
    if not rows:
        raise InputError(
            "There is no edited reply on this twin: Together's preference tuning needs pairs, so edit at "
            'least one reply ("I\'d say it like this") before teaching it on Together.'
        )
    ids = sorted({row["feedback_id"] for row in rows})
    return PreferencePairs(parent, job_id, [preference_line(row) for row in rows], ids)


def plan_together_teach(
    workspace,
    manager,
    pairs: PreferencePairs,
    *,
    epochs: int = DEFAULT_EPOCHS,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    beta: float | None = None,
) -> TogetherTeachPlan:
    """Write the pairs file, upload it and ask Together's price estimate."""
    from cognitivetwin_core.atomic_files import write_text_atomically
    from cognitivetwin_core.data.privacy import scan_chat_jsonl
    from cognitivetwin_core.phase1.jobs import read_job
    from cognitivetwin_core.phase1.teach import DEFAULT_BETA, SFT_WEIGHT
    from cognitivetwin_core.phase1.together_dry_run import apply_estimate
    from cognitivetwin_core.phase1.together_errors import translate
    from cognitivetwin_core.phase1.together_records import sdk_dict

    if epochs < 1:
        raise InputError(f"--epochs must be 1 or more (got {epochs}).")
    beta = DEFAULT_BETA if beta is None else beta
    record = read_job(workspace, pairs.parent_job)
    parent_settings = dict(record.settings) if record else {}
    base_model = record.base_model if record else None
    model_id = record.model_id if record else None
    # A twin taught again keeps one "-taught" (the job's own id tells the versions apart).
    suffix = f"{(parent_settings.get('suffix') or 'twin').removesuffix('-taught')[:30]}-taught"
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in pairs.lines)
    path = Path(workspace.path) / "exports" / f"teach-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, text)
    request = dict(
        training_file=None,
        from_checkpoint=pairs.parent_job,
        training_method=DPO_METHOD,
        dpo_beta=beta,
        rpo_alpha=SFT_WEIGHT,  # the supervised term on the edits, as the local run has
        n_epochs=epochs,
        learning_rate=learning_rate,
        n_checkpoints=1,
        batch_size="max",
        suffix=suffix,
    )
    settings = {**parent_settings, "epochs": epochs, "learning_rate": learning_rate, "suffix": suffix}
    plan = TogetherTeachPlan(
        pairs, base_model, model_id, path, hashlib.sha256(text.encode("utf-8")).hexdigest(), request, settings
    )
    plan.privacy_lines = scan_chat_jsonl(path).lines(advice=PRIVACY_ADVICE)
    if model_id:
        try:
            plan.limits = sdk_dict(manager.client.fine_tuning.model_limits(model_name=model_id))
        except Exception as exc:
            raise translate(exc, action=f"reading the limits of {model_id}", model=model_id) from None
    request["training_file"] = manager.upload(path, line_format=PREFERENCE_LINE)
    try:
        estimate = sdk_dict(
            manager.client.fine_tuning.estimate_price(
                training_file=request["training_file"],
                from_checkpoint=pairs.parent_job,
                model="",  # as the SDK's own create sends it with from_checkpoint
                n_epochs=epochs,
                training_method={
                    "method": DPO_METHOD,
                    "dpo_beta": beta,
                    "dpo_normalize_logratios_by_length": False,
                    "dpo_reference_free": False,
                    "rpo_alpha": SFT_WEIGHT,
                    "simpo_gamma": 0,
                },
            )
        )
    except Exception as exc:
        raise translate(exc, action="estimating the price") from None
    apply_estimate(plan, estimate)
    return plan


def launch_together_teach(manager, plan: TogetherTeachPlan) -> str:
    """Create the DPO job (the person confirmed the price); its Together id."""
    from cognitivetwin_core.phase1.together_errors import TogetherServiceError

    if not plan.request.get("training_file"):
        raise InputError("The preference file was not uploaded: plan the Teach job with its upload first.")
    if not plan.allowed_to_proceed:
        raise TogetherServiceError(
            "Together says this job exceeds the account's balance or spending limit; add credit under "
            "Settings -> Billing on api.together.ai, or lower the epochs, and try again.",
            kind="credit",
        )
    kwargs = dict(plan.request)
    if plan.limits.get("lora_training"):
        from together.types import FinetuneModelLimits

        kwargs["model_limits"] = FinetuneModelLimits.model_validate(plan.limits)
    common = dict(
        backend="together",
        base_model=plan.base_model,
        model_id=plan.model_id,
        suffix=plan.request["suffix"],
        training_file=plan.request["training_file"],
        validation_file=None,
        data_path=str(plan.data_path),
        data_sha256=plan.data_sha256,
        settings=plan.settings,
        estimate={"price": plan.estimated_price, "tokens": plan.estimated_tokens, "note": plan.estimate_note},
        teach={
            "parent_adapter": str(plan.pairs.parent_dir),
            "parent_job": plan.pairs.parent_job,
            "from_checkpoint": plan.request["from_checkpoint"],
            "method": DPO_METHOD,
            "feedback_ids": plan.pairs.feedback_ids,
            "dpo_beta": plan.request["dpo_beta"],
            "rpo_alpha": plan.request["rpo_alpha"],
        },
    )
    return manager.create_job(common, kwargs)
