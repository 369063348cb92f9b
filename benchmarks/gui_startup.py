"""Time from process start to the window on screen: the studio vs a bare QMainWindow.

Each run is a fresh process (the interpreter's own start-up included), alternating the two
so both see the same machine state; the ratio of the medians is what matters (target
<= 1.5x, and the studio under 2 s). Runs offscreen unless a display is set.

    .venv/bin/python benchmarks/gui_startup.py [--runs 5] [--placeholder-tabs]

`--placeholder-tabs` also times the shell with the Phase 1, Phase 2 and Playground tabs
replaced by placeholders, which shows what those three tabs add to the start-up.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

BARE = r"""
import sys, time, psutil
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication(sys.argv[:1])
window = QMainWindow()
window.setWindowTitle("bare")
window.resize(1200, 800)
window.show()
QTimer.singleShot(0, lambda: (print(f"window shown after {time.time() - psutil.Process().create_time():.3f} s", flush=True), app.quit()))
app.exec()
"""

STUDIO = r"""
import sys
from app.main import main
sys.exit(main(["--quit-after", "0.05", "--report-startup"]))
"""

SHELL_ONLY = r"""
import sys, types
from app.tabs.placeholder import PlaceholderTab
for module, name in (("app.tabs.phase1_tab", "Phase1Tab"), ("app.tabs.phase2_tab", "Phase2Tab"),
                     ("app.tabs.playground_tab", "PlaygroundTab")):
    stub = types.ModuleType(module)
    setattr(stub, name, lambda name=name: PlaceholderTab(name, "placeholder for the benchmark"))
    sys.modules[module] = stub
from app.main import main
sys.exit(main(["--quit-after", "0.05", "--report-startup"]))
"""

_SHOWN = re.compile(r"window shown after ([0-9.]+) s")


def run_once(code: str, env: dict) -> float:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    match = _SHOWN.search(out.stdout)
    if out.returncode != 0 or not match:
        raise SystemExit(f"run failed (rc {out.returncode}):\n{out.stdout}\n{out.stderr}")
    return float(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--placeholder-tabs", action="store_true", help="also time the shell with placeholder tabs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "COGNITIVETWIN_DATA_DIR": f"{tmp}/data",
            "COGNITIVETWIN_CONFIG_DIR": f"{tmp}/config",
            "COGNITIVETWIN_LOG_DIR": f"{tmp}/log",
        }
        if not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
            env["QT_QPA_PLATFORM"] = "offscreen"
        run_once(STUDIO, env)  # first start creates the workspace and warms the file cache
        run_once(BARE, env)
        bare, studio, shell = [], [], []
        for _ in range(args.runs):
            bare.append(run_once(BARE, env))
            studio.append(run_once(STUDIO, env))
            if args.placeholder_tabs:
                shell.append(run_once(SHELL_ONLY, env))
    bare_median, studio_median = statistics.median(bare), statistics.median(studio)
    print(f"platform: {env.get('QT_QPA_PLATFORM', 'display')}, runs: {args.runs} each, alternating")
    print(f"bare QMainWindow: median {bare_median:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in bare)})")
    print(f"CognitiveTwin Studio: median {studio_median:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in studio)})")
    print(f"ratio studio / bare: {studio_median / bare_median:.2f}x (target <= 1.5x, studio under 2 s)")
    if shell:
        shell_median = statistics.median(shell)
        print(
            f"shell with placeholder tabs: median {shell_median:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in shell)})"
        )
        print(f"ratio shell / bare: {shell_median / bare_median:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
