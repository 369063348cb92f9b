"""Entry point of `cognitivetwin-studio`.

Starts Qt, the qasync event loop (`qasync.run` on Python 3.11, docs/qt.md §10), the log and
the excepthook, then shows the main window. Nothing here imports torch or transformers:
the window must open fast.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

NO_DISPLAY_MESSAGE = (
    "No display found: run the studio on a desktop, or headless with "
    "`xvfb-run cognitivetwin-studio` (or QT_QPA_PLATFORM=offscreen for screenshots only)."
)
ORGANIZATION = "CognitiveTwin"
APPLICATION = "CognitiveTwin Studio"


def _has_display() -> bool:
    if sys.platform != "linux":
        return True
    if os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in {"offscreen", "minimal", "vnc", "eglfs", "linuxfb"}:
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="cognitivetwin-studio", description="CognitiveTwin Studio, the desktop app.")
    parser.add_argument("--workspace", help="open this workspace folder instead of the last one")
    parser.add_argument(
        "--quit-after", type=float, metavar="SECONDS", help="close the window SECONDS after start-up (smoke tests)"
    )
    parser.add_argument(
        "--report-startup",
        action="store_true",
        help="print 'window shown after N.NNN s' (seconds since the process started) once the window is on screen",
    )
    return parser.parse_args(argv)


def create_application():
    """The QApplication with the studio's names, icon and stylesheet (one per process)."""
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from cognitivetwin_core.paths import resources_dir

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setDesktopFileName("io.github.cognitivetwin.Studio")  # matches the .desktop entry (Wayland icon)
    icon_path = resources_dir() / "icons" / "cognitivetwin.svg"
    if icon_path.is_file():
        app.setWindowIcon(QIcon(str(icon_path)))
    style_path = resources_dir() / "style.qss"
    if style_path.is_file():
        app.setStyleSheet(style_path.read_text(encoding="utf-8"))
    return app


async def run_window(args) -> int:
    """Show the window and wait until the application quits; cancel tracked tasks on the way out."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.dialogs.errors import install_excepthook
    from app.main_window import MainWindow
    from app.qt.gui_thread_gc import GuiThreadGarbageCollector
    from app.qt.tasks import cancel_all

    app = QApplication.instance()
    install_excepthook(asyncio.get_running_loop())
    collector = GuiThreadGarbageCollector(app)  # widgets are never collected on worker threads
    quitting = asyncio.Event()
    # The coroutine ends the loop (not Qt's last-window rule), so asyncio.run can still
    # cancel and finish the tasks left over after the window has closed.
    app.setQuitOnLastWindowClosed(False)
    app.lastWindowClosed.connect(quitting.set)
    app.aboutToQuit.connect(cancel_all)

    window = MainWindow()
    window.show()
    if args.report_startup:
        # After the first paint, so "shown" means on screen.
        QTimer.singleShot(0, lambda: print(f"window shown after {_seconds_since_process_start():.3f} s", flush=True))
    # The workspace opens after the first paint, on a worker thread: Workspace.open may
    # migrate the database and re-annotate every message.
    QTimer.singleShot(0, lambda: window.open_initial_workspace(args.workspace, background=True))
    # After the first paint: the keyring (D-Bus) and the device probe run on worker threads,
    # but importing them would still compete with the window for the interpreter.
    QTimer.singleShot(100, lambda: window.connections_tab.refresh())  # builds that tab if not yet shown
    QTimer.singleShot(300, window.detect_device)
    QTimer.singleShot(1500, window.prepare_builtin_model)  # once, if this computer lacks it
    if args.quit_after is not None:
        # Counted from the end of start-up (the workspace opened, or said why not), not from
        # the first paint: on a busy machine a fixed time closed the window mid-start-up.
        window.workspaceOpenFinished.connect(lambda: QTimer.singleShot(int(args.quit_after * 1000), window.close))
    await quitting.wait()
    cancel_all()
    collector.stop()
    from cognitivetwin_core.child_processes import end_helper

    end_helper()  # the memory checks' child, if one is still up
    return 0


def _seconds_since_process_start() -> float:
    """Wall time since the OS created this process (the interpreter's own start-up included)."""
    import psutil

    return time.time() - psutil.Process().create_time()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # Imports annotate in forked worker processes by default; forking a process that runs
    # Qt and several threads can deadlock a child on a lock another thread held. The app
    # keeps annotation in its import thread unless the user asks for workers.
    os.environ.setdefault("COGNITIVETWIN_IMPORT_WORKERS", "0")
    if not _has_display():
        print(NO_DISPLAY_MESSAGE, file=sys.stderr)
        return 2
    import qasync

    from cognitivetwin_core.logging_setup import configure_logging

    configure_logging()
    create_application()
    try:
        return qasync.run(run_window(args))
    except asyncio.CancelledError:
        return 0
