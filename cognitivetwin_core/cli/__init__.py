"""The `cognitivetwin` command line. Each sub-command lives in its own module here.

Every module in COMMAND_MODULES has `register(subparsers)`, which adds its parser and sets
`func(args) -> int`. Registration imports nothing heavy: `cognitivetwin --help` must answer
in well under a second, without torch, transformers or Qt.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from cognitivetwin_core import __version__
from cognitivetwin_core.cli.terminal_text import printable
from cognitivetwin_core.errors import CognitiveTwinError

COMMAND_MODULES = [
    "model_cmd",
    "demo_cmd",
    "data_cmd",
    "phase2_cmd",
    "playground_cmd",
    "phase1_cmd",
    "chat_cmd",
    "judge_cmd",
]

log = logging.getLogger("cognitivetwin.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cognitivetwin",
        description="Train and inspect a cognitive twin: data import, Phase 1 LoRA fine-tuning, "
        "Phase 2 trajectory-aware heads, and the playground.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="also log to the terminal")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from cognitivetwin_core.logging_setup import configure_logging

    configure_logging(logging.DEBUG if args.verbose else logging.INFO, console=args.verbose)
    # Libraries' deprecation notices go to the log, so that a refusal stays one line on stderr.
    logging.captureWarnings(True)
    try:
        return int(args.func(args) or 0)
    except CognitiveTwinError as exc:
        log.warning("%s failed: %s", args.command, exc)
        print(f"error: {printable(exc)}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        # A full, read-only or failing disk met where no command turned it into a sentence:
        # still one sentence here, the details in the log. Other OSErrors are bugs: raised.
        from cognitivetwin_core.errors import is_disk_failure, os_error

        if not is_disk_failure(exc):
            raise
        log.exception("%s failed", args.command)

        error = os_error(exc, "using", exc.filename)
        print(f"error: {printable(error)}", file=sys.stderr)
        return error.exit_code
    except Exception as exc:
        # The same disk failures, reported by a library as another kind of error (safetensors).
        from cognitivetwin_core.errors import is_disk_failure, os_error, reported_os_error

        reported = reported_os_error(exc)
        if reported is None or not is_disk_failure(reported):
            raise
        log.exception("%s failed", args.command)
        error = os_error(reported, "writing", getattr(exc, "filename", None) or "the output")
        print(f"error: {printable(error)}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
