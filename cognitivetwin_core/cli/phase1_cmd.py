"""`cognitivetwin phase1`: LoRA fine-tuning on Together AI, or locally with PEFT (--local).

    cognitivetwin phase1 --model llama-3.2-3b --epochs 3 --suffix my-twin [--data FILE] [--dry-run] [--yes]
    cognitivetwin phase1 --check-job ID | --wait-job ID | --cancel ID | --list
    cognitivetwin phase1 --download ID --output-dir DIR
    cognitivetwin phase1 --local [--base-model NAME|DIR] [--epochs 1] [--data FILE] [--device auto|cpu|cuda[:N]|mps]
    cognitivetwin phase1 --evaluate ADAPTER_DIR [--base-model NAME|DIR] [--workspace DIR] [--model-dir RUN] [--samples N]
    cognitivetwin phase1 --export-twin ADAPTER_DIR --output-dir DIR [--base-model NAME|DIR]

The key is TOGETHER_API_KEY, else the OS keyring; TOGETHER_BASE_URL is honoured. A launch
shows the dry run (examples, tokens, price estimate, model limits) and asks to confirm;
--yes confirms for scripts, and with no terminal to ask, the launch is refused.
"""

from __future__ import annotations

import os
import sys
import time

from cognitivetwin_core.cli.terminal_text import printable
from cognitivetwin_core.errors import CancelledError, CognitiveTwinError, InputError
from cognitivetwin_core.glossary import meaning


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "phase1",
        help="Phase 1 LoRA fine-tuning: a Together AI job, or local PEFT training (--local)",
        description="Fine-tune the base with LoRA on your conversations, on Together AI or locally (--local).",
    )
    actions = parser.add_mutually_exclusive_group()
    actions.add_argument("--check-job", metavar="ID", help="show a job's status and new events once")
    actions.add_argument(
        "--wait-job",
        metavar="ID",
        help="follow a job with a live status line until it ends (exit status 1 if it failed)",
    )
    actions.add_argument("--download", metavar="ID", help="download a completed job's adapter (with --output-dir)")
    actions.add_argument("--list", action="store_true", help="list this workspace's Phase 1 jobs")
    actions.add_argument("--cancel", metavar="ID", help="cancel a running job")
    actions.add_argument("--local", action="store_true", help="train locally with PEFT instead of on Together")
    actions.add_argument(
        "--evaluate",
        metavar="ADAPTER_DIR",
        help="compare the twin with its base on held-out replies (perplexity, style); saves evaluation.json",
    )
    actions.add_argument(
        "--export-twin",
        metavar="ADAPTER_DIR",
        help="write the adapter merged into its base (and an Ollama Modelfile where possible) to --output-dir",
    )
    parser.add_argument("--workspace", metavar="DIR", help="workspace folder (default: the user's default workspace)")
    parser.add_argument(
        "--data", metavar="FILE", help="Phase 1 chat JSONL (default: export the workspace's conversations)"
    )
    parser.add_argument(
        "--me",
        metavar="NAME|user|assistant",
        help="without --data: whose messages the twin learns (default: the workspace's setting)",
    )
    parser.add_argument(
        "--redact",
        action="store_true",
        help="without --data: replace personal data (e-mails, phone numbers, ...) with placeholders before upload",
    )
    parser.add_argument("--model", default=None, help="Together base model by catalog name (default llama-3.2-3b)")
    parser.add_argument(
        "--base-model",
        default=None,
        metavar="NAME|DIR",
        help="--local: catalog name or local HF folder (default the embedded smollm2-135m)",
    )
    parser.add_argument(
        "--epochs", type=int, default=None, help="epochs (default 3 on Together, 1 locally). " + meaning("epoch")
    )
    parser.add_argument("--suffix", default=None, help="name suffix of the Together output model. " + meaning("suffix"))
    parser.add_argument("--learning-rate", type=float, default=None, help=meaning("learning rate"))
    parser.add_argument(
        "--lora-r",
        type=int,
        default=None,
        help="LoRA rank (default 16 on Together, 8 locally). " + meaning("LoRA rank"),
    )
    parser.add_argument(
        "--lora-alpha", type=int, default=None, help="LoRA alpha (default 2 x rank). " + meaning("alpha")
    )
    parser.add_argument("--lora-dropout", type=float, default=0.05)
    parser.add_argument(
        "--target-modules",
        default=None,
        metavar="A,B",
        help="modules to adapt (default all-linear on Together, q_proj,v_proj locally)",
    )
    parser.add_argument("--batch-size", type=int, default=None, help="Together batch size (default: max)")
    parser.add_argument("--validation-file", metavar="FILE", default=None)
    parser.add_argument("--checkpoints", type=int, default=1, help="Together: checkpoints to keep")
    parser.add_argument("--max-seq-length", type=int, default=512, help="--local: tokens kept per conversation")
    parser.add_argument(
        "--max-steps", type=int, default=None, help="--local: stop after this many steps. " + meaning("training steps")
    )
    parser.add_argument(
        "--device",
        default="auto",
        metavar="auto|cpu|cuda|cuda:N|mps",
        help="--local: where to train; --evaluate: where the base and the twin run (default auto: a CUDA GPU, "
        "then Apple MPS, then the CPU)",
    )
    parser.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "bf16"),
        help="--local: weights and autocast dtype (default auto: bf16 on GPUs that do it natively, else fp32)",
    )
    parser.add_argument(
        "--max-batch-tokens",
        type=int,
        default=None,
        metavar="N",
        help="--local: padded tokens per step (default 1024 on the CPU, sized to free memory on a GPU)",
    )
    parser.add_argument(
        "--output-dir",
        metavar="DIR",
        help="--download: where the adapter folder goes (a new or empty folder); --export-twin: the new folder",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="--download: replace the adapter already in --output-dir"
    )
    parser.add_argument("--model-dir", metavar="RUN", help="--evaluate: a Phase 2 run that scores the replies' style")
    parser.add_argument(
        "--samples", type=int, default=16, help="--evaluate: held-out replies the base and the twin answer (default 16)"
    )
    parser.add_argument(
        "--max-new-tokens", type=int, default=96, help="--evaluate: longest generated reply (default 96 tokens)"
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="seconds between status checks while waiting (grows while nothing changes)",
    )
    parser.add_argument("--dry-run", action="store_true", help="upload and estimate only; launch nothing")
    parser.add_argument("--yes", action="store_true", help="confirm the estimated cost without asking")
    parser.set_defaults(func=_run)


