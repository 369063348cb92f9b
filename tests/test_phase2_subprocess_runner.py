"""The Phase 2 run in a spawned child process: events and files as in-process, errors raised
in the caller, stop and cancel as messages, a killed child ends the run as "failed", and the
child never outlives its parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from cognitivetwin_core.errors import InputError
from tests.conftest import tiny_phase2_config
from tests.waits import WORK_TIMEOUT_S

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def small_demo(demo_conversations):
    return demo_conversations[:12]


def _gone(pid: int, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_a_run_in_the_child_yields_the_trainers_events_and_writes_its_files(tiny_model_dir, tmp_path, small_demo):
    from cognitivetwin_core.phase2.events import EpochEvent, FinishedEvent, StepEvent
    from cognitivetwin_core.phase2.subprocess_runner import Phase2TrainerProcess

    runner = Phase2TrainerProcess(tiny_phase2_config(tiny_model_dir, tmp_path, epochs=2), conversations=small_demo)
    events, pids = [], set()
    for event in runner.run():
        events.append(event)
        pids.add(runner.pid)
        if len(events) == 1:
            assert runner.run_id and runner.output_dir == (tmp_path / "run").resolve(), "known with the first event"
    assert pids - {None} and os.getpid() not in pids, "the training ran in another process"
    assert isinstance(events[-1], FinishedEvent) and events[-1].outcome == "completed", events[-1].message
    assert [e.epoch for e in events if isinstance(e, EpochEvent)] == [1, 2]
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert steps and steps[-1].global_step == steps[-1].total_steps
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["outcome"] == "completed" and runner.run_record["outcome"] == "completed"
    assert record["run_id"] == runner.run_id and (tmp_path / "run" / "model.safetensors").is_file()
    assert runner.pid is None, "the child has ended with the run"


@pytest.mark.slow
def test_unusable_inputs_are_raised_in_the_caller(tiny_model_dir, tmp_path, small_demo):
    from cognitivetwin_core.phase2.config import Phase2Config
    from cognitivetwin_core.phase2.subprocess_runner import Phase2TrainerProcess

    with pytest.raises(InputError, match="epochs must be at least 1"):  # checked before any child starts
        Phase2TrainerProcess(Phase2Config(epochs=0, output_dir=str(tmp_path / "x")), conversations=small_demo)
    runner = Phase2TrainerProcess(tiny_phase2_config(tiny_model_dir, tmp_path, name="z"), conversations=small_demo[:1])
    with pytest.raises(InputError, match="at least 2 conversations"):  # raised in the child, again here
        list(runner.run())
    assert not (tmp_path / "x").exists() and not (tmp_path / "z").exists()


@pytest.mark.slow
def test_stop_and_cancel_are_messages_to_the_child(tiny_model_dir, tmp_path, small_demo):
    from cognitivetwin_core.phase2.subprocess_runner import Phase2TrainerProcess

    stopper = Phase2TrainerProcess(
        tiny_phase2_config(tiny_model_dir, tmp_path, name="stopped", epochs=50), conversations=small_demo
    )
    for event in stopper.run():
        if event.kind == "step":
            stopper.request_stop(save=True)
    assert event.outcome == "stopped", event.message
    assert (tmp_path / "stopped" / "model.safetensors").is_file()

    cancelled = Phase2TrainerProcess(
        tiny_phase2_config(tiny_model_dir, tmp_path, name="gone", epochs=50), conversations=small_demo
    )
    cancelled.request_cancel()  # before the child exists: delivered when it starts
    events = list(cancelled.run())
    assert events[-1].outcome == "cancelled" and not any(e.kind == "step" for e in events)
    assert not (tmp_path / "gone").exists(), "a cancelled run is discarded"


@pytest.mark.slow
def test_a_killed_child_ends_the_run_as_failed_and_says_so_in_run_json(tiny_model_dir, tmp_path, small_demo):
    from cognitivetwin_core.phase2.subprocess_runner import Phase2TrainerProcess

    runner = Phase2TrainerProcess(tiny_phase2_config(tiny_model_dir, tmp_path, epochs=50), conversations=small_demo)
    events = []
    for event in runner.run():
        events.append(event)
        if event.kind == "step" and len([e for e in events if e.kind == "step"]) == 1:
            os.kill(runner.pid, signal.SIGKILL)  # as the kernel's out-of-memory killer would
    finished = events[-1]
    assert finished.kind == "finished" and finished.outcome == "failed"
    assert "SIGKILL" in finished.message and str(tmp_path / "run") in finished.message
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["outcome"] == "failed" and record["message"] == finished.message


@pytest.mark.slow
def test_the_child_dies_with_its_parent(tiny_model_dir, tmp_path, small_demo):
    """A parent killed with SIGKILL (no clean-up at all) takes its training child along."""
    from cognitivetwin_core.data.exports import export_trajectory

    data = tmp_path / "data.jsonl"
    export_trajectory(small_demo, data)
    config = tiny_phase2_config(tiny_model_dir, tmp_path, epochs=500)
    script = textwrap.dedent(
        f"""
        import sys, time
        from cognitivetwin_core.phase2.subprocess_runner import Phase2TrainerProcess
        from cognitivetwin_core.phase2.config import Phase2Config

        if __name__ == "__main__":
            config = Phase2Config(**{config.__dict__!r})
            runner = Phase2TrainerProcess(config, data_file={str(data)!r})
            for event in runner.run():
                if event.kind == "step":
                    print(runner.pid, flush=True)
                    time.sleep(600)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        child_pid = int(parent.stdout.readline())
        assert psutil.pid_exists(child_pid) and psutil.Process(child_pid).ppid() == parent.pid
        parent.kill()
        parent.wait(WORK_TIMEOUT_S)
        assert _gone(child_pid), "the training child outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()


