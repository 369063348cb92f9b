"""`cognitivetwin data export|privacy`: the personal data in the conversations, and the files that
leave the workspace (Together JSONL for Phase 1, trajectory JSONL for Phase 2).
"""

from __future__ import annotations

import json

from cognitivetwin_core.cli.terminal_text import printable, printable_json
from cognitivetwin_core.cli.workspace_opening import open_workspace


def privacy_command(args) -> int:
    from cognitivetwin_core.data.privacy import scan_conversations

    with open_workspace(args, read_only=True) as workspace:
        names = [item.name for item in workspace.speakers() if item.named]
        summary = scan_conversations(workspace.iter_conversations(), names)
    if args.json:
        print(printable_json(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2)))
    else:
        print("\n".join(printable(line, one_line=True) for line in summary.lines()))
    return 0


def export_command(args) -> int:
    from pathlib import Path

    from cognitivetwin_core.data.exports import DEFAULT_MERGE_MINUTES, export_together, export_trajectory
    from cognitivetwin_core.data.person_identity import resolve_speaker
    from cognitivetwin_core.errors import InputError, os_error
    from cognitivetwin_core.models.catalog import DEFAULT_BASE_MODEL

    out = Path(args.out).expanduser()
    if out.is_dir():
        raise InputError(f"--out {out} is a folder: give a file name, for example {out / 'export.jsonl'}.")
    workspace = open_workspace(args, read_only=True)
    try:
        if args.format == "together":
            summary = export_together(
                workspace,
                args.out,
                base_model=args.base_model or DEFAULT_BASE_MODEL,
                validation_fraction=args.validation_fraction,
                epochs=args.epochs,
                twin_speaker=resolve_speaker(workspace, args.me) if args.me else None,
                merge_minutes=DEFAULT_MERGE_MINUTES if args.merge_minutes is None else args.merge_minutes,
                privacy="redact" if args.redact else "leave-out" if args.leave_out_private else "keep",
            )
            print(summary.text())
        else:
            summary = export_trajectory(workspace, args.out, recompute=args.recompute)
            print(f"Wrote {summary.lines} lines ({summary.conversations} conversations) to {summary.path}")
    except OSError as exc:  # the export file cannot be written (a full or read-only disk, a bad path)
        raise os_error(exc, "writing", out) from None
    finally:
        workspace.close()
    return 0
