"""The helper child for short calls (child_processes.call_in_child): another process, kept
for the next call, errors raised here, a killed child replaced, and none outlives its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cognitivetwin_core import child_processes
from cognitivetwin_core.child_processes import call_in_child, end_helper, helper_pid
from cognitivetwin_core.errors import CognitiveTwinError
from tests.waits import WORK_TIMEOUT_S

REPO = Path(__file__).resolve().parent.parent


def refuse(what: str):
    raise CognitiveTwinError(f"{what} cannot be done; do something else.")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (ended, not yet reaped by its parent) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


@pytest.fixture
def helper():
    yield
    end_helper()


@pytest.mark.slow
def test_calls_run_in_one_kept_child_and_its_errors_are_raised_here(helper):
    first = call_in_child(os.getpid)
    assert first != os.getpid() and helper_pid() == first
    assert call_in_child(os.getpid) == first  # kept: the second call pays no start-up
    with pytest.raises(CognitiveTwinError, match="the thing cannot be done; do something else"):
        call_in_child(refuse, "the thing")
    assert call_in_child(os.getpid) == first  # an error does not cost the child

    end_helper()
    assert helper_pid() is None
    deadline = time.monotonic() + WORK_TIMEOUT_S
    while _alive(first) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(first)


def test_the_child_sees_the_callers_environment_and_folder_of_each_call(helper, tmp_path, monkeypatch):
    call_in_child(os.getpid)  # the child exists before the changes below
    monkeypatch.setenv("COGNITIVETWIN_TEST_VARIABLE", "set after the child started")
    monkeypatch.chdir(tmp_path)
    assert call_in_child(os.getenv, "COGNITIVETWIN_TEST_VARIABLE") == "set after the child started"
    assert call_in_child(os.getcwd) == str(tmp_path)
    monkeypatch.delenv("COGNITIVETWIN_TEST_VARIABLE")
    assert call_in_child(os.getenv, "COGNITIVETWIN_TEST_VARIABLE") is None


def test_a_killed_child_is_replaced_on_the_next_call(helper):
    first = call_in_child(os.getpid)
    os.kill(first, signal.SIGKILL)
    second = call_in_child(os.getpid)
    assert second not in (first, os.getpid())


def test_an_idle_child_ends_by_itself(helper, monkeypatch):
    monkeypatch.setattr(child_processes, "IDLE_S", 0.2)
    pid = call_in_child(os.getpid)
    deadline = time.monotonic() + WORK_TIMEOUT_S
    while helper_pid() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert helper_pid() is None
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


@pytest.mark.slow
def test_the_memory_verdict_imports_torch_only_in_the_child(tiny_model_dir):
    """What the app relies on: a verdict from the child, and no torch in the caller's process."""
    script = textwrap.dedent(
        f"""
        import sys
        from cognitivetwin_core.child_processes import call_in_child, end_helper
        from cognitivetwin_core.phase2.memory_check import encode_memory_verdict
        verdict = call_in_child(encode_memory_verdict, {str(tiny_model_dir)!r}, device="cpu")
        print(verdict.ok, "torch" in sys.modules)
        end_helper()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=WORK_TIMEOUT_S, check=True
    )
    assert result.stdout.split() == ["True", "False"], result.stderr


@pytest.mark.slow
def test_the_child_ends_with_its_parent(tmp_path):
    """A parent killed with SIGKILL (no clean-up at all) leaves no helper behind."""
    pid_file = tmp_path / "helper.pid"
    script = textwrap.dedent(
        f"""
        import os, pathlib, time
        from cognitivetwin_core.child_processes import call_in_child
        pathlib.Path({str(pid_file)!r}).write_text(str(call_in_child(os.getpid)))
        time.sleep(120)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    try:
        deadline = time.monotonic() + WORK_TIMEOUT_S
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        helper = int(pid_file.read_text())
        assert _alive(helper)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + WORK_TIMEOUT_S
    while _alive(helper) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(helper)
