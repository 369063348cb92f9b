"""Entry script of the PyInstaller bundle: one script, two executables.

The bundle holds `cognitivetwin-studio` (the window) and `cognitivetwin` (the command
line, used by scripts and by the bundle's self-check). Both are built from this script and
share every library in the bundle; the executable's own name picks which one runs.
"""

from __future__ import annotations

import multiprocessing
import os
import sys


def _ensure_std_streams() -> None:
    # A windowed executable on Windows (and macOS .app) starts with sys.stdout/stderr set to
    # None; tqdm, transformers and logging would crash on the first write.
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 (lives as long as the process)


def main() -> int:
    multiprocessing.freeze_support()  # a spawned worker process re-runs this executable
    _ensure_std_streams()
    program = os.path.splitext(os.path.basename(sys.executable if getattr(sys, "frozen", False) else sys.argv[0]))[0]
    if program.lower() == "cognitivetwin":
        from cognitivetwin_core.cli import main as cli_main

        return cli_main()
    from app.main import main as studio_main

    return studio_main()


if __name__ == "__main__":
    sys.exit(main())
