"""Opening the workspace a `data` command names (--workspace), saying when another process is
writing to it.
"""

from __future__ import annotations

import sys

from cognitivetwin_core.cli.terminal_text import printable


def open_workspace(args, *, read_only: bool = False):
    """The workspace; `read_only` commands refuse a missing one (a mistyped --workspace) and
    never wait for another process's import."""
    from cognitivetwin_core.data.workspace import Workspace

    return Workspace.open(getattr(args, "workspace", None), read_only=read_only, on_wait=_say_waiting)


def _say_waiting(who: str) -> None:
    print(f"Waiting: {printable(who)} is writing to the workspace; this goes on when it has finished.", file=sys.stderr)
