"""Local LoRA in a supervised child process: the window's controller runs it without
importing torch; Cancel ends it as cancelled with a checkpoint; a killed child ends the job
as failed, with one sentence, in its record and as the last update."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cognitivetwin_core.data.workspace import Workspace
from cognitivetwin_core.phase1.jobs import JobUpdate, Phase1Settings
from cognitivetwin_core.phase1.local_lora_process import LocalJobLaunched, LocalLoraProcess
from cognitivetwin_core.phase1.local_plan import plan_local_run
from tests.conftest import demo_chat_jsonl
from tests.waits import WORK_TIMEOUT_S

REPO = Path(__file__).resolve().parents[1]
OPTIONS = {"device": "cpu", "max_batch_tokens": 64, "checkpoint_every": 2}


def _plan(workspace_path: Path, data: Path, base: Path, epochs: int = 3):
    settings = Phase1Settings(base_model=str(base), epochs=epochs, max_seq_length=96, lora_r=4)
    return plan_local_run(workspace_path, data, settings, **OPTIONS)


def _steps(update: JobUpdate) -> int:
    return sum(1 for event in update.new_events if event.get("type") == "step")


@pytest.fixture()
def running_setup(tmp_path, tiny_model_dir):
    data = demo_chat_jsonl(tmp_path, 6)
    Workspace.open(tmp_path / "ws").close()
    return tmp_path / "ws", _plan(tmp_path / "ws", data, tiny_model_dir)


@pytest.mark.slow
def test_cancel_is_a_request_to_the_child_which_keeps_a_checkpoint(running_setup):
    workspace_path, plan = running_setup
    process = LocalLoraProcess(workspace_path, plan, options=OPTIONS)
    messages, steps = [], 0
    for message in process.run():
        messages.append(message)
        if isinstance(message, JobUpdate):
            assert process.pid is not None and process.pid != os.getpid()
            steps += _steps(message)
            if steps >= 2:
                process.request_cancel()
    assert messages[0] == LocalJobLaunched(process.job_id)
    last = messages[-1]
    assert last.status == "cancelled" and "resumes from there" in last.message
    with Workspace.open(workspace_path) as workspace:
        record = workspace.get_phase1_job(process.job_id)
    assert record["status"] == "cancelled"
    assert (Path(record["work_dir"]) / "checkpoint" / "trainer_state.json").is_file()
    # The child ends cleanly: not aborted while its training thread was still freeing the model.
    process.child.join(WORK_TIMEOUT_S)
    assert process.child.exitcode == 0


@pytest.mark.slow
def test_a_killed_child_ends_the_job_as_failed_with_a_sentence(running_setup):
    workspace_path, plan = running_setup
    process = LocalLoraProcess(workspace_path, plan, options=OPTIONS)
    messages = []
    for message in process.run():
        messages.append(message)
        if isinstance(message, JobUpdate) and _steps(message) and not message.terminal:
            os.kill(process.pid, signal.SIGKILL)  # as the kernel's out-of-memory killer would
    last = messages[-1]
    assert isinstance(last, JobUpdate) and last.status == "error" and last.failed
    assert "SIGKILL" in last.message and "resumes from its last checkpoint" in last.message
    with Workspace.open(workspace_path) as workspace:
        record = workspace.get_phase1_job(process.job_id)
    assert record["status"] == "error" and record["error"] == last.message


@pytest.mark.slow
def test_the_controller_trains_in_a_child_and_imports_no_torch(tmp_path, tiny_model_dir):
    """The window's controller, driven without a window: the whole run (dry run included)
    happens in child processes; this process never imports torch."""
    data = demo_chat_jsonl(tmp_path, 4)
    script = textwrap.dedent(
        f"""
        import sys
        from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer
        from app.tabs.phase1_controller import Phase1Controller
        from cognitivetwin_core.child_processes import call_in_child, end_helper
        from cognitivetwin_core.data.workspace import Workspace
        from cognitivetwin_core.phase1.jobs import Phase1Settings
        from cognitivetwin_core.phase1.local_plan import plan_local_run

        app = QCoreApplication([])
        with Workspace.open({str(tmp_path / "ws")!r}) as workspace:
            controller = Phase1Controller()
            controller.local_options = {{"device": "cpu", "max_batch_tokens": 256}}
            controller.set_workspace(workspace)
            settings = Phase1Settings(base_model={str(tiny_model_dir)!r}, epochs=1, max_seq_length=96, lora_r=4)
            plan = call_in_child(plan_local_run, workspace.path, {str(data)!r}, settings, **controller.local_options)
            ended, loop = [], QEventLoop()
            controller.jobEnded.connect(lambda update: (ended.append(update), loop.quit()))
            QTimer.singleShot(300_000, loop.quit)
            job_id = controller._launch_local(plan, None)
            loop.exec()
            controller.shutdown()
            end_helper()
            print(ended[0].status if ended else "none", "torch" in sys.modules, job_id)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=600, env=env
    )
    status, torch_imported, job_id = result.stdout.split()
    assert (status, torch_imported) == ("completed", "False"), result.stderr[-3000:]
    with Workspace.open(tmp_path / "ws") as workspace:
        adapter = workspace.get_adapter(job_id)
    assert adapter is not None and (Path(adapter["path"]) / "adapter_model.safetensors").is_file()
