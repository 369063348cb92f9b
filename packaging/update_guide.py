"""Take the offline guide's screenshots (resources/guide/*.png) from the app itself.

    .venv/bin/python packaging/update_guide.py

Runs the guided-path test (tests/test_app_guided_path.py: a fresh start, the demo data,
Phase 1 on this computer with the built-in model, a one-epoch Phase 2 run, the Playground)
with COGNITIVETWIN_GUIDE_SHOTS set, so each screenshot it takes of the real window is also
written into resources/guide/, the folder Help ▸ Guide shows. Takes a few minutes on a CPU.
Run it again whenever the tabs change, and commit the PNGs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
GUIDE_DIR = REPO_ROOT / "resources" / "guide"


def main() -> int:
    env = {**os.environ, "COGNITIVETWIN_GUIDE_SHOTS": str(GUIDE_DIR), "PYTHONPATH": str(REPO_ROOT)}
    command = [
        "bash",
        str(REPO_ROOT / "scripts" / "run-tests.sh"),
        "-q",
        "tests/test_app_guided_path.py::test_the_guided_path_from_a_fresh_start_to_the_playground",
    ]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env)
    if result.returncode == 0:
        print(f"guide screenshots written to {GUIDE_DIR}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
