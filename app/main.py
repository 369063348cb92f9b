"""Entry point of `cognitivetwin-studio`."""

from __future__ import annotations

import argparse
import os
import sys

NO_DISPLAY_MESSAGE = (
    "No display found: run the studio on a desktop, or headless with "
    "`xvfb-run cognitivetwin-studio` (or QT_QPA_PLATFORM=offscreen for screenshots only)."
)


def _has_display() -> bool:
    if sys.platform != "linux":
        return True
    if os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in {"offscreen", "minimal", "vnc", "eglfs", "linuxfb"}:
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="cognitivetwin-studio", description="CognitiveTwin Studio, the desktop app.")
    parser.add_argument("--workspace", help="open this workspace folder instead of the last one")
    parser.add_argument("--quit-after", type=float, metavar="SECONDS", help="close the window after SECONDS (smoke tests)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not _has_display():
        print(NO_DISPLAY_MESSAGE, file=sys.stderr)
        return 2
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QTabWidget

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("CognitiveTwin Studio")
    window = QMainWindow()
    window.setWindowTitle("CognitiveTwin Studio")
    tabs = QTabWidget()
    for name in ("Connections", "Data", "Phase 1", "Phase 2", "Playground"):
        tabs.addTab(QLabel(f"{name}: coming in this release."), name)
    window.setCentralWidget(tabs)
    window.resize(1100, 720)
    window.show()
    if args.quit_after is not None:
        QTimer.singleShot(int(args.quit_after * 1000), app.quit)
    return app.exec()
