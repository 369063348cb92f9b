"""`cognitivetwin data`: import conversations into a workspace, browse them, export them.

    cognitivetwin data import PATH|demo [--importer NAME] [--strict] [--me NAME] [--gap-hours H]
    cognitivetwin data import --supabase [--url URL] [--table memory_turns] [--map COLUMN=FIELD ...]
    cognitivetwin data list [--search TEXT] [--source S] [--phase N] [--pattern NAME] [--offset N --limit N]
    cognitivetwin data show ID
    cognitivetwin data stats [--json]
    cognitivetwin data export --format together|trajectory --out FILE [--base-model NAME] [--me NAME] [--redact]
    cognitivetwin data speakers [--me NAME|user|assistant]
    cognitivetwin data privacy [--json]

Every command takes --workspace DIR (default: the user's default workspace).
`prepare_phase2_data(args)` is the seed's `phase2 --prepare-data`: a Supabase import plus a
trajectory export; `add_prepare_data_arguments(parser)` adds its options to a parser.

This module holds the parser; each action lives with its concept: importing
(`data_import_cmd.py`), browsing (`data_browse_cmd.py`: list, show, stats, reannotate), the
speakers (`data_speakers_cmd.py`), export and privacy (`data_export_cmd.py`).
"""

from __future__ import annotations

from cognitivetwin_core.cli.data_browse_cmd import list_command, reannotate_command, show_command, stats_command
from cognitivetwin_core.cli.data_export_cmd import export_command, privacy_command
from cognitivetwin_core.cli.data_import_cmd import import_command
from cognitivetwin_core.cli.data_speakers_cmd import speakers_command

IMPORTER_NAMES = (
    "chat-jsonl",
    "trajectory-jsonl",
    "sharegpt",
    "chatgpt",
    "whatsapp",
    "telegram",
    "facebook-messenger",
    "instagram",
    "imessage",
    "discord-chat-exporter",
    "discord-package",
    "signal",
    "google-chat",
    "mbox",
    "demo",
)


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="conversations: import, list, show, stats, export")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    importing = sub.add_parser("import", help="import a file, the demo dataset ('demo') or a Supabase table")
    _workspace_argument(importing)
    importing.add_argument(
        "path",
        nargs="?",
        help="file to import (chat/trajectory JSONL, ShareGPT JSON, ChatGPT export .json/.zip), or 'demo'",
    )
    importing.add_argument("--importer", choices=IMPORTER_NAMES, help="format of PATH (default: detected)")
    _supabase_arguments(importing)
    importing.add_argument("--strict", action="store_true", help="abort and write nothing if any record is rejected")
    importing.add_argument("--quiet", action="store_true", help="no progress bar")
    _me_argument(importing, "and remember it for this workspace")
    importing.add_argument(
        "--gap-hours",
        type=float,
        default=None,
        metavar="H",
        help="WhatsApp/Telegram: hours of silence that start a new conversation (default 6)",
    )
    importing.set_defaults(func=import_command)

    speakers = sub.add_parser("speakers", help="who speaks in the workspace, and which of them the twin learns")
    _workspace_argument(speakers)
    _me_argument(speakers, "and remember it for this workspace")
    speakers.add_argument("--json", action="store_true", help="print JSON")
    speakers.add_argument(
        "--link",
        nargs="+",
        metavar=("NAME", "ALIAS"),
        help="these are all one person: make the ALIASes (names, numbers, addresses, handles) one speaker called NAME",
    )
    speakers.set_defaults(func=speakers_command)

    privacy = sub.add_parser("privacy", help="personal data in the conversations, before anything is uploaded")
    _workspace_argument(privacy)
    privacy.add_argument("--json", action="store_true", help="print JSON")
    privacy.set_defaults(func=privacy_command)

    listing = sub.add_parser("list", help="list conversations, a page at a time")
    _workspace_argument(listing)
    listing.add_argument("--offset", type=int, default=0)
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--search", help="text in the title or any message")
    listing.add_argument("--source", help="only conversations from this importer (e.g. sharegpt, demo)")
    listing.add_argument("--phase", type=int, choices=range(6), help="only conversations with a message in this phase")
    listing.add_argument("--pattern", help="only conversations with a message showing this pattern")
    listing.add_argument("--min-messages", type=int)
    listing.add_argument("--max-messages", type=int)
    listing.set_defaults(func=list_command)

    show = sub.add_parser("show", help="show one conversation with its trajectory and patterns")
    _workspace_argument(show)
    show.add_argument("conversation_id")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=show_command)

    stats = sub.add_parser("stats", help="counts by source, role, phase and pattern; the imports")
    _workspace_argument(stats)
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.set_defaults(func=stats_command)

    export = sub.add_parser("export", help="write Together JSONL (Phase 1) or trajectory JSONL (Phase 2)")
    _workspace_argument(export)
    export.add_argument("--format", required=True, choices=("together", "trajectory"))
    export.add_argument("--out", required=True, help="file to write (replaced atomically)")
    export.add_argument(
        "--base-model",
        default=None,
        help="Together: base whose tokenizer and context are checked "
        "(catalog name or local folder; default the embedded smollm2-135m)",
    )
    export.add_argument(
        "--validation-fraction",
        type=float,
        default=0.0,
        help="Together: share of conversations for a validation file (e.g. 0.1)",
    )
    export.add_argument("--epochs", type=int, default=3, help="Together: epochs for the training-token estimate")
    _me_argument(export, "for this export only (Together)")
    export.add_argument(
        "--merge-minutes",
        type=float,
        default=None,
        metavar="M",
        help="Together: one speaker's messages at most M minutes apart become one turn (default 10)",
    )
    private = export.add_mutually_exclusive_group()
    private.add_argument(
        "--redact", action="store_true", help="Together: replace personal data with <EMAIL>, <PHONE>, ..."
    )
    private.add_argument(
        "--leave-out-private", action="store_true", help="Together: leave out conversations holding personal data"
    )
    export.add_argument(
        "--recompute",
        action="store_true",
        help="trajectory: recompute coordinates even where an imported file gave them",
    )
    export.set_defaults(func=export_command)

    annotate = sub.add_parser("reannotate", help="recompute stored trajectory annotations and pattern labels")
    _workspace_argument(annotate)
    annotate.add_argument(
        "--recompute-given", action="store_true", help="also replace trajectory values that imported files gave"
    )
    annotate.set_defaults(func=reannotate_command)


