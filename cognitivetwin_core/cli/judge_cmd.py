"""`cognitivetwin judge`: is the twin you? The blind test and the report (docs/judging.md).

    cognitivetwin judge blind --adapter DIR [--workspace DIR] [--mode mine|twin] [--seed N]
    cognitivetwin judge report --adapter DIR [--adapter DIR …] [--workspace DIR] --out FILE.html

`blind` shows, for each held-out context of the adapter's evaluation, the person's real reply
and the twin's in random order, and reads the answer from standard input (1, 2, s to skip,
q to stop), so it can be scripted: `printf '1\n2\ns\n' | cognitivetwin judge blind …`. Each
answer is saved in the workspace at once; the score is printed as "N of M" with its interval.
"""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "judge",
        help="is the twin you? the blind test and the report",
        description="Judge a twin: take the blind test, or write the report (one HTML page).",
    )
    commands = parser.add_subparsers(dest="judge_command", metavar="blind|report", required=True)
    blind = commands.add_parser("blind", help="pick which of two replies you wrote (answers from standard input)")
    blind.add_argument("--adapter", required=True, metavar="DIR", help="an evaluated Phase 1 adapter folder")
    blind.add_argument("--workspace", metavar="DIR", help="where the answers are saved (default: your workspace)")
    blind.add_argument(
        "--mode",
        choices=("mine", "twin"),
        default="mine",
        help="mine: pick the reply you wrote (default); twin: pick the twin's",
    )
    blind.add_argument("--seed", type=int, default=None, help="the order of the pairs (default: a new one each time)")
    blind.set_defaults(func=_blind)
    report = commands.add_parser("report", help="one self-contained HTML page judging one or more twins")
    report.add_argument(
        "--adapter", required=True, action="append", metavar="DIR", help="an evaluated adapter (repeat to compare)"
    )
    report.add_argument(
        "--workspace", metavar="DIR", help="the workspace with the blind-test answers (default: your workspace)"
    )
    report.add_argument("--out", required=True, metavar="FILE.html", help="where to write the page")
    report.set_defaults(func=_report)


def _open_workspace(path):
    from cognitivetwin_core.data.workspace import Workspace

    return Workspace.open(path)


def _clip(text: str) -> str:
    from cognitivetwin_core.cli.terminal_text import printable

    return printable(" ".join((text or "").split()), one_line=True)


def _blind(args) -> int:
    import random

    from cognitivetwin_core.playground.judges.blind import KEYS, BlindTest, question, score_text

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    with _open_workspace(args.workspace) as workspace:
        test = BlindTest.for_adapter(args.adapter, mode=args.mode, workspace=workspace, seed=seed)
        print(f"{len(test.pairs)} pairs. {question(args.mode)} Answer {KEYS}.")
        for number, pair in enumerate(test.pairs, start=1):
            print(f"\nPair {number} of {len(test.pairs)}")
            if pair.context:
                print(f"  message: {_clip(pair.context)}")
            print(f"  1) {_clip(pair.first)}")
            print(f"  2) {_clip(pair.second)}")
            choice = _read_choice(args.mode)
            if choice == "q":
                break
            test.answer(pair, choice)
        print()
        print(f"This time: {score_text(test.tally(), args.mode)}")
        from cognitivetwin_core.data.blind_answers import blind_tally

        overall = blind_tally(workspace, args.adapter, args.mode)
        print(f"All your answers for this twin: {score_text(overall, args.mode)}")
        print(f"Saved in the workspace {workspace.path}.")
    return 0


def _read_choice(mode: str):
    """1, 2, None (skip) or "q"; end of input stops too."""
    from cognitivetwin_core.playground.judges.blind import KEYS, question

    while True:
        sys.stdout.write(f"{question(mode)} [1/2/s/q] ")
        sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:
            print()
            return "q"
        answer = line.strip().lower()
        if answer in ("1", "2"):
            return int(answer)
        if answer in ("s", "skip"):
            return None
        if answer in ("q", "quit"):
            return "q"
        print(f"Answer {KEYS}.")


def _report(args) -> int:
    from cognitivetwin_core.data.workspace import Workspace
    from cognitivetwin_core.errors import InputError
    from cognitivetwin_core.playground.judges.report import write_report

    try:  # the blind-test answers; without --workspace, those of your workspace if there is one
        workspace = Workspace.open(args.workspace, read_only=True)
    except InputError:
        if args.workspace:
            raise
        workspace = None
    try:
        path = write_report(args.adapter, args.out, workspace=workspace)
    finally:
        if workspace is not None:
            workspace.close()
    print(f"Wrote the report to {path}")
    return 0
