"""`cognitivetwin feedback`: verdicts on the twin's replies, kept in the workspace.

    cognitivetwin feedback add --adapter DIR --context TEXT --reply TEXT (--good | --bad | --edit TEXT)
    cognitivetwin feedback list [--json]      # each verdict, and the versions of the twin taught from it
    cognitivetwin feedback undo ID
    cognitivetwin feedback export --format dpo|kto --out FILE

Every command takes --workspace DIR (default: the user's default workspace). `cognitivetwin
teach` turns the feedback into a new version of the twin (docs/teaching-and-memory.md).
"""

from __future__ import annotations

import json

from cognitivetwin_core.cli.terminal_text import printable


def _workspace_argument(parser) -> None:
    parser.add_argument("--workspace", metavar="DIR", help="workspace folder (default: the user's default workspace)")


def register(subparsers) -> None:
    parser = subparsers.add_parser("feedback", help="thumbs and edits on the twin's replies: add, list, undo, export")
    sub = parser.add_subparsers(dest="feedback_command", metavar="ACTION", required=True)

    add = sub.add_parser("add", help="store a verdict on one reply of the twin")
    _workspace_argument(add)
    add.add_argument("--adapter", required=True, metavar="DIR", help="the twin's adapter folder that wrote the reply")
    add.add_argument("--context", required=True, metavar="TEXT", help="the message the twin answered")
    add.add_argument("--reply", required=True, metavar="TEXT", help="the twin's reply")
    verdict = add.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--good", action="store_true", help="thumbs up: it sounds like you")
    verdict.add_argument("--bad", action="store_true", help="thumbs down: it does not")
    verdict.add_argument("--edit", metavar="TEXT", help="how you would say it instead")
    add.set_defaults(func=_add)

    listing = sub.add_parser("list", help="list the stored feedback, oldest first")
    _workspace_argument(listing)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=_list)

    undo = sub.add_parser("undo", help="remove one verdict")
    _workspace_argument(undo)
    undo.add_argument("feedback_id", type=int, metavar="ID", help="the number `feedback list` shows")
    undo.set_defaults(func=_undo)

    export = sub.add_parser("export", help="write the feedback as preference-tuning JSONL")
    _workspace_argument(export)
    export.add_argument(
        "--format",
        required=True,
        choices=("dpo", "kto"),
        help="dpo: prompt/chosen/rejected pairs from edits; kto: prompt/completion/label for every verdict",
    )
    export.add_argument("--out", required=True, metavar="FILE", help="the JSONL file to write")
    export.set_defaults(func=_export)


def _open(args, *, read_only: bool):
    from cognitivetwin_core.data.workspace import Workspace

    return Workspace.open(args.workspace, read_only=read_only)


def _add(args) -> int:
    from cognitivetwin_core.data.feedback import BAD, EDIT, GOOD, add_feedback
    from cognitivetwin_core.phase1.adapter_archive import adapter_base_model

    adapter_base_model(args.adapter)  # refuses a folder that is no adapter, in words
    verdict = EDIT if args.edit is not None else GOOD if args.good else BAD
    with _open(args, read_only=False) as workspace:
        record = add_feedback(workspace, args.adapter, args.context, args.reply, verdict=verdict, edit=args.edit)
    print(f"Feedback {record.id} stored ({record.verdict}).")
    return 0


def _list(args) -> int:
    from cognitivetwin_core.data.feedback import list_feedback
    from cognitivetwin_core.phase1.teach_feedback import taught_into

    with _open(args, read_only=True) as workspace:
        records = list_feedback(workspace)
        taught = taught_into(workspace)
    if args.json:
        rows = [{**record.__dict__, "taught_into": taught.get(record.id, [])} for record in records]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not records:
        print("No feedback yet: rate the twin's replies in chat or with `cognitivetwin feedback add`.")
        return 0
    for record in records:
        said = record.context[-1]["content"]
        line = f"{record.id:>5}  {record.created_at}  {record.verdict:<4}  {said[:40]!r} → {record.reply[:40]!r}"
        if record.edit:
            line += f" ⇒ {record.edit[:40]!r}"
        if record.id in taught:
            line += f"  [taught into {', '.join(taught[record.id])}]"
        print(printable(line))
    return 0


def _undo(args) -> int:
    from cognitivetwin_core.data.feedback import undo_feedback

    with _open(args, read_only=False) as workspace:
        record = undo_feedback(workspace, args.feedback_id)
    print(f"Feedback {record.id} ({record.verdict}) removed.")
    return 0


def _export(args) -> int:
    from cognitivetwin_core.data.feedback import export_feedback

    with _open(args, read_only=True) as workspace:
        count = export_feedback(workspace, args.format, args.out)
    print(f"{count} {args.format.upper()} rows written to {args.out}")
    return 0
