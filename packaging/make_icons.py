"""Render the app icon (one SVG) into every file a desktop needs.

    .venv/bin/python packaging/make_icons.py

Source: resources/icons/cognitivetwin.svg, the same icon the window uses. Output under
packaging/icons/:
  hicolor/<N>x<N>/apps/<APP_ID>.png   Linux icon theme sizes 16..512
  hicolor/scalable/apps/<APP_ID>.svg  the SVG itself
  cognitivetwin.ico                   Windows (PyInstaller `icon=`), PNG-compressed entries
  cognitivetwin.icns                  macOS (PyInstaller `icon=`), PNG-compressed entries
  source.sha256                       hash of the SVG they were made from, so a test can
                                      tell when the icon changed and these are stale

ICO and ICNS are written here rather than by Pillow or Qt: Qt's writers store one size
per file, and both formats are a short header plus PNG payloads.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import sys
from pathlib import Path

PACKAGING_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGING_DIR.parent
APP_ID = "io.github.cognitivetwin.Studio"
SOURCE_SVG = REPO_ROOT / "resources" / "icons" / "cognitivetwin.svg"
ICONS_DIR = PACKAGING_DIR / "icons"
HICOLOR_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# Apple's element types for PNG payloads: (type, pixel size).
ICNS_ELEMENTS = (
    (b"icp4", 16),
    (b"icp5", 32),
    (b"icp6", 64),
    (b"ic07", 128),
    (b"ic08", 256),
    (b"ic09", 512),
    (b"ic10", 1024),
    (b"ic11", 32),
    (b"ic12", 64),
    (b"ic13", 256),
    (b"ic14", 512),
)


def source_digest(svg: Path = SOURCE_SVG) -> str:
    return hashlib.sha256(svg.read_bytes()).hexdigest()


def hicolor_png(size: int, icons_dir: Path = ICONS_DIR) -> Path:
    return icons_dir / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"


def hicolor_svg(icons_dir: Path = ICONS_DIR) -> Path:
    return icons_dir / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"


def _render_png(renderer, size: int) -> bytes:
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QImage, QPainter

    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise RuntimeError(f"Qt could not encode the {size} px icon as PNG")
    buffer.close()
    return bytes(data.data())


def ico_bytes(pngs: dict[int, bytes]) -> bytes:
    """An ICO file whose entries are PNG images (read by Windows Vista and later)."""
    sizes = sorted(pngs)
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = len(header) + 16 * len(sizes)
    entries, payloads = b"", b""
    for size in sizes:
        png = pngs[size]
        side = 0 if size >= 256 else size  # 0 means 256 in the ICO directory
        entries += struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(png), offset)
        payloads += png
        offset += len(png)
    return header + entries + payloads


def icns_bytes(pngs: dict[int, bytes]) -> bytes:
    """An ICNS file with PNG elements (macOS 10.7 and later)."""
    body = b"".join(kind + struct.pack(">I", 8 + len(pngs[size])) + pngs[size] for kind, size in ICNS_ELEMENTS)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def make_icons(svg: Path = SOURCE_SVG, icons_dir: Path = ICONS_DIR) -> list[Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 (QImage text/painting needs one)
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg}: not an SVG that Qt can render; fix the file and run this again")
    needed = set(HICOLOR_SIZES) | set(ICO_SIZES) | {size for _, size in ICNS_ELEMENTS}
    pngs = {size: _render_png(renderer, size) for size in sorted(needed)}
    written = []
    for size in HICOLOR_SIZES:
        _write(hicolor_png(size, icons_dir), pngs[size])
        written.append(hicolor_png(size, icons_dir))
    hicolor_svg(icons_dir).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(svg, hicolor_svg(icons_dir))
    written.append(hicolor_svg(icons_dir))
    _write(icons_dir / "cognitivetwin.ico", ico_bytes({s: pngs[s] for s in ICO_SIZES}))
    _write(icons_dir / "cognitivetwin.icns", icns_bytes(pngs))
    _write(icons_dir / "source.sha256", f"{source_digest(svg)}  resources/icons/cognitivetwin.svg\n".encode())
    written += [icons_dir / "cognitivetwin.ico", icons_dir / "cognitivetwin.icns", icons_dir / "source.sha256"]
    return written


if __name__ == "__main__":
    for path in make_icons():
        print(path.relative_to(REPO_ROOT))
