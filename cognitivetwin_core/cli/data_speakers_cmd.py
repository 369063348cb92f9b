"""`cognitivetwin data speakers`: who speaks in the workspace, which of them the twin learns
(--me), and names that are one person (--link).
"""

from __future__ import annotations

import json

from cognitivetwin_core.cli.terminal_text import printable, printable_json
from cognitivetwin_core.cli.workspace_opening import open_workspace


def speakers_command(args) -> int:
    from cognitivetwin_core.data.person_identity import (
        canonical,
        choose_twin_speaker,
        link_speakers,
        linked_speakers,
        speaker_links,
    )
    from cognitivetwin_core.data.twin_speaker import describe
    from cognitivetwin_core.errors import InputError

    writes = bool(args.me or args.link)
    if writes:  # only into a workspace that exists (a mistyped folder is refused)
        open_workspace(args, read_only=True).close()
    with open_workspace(args, read_only=not writes) as workspace:
        if args.link:
            if len(args.link) < 2:
                raise InputError("--link takes the person's NAME and then at least one ALIAS to link to it.")
            linked = link_speakers(workspace, args.link[0], args.link[1:])
            if not args.json:
                print(
                    f"{printable(args.link[0], one_line=True)} is now one speaker with: "
                    + ", ".join(printable(alias, one_line=True) for alias in linked)
                )
        if args.me:
            choose_twin_speaker(workspace, args.me)
        links = speaker_links(workspace)
        current = canonical(links, workspace.twin_speaker())
        speakers = linked_speakers(workspace)
    if args.json:
        print(
            printable_json(
                json.dumps(
                    {
                        "twin_speaker": current,
                        "speakers": [
                            {
                                "name": s.name,
                                "named": s.named,
                                "messages": s.messages,
                                "conversations": s.conversations,
                                "aliases": sorted(alias for alias, name in links.items() if name == s.name),
                            }
                            for s in speakers
                        ],
                    },
                    ensure_ascii=False,
                    indent=2,
                )
            )
        )
        return 0
    print(
        f"The twin speaks as {printable(describe(current), one_line=True)} (change it with --me NAME|user|assistant)."
    )
    for item in speakers:
        mark = "*" if item.name == current else " "
        label = printable(item.label, one_line=True)
        print(f" {mark} {label:<32} {item.messages:>7} messages in {item.conversations} conversations")
    if not speakers:
        print("No messages yet: import some with `cognitivetwin data import`.")
    return 0
