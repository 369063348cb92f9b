"""An import interrupted by Ctrl-C or killed: it stops, its annotation workers go with it, and
nothing half-written stays (hangs). Real CLI processes, a real terminal-style
Ctrl-C (SIGINT to the whole process group), a real kill -9."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.waits import WORK_TIMEOUT_S

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux only")

REPO = Path(__file__).resolve().parent.parent
WAIT_S = WORK_TIMEOUT_S  # workers starting, an import ending after Ctrl-C, workers gone: a hang fails


def _big_chat_jsonl(path: Path, conversations: int = 6000) -> Path:
    text = "Write a plan: step 1, migrate; after that, backfill. Which is better, tabs or spaces? " * 3
    with open(path, "w", encoding="utf-8") as handle:
        for number in range(conversations):
            messages = [
                {"role": "user" if turn % 2 == 0 else "assistant", "content": f"{text} #{number}-{turn}"}
                for turn in range(8)
            ]
            handle.write(json.dumps({"id": f"c{number}", "messages": messages}) + "\n")
    return path


def _children(pid: int) -> set[int]:
    found = set()
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found.update(int(x) for x in handle.read().split())
    except OSError:
        pass
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as handle:
            state = next(line for line in handle if line.startswith("State:"))
    except (OSError, StopIteration):
        return False
    return "Z" not in state.split()[1]  # a zombie has exited; only its parent has not reaped it


# The CLI as a shell starts a foreground job: Ctrl-C handled (Python's KeyboardInterrupt) and
# not blocked, whatever the test process inherited (a job started with `&` ignores SIGINT, and
# Python keeps an ignored SIGINT ignored).
_AS_A_TERMINAL_STARTS_IT = (
    "import runpy, signal, sys; "
    "signal.signal(signal.SIGINT, signal.default_int_handler); "
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT}); "
    "sys.argv[0] = 'cognitivetwin'; "
    "runpy.run_module('cognitivetwin_core', run_name='__main__', alter_sys=True)"
)


def _signal_state(pid: int) -> str:
    """The process's SIGINT as the kernel sees it (blocked, ignored, caught, pending), for a failure message."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            return " ".join(
                line.strip() for line in handle if line.startswith(("SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt"))
            )
    except OSError:
        return "gone"


def _start_import(tmp_path: Path, workers: int = 2) -> tuple[subprocess.Popen, set[int]]:
    data = _big_chat_jsonl(tmp_path / "big.jsonl")
    env = {**os.environ, "PYTHONPATH": str(REPO), "COGNITIVETWIN_IMPORT_WORKERS": str(workers)}
    arguments = ["data", "import", str(data), "--workspace", str(tmp_path / "ws")]
    process = subprocess.Popen(
        [sys.executable, "-c", _AS_A_TERMINAL_STARTS_IT, *arguments],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    deadline = time.monotonic() + WAIT_S
    workers_seen: set[int] = set()
    while time.monotonic() < deadline and len(workers_seen) < workers:
        workers_seen |= _children(process.pid)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    if len(workers_seen) < workers:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"the import never started its workers: {err.decode()[-2000:]}")
    # Frozen where it is (workers included), so a busy machine cannot let it finish before the
    # test interrupts it: a sleep here let the whole import end first under load.
    os.killpg(process.pid, signal.SIGSTOP)
    if process.poll() is not None:
        _kill_leftovers(workers_seen)
        pytest.fail("the import ended before the test could interrupt it: make big.jsonl bigger")
    return process, workers_seen


def _wait_gone(pids: set[int]) -> set[int]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        alive = {pid for pid in pids if _alive(pid)}
        if not alive:
            return set()
        time.sleep(0.05)
    return alive


def _kill_leftovers(pids: set[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _stored_conversations(workspace: Path) -> int:
    db = workspace / "workspace.sqlite3"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT COUNT(*) FROM conversations").fetchone()[0]


def test_ctrl_c_stops_the_import_and_its_workers_quietly(tmp_path):
    process, workers = _start_import(tmp_path)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does, delivered on waking
    frozen_with = _signal_state(process.pid)
    os.killpg(process.pid, signal.SIGCONT)
    try:
        out, err = process.communicate(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        _kill_leftovers(workers)
        pytest.fail("the import hung after Ctrl-C")
    leftovers = _wait_gone(workers)
    _kill_leftovers(leftovers)
    assert not leftovers, f"workers {leftovers} outlived the interrupted import"
    stderr = err.decode()
    assert process.returncode == 130, f"{stderr}\nits signals when interrupted (SIGINT is bit 2): {frozen_with}"
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert _stored_conversations(tmp_path / "ws") == 0  # all or nothing


def test_kill_9_of_the_import_takes_its_workers_with_it(tmp_path):
    process, workers = _start_import(tmp_path)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=WAIT_S)
    with contextlib.suppress(ProcessLookupError):  # the kernel's SIGKILL may have ended them already
        os.killpg(process.pid, signal.SIGCONT)  # frozen workers wake to their parent's death
    leftovers = _wait_gone(workers)
    _kill_leftovers(leftovers)
    assert not leftovers, f"workers {leftovers} outlived kill -9 of their parent"
    # Nothing holds the caller's pipes open any more: reading them ends.
    assert process.stdout.read() is not None and process.stderr.read() is not None
    assert _stored_conversations(tmp_path / "ws") == 0


def test_worker_setup_ignores_ctrl_c_and_arms_the_death_signal():
    """The initializer itself, in a forked child: SIGINT ignored, PR_SET_PDEATHSIG = SIGKILL."""
    import ctypes

    from cognitivetwin_core.annotation.pool import _worker_init

    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            _worker_init(os.getppid())
            value = ctypes.c_int()
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(2, ctypes.byref(value), 0, 0, 0)  # PR_GET_PDEATHSIG
            ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
            os.write(write, f"{int(ignored)} {value.value}".encode())
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 100).decode()
    os.waitpid(child, 0)
    assert answer == f"1 {int(signal.SIGKILL)}"
