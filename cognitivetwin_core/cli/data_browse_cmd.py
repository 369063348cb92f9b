"""`cognitivetwin data list|show|stats|reannotate`: the stored conversations, a page at a time, one
in full, their counts, their annotations recomputed.
"""

from __future__ import annotations

import json

from cognitivetwin_core.cli.data_import_cmd import print_imports_to_repeat
from cognitivetwin_core.cli.terminal_text import printable, printable_json
from cognitivetwin_core.cli.workspace_opening import open_workspace


def list_command(args) -> int:
    workspace = open_workspace(args, read_only=True)
    filters = dict(
        source=args.source,
        search=args.search,
        min_messages=args.min_messages,
        max_messages=args.max_messages,
        phase=args.phase,
        pattern=args.pattern,
    )
    total = workspace.count_conversations(**filters)
    page = workspace.list_conversations(args.offset, args.limit, **filters)
    print(f"{total} conversations" + (f", showing {args.offset + 1}-{args.offset + len(page)}" if page else ""))
    for summary in page:
        title = printable(summary.title or summary.preview, one_line=True)
        print(
            f"{printable(summary.id, one_line=True):<28} {printable(summary.source, one_line=True):<16} "
            f"{summary.message_count:>4} msgs  {title[:70]}"
        )
    workspace.close()
    return 0


def show_command(args) -> int:
    from cognitivetwin_core.annotation.trajectory import PHASE_NAMES

    workspace = open_workspace(args, read_only=True)
    conversation = workspace.get_conversation(args.conversation_id)
    annotations = workspace.annotations(args.conversation_id)
    workspace.close()
    if args.json:
        print(
            printable_json(
                json.dumps(
                    {
                        "id": conversation.id,
                        "source": conversation.source,
                        "title": conversation.title,
                        "messages": [
                            {
                                "role": message.role,
                                "speaker": message.speaker,
                                "content": message.content,
                                "created_at": message.created_at.isoformat() if message.created_at else None,
                                "trajectory": annotation.trajectory.to_dict(),
                                "patterns": list(annotation.patterns),
                            }
                            for message, annotation in zip(conversation.messages, annotations)
                        ],
                    },
                    ensure_ascii=False,
                    indent=2,
                )
            )
        )
        return 0
    title = f": {printable(conversation.title, one_line=True)}" if conversation.title else ""
    print(f"{printable(conversation.id, one_line=True)} ({printable(conversation.source, one_line=True)}){title}")
    for message, annotation in zip(conversation.messages, annotations):
        coordinates = " ".join(f"{value:.2f}" for value in annotation.coordinates)
        print(
            f"\n[{annotation.turn_index}] {message.speaker or message.role}  phase {annotation.phase_id} "
            f"({PHASE_NAMES[annotation.phase_id]})  coords {coordinates}  "
            f"patterns: {', '.join(annotation.patterns) or '-'}"
        )
        print(printable(message.content))
    return 0


def stats_command(args) -> int:
    from cognitivetwin_core.annotation.trajectory import PHASE_NAMES

    workspace = open_workspace(args, read_only=True)
    stats = workspace.stats()
    if args.json:
        stats["imports"] = workspace.imports()
        workspace.close()
        print(printable_json(json.dumps(stats, ensure_ascii=False, indent=2, default=str)))
        return 0
    workspace.close()
    print(f"Workspace {printable(stats['path'])}")
    print(
        f"{stats['conversations']} conversations, {stats['messages']} messages, "
        f"{stats['mean_messages_per_conversation']:.1f} messages per conversation"
    )
    print(
        "By source:  "
        + ", ".join(f"{printable(name, one_line=True)} {count}" for name, count in stats["by_source"].items())
    )
    print("By role:    " + ", ".join(f"{name} {count}" for name, count in stats["by_role"].items()))
    print("By phase:   " + ", ".join(f"{PHASE_NAMES[phase]} {count}" for phase, count in stats["by_phase"].items()))
    print("By pattern: " + ", ".join(f"{name} {count}" for name, count in stats["by_pattern"].items()))
    print(f"Imports: {len(stats['imports'])}")
    for record in stats["imports"][-10:]:
        print(
            f"  #{record['id']} {record['importer']} {printable(record['location'], one_line=True)}: "
            f"{record['conversations']} added, {record['duplicates']} duplicates, {record['rejected']} rejected"
        )
    print_imports_to_repeat(stats["imports_to_repeat"])
    return 0


def reannotate_command(args) -> int:
    from cognitivetwin_core.data.workspace import Workspace

    workspace = Workspace.open(args.workspace)
    count = workspace.refresh_annotations(recompute_given=args.recompute_given)
    workspace.close()
    print(f"Re-annotated {count} conversations.")
    return 0
