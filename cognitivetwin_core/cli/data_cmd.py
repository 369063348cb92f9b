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
"""

from __future__ import annotations

import json
import os
import sys
import time

from cognitivetwin_core.cli.terminal_text import printable, printable_json

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
    importing.set_defaults(func=_import)

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
    speakers.set_defaults(func=_speakers)

    privacy = sub.add_parser("privacy", help="personal data in the conversations, before anything is uploaded")
    _workspace_argument(privacy)
    privacy.add_argument("--json", action="store_true", help="print JSON")
    privacy.set_defaults(func=_privacy)

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
    listing.set_defaults(func=_list)

    show = sub.add_parser("show", help="show one conversation with its trajectory and patterns")
    _workspace_argument(show)
    show.add_argument("conversation_id")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=_show)

    stats = sub.add_parser("stats", help="counts by source, role, phase and pattern; the imports")
    _workspace_argument(stats)
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.set_defaults(func=_stats)

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
    export.set_defaults(func=_export)

    annotate = sub.add_parser("reannotate", help="recompute stored trajectory annotations and pattern labels")
    _workspace_argument(annotate)
    annotate.add_argument(
        "--recompute-given", action="store_true", help="also replace trajectory values that imported files gave"
    )
    annotate.set_defaults(func=_reannotate)


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


def _open_workspace(args, *, read_only: bool = False):
    """The workspace; `read_only` commands refuse a missing one (a mistyped --workspace) and
    never wait for another process's import."""
    from cognitivetwin_core.data.workspace import Workspace

    return Workspace.open(getattr(args, "workspace", None), read_only=read_only, on_wait=_say_waiting)


def _say_waiting(who: str) -> None:
    print(f"Waiting: {printable(who)} is writing to the workspace; this goes on when it has finished.", file=sys.stderr)


class _ProgressBar:
    """A one-line progress bar on stderr (a line per 10% when stderr is not a terminal)."""

    def __init__(self, label: str, enabled: bool = True):
        self.label = label
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.last_step = -1
        self.started = time.monotonic()
        self.drawn = False

    def __call__(self, tick) -> None:
        if not self.enabled:
            return
        fraction = tick.fraction
        if tick.unit == "bytes":
            amount = f"{tick.done / 1e6:.1f}" + (f"/{tick.total / 1e6:.1f} MB" if tick.total else " MB")
        else:
            amount = f"{tick.done}" + (f"/{tick.total}" if tick.total else "") + f" {tick.unit}"
        counts = f"{tick.conversations} conversations, {tick.messages} messages"
        if self.tty:
            bar = ""
            if fraction is not None:
                filled = int(fraction * 30)
                bar = "[" + "#" * filled + "." * (30 - filled) + f"] {fraction * 100:3.0f}% "
            sys.stderr.write(f"\r{self.label}: {bar}{amount}, {counts}   ")
            sys.stderr.flush()
            self.drawn = True
        else:
            step = int((fraction or 0) * 10)
            if step > self.last_step:
                self.last_step = step
                percent = f"{fraction * 100:.0f}% " if fraction is not None else ""
                print(f"{self.label}: {percent}{amount}, {counts}", file=sys.stderr)

    def close(self) -> None:
        if self.drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.drawn = False


def supabase_credentials(url: str | None = None) -> tuple[str, str]:
    """URL and key from the environment (SUPABASE_URL, SUPABASE_KEY or the seed's
    SUPABASE_SERVICE_KEY), else the keyring."""
    from cognitivetwin_core.errors import InputError

    url = url or os.environ.get("SUPABASE_URL")
    key = os.environ.get("SUPABASE_KEY") or os.environ.get("SUPABASE_SERVICE_KEY")
    if not url or not key:
        try:
            from cognitivetwin_core.connections import secrets

            url = url or secrets.get_secret(secrets.SUPABASE_URL)
            key = key or secrets.get_secret(secrets.SUPABASE_KEY)
        except ImportError:
            pass
        except Exception as exc:  # no keyring backend, locked keyring: say so, then ask for the variables
            if not url or not key:
                raise InputError(
                    f"No Supabase credentials: the keyring is unusable ({exc}); set SUPABASE_URL and "
                    "SUPABASE_KEY, or save them in the app's Connections tab."
                ) from None
    if key:
        from cognitivetwin_core.logging_setup import register_secret

        register_secret(key)
    if not url or not key:
        raise InputError(
            "No Supabase credentials: set SUPABASE_URL and SUPABASE_KEY, or save them in the app's Connections tab."
        )
    return url, key


def _supabase_source(args):
    from cognitivetwin_core.data.importers import ColumnMapping, SupabaseSource
    from cognitivetwin_core.data.importers.supabase_table import DEFAULT_TABLE

    url, key = supabase_credentials(args.url)
    return SupabaseSource(
        url=url,
        key=key,
        table=args.table or DEFAULT_TABLE,
        mapping=ColumnMapping.from_pairs(args.map),
        page_size=args.page_size,
    )