# ----- plumbing -----------------------------------------------------------------------------


def _workspace(args):
    from cognitivetwin_core.data.workspace import Workspace

    # Listing only reads: no write lock, and a mistyped --workspace is refused, not created.
    return Workspace.open(args.workspace, read_only=bool(getattr(args, "list", False)))


def _api_key() -> str:
    key = os.environ.get("TOGETHER_API_KEY")
    if not key:
        try:
            from cognitivetwin_core.connections.secrets import TOGETHER_API_KEY, get_secret

            key = get_secret(TOGETHER_API_KEY)
        except ImportError:
            key = None
        except CognitiveTwinError as exc:
            raise CognitiveTwinError(f"No TOGETHER_API_KEY is set and the keyring cannot be read: {exc}") from None
    if not key:
        raise CognitiveTwinError(
            "No Together API key: set TOGETHER_API_KEY, or save the key in the app's "
            "Connections tab (it goes to the OS keyring)."
        )
    from cognitivetwin_core.logging_setup import register_secret

    register_secret(key)
    return key


def _together(workspace, args):
    from cognitivetwin_core.phase1.backends import open_backend

    interval = max(0.0, args.poll_interval)
    return open_backend(
        "together",
        workspace,
        api_key=_api_key(),
        poll_interval=interval,
        max_poll_interval=max(interval, 60.0) if interval else 0.0,
    )


def _backend_for_job(workspace, job_id: str, args):
    from cognitivetwin_core.phase1.jobs import read_job

    record = read_job(workspace, job_id)
    if record is not None and record.backend == "local":
        from cognitivetwin_core.phase1.backends import open_backend

        return open_backend("local", workspace)
    return _together(workspace, args)


