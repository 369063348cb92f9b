"""`cognitivetwin teach`: a new version of the twin, taught from the feedback on its replies.

    cognitivetwin teach --adapter DIR [--workspace DIR] [--max-steps N] [--device D] [--resume] [--include-taught]
                        [--compare [N]]
    cognitivetwin teach --adapter DIR [--together] [--epochs N] [--dry-run] [--yes]

Edits become DPO pairs (with a supervised term on the edits); thumbs alone, KTO. Progress
(loss and reward margin) is printed as it goes; the last line is the new adapter folder. The
old adapter is kept. Stop (Ctrl+C) keeps the run; `--resume` continues it from that step.
Feedback already taught into the twin (or a version it came from) is left out unless
`--include-taught`; with nothing new to learn the command says so and exits non-zero.
`--compare` then judges the new version against the old one (judge compare). A twin
downloaded from a Together job (or with --together) is taught there instead: the edits go
up as preference pairs and a DPO job continues from the twin's job (phase1/together_teach.py); the last line is the new job's id, followed with
`cognitivetwin phase1 --wait-job ID` and `--download ID`. See docs/teaching-and-memory.md.
"""

from __future__ import annotations

import signal
import sys

from cognitivetwin_core.cli.terminal_text import printable


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "teach",
        help="teach the twin from your thumbs and edits (a new adapter version)",
        description="Continue the twin's adapter from the feedback on its replies (preference tuning).",
    )
    parser.add_argument("--adapter", required=True, metavar="DIR", help="the twin's adapter folder")
    parser.add_argument("--workspace", metavar="DIR", help="workspace folder (default: the user's default workspace)")
    parser.add_argument("--base-model", metavar="NAME|DIR", help="base model (default: the adapter's own)")
    parser.add_argument("--max-steps", type=int, default=None, metavar="N", help="optimizer steps (default 30)")
    parser.add_argument("--learning-rate", type=float, default=None, metavar="LR", help="default 2e-4")
    parser.add_argument(
        "--device",
        default="auto",
        metavar="auto|cpu|cuda|cuda:N|mps",
        help="where it trains (default auto: a CUDA GPU, then Apple MPS, then the CPU)",
    )
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"), help="default auto")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue this twin's stopped Teach from the step it stopped at (same feedback and settings)",
    )
    parser.add_argument(
        "--include-taught",
        action="store_true",
        help="also learn again from feedback already taught into this twin or the versions it came from",
    )
    parser.add_argument(
        "--together",
        action="store_true",
        help="teach on Together AI, continuing the twin's job (the default for a twin downloaded from Together)",
    )
    parser.add_argument("--epochs", type=int, default=None, metavar="N", help="Together: passes over the pairs (3)")
    parser.add_argument(
        "--dry-run", action="store_true", help="Together: upload the pairs and show the request and price only"
    )
    parser.add_argument("--yes", action="store_true", help="Together: confirm the estimated cost without asking")
    # Before/after (judge compare): off by default, it loads the twin again and both versions
    # answer held-out messages, on the CPU as long again as a short Teach, or longer.
    parser.add_argument(
        "--compare",
        nargs="?",
        type=int,
        const=-1,
        default=None,
        metavar="N",
        help="then judge the new version against the old on the same held-out data, N held-out messages "
        "answered by both (default 12; see judge compare)",
    )
    parser.set_defaults(func=_run, local=False)


_LOCAL_OPTIONS = {
    "--max-steps": lambda a: a.max_steps is not None,
    "--device": lambda a: a.device != "auto",
    "--precision": lambda a: a.precision != "auto",
    "--base-model": lambda a: bool(a.base_model),
    "--compare": lambda a: a.compare is not None,
    "--resume": lambda a: a.resume,
}
_TOGETHER_OPTIONS = {
    "--dry-run": lambda a: a.dry_run,
    "--epochs": lambda a: a.epochs is not None,
    "--yes": lambda a: a.yes,
}


def _print_event(event) -> None:
    if event.kind == "start":
        print(f"Teaching: {event.message} ({event.total_steps} steps)", file=sys.stderr)
    elif event.kind == "step":
        margin = f", reward margin {event.margin:+.3f}" if event.margin is not None else ""
        print(f"  step {event.step}/{event.total_steps}: loss {event.loss:.3f}{margin}", file=sys.stderr)
    sys.stderr.flush()


