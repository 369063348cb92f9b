"""The console entry points exist, answer --help, and the CLI stays light."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.waits import WORK_TIMEOUT_S

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("command", ["cognitivetwin", "cognitivetwin-studio"])
def test_entry_point_help(command):
    exe = shutil.which(command, path=str(BIN)) or shutil.which(command)
    assert exe, f"{command} is not installed as an entry point"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=WORK_TIMEOUT_S)
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout


def test_studio_without_display_says_how_to_run_it():
    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"}}
    out = subprocess.run(
        [sys.executable, "-m", "app", "--quit-after", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=WORK_TIMEOUT_S,
    )
    assert out.returncode != 0
    assert "xvfb-run" in out.stderr and "Traceback" not in out.stderr


def test_model_list_command():
    out = subprocess.run(
        [sys.executable, "-m", "cognitivetwin_core", "model", "list"], capture_output=True, text=True, check=True
    )
    assert "smollm2-135m" in out.stdout and "meta-llama/Llama-3.2-3B-Instruct" in out.stdout
