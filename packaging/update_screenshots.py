"""Take the AppStream screenshots from the app itself: one PNG per tab of the main window.

    .venv/bin/python packaging/update_screenshots.py [--out packaging/screenshots]

Runs the real `app.main:main` offscreen with temporary user folders (so no one's data or
keys show) whose workspace holds the bundled demo conversations, waits for the main window,
grabs every tab of its tab widget, writes the images' sizes into the metainfo, and quits.
File names are the tab titles in lower case with dashes ("Phase 1" -> phase-1.png), the
names the metainfo's <screenshot> URLs use.
Run it again whenever the tabs change, and commit the PNGs.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

PACKAGING_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGING_DIR.parent
METAINFO = PACKAGING_DIR / "io.github.cognitivetwin.Studio.metainfo.xml"
SCREENSHOTS_DIR = PACKAGING_DIR / "screenshots"
WINDOW_SIZE = (1280, 800)  # asked for; a larger minimum size of the window wins
WINDOW_WAIT_MS = 30_000
SETTLE_MS = 2_000  # start-up probes (device, keyring) fill the status bar after the first paint


def tab_slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.replace("&", "").lower()).strip("-")


def metainfo_screenshot_names(metainfo: Path = METAINFO) -> list[str]:
    """The PNG file names the metainfo's screenshot URLs point at, in order."""
    root = ET.parse(metainfo).getroot()
    return [image.text.strip().rsplit("/", 1)[-1] for image in root.iterfind("./screenshots/screenshot/image")]


def _main_window_tabs():
    from PySide6.QtWidgets import QApplication, QMainWindow, QTabWidget

    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, QMainWindow) and widget.isVisible():
            tab_widgets = widget.findChildren(QTabWidget)
            if tab_widgets:
                # The main tab bar is the largest tab widget; tabs inside tabs are smaller.
                return widget, max(tab_widgets, key=lambda tabs: tabs.width() * tabs.height())
    return None, None


def take_screenshots(out_dir: Path) -> list[Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(REPO_ROOT))
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from app.main import main as studio_main

    app = QApplication.instance() or QApplication(sys.argv[:1])
    written: list[Path] = []
    failure: list[str] = []
    clock = QElapsedTimer()
    clock.start()

    def grab_when_ready():
        window, tabs = _main_window_tabs()
        if window is None:
            if clock.elapsed() > WINDOW_WAIT_MS:
                failure.append(f"no main window with tabs appeared within {WINDOW_WAIT_MS // 1000} s")
                app.quit()
            else:
                QTimer.singleShot(200, grab_when_ready)
            return
        window.resize(*WINDOW_SIZE)
        QTimer.singleShot(SETTLE_MS, lambda: grab_tabs(window, tabs))

    def grab_tabs(window, tabs):
        out_dir.mkdir(parents=True, exist_ok=True)
        for index in range(tabs.count()):
            tabs.setCurrentIndex(index)
            for _ in range(5):  # let layouts, lazy tab contents and plots settle
                app.processEvents()
            path = out_dir / f"{tab_slug(tabs.tabText(index))}.png"
            tmp = path.with_name(path.name + ".tmp.png")
            if not window.grab().save(str(tmp)):
                failure.append(f"could not write {path}")
                break
            os.replace(tmp, path)
            written.append(path)
        tabs.setCurrentIndex(0)
        app.quit()

    QTimer.singleShot(0, grab_when_ready)
    studio_main([])
    if failure:
        raise SystemExit("update_screenshots: " + "; ".join(failure))
    return written


def record_image_sizes(images: list[Path], metainfo: Path = METAINFO) -> None:
    """Write each screenshot's real width and height into the metainfo's <image> element."""
    import struct

    text = metainfo.read_text(encoding="utf-8")
    for image in images:
        width, height = struct.unpack(">II", image.read_bytes()[16:24])  # the PNG IHDR chunk
        text = re.sub(
            r'<image type="source" width="\d+" height="\d+">([^<]*/' + re.escape(image.name) + ")</image>",
            rf'<image type="source" width="{width}" height="{height}">\1</image>',
            text,
        )
    tmp = metainfo.with_name(metainfo.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, metainfo)


def _import_demo_data() -> None:
    """Fill the temporary default workspace with the bundled demo conversations."""
    sys.path.insert(0, str(REPO_ROOT))
    from cognitivetwin_core.cli import main as cli_main

    if cli_main(["data", "import", "demo", "--quiet"]) != 0:
        print(
            "update_screenshots: could not import the demo data; the tabs will show an empty workspace", file=sys.stderr
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SCREENSHOTS_DIR)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cognitivetwin-screenshots-") as home:
        for kind in ("DATA", "CONFIG", "LOG"):  # an empty first start; the model cache is kept
            os.environ[f"COGNITIVETWIN_{kind}_DIR"] = os.path.join(home, kind.lower())
        _import_demo_data()
        written = take_screenshots(args.out)
    record_image_sizes(written)
    for path in written:
        print(path)
    missing = sorted(set(metainfo_screenshot_names()) - {path.name for path in written})
    if missing:
        print(
            f"update_screenshots: the metainfo references {', '.join(missing)}, which no tab produced: "
            f"update the <screenshots> of {METAINFO.name} to the new tab names",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