def _run(args) -> int:
    from cognitivetwin_core.cancellation import Cancellation
    from cognitivetwin_core.data.workspace import Workspace
    from cognitivetwin_core.errors import InputError
    from cognitivetwin_core.phase1.teach import teach_twin

    if args.max_steps is not None and args.max_steps < 1:
        raise InputError(f"--max-steps must be 1 or more (got {args.max_steps}).")
    with Workspace.open(args.workspace) as workspace:
        from cognitivetwin_core.phase1.together_teach import together_parent_job

        if args.together or together_parent_job(workspace, args.adapter):
            local_only = [f for f, given in _LOCAL_OPTIONS.items() if given(args)]
            if local_only:
                raise InputError(
                    f"{', '.join(local_only)} only apply to teaching on this computer, and this twin is taught on "
                    "Together: leave them out."
                )
            return _teach_on_together(workspace, args)
        together_only = [f for f, given in _TOGETHER_OPTIONS.items() if given(args)]
        if together_only:
            raise InputError(
                f"{', '.join(together_only)} only apply to teaching on Together, and this twin's adapter did not "
                "come from a Together job: leave them out (or add --together for a twin trained there)."
            )
        stop = Cancellation()

        def on_interrupt(signum, frame):
            if stop.cancelled:
                raise KeyboardInterrupt
            print("\nStopping after this step and keeping the run (Ctrl-C again to quit at once)…", file=sys.stderr)
            stop.cancel()

        previous = signal.signal(signal.SIGINT, on_interrupt)
        try:
            result = teach_twin(
                workspace,
                args.adapter,
                base_model=args.base_model,
                max_steps=args.max_steps,
                device=args.device,
                precision=args.precision,
                learning_rate=args.learning_rate,
                on_event=_print_event,
                cancellation=stop,
                resume=args.resume,
                include_taught=args.include_taught,
            )
        finally:
            signal.signal(signal.SIGINT, previous)
    margin = f"; reward margin {result.margins[-1]:+.3f}" if result.margins else ""
    print(
        f"Taught with {result.method.upper()} on {len(result.feedback_ids)} verdicts in {result.steps} steps "
        f"on {result.device} ({result.precision}){margin}. The previous version stays in {result.parent_dir}."
    )
    print(result.verdict())
    if args.compare is not None:  # before the last line, which stays the new adapter folder
        from cognitivetwin_core.cli.judge_cmd import print_comparison

        examples = None if args.compare < 0 else args.compare
        print_comparison(
            args.workspace,
            result.adapter_dir,
            before=result.parent_dir,
            max_examples=examples,
            base_model=args.base_model,
            device=args.device,
        )
    print(result.adapter_dir)
    return 0


def _teach_on_together(workspace, args) -> int:
    """The twin's own Together job continued with DPO on the edits; prints the job id last."""
    from cognitivetwin_core.cli.phase1_cmd import _api_key, _check_can_confirm, _confirm
    from cognitivetwin_core.phase1.backends import open_backend
    from cognitivetwin_core.phase1.together_teach import (
        DEFAULT_EPOCHS,
        launch_together_teach,
        plan_together_teach,
        preference_pairs,
    )

    pairs = preference_pairs(
        workspace, args.adapter, include_taught=args.include_taught
    )  # refuses without an edit, before any key
    _check_can_confirm(args)
    manager = open_backend("together", workspace, api_key=_api_key())
    plan = plan_together_teach(
        workspace,
        manager,
        pairs,
        epochs=args.epochs or DEFAULT_EPOCHS,
        **({"learning_rate": args.learning_rate} if args.learning_rate else {}),
    )
    for line in plan.summary_lines():
        print(printable(line, one_line=True))
    if args.dry_run:
        print("Dry run: nothing was launched.")
        return 0
    _confirm(plan, args)
    job_id = launch_together_teach(manager, plan)
    print(
        f"Teaching job {job_id} continues {pairs.parent_job} on Together with {len(pairs.lines)} pairs; follow it "
        f"with `cognitivetwin phase1 --wait-job {job_id}`, then `--download {job_id}` for the new version."
    )
    print(job_id)
    return 0
