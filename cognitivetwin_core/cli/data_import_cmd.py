"""`cognitivetwin data import`: a file, the demo dataset or a Supabase table into the workspace,
with a progress bar and the import report; also the seed's `phase2 --prepare-data`.
"""

from __future__ import annotations

import os
import sys
import time

from cognitivetwin_core.cli.terminal_text import printable
from cognitivetwin_core.cli.workspace_opening import open_workspace


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


def import_command(args) -> int:
    from cognitivetwin_core.data.importers import import_into
    from cognitivetwin_core.errors import InputError

    if args.supabase == bool(args.path):
        raise InputError("Give either a PATH (or 'demo') or --supabase to import.")
    source = _supabase_source(args) if args.supabase else args.path
    workspace = open_workspace(args)
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
        print_imports_to_repeat(workspace.imports_to_repeat())
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


def print_imports_to_repeat(records: list[dict]) -> None:
    """Say which files to import again: imports that compared conversations by their texts alone."""
    for record in records:
        print(f"note: {printable(record['advice'], one_line=True)}")


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
    workspace = open_workspace(args)
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
