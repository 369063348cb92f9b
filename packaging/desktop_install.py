"""Put CognitiveTwin Studio in the user's application menu, or take it out again.

    python3 packaging/desktop_install.py install [--exec PATH]   (make install-desktop)
    python3 packaging/desktop_install.py uninstall               (make uninstall-desktop)

Per user, no root: the desktop entry goes to $XDG_DATA_HOME/applications, the icons to
$XDG_DATA_HOME/icons/hicolor/<size>/apps and the AppStream metadata to
$XDG_DATA_HOME/metainfo ($XDG_DATA_HOME defaults to ~/.local/share). Uninstalling removes
exactly those files; the user's workspaces, settings, keys and model cache stay.

The entry starts, in this order of preference: --exec PATH, the bundle this script sits in
(bundle/desktop-integration/desktop_install.py), the PyInstaller bundle built by
`make package` (dist/cognitivetwin-studio/cognitivetwin-studio), the virtualenv's
launcher (.venv/bin/cognitivetwin-studio). The path is absolute, so the menu entry works
without a terminal or PATH; after moving this folder, run install again.
Standard library only: it runs with any Python 3.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGING_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGING_DIR.parent
APP_ID = "io.github.cognitivetwin.Studio"
DESKTOP_FILE = PACKAGING_DIR / f"{APP_ID}.desktop"
METAINFO_FILE = PACKAGING_DIR / f"{APP_ID}.metainfo.xml"
ICONS_DIR = PACKAGING_DIR / "icons" / "hicolor"
EXECUTABLE_CANDIDATES = (
    # Inside a bundle (build.sh copies this folder there as desktop-integration/).
    PACKAGING_DIR.parent / "cognitivetwin-studio",
    REPO_ROOT / "dist" / "cognitivetwin-studio" / "cognitivetwin-studio",
    REPO_ROOT / ".venv" / "bin" / "cognitivetwin-studio",
)


class InstallError(Exception):
    """A message for the person running `make install-desktop`."""


def data_home() -> Path:
    # The XDG spec: an unset, empty or relative XDG_DATA_HOME means ~/.local/share.
    value = os.environ.get("XDG_DATA_HOME", "")
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / ".local" / "share"


def installed_paths(data_dir: Path | None = None) -> list[Path]:
    """Every file `install` writes, the same list `uninstall` removes."""
    data_dir = data_dir or data_home()
    paths = [data_dir / "applications" / DESKTOP_FILE.name, data_dir / "metainfo" / METAINFO_FILE.name]
    for icon in sorted(ICONS_DIR.glob(f"*/apps/{APP_ID}.*")):
        paths.append(data_dir / "icons" / "hicolor" / icon.relative_to(ICONS_DIR))
    return paths


def find_executable(explicit: str | None = None) -> Path:
    if explicit:
        candidate = Path(os.path.abspath(os.path.expanduser(explicit)))
        if not (candidate.is_file() and os.access(candidate, os.X_OK)):
            raise InstallError(f"--exec {explicit}: not an executable file")
        return candidate
    for candidate in EXECUTABLE_CANDIDATES:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise InstallError(
        "CognitiveTwin Studio is not built or set up yet: run `make package` (the standalone app) "
        "or `make setup`, then `make install-desktop` again."
    )


def quote_exec_argument(argument: str) -> str:
    """Quote one Exec argument as the Desktop Entry spec requires (spaces, quotes, $, `, \\, %)."""
    argument = argument.replace("%", "%%")  # a lone % would start a field code
    reserved = set(" \t\n\"'\\><~|&;$*?#()`")
    if argument and not (set(argument) & reserved):
        return argument
    escaped = "".join("\\" + ch if ch in '"`$\\' else ch for ch in argument)
    # The desktop-file parser unescapes '\\' once more for string values.
    return '"' + escaped.replace("\\", "\\\\") + '"'


def desktop_entry_text(executable: Path) -> str:
    """The packaged entry with Exec/TryExec pointing at this installation."""
    lines = []
    for line in DESKTOP_FILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("Exec="):
            line = f"Exec={quote_exec_argument(str(executable))}"
        elif line.startswith("TryExec="):
            # TryExec is a plain path (no quoting): the menu hides the entry once it is gone.
            line = "TryExec=" + str(executable).replace("\\", "\\\\")
        lines.append(line)
    return "\n".join(lines) + "\n"


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _refresh_icon_cache(data_dir: Path) -> None:
    """Let icon themes see the change: refresh an existing icon cache, never create one.

    A user-level icon-theme.cache that other installers do not update would hide their
    icons, so where none exists the folder's new mtime is enough for GTK and Qt to rescan.
    Menus watch the applications folder themselves (the entry has no MIME types, so
    update-desktop-database has nothing to do).
    """
    hicolor = data_dir / "icons" / "hicolor"
    if not hicolor.is_dir():
        return
    os.utime(hicolor)
    if (hicolor / "icon-theme.cache").is_file() and shutil.which("gtk-update-icon-cache"):
        subprocess.run(
            ["gtk-update-icon-cache", "-q", "-t", "-f", str(hicolor)],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


def install(executable: Path, data_dir: Path | None = None) -> list[Path]:
    data_dir = data_dir or data_home()
    written = []
    desktop_target, metainfo_target, *icon_targets = installed_paths(data_dir)
    _write_atomically(desktop_target, desktop_entry_text(executable).encode("utf-8"))
    written.append(desktop_target)
    _write_atomically(metainfo_target, METAINFO_FILE.read_bytes())
    written.append(metainfo_target)
    for target in icon_targets:
        source = ICONS_DIR / target.relative_to(data_dir / "icons" / "hicolor")
        _write_atomically(target, source.read_bytes())
        written.append(target)
    _refresh_icon_cache(data_dir)
    return written


def uninstall(data_dir: Path | None = None) -> list[Path]:
    data_dir = data_dir or data_home()
    removed = []
    for path in installed_paths(data_dir):
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed.append(path)
            # Drop icon folders left empty; never a folder that holds anything else.
            parent = path.parent
            while parent != data_dir and parent.is_relative_to(data_dir / "icons" / "hicolor"):
                if parent == data_dir / "icons" / "hicolor" or any(parent.iterdir()):
                    break
                parent.rmdir()
                parent = parent.parent
    _refresh_icon_cache(data_dir)
    return removed


def copy_into_bundle(bundle_dir: Path) -> Path:
    """Put this script and the files it installs into a built bundle (packaging/build.sh).

    Whoever receives only the bundle folder can then add it to their menu with
    `python3 desktop-integration/desktop_install.py install`.
    """
    target = Path(bundle_dir) / "desktop-integration"
    if target.exists():
        shutil.rmtree(target)
    (target / "icons").mkdir(parents=True)
    for source in (Path(__file__).resolve(), DESKTOP_FILE, METAINFO_FILE):
        shutil.copy2(source, target / source.name)
    shutil.copytree(ICONS_DIR, target / "icons" / "hicolor")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="desktop_install.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    install_parser = sub.add_parser("install", help="add the app to the application menu")
    install_parser.add_argument("--exec", dest="executable", help="the program the menu entry starts")
    sub.add_parser("uninstall", help="remove the app from the application menu")
    bundle_parser = sub.add_parser("copy-into-bundle", help="(build.sh) add these files to a built bundle")
    bundle_parser.add_argument("bundle_dir", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.action == "copy-into-bundle":
            print(f"desktop integration files copied to {copy_into_bundle(args.bundle_dir)}")
        elif args.action == "install":
            executable = find_executable(args.executable)
            install(executable)
            print(f"CognitiveTwin Studio is in your application menu now (it starts {executable}).")
            print("If it does not show up at once, log out and in again.")
        else:
            removed = uninstall()
            if removed:
                print("CognitiveTwin Studio was removed from your application menu. Your data was kept.")
            else:
                print(f"CognitiveTwin Studio was not in the application menu of {data_home()}; nothing to remove.")
    except InstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: could not {args.action} the menu entry: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
