"""benchmarks/phase2_scale.py runs on this CPU and prints its stages and `ratio=` last."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


@pytest.mark.usefixtures("embedded_model_dir")
def test_scale_benchmark_prints_stages_and_ratio(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, str(REPO_ROOT / "benchmarks" / "phase2_scale.py")]
    command += ["--shape", "gemma-3-4b", "--size", "tiny", "--turns", "120", "--epochs", "1", "--device", "cpu"]
    command += ["--threads", "1"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    for stage in ("load", "tokenise", "encode", "annotate", "train"):
        assert any(re.match(rf"{stage}\s+[0-9.]+ s", line) for line in lines), stage
    assert any(re.search(r"[0-9,]+ tokens/s", line) for line in lines)
    assert any("bare forward" in line and "float32" in line for line in lines)
    assert any("peak RSS" in line for line in lines)
    ratio = re.fullmatch(r"ratio=([0-9.]+)", lines[-1])
    assert ratio and float(ratio.group(1)) > 0