class _StatusLine:
    """One line rewritten in place on a terminal; plain lines (on change) otherwise."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
        self.last = ""

    def show(self, text: str) -> None:
        if text == self.last:
            return
        if self.live:
            pad = max(0, len(self.last) - len(text))
            self.stream.write("\r" + text + " " * pad)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self.last = text

    def event(self, text: str) -> None:
        if self.live and self.last:
            self.stream.write("\r" + " " * len(self.last) + "\r")
        self.stream.write(f"  {text}\n")
        self.last = ""
        self.stream.flush()

    def end(self) -> None:
        if self.live and self.last:
            self.stream.write("\n")
            self.stream.flush()
        self.last = ""


def _follow(backend, job_id: str) -> int:
    line = _StatusLine()
    losses: list[float] = []  # per step, for the loss-trend verdict at the end

    def on_update(update) -> None:
        for event in update.new_events:
            kind = str(event.get("type") or "")
            if kind == "step":
                if isinstance(event.get("loss"), (int, float)):
                    losses.append(float(event["loss"]))
                continue
            message = event.get("message") or kind
            line.event(f"{kind}: {message}" if message != kind else kind)
        line.show(update.status_line())

    try:
        final = backend.wait(job_id, on_update=on_update)
    finally:
        line.end()
    code = _finish(final)
    if final.status == "completed" and len(losses) >= 2:
        from cognitivetwin_core.training_verdicts import MIN_STEPS_FOR_A_TREND, loss_trend

        print(loss_trend(losses, min_points=MIN_STEPS_FOR_A_TREND).message)
    return code


def _finish(update) -> int:
    if update.failed:
        raise CognitiveTwinError(update.message or f"Job {update.job_id} ended {update.status}.")
    if update.status == "completed":
        print(
            f"Job {update.job_id} completed."
            + (
                f" Adapter: {update.adapter_path}"
                if update.adapter_path
                else f" Download it with: cognitivetwin phase1 --download {update.job_id} --output-dir DIR"
            )
        )
    return 0


def _settings(args, *, local: bool):
    from cognitivetwin_core.models.catalog import DEFAULT_BASE_MODEL, DEFAULT_TOGETHER_BASE_MODEL
    from cognitivetwin_core.phase1.jobs import Phase1Settings

    if local:
        base = args.base_model or args.model or DEFAULT_BASE_MODEL
    else:
        if args.base_model:
            raise InputError("--base-model is for --local; on Together choose the base with --model.")
        base = args.model or DEFAULT_TOGETHER_BASE_MODEL
    rank = args.lora_r or (8 if local else 16)
    modules = tuple(m.strip() for m in args.target_modules.split(",") if m.strip()) if args.target_modules else None
    for name, value in (
        ("--epochs", args.epochs),
        ("--lora-r", rank),
        ("--checkpoints", args.checkpoints),
        ("--max-seq-length", args.max_seq_length),
    ):
        if value is not None and value < 1:
            raise InputError(f"{name} must be at least 1, got {value}.")
    return Phase1Settings(
        base_model=base,
        epochs=args.epochs or (1 if local else 3),
        learning_rate=args.learning_rate,
        lora_r=rank,
        lora_alpha=args.lora_alpha or 2 * rank,
        lora_dropout=args.lora_dropout,
        target_modules=modules,
        batch_size=args.batch_size,
        suffix=args.suffix,
        validation_file=args.validation_file,
        n_checkpoints=args.checkpoints,
        max_seq_length=args.max_seq_length,
        max_steps=args.max_steps,
    )


def _data_file(args, workspace, base_model: str) -> tuple[str, bool]:
    """The training file, and whether it is an export made for this launch (removed if refused)."""
    if args.data:
        if args.me or args.redact:
            raise InputError("--me and --redact shape the export from the workspace: leave out --data to use them.")
        return args.data, False
    from pathlib import Path

    from cognitivetwin_core.data.exports import export_together
    from cognitivetwin_core.data.person_identity import resolve_speaker

    if workspace.count_conversations() == 0:
        raise InputError(
            f"The workspace {workspace.path} has no conversations: import some with "
            "`cognitivetwin data import`, or pass --data FILE."
        )
    target = Path(workspace.path) / "exports" / f"phase1-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    summary = export_together(
        workspace,
        target,
        base_model=base_model,
        twin_speaker=resolve_speaker(workspace, args.me) if args.me else None,
        privacy="redact" if args.redact else "keep",
        # Local training keeps --max-seq-length tokens of an example: cut the examples to that,
        # so each still ends on the person's turn instead of losing it to truncation.
        max_tokens=args.max_seq_length if args.local else None,
    )
    speaks = printable(summary.text().splitlines()[1].lower(), one_line=True)
    print(f"Exported {summary.examples} examples to {target}; {speaks}")
    return str(target), True


def _check_can_confirm(args) -> None:
    if not args.yes and not args.dry_run and not args.local and not sys.stdin.isatty():
        raise CognitiveTwinError(
            "Launching a Together job costs money and there is no terminal to confirm "
            "the estimate: run it in a terminal, or pass --yes to confirm."
        )


def _confirm(plan, args) -> None:
    if args.yes:
        return
    _check_can_confirm(args)
    price = f"${plan.estimated_price:.2f}" if plan.estimated_price is not None else "an unknown amount"
    answer = input(f"Launch this job for about {price}? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise CancelledError("Nothing was launched.")


# ----- actions ---------------------------------------------------------------------------------


def _run(args) -> int:
    if args.output_dir and not (args.download or args.export_twin):
        raise InputError("--output-dir goes with --download ID or --export-twin ADAPTER_DIR.")
    if args.overwrite and not (args.output_dir and args.download):
        raise InputError("--overwrite goes with --download ID --output-dir DIR.")
    if args.export_twin:
        return _export_twin(args)
    with _workspace(args) as workspace:
        if args.evaluate:
            return _evaluate(args, workspace)
        if args.list:
            return _list(workspace)
        if args.check_job:
            backend = _backend_for_job(workspace, args.check_job, args)
            update = backend.check(args.check_job) if hasattr(backend, "check") else backend.poll(args.check_job)
            for event in update.new_events:
                print(f"  {event.get('type')}: {event.get('message') or ''}".rstrip(": "))
            print(update.status_line())
            if update.failed:
                raise CognitiveTwinError(update.message or f"Job {update.job_id} ended {update.status}.")
            return 0
        if args.wait_job:
            return _follow(_backend_for_job(workspace, args.wait_job, args), args.wait_job)
        if args.cancel:
            update = _backend_for_job(workspace, args.cancel, args).cancel(args.cancel)
            print(f"Cancel requested for {args.cancel} (now {update.status}).")
            return 0
        if args.download:
            if not args.output_dir:
                raise InputError("--download needs --output-dir DIR (where the adapter folder goes).")
            from cognitivetwin_core.output_dirs import check_adapter_output

            check_adapter_output(args.output_dir, overwrite=args.overwrite)
            backend = _backend_for_job(workspace, args.download, args)
            folder = backend.download(
                args.download, args.output_dir, progress=_byte_progress(), overwrite=args.overwrite
            )
            print(f"\nAdapter saved in {folder}")
            return 0
        return _launch(args, workspace)


def _evaluate(args, workspace) -> int:
    from cognitivetwin_core.playground.evaluation import evaluate_adapter, report_lines

    report = evaluate_adapter(
        args.evaluate,
        base_model=args.base_model,
        workspace=workspace,
        model_dir=args.model_dir,
        samples=args.samples,
        max_new_tokens=args.max_new_tokens,
        device=args.device,
        progress=lambda message: print(message, file=sys.stderr, flush=True),
    )
    print("\n".join(report_lines(report)))
    print(f"Saved {os.path.join(args.evaluate, 'evaluation.json')}")
    return 0


def _export_twin(args) -> int:
    from cognitivetwin_core.phase1.twin_export import export_twin

    if not args.output_dir:
        raise InputError("--export-twin needs --output-dir DIR (a new or empty folder for the twin).")
    result = export_twin(
        args.export_twin,
        args.output_dir,
        base_model=args.base_model,
        progress=lambda message: print(message, file=sys.stderr, flush=True),
    )
    print(f"Merged model: {result.merged_dir}")
    if result.modelfile:
        print(f"Ollama Modelfile: {result.modelfile}")
    else:
        print(result.ollama_note)
    print(f"How to run it: {result.output_dir / 'README.txt'}")
    return 0


def _byte_progress():
    stream = sys.stderr
    live = stream.isatty()

    def show(done: int, total: int) -> None:
        if live:
            stream.write(f"\r  {done / 1e6:.1f} / {total / 1e6:.1f} MB")
            stream.flush()

    return show


def _launch(args, workspace) -> int:
    from cognitivetwin_core.phase1.backends import open_backend

    local = args.local
    settings = _settings(args, local=local)
    if local:
        backend = open_backend(
            "local", workspace, device=args.device, precision=args.precision, max_batch_tokens=args.max_batch_tokens
        )
    else:
        backend = _together(workspace, args)
    _check_can_confirm(args)  # before exporting anything
    data, exported = _data_file(args, workspace, settings.base_model)
    try:
        plan = backend.dry_run(data, settings, progress=_byte_progress())
        # The example turns and the privacy check quote imported text: shown safe for a terminal.
        print("\n".join(["Dry run:"] + [f"  {printable(line, one_line=True)}" for line in plan.summary_lines()]))
        if local:
            print(f"  memory: {_local_memory_verdict(args, settings)}")
        if args.dry_run:
            return 0
        if not local:
            _confirm(plan, args)
        job_id = backend.launch(plan)
    except BaseException:
        # A refused or failed start leaves nothing behind: the export was made for it alone.
        if exported:
            from pathlib import Path

            Path(data).unlink(missing_ok=True)
        raise
    print(f"Launched {'local ' if local else ''}job {job_id}")
    if local:
        try:
            return _follow(backend, job_id)
        except KeyboardInterrupt:
            backend.cancel(job_id)
            backend.wait(job_id)
            raise CancelledError(f"Stopped local job {job_id}; its checkpoint is kept for a later run.") from None
    duplicates = backend.duplicates(job_id)
    if duplicates:
        print(
            f"warning: Together created {len(duplicates)} extra job(s) for this launch ({', '.join(duplicates)}); "
            "cancel them with `cognitivetwin phase1 --cancel ID` to avoid paying twice.",
            file=sys.stderr,
        )
    print(f"Follow it with: cognitivetwin phase1 --wait-job {job_id}")
    return 0


def _local_memory_verdict(args, settings) -> str:
    """Refuse (one sentence, before anything is loaded) a base that will not fit."""
    from cognitivetwin_core.models.memory import InsufficientMemoryError
    from cognitivetwin_core.phase1.lora_device_plan import local_memory_verdict

    verdict = local_memory_verdict(
        settings.base_model,
        settings,
        device=args.device,
        precision=args.precision,
        max_batch_tokens=args.max_batch_tokens,
    )
    if not verdict.ok:
        raise InsufficientMemoryError(verdict.text)
    return verdict.text


def _list(workspace) -> int:
    from cognitivetwin_core.phase1.jobs import read_jobs

    records = read_jobs(workspace)
    if not records:
        print("No Phase 1 jobs in this workspace.")
        return 0
    print(f"{'job':<42} {'backend':<8} {'status':<16} {'base':<14} {'suffix':<12} {'created':<20} adapter")
    for record in records:
        print(
            f"{record.job_id:<42} {record.backend or '':<8} {str(record.status):<16} "
            f"{str(record.base_model or record.model_id or ''):<14.14} "
            f"{str(record.suffix or ''):<12.12} {str(record.created_at or '')[:19]:<20} "
            f"{record.adapter_path or ''}"
        )
        if record.duplicates:
            print(f"  duplicates on Together: {', '.join(record.duplicates)}")
    return 0
