"""`cognitivetwin phase2`: train the trajectory adapter and heads on a frozen base (the seed's flags).

    cognitivetwin phase2 train --base-model NAME|DIR [--adapter DIR]
        (--data-file FILE | --workspace DIR) --output-dir DIR [--epochs 10] [--batch-size 4]
        [--lr 1e-3] [--gradient-accumulation 4] [--device auto|cpu|cuda|mps] [--resume]
        [--plan-steps 4] [--seed 42] [--val-fraction 0.2] [--threads N] [--patience 5] [--name TEXT]
        [--max-window-tokens N] [--encode-batch-tokens N]
    torchrun --nproc_per_node N -m cognitivetwin_core phase2 train ...   (data-parallel encoding)
    cognitivetwin phase2 rename RUN_DIR NAME
    cognitivetwin phase2 prepare-data ...     (also `phase2 --prepare-data`: Supabase -> trajectory JSONL)

`--data-file` takes the seed's Phase 2 trajectory JSONL or any file the importers read
(or `demo`). Ctrl-C once stops and saves a usable model; twice cancels and discards the run.
"""

from __future__ import annotations

import signal
import sys
import time


def register(subparsers) -> None:
    from cognitivetwin_core.phase2.config import Phase2Config  # light: no torch at import

    parser = subparsers.add_parser(
        "phase2", help="Phase 2: train the trajectory adapter and style/pattern/planning heads"
    )
    parser.add_argument(
        "--prepare-data",
        action="store_true",
        help="the seed's data step: import Supabase turns, write the trajectory JSONL",
    )
    from cognitivetwin_core.cli.data_cmd import add_prepare_data_arguments

    add_prepare_data_arguments(parser)  # the README's `phase2 --prepare-data --workspace DIR ...`
    parser.set_defaults(func=_dispatch, parser=parser)
    sub = parser.add_subparsers(dest="phase2_command", metavar="ACTION")

    train = sub.add_parser("train", help="train on a data file or a workspace (features are encoded once and cached)")
    train.add_argument(
        "--base-model", default="smollm2-135m", help="catalog name (default smollm2-135m) or local HF folder"
    )
    train.add_argument("--adapter", default=None, help="a Phase 1 LoRA adapter folder to apply to the base")
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument("--data-file", help="trajectory JSONL, chat JSONL, ShareGPT, ChatGPT export, or 'demo'")
    source.add_argument("--workspace", help="train on the conversations of this workspace folder")
    train.add_argument("--output-dir", default=None, help="where the model, metrics.json and run.json go")
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument(
        "--batch-size", type=int, default=None, help="conversations per batch (default 4 on the CPU, 16 on CUDA)"
    )
    train.add_argument(
        "--lr",
        type=float,
        default=Phase2Config.lr,
        help="AdamW peak learning rate (default 1e-3; the seed used 1e-4, but with batch 4 and gradient "
        "accumulation 4 a few hundred messages give only ~3 updates per epoch, too few at 1e-4 for the "
        "heads to beat their baselines: on the demo, 10 epochs at 1e-4 reach planning cosine 0.474 vs "
        "baseline 0.468, at 1e-3 0.510)",
    )
    train.add_argument(
        "--gradient-accumulation", type=int, default=None, help="batches per update (default 4 on the CPU, 1 on CUDA)"
    )
    train.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    train.add_argument(
        "--resume", action="store_true", help="continue the run in --output-dir from its last checkpoint"
    )
    train.add_argument(
        "--overwrite", action="store_true", help="replace the earlier Phase 2 run in --output-dir (not other files)"
    )
    train.add_argument("--plan-steps", type=int, default=4)
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--val-fraction", type=float, default=0.2)
    train.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's own)")
    train.add_argument(
        "--cache-dir", default=None, help="feature cache folder (default: the workspace's or the user cache)"
    )
    train.add_argument(
        "--max-window-tokens",
        type=int,
        default=None,
        help="encoding window in tokens (long conversations overlap); default 4096 on CUDA, 1024 elsewhere",
    )
    train.add_argument(
        "--encode-batch-tokens",
        type=int,
        default=None,
        help="tokens per encoding batch (default: sized from free GPU memory, 8192 on the CPU; halved "
        "automatically on out-of-memory)",
    )
    train.add_argument(
        "--patience",
        type=int,
        default=Phase2Config.patience,
        help="stop early when the validation loss has not improved for this many epochs (default "
        f"{Phase2Config.patience}; 0: never). The best epoch's model is kept either way",
    )
    train.add_argument("--name", default=None, help="the run's name (default: base · data · date)")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(func=_train)

    rename = sub.add_parser("rename", help="give a Phase 2 run a new name")
    rename.add_argument("run_dir", help="the run's output folder")
    rename.add_argument("name", help="the new name")
    rename.set_defaults(func=_rename)

    prepare = sub.add_parser(
        "prepare-data", help="import Supabase turns into the workspace and write the trajectory JSONL"
    )
    add_prepare_data_arguments(prepare)
    prepare.set_defaults(func=_prepare)


