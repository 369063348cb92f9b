"""`cognitivetwin memory`: the person's own past messages, indexed for the twin to recall.

    cognitivetwin memory build [--workspace DIR]
    cognitivetwin memory search TEXT [--workspace DIR] [--limit N]

`build` indexes every message of the twin's speaker (the held-out share aside); an import
updates an existing index by itself. `chat` puts the best matches in the twin's context.
See docs/teaching-and-memory.md.
"""

from __future__ import annotations

from cognitivetwin_core.cli.terminal_text import printable


def register(subparsers) -> None:
    parser = subparsers.add_parser("memory", help="the twin's memory of your past messages: build, search")
    sub = parser.add_subparsers(dest="memory_command", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="index your past messages (the twin's speaker's) in the workspace")
    build.add_argument("--workspace", metavar="DIR", help="workspace folder (default: the user's default workspace)")
    build.set_defaults(func=_build)
    search = sub.add_parser("search", help="the past messages closest to TEXT")
    search.add_argument("text", metavar="TEXT")
    search.add_argument("--workspace", metavar="DIR", help="workspace folder (default: the user's default workspace)")
    search.add_argument("--limit", type=int, default=5, metavar="N", help="at most N messages (default 5)")
    search.set_defaults(func=_search)


def _build(args) -> int:
    from cognitivetwin_core.data.message_memory import build_memory
    from cognitivetwin_core.data.twin_speaker import describe
    from cognitivetwin_core.data.workspace import Workspace

    with Workspace.open(args.workspace) as workspace:
        count = build_memory(workspace)
        who = describe(workspace.twin_speaker())
    print(printable(f"Memory built: {count} messages of {who} (the held-out share is left out for the judges)."))
    return 0


def _search(args) -> int:
    from cognitivetwin_core.data.message_memory import has_memory, search_memory
    from cognitivetwin_core.data.workspace import Workspace
    from cognitivetwin_core.errors import InputError

    with Workspace.open(args.workspace, read_only=True) as workspace:
        if not has_memory(workspace):
            raise InputError(
                f"The workspace {workspace.path} has no memory yet: build it with `cognitivetwin memory build`."
            )
        found = search_memory(workspace, args.text, limit=args.limit)
    if not found:
        print("Nothing you said matches that.")
    for item in found:
        print(printable(f"{item.score:.2f}  {item.text}", one_line=True))
    return 0
