"""The size of a local Phase 1 run, measured as the run itself will see its data: each
conversation rendered with the base's chat format and tokenised by its tokenizer (cut to the
maximum length), grouped into the run's batches. So the dry run's token count, step count and
time respect the step cap ("Stop after steps") and agree with what training then reports.

Loads only the tokenizer (seconds), not the model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from cognitivetwin_core.phase1.jobs import Phase1Settings, local_size_line, read_chat_jsonl


@dataclass(frozen=True)
class LocalPlanSize:
    examples: int  # conversations with a reply of the person within the maximum length
    tokens_per_epoch: int  # every token the model reads in one pass (chat format included)
    trained_tokens_per_epoch: int  # of which the person's replies, the tokens it learns from
    steps_per_epoch: int
    total_steps: int  # after the step cap
    tokens_to_train: int  # tokens read over the whole run, after the step cap

    def describe(self, epochs: int, max_steps: int | None) -> str:
        return local_size_line(asdict(self), epochs, max_steps)


def measure_local_plan(
    data_path: str | Path, settings: Phase1Settings, *, max_batch_tokens: int | None = None, seed: int = 0
) -> LocalPlanSize:
    from cognitivetwin_core.models.loader import load_tokenizer
    from cognitivetwin_core.phase1.assistant_tokens import DEFAULT_BATCH_TOKENS, length_batches, tokenize_conversation

    tokenizer = load_tokenizer(settings.base_model)
    conversations = read_chat_jsonl(data_path)
    examples = [e for e in (tokenize_conversation(tokenizer, c, settings.max_seq_length) for c in conversations) if e]
    epochs = max(1, settings.epochs)
    budget = max_batch_tokens or DEFAULT_BATCH_TOKENS
    per_epoch = [length_batches(examples, budget, seed + epoch) for epoch in range(epochs)] if examples else []
    steps_per_epoch = len(per_epoch[0]) if per_epoch else 0
    all_steps = sum(len(batches) for batches in per_epoch)
    total = min(all_steps, settings.max_steps) if settings.max_steps else all_steps
    tokens_per_epoch = sum(e.length for e in examples)
    trained = sum(int(sum(1 for label in e.labels if label != -100)) for e in examples)
    # The tokens of the steps that will run (batches in order, epoch after epoch).
    lengths = [e.length for e in examples]
    to_train = 0
    for batch in [b for batches in per_epoch for b in batches][:total]:
        to_train += sum(lengths[i] for i in batch)
    return LocalPlanSize(len(examples), tokens_per_epoch, trained, steps_per_epoch, total, to_train)


def size_local_plan(plan, data_path: str | Path, settings: Phase1Settings, *, device: str | None = None, **measure):
    """Give a local dry run one token count and a time that respects the step cap: the data
    as the run will tokenise and batch it (`measure_local_plan`), not a characters/4 guess."""
    import logging

    from cognitivetwin_core.durations import format_duration
    from cognitivetwin_core.errors import CognitiveTwinError
    from cognitivetwin_core.phase1.estimates import estimate_local_seconds

    try:
        size = measure_local_plan(data_path, settings, **measure)
    except CognitiveTwinError:
        raise
    except Exception as exc:  # the tokenizer could not load: keep the rough count, say so
        logging.getLogger(__name__).warning("could not measure the local plan: %s", exc)
        size = None
    measured = plan.limits.get("measured_tokens_per_second")  # the dry run's, from earlier runs
    if size is not None:
        plan.estimated_tokens = size.tokens_to_train
        plan.limits["local_size"] = asdict(size)  # the app says it (LocalPlanSize.describe)
        # A measured speed counts the tokens learnt from (the replies); the rough guess all tokens.
        share = size.trained_tokens_per_epoch / max(1, size.tokens_per_epoch)
        tokens = size.tokens_to_train * share if measured else size.tokens_to_train
    else:
        tokens = plan.estimated_tokens or plan.data.approx_tokens * max(1, settings.epochs)
    seconds, how = estimate_local_seconds(
        tokens, settings.base_model, measured_tokens_per_second=measured, device=device
    )
    plan.estimate_note = f"expected time: about {format_duration(seconds)} ({how})"
    plan.limits["expected_seconds"] = seconds
    return plan


def plan_local_run(workspace_path: str | Path, data_path: str | Path, settings: Phase1Settings, **options):
    """The app's local dry run (a `DryRun`), sized by `size_local_plan`. It opens the workspace
    itself and may load a tokenizer and torch: the app runs it in a helper child
    (child_processes.call_in_child). `options` as `LocalLoraJobs` takes them."""
    from cognitivetwin_core.data.workspace import Workspace
    from cognitivetwin_core.phase1.local_jobs import LocalLoraJobs

    with Workspace.open(Path(workspace_path)) as workspace:
        plan = LocalLoraJobs(workspace, **options).dry_run(data_path, settings)
    return size_local_plan(
        plan, data_path, settings, device=options.get("device"), max_batch_tokens=options.get("max_batch_tokens")
    )