def _dispatch(args) -> int:
    if args.prepare_data:
        return _prepare(args)
    args.parser.print_help()
    return 0


def _prepare(args) -> int:
    from cognitivetwin_core.cli.data_import_cmd import prepare_phase2_data

    return prepare_phase2_data(args)


class _Bar:
    """One progress line on stderr, redrawn in place on a terminal, every 10% otherwise."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.last_bucket = None
        self.last_draw = 0.0

    def draw(self, label: str, done: int, total: int, extra: str = "", force: bool = False) -> None:
        if self.quiet or total <= 0:
            return
        fraction = min(1.0, done / total)
        if self.tty:
            now = time.monotonic()
            if not force and now - self.last_draw < 0.1 and done < total:
                return
            self.last_draw = now
            filled = int(fraction * 30)
            sys.stderr.write(f"\r{label:<10} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total} {extra}\033[K")
            if done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()
        else:
            bucket = (label, int(fraction * 10))
            if bucket != self.last_bucket or force:
                self.last_bucket = bucket
                print(f"{label} {done}/{total} {extra}", file=sys.stderr, flush=True)


def _eta(seconds) -> str:
    from cognitivetwin_core.durations import format_duration

    if seconds is None:
        return ""
    return f"ETA {format_duration(seconds, clock=True)}"


def _check_memory(config) -> None:
    """Refuse, in one sentence and before loading, a base the encoding pass cannot fit."""
    from cognitivetwin_core.models.memory import InsufficientMemoryError
    from cognitivetwin_core.phase2.memory_check import encode_memory_verdict

    verdict = encode_memory_verdict(
        config.base_model, device=config.device, encode_batch_tokens=config.encode_batch_tokens
    )
    if not verdict.ok:
        raise InsufficientMemoryError(verdict.text)


def _train(args) -> int:
    from cognitivetwin_core.errors import CancelledError, CognitiveTwinError
    from cognitivetwin_core.phase2.config import Phase2Config
    from cognitivetwin_core.phase2.metrics import format_table
    from cognitivetwin_core.phase2.trainer import Phase2Trainer

    if not args.output_dir and not args.workspace:
        raise CognitiveTwinError("Give --output-dir (where the trained model goes).")
    if args.resume and args.overwrite:
        raise CognitiveTwinError("--resume continues a run and --overwrite replaces it: give one of them.")
    config = Phase2Config(
        base_model=args.base_model,
        adapter_dir=args.adapter,
        output_dir=args.output_dir,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        gradient_accumulation=args.gradient_accumulation,
        device=args.device,
        resume=args.resume,
        overwrite=args.overwrite,
        plan_steps=args.plan_steps,
        seed=args.seed,
        val_fraction=args.val_fraction,
        num_threads=args.threads,
        cache_dir=args.cache_dir,
        max_window_tokens=args.max_window_tokens,
        patience=args.patience,
        name=args.name,
        encode_batch_tokens=args.encode_batch_tokens,
    )
    _check_memory(config)
    if args.workspace:
        trainer = Phase2Trainer(config, workspace=args.workspace)
    else:
        data_file = args.data_file
        if data_file == "demo":
            from cognitivetwin_core.data.importers.demo import demo_dataset_path

            data_file = demo_dataset_path()
        trainer = Phase2Trainer(config, data_file=data_file)

    from cognitivetwin_core.phase2.distributed import encode_for_trainer, from_environment

    distributed = from_environment()  # set by torchrun: encode data-parallel, rank 0 trains
    if distributed is not None and not encode_for_trainer(trainer, distributed):
        print(f"Rank {distributed.rank}: its share of the encoding is done; rank 0 trains.", file=sys.stderr)
        return 0

    interrupts = []

    def on_interrupt(signum, frame):
        interrupts.append(signum)
        if len(interrupts) == 1:
            print("\nStopping after this step and saving (Ctrl-C again to cancel)…", file=sys.stderr)
            trainer.request_stop(save=True)
        else:
            trainer.request_cancel()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    bar = _Bar(args.quiet)
    finished = None
    try:
        for event in trainer.run():
            if event.kind == "encoding":
                if event.cache_hit:
                    print(f"Features: cache hit ({event.total} messages), no encoding needed.", file=sys.stderr)
                else:
                    bar.draw(
                        "encoding", event.done, event.total, f"{event.tokens_per_s:,.0f} tok/s {_eta(event.eta_s)}"
                    )
            elif event.kind == "step":
                losses = " ".join(f"{k}={v:.3f}" for k, v in event.losses.items() if k != "total")
                bar.draw(
                    f"epoch {event.epoch}/{event.epochs}",
                    event.step,
                    event.steps_per_epoch,
                    f"loss={event.losses['total']:.3f} ({losses}) {event.examples_per_s:,.0f} msg/s {_eta(event.eta_s)}",
                )
            elif event.kind == "epoch":
                val = event.val_losses.get("total")
                print(
                    f"epoch {event.epoch}: train loss {event.train_losses.get('total', float('nan')):.4f}"
                    + (f", validation loss {val:.4f}" if val is not None else ""),
                )
                print(event.table)
            elif event.kind == "finished":
                finished = event
    finally:
        signal.signal(signal.SIGINT, previous)
    if finished is None:
        raise CognitiveTwinError("Phase 2 ended without a result; see the log.")
    if finished.outcome == "failed":
        raise CognitiveTwinError(finished.message)
    if finished.outcome == "cancelled":
        raise CancelledError(finished.message)
    if finished.metrics:
        print("\nValidation metrics of the saved model (model vs baseline):")
        print(format_table(finished.metrics))
        _print_summary(finished.output_dir)
    print(finished.message)
    return 0


def _print_summary(output_dir) -> None:
    """Verdicts in words, per-step planning, the trajectory ablation, overfitting: from metrics.json."""
    from pathlib import Path

    from cognitivetwin_core.phase2.runs import METRICS_FILE, read_json
    from cognitivetwin_core.phase2.verdicts import summarize_run

    if not output_dir:
        return
    summary = summarize_run(read_json(Path(output_dir) / METRICS_FILE))
    if summary.best_epoch is not None:
        print(f"Saved model: epoch {summary.best_epoch} of {summary.epochs} (the best on validation).")
    for verdict in summary.verdicts:
        print(verdict.sentence)
    if summary.plan_steps:
        print("Planning per step (cosine to the real turn, model vs predicting the current message):")
        for line in summary.plan_steps:
            print(f"  {line}")
    if summary.ablation:
        print("Trajectory ablation (true positions vs shuffled):")
        for line in summary.ablation:
            print(f"  {line}")
    for line in summary.warnings + summary.notes:
        print(line)


def _rename(args) -> int:
    from cognitivetwin_core.phase2.run_names import rename_run

    record = rename_run(args.run_dir, args.name)
    print(f"Renamed the run in {args.run_dir} to: {record['name']}")
    return 0