def _cache_entry(cache_dir: Path) -> Path:
    entries = [p for p in cache_dir.iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1, entries  # one entry, no shard leftovers
    return entries[0]


@pytest.mark.slow  # three processes (a parent and two ranks), each importing torch
def test_two_processes_encode_the_shares_and_rank_zero_trains(tiny_model_dir, tmp_path, small_demo):
    """What the app's "All N GPUs" starts, here with gloo on the CPU: the cache equals a
    one-process run's (within the cache's float16 rounding) and the run completes."""
    import numpy as np

    from cognitivetwin_core.phase2.subprocess_runner import Phase2TrainerProcess

    runs = {}
    for processes in (1, 2):
        config = tiny_phase2_config(
            tiny_model_dir, tmp_path, name=f"run-{processes}", cache_dir=str(tmp_path / f"cache-{processes}")
        )
        runner = Phase2TrainerProcess(config, conversations=small_demo, processes=processes)
        events = list(runner.run())
        assert events[-1].outcome == "completed", events[-1].message
        assert runner.rank_pids == [] and runner.pid is None, "every process has ended with the run"
        runs[processes] = _cache_entry(tmp_path / f"cache-{processes}")
    index = json.loads((runs[2] / "index.json").read_text())
    assert index["description"]["data_parallel"]["world_size"] == 2
    one = np.load(runs[1] / "features.npy").astype(np.float32)
    two = np.load(runs[2] / "features.npy").astype(np.float32)
    assert np.allclose(one, two, rtol=2e-3, atol=2e-3 * np.abs(one).max())


@pytest.mark.slow  # three processes (a parent and two ranks), each importing torch
def test_a_rank_that_dies_ends_the_run_as_failed_and_leaves_no_process(tiny_model_dir, tmp_path, small_demo):
    import threading

    from cognitivetwin_core.phase2.subprocess_runner import Phase2TrainerProcess

    config = tiny_phase2_config(tiny_model_dir, tmp_path, cache_dir=str(tmp_path / "cache"))
    runner = Phase2TrainerProcess(config, conversations=small_demo, processes=2)
    killed = []

    def kill_rank_one():  # as the out-of-memory killer would, before it has done its share
        deadline = time.monotonic() + WORK_TIMEOUT_S
        while not runner.rank_pids and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(runner.rank_pids[0], signal.SIGKILL)
        killed.append(runner.rank_pids[0])

    killer = threading.Thread(target=kill_rank_one)
    killer.start()
    events, rank_zero = [], set()
    for event in runner.run():
        events.append(event)
        rank_zero.add(runner.pid)
    killer.join()
    assert killed and events[-1].outcome == "failed"
    assert "rank 1" in events[-1].message and "SIGKILL" not in events[-1].message, events[-1].message
    assert runner.rank_pids == [] and runner.pid is None
    assert all(_gone(pid) for pid in (rank_zero - {None}) | set(killed)), "no rank outlives the run"


@pytest.mark.slow  # three processes (a parent and two ranks), each importing torch
@pytest.mark.parametrize("request_kind", ["cancel", "stop"])
def test_stop_or_cancel_during_the_shared_encoding_pass_ends_every_rank(
    tiny_model_dir, tmp_path, small_demo, request_kind
):
    from cognitivetwin_core.phase2.events import EncodingEvent
    from cognitivetwin_core.phase2.subprocess_runner import Phase2TrainerProcess

    config = tiny_phase2_config(tiny_model_dir, tmp_path, cache_dir=str(tmp_path / "cache"), encode_batch_tokens=256)
    runner = Phase2TrainerProcess(config, conversations=small_demo, processes=2)
    events, pids = [], set()
    for event in runner.run():
        events.append(event)
        pids.update([runner.pid, *runner.rank_pids])
        if isinstance(event, EncodingEvent):  # rank 0's share is under way
            assert not event.cache_hit and event.total < sum(len(c.messages) for c in small_demo)
            runner.request_cancel() if request_kind == "cancel" else runner.request_stop(save=True)
    finished = events[-1]
    assert finished.kind == "finished" and finished.outcome == {"cancel": "cancelled", "stop": "stopped"}[request_kind]
    assert finished.message in ("Cancelled: the run was discarded.", "Stopped before training began.")
    assert not (tmp_path / "run").exists(), "nothing was written for the run"
    assert not [p for p in (tmp_path / "cache").glob("*") if not p.name.startswith(".")], "no cache entry"
    assert all(_gone(pid) for pid in pids - {None}) and runner.rank_pids == []