def _me_argument(parser, scope: str) -> None:
    parser.add_argument(
        "--me",
        metavar="NAME|user|assistant",
        help=f"who you are, the speaker the twin learns: a participant's name or a role ({scope})",
    )


def _workspace_argument(parser) -> None:
    parser.add_argument("--workspace", metavar="DIR", help="workspace folder (default: the user's default workspace)")


def _supabase_arguments(parser) -> None:
    parser.add_argument(
        "--supabase",
        action="store_true",
        help="import a Supabase table (URL and key from the keyring, or SUPABASE_URL / SUPABASE_KEY)",
    )
    parser.add_argument("--url", help="Supabase project URL (default: SUPABASE_URL, then the keyring)")
    parser.add_argument("--table", default=None, help="Supabase table (default memory_turns)")
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="COLUMN=FIELD",
        help="column mapping; FIELD is one of conversation_id, role, content, timestamp, "
        "turn_order, row_id (repeatable)",
    )
    parser.add_argument("--page-size", type=int, default=1000, help="rows per page (Supabase caps at 1000)")


def add_prepare_data_arguments(parser) -> None:
    """The options of `phase2 --prepare-data`, for the parser that offers it."""
    if not any(action.dest == "workspace" for action in parser._actions):
        _workspace_argument(parser)
    for option in ("--url", "--table", "--map", "--page-size"):
        if any(option in action.option_strings for action in parser._actions):
            return
    parser.add_argument("--url", help="Supabase project URL (default: SUPABASE_URL, then the keyring)")
    parser.add_argument("--table", default=None, help="Supabase table (default memory_turns)")
    parser.add_argument("--map", action="append", default=[], metavar="COLUMN=FIELD", help="column mapping")
    parser.add_argument("--page-size", type=int, default=1000, help="rows per page")
    parser.add_argument(
        "--data-out",
        default=None,
        help="trajectory JSONL to write (default: <workspace>/runs/phase2_training_data.jsonl)",
    )
