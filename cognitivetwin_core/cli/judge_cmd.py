"""`cognitivetwin judge`: is the twin you? The blind test and the report (docs/judging.md).

    cognitivetwin judge blind --adapter DIR [--workspace DIR] [--mode mine|twin] [--seed N]
    cognitivetwin judge report --adapter DIR [--adapter DIR …] [--workspace DIR] --out FILE.html
    cognitivetwin judge compare --after DIR [--before DIR] [--workspace DIR] [--max-examples N] [--json]

`blind` shows, for each held-out context of the adapter's evaluation, the person's real reply
and the twin's in random order, and reads the answer from standard input (1, 2, s to skip,
q to stop), so it can be scripted: `printf '1\n2\ns\n' | cognitivetwin judge blind …`. Each
answer is saved in the workspace at once; the score is printed as "N of M" with its interval.
`compare` judges a taught version against the one it was taught from on the same held-out
examples (playground/teach_comparison.py) and saves it beside the taught version.
"""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "judge",
        help="is the twin you? the blind test and the report",
        description="Judge a twin: take the blind test, or write the report (one HTML page).",
    )
    commands = parser.add_subparsers(dest="judge_command", metavar="blind|report|compare", required=True)
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
    compare = commands.add_parser(
        "compare", help="did teaching help? a taught twin against the version before, on the same held-out data"
    )
    compare.add_argument("--after", required=True, metavar="DIR", help="the taught version's adapter folder")
    compare.add_argument(
        "--before", metavar="DIR", help="the version before teaching (default: the one --after was taught from)"
    )
    compare.add_argument("--workspace", metavar="DIR", help="workspace folder (default: your workspace)")
    compare.add_argument(
        "--max-examples",
        type=int,
        default=None,
        metavar="N",
        help="held-out messages both versions answer for the authorship judge (default 12)",
    )
    compare.add_argument("--base-model", metavar="NAME|DIR", help="base model (default: the adapters' own)")
    compare.add_argument("--device", default="auto", metavar="auto|cpu|cuda|cuda:N|mps", help="default auto")
    compare.add_argument("--json", action="store_true", help="print the comparison as JSON")
    compare.set_defaults(func=_compare)


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


def _compare(args) -> int:
    print_comparison(
        args.workspace,
        args.after,
        before=args.before,
        max_examples=args.max_examples,
        base_model=args.base_model,
        device=args.device,
        as_json=args.json,
    )
    return 0


def print_comparison(
    workspace_path, after, *, before=None, max_examples=None, base_model=None, device="auto", as_json=False
) -> dict:
    """Compare the taught version `after` with `before` (default: its parent) and print it; progress
    goes to standard error. Shared by `judge compare` and `teach --compare`."""
    import json

    from cognitivetwin_core.errors import InputError
    from cognitivetwin_core.playground.judges.teach_comparison import (
        DEFAULT_MAX_EXAMPLES,
        compare_versions,
        comparison_lines,
        parent_version,
    )

    before = before or parent_version(after)
    if before is None:
        raise InputError(
            f"{after} was not taught from another version (its lineage.json names no parent_adapter): pass --before "
            "with the version to compare it with."
        )
    with _open_workspace(workspace_path) as workspace:
        report = compare_versions(
            before,
            after,
            workspace=workspace,
            base_model=base_model,
            max_examples=DEFAULT_MAX_EXAMPLES if max_examples is None else max_examples,
            device=device,
            progress=lambda text: print(text, file=sys.stderr, flush=True),
        )
    from cognitivetwin_core.cli.terminal_text import printable, printable_json

    if as_json:
        print(printable_json(json.dumps(report, indent=2, ensure_ascii=False)))
    else:
        for line in comparison_lines(report):
            print(printable(line, one_line=True))
    return report