def _print_report(report) -> None:
    from cognitivetwin_core.data.importers import IMPORTERS

    if report.importer in IMPORTERS:
        print(f"Recognised: {IMPORTERS[report.importer].title}")
    print(printable(report.summary()))
    for warning in report.warnings:
        print(f"warning: {printable(warning)}")
    if report.rejected_total:
        print(f"Rejected records ({report.rejected_total}):")
        for rejection in report.rejected[:50]:
            print(f"  {printable(rejection, one_line=True)}")
        if report.rejected_total > 50:
            print(
                f"  ... and {report.rejected_total - 50} more (details of the first "
                f"{len(report.rejected)}: `cognitivetwin data stats --json`)"
            )


def _import(args) -> int:
    from cognitivetwin_core.data.importers import import_into
    from cognitivetwin_core.errors import InputError

    if args.supabase == bool(args.path):
        raise InputError("Give either a PATH (or 'demo') or --supabase to import.")
    source = _supabase_source(args) if args.supabase else args.path
    workspace = _open_workspace(args)
    bar = _ProgressBar("importing", enabled=not args.quiet)
    try:
        report = import_into(
            workspace,
            source,
            importer=args.importer,
            strict=args.strict,
            progress=bar,
            gap_hours=args.gap_hours,
            me=args.me,
        )
        bar.close()
        _print_report(report)
        _print_imports_to_repeat(workspace.imports_to_repeat())
        if report.owner_adopted:
            from cognitivetwin_core.data.twin_speaker import describe

            print(
                f"The twin speaks as {printable(describe(report.twin_speaker), one_line=True)}, the export's "
                "owner (change it with `cognitivetwin data speakers --me NAME`)."
            )
        elif report.twin_speaker is not None:
            print(f"The twin speaks as {printable(report.twin_speaker, one_line=True)}.")
        elif report.participants and workspace.twin_speaker() not in report.participants:
            name = f'"{printable(report.owner, one_line=True)}"' if report.owner else "NAME"
            print(
                f"Which of these is you? Tell with `cognitivetwin data speakers --me {name}` "
                "(the twin learns that person's messages)."
            )
    finally:
        bar.close()
        workspace.close()
    return 0 if report.conversations_accepted or not report.rejected_total else 2


def _print_imports_to_repeat(records: list[dict]) -> None:
    """Say which files to import again: imports that compared conversations by their texts alone."""
    for record in records:
        print(f"note: {printable(record['advice'], one_line=True)}")


def _speakers(args) -> int:
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
        _open_workspace(args, read_only=True).close()
    with _open_workspace(args, read_only=not writes) as workspace:
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


def _privacy(args) -> int:
    from cognitivetwin_core.data.privacy import scan_conversations

    with _open_workspace(args, read_only=True) as workspace:
        names = [item.name for item in workspace.speakers() if item.named]
        summary = scan_conversations(workspace.iter_conversations(), names)
    if args.json:
        print(printable_json(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2)))
    else:
        print("\n".join(printable(line, one_line=True) for line in summary.lines()))
    return 0


def _list(args) -> int:
    workspace = _open_workspace(args, read_only=True)
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


def _show(args) -> int:
    from cognitivetwin_core.annotation.trajectory import PHASE_NAMES

    workspace = _open_workspace(args, read_only=True)
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


def _stats(args) -> int:
    from cognitivetwin_core.annotation.trajectory import PHASE_NAMES

    workspace = _open_workspace(args, read_only=True)
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
    _print_imports_to_repeat(stats["imports_to_repeat"])
    return 0


def _export(args) -> int:
    from pathlib import Path

    from cognitivetwin_core.data.exports import DEFAULT_MERGE_MINUTES, export_together, export_trajectory
    from cognitivetwin_core.data.person_identity import resolve_speaker
    from cognitivetwin_core.errors import InputError, os_error
    from cognitivetwin_core.models.catalog import DEFAULT_BASE_MODEL

    out = Path(args.out).expanduser()
    if out.is_dir():
        raise InputError(f"--out {out} is a folder: give a file name, for example {out / 'export.jsonl'}.")
    workspace = _open_workspace(args, read_only=True)
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


def _reannotate(args) -> int:
    from cognitivetwin_core.data.workspace import Workspace

    workspace = Workspace.open(args.workspace)
    count = workspace.refresh_annotations(recompute_given=args.recompute_given)
    workspace.close()
    print(f"Re-annotated {count} conversations.")
    return 0


def prepare_phase2_data(args) -> int:
    """The seed's `phase2 --prepare-data`: import the Supabase table into the workspace, then
    write the trajectory JSONL Phase 2 trains on (default <workspace>/runs/phase2_training_data.jsonl)."""
    from pathlib import Path

    from cognitivetwin_core.data.exports import export_trajectory
    from cognitivetwin_core.data.importers import import_into

    for name, default in (
        ("url", None),
        ("table", None),
        ("map", []),
        ("page_size", 1000),
        ("data_out", None),
        ("strict", False),
        ("quiet", False),
    ):
        if not hasattr(args, name):
            setattr(args, name, default)
    source = _supabase_source(args)
    workspace = _open_workspace(args)
    bar = _ProgressBar("importing", enabled=not args.quiet)
    try:
        report = import_into(workspace, source, strict=args.strict, progress=bar)
        bar.close()
        _print_report(report)
        out = Path(args.data_out) if args.data_out else workspace.runs_dir / "phase2_training_data.jsonl"
        summary = export_trajectory(workspace, out)
    finally:
        bar.close()
        workspace.close()
    print(f"Wrote {summary.lines} lines ({summary.conversations} conversations) to {summary.path}")
    return 0
