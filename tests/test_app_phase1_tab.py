"""The Phase 1 tab against the loopback Together server (the real `together` SDK over HTTP)
and with a real local LoRA run of the tiny model: dry run, confirmation, launch, live status,
failure messages, cancel, download & register, and monitoring resumed in a new window."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import threading
import uuid
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget
from together_server import FakeTogether, make_tiny_lora_adapter

from cognitivetwin_core.connections import secrets
from tests.waits import WORK_TIMEOUT_MS

needs_secret_service = pytest.mark.skipif(
    not os.environ.get("DBUS_SESSION_BUS_ADDRESS"),
    reason="needs the D-Bus session with an unlocked gnome-keyring that scripts/run-tests.sh starts",
)

CONVERSATIONS = [
    [
        {"role": "user", "content": f"Question {i}: how should I name a function that sorts invoices by date?"},
        {"role": "assistant", "content": f"Call it sort_invoices_by_date; short verbs first, then the object ({i})."},
    ]
    for i in range(12)
]


@pytest.fixture(scope="module", autouse=True)
def collect_earlier_garbage():
    """Collect cycles holding Qt objects (earlier modules' widgets) here, on the GUI thread.

    Otherwise Python's cyclic GC may run inside a training or executor thread and delete
    widgets there ("Timers cannot be stopped from another thread", at worst a crash).
    What survives is frozen, so the per-test collections below only scan new objects."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture(autouse=True)
def collect_qt_garbage_on_the_gui_thread():
    yield
    gc.collect()  # this test's widgets, for the same reason


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory):
    return make_tiny_lora_adapter(tiny_model_dir, tmp_path_factory.mktemp("phase1-tab-adapter"))


@pytest.fixture()
def fake(adapter_dir, monkeypatch):
    with FakeTogether(api_key="tgp_" + uuid.uuid4().hex, adapter_dir=adapter_dir) as server:
        monkeypatch.setenv("TOGETHER_BASE_URL", server.base_url)
        yield server


@pytest.fixture()
def data_file(tmp_path) -> Path:
    path = tmp_path / "phase1.jsonl"
    path.write_text("".join(json.dumps({"messages": c}) + "\n" for c in CONVERSATIONS), encoding="utf-8")
    return path


@pytest.fixture()
def workspace(tmp_path):
    from cognitivetwin_core.data.workspace import Workspace

    with Workspace.open(tmp_path / "ws") as ws:
        yield ws


@pytest.fixture()
def fast_polls(monkeypatch):
    from app.tabs.phase1_controller import Phase1Controller

    monkeypatch.setattr(Phase1Controller, "poll_interval", 0.02)
    monkeypatch.setattr(Phase1Controller, "max_poll_interval", 0.1)


@pytest.fixture()
def confirm(monkeypatch):
    """Patches the launch confirmation; `answers` says what the user clicks, `asked` what was shown."""
    from app.dialogs.phase1_confirm import LaunchConfirmDialog, confirmation_text

    state = {"answer": True, "asked": []}

    async def ask(cls, parent, plan):
        state["asked"].append(confirmation_text(plan))
        return state["answer"]

    monkeypatch.setattr(LaunchConfirmDialog, "ask", classmethod(ask))
    return state


@pytest.fixture()
def tab(qtbot, qasync_loop, isolated_user_dirs, workspace, fast_polls):
    from app.main import create_application
    from app.tabs.phase1_tab import Phase1Tab

    create_application()
    widget = Phase1Tab()
    qtbot.addWidget(widget)
    widget.resize(1150, 780)
    widget.set_workspace(workspace)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.shutdown()


def _fill_together(tab, data_file, *, suffix="my-twin", api_key=None):
    if api_key is not None:
        tab.controller.read_api_key = lambda: api_key  # the keyring path has its own test below
    tab.set_backend("together")
    tab.base_combo.setCurrentIndex(tab.base_combo.findData("llama-3.2-3b"))
    tab.data_path.setText(str(data_file))
    tab.epochs.setValue(2)
    tab.lora_rank.setValue(8)
    tab.learning_rate.setText("0.0002")
    tab.suffix.setText(suffix)


def _dry_run(qtbot, tab):
    with qtbot.waitSignal(tab.controller.dryRunDone, timeout=WORK_TIMEOUT_MS) as blocker:
        qtbot.mouseClick(tab.dry_run_button, Qt.MouseButton.LeftButton)
    return blocker.args[0]


def test_together_dry_run_confirm_launch_follow_and_download(
    tab, qtbot, fake, data_file, confirm, workspace, test_output_dir
):
    _fill_together(tab, data_file, api_key=fake.api_key)
    assert not tab.launch_button.isEnabled(), "no launch before a dry run"
    plan = _dry_run(qtbot, tab)
    summary = tab.dry_run_summary.text()
    assert "12 conversations" in summary and f"${plan.estimated_price:.2f}" in summary
    assert plan.settings.learning_rate == 0.0002 and plan.settings.lora_r == 8 and plan.settings.lora_alpha == 16
    assert fake.count("POST", r"^/v1/fine-tunes$") == 0 and tab.launch_button.isEnabled()

    # The user declines: nothing is created, nothing is charged.
    confirm["answer"] = False
    qtbot.mouseClick(tab.launch_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.message.kind == "info", timeout=5_000)
    assert "nothing was charged" in tab.message.text()
    assert fake.count("POST", r"^/v1/fine-tunes$") == 0
    assert "paid" in confirm["asked"][-1][0] and f"${plan.estimated_price:.2f}" in confirm["asked"][-1][0]

    confirm["answer"] = True
    statuses, shots = [], []

    def on_update(update):
        statuses.append((update.status, update.step))
        if update.status == "running" and update.step and not shots:
            tab.refresh_jobs()
            shot = test_output_dir / "phase1_tab_together_running.png"
            tab.grab().save(str(shot))
            shots.append(shot)

    tab.controller.jobUpdated.connect(on_update)
    with qtbot.waitSignal(tab.controller.adapterReady, timeout=WORK_TIMEOUT_MS) as ready:
        qtbot.mouseClick(tab.launch_button, Qt.MouseButton.LeftButton)
    job_id, folder = ready.args
    assert job_id.startswith("ft-") and fake.count("POST", r"^/v1/fine-tunes$") == 1
    body = fake.create_bodies[-1]
    assert body["n_epochs"] == 2 and body["suffix"] == "my-twin" and body["learning_rate"] == 0.0002
    assert body["training_type"]["lora_r"] == 8

    qtbot.waitUntil(lambda: bool(tab.notifications), timeout=5_000)
    assert tab.notifications[-1][0] == "Phase 1 job finished"
    seen = [status for status, _ in statuses]
    assert "running" in seen and seen[-1] == "completed" and seen.index("running") < seen.index("completed")
    assert any(step == 6 for status, step in statuses if status == "running"), "step progress reached the GUI"

    qtbot.waitUntil(lambda: (tab.job_row(job_id) or {}).get("Status") == "completed", timeout=5_000)
    row = tab.job_row(job_id)
    assert row["Progress"].startswith("100%") and row["Cost"] == f"${plan.estimated_price:.2f} (estimate)"
    assert row["Adapter"] == "ready" and row["Elapsed"] != "–" and row["Time left"] == "–"
    registered = workspace.get_adapter(f"together-{job_id}")
    assert Path(registered["path"]) == Path(folder) and (Path(folder) / "adapter_model.safetensors").is_file()
    log_text = tab.log_view.toPlainText()
    for event in ("Training start", "Epoch complete", "Job complete", "adapter registered"):
        assert event in log_text
    assert not tab.launch_button.isEnabled(), "a plan is launched once"
    assert shots and shots[0].stat().st_size > 10_000


def test_job_failure_shows_the_core_message_and_notifies(tab, qtbot, fake, data_file, confirm, workspace):
    fake.next_job_outcome = "user_error"
    _fill_together(tab, data_file, suffix="bad-data", api_key=fake.api_key)
    _dry_run(qtbot, tab)
    with qtbot.waitSignal(tab.controller.jobEnded, timeout=WORK_TIMEOUT_MS) as ended:
        qtbot.mouseClick(tab.launch_button, Qt.MouseButton.LeftButton)
    update = ended.args[0]
    assert update.status == "user_error"
    assert tab.message.kind == "error"
    assert "problem with its inputs" in tab.message.text() and "line 3 has no assistant message" in tab.message.text()
    assert tab.notifications[-1][0] == "Phase 1 job failed"
    qtbot.waitUntil(lambda: (tab.job_row(update.job_id) or {}).get("Status") == "user_error", timeout=5_000)
    assert not workspace.adapters()


def test_dry_run_errors_are_inline_and_plain(tab, qtbot, fake, data_file):
    _fill_together(tab, data_file, api_key=fake.api_key)
    tab.controller.read_api_key = lambda: "tgp_wrong_key_0123456789abcdef"
    with qtbot.waitSignal(tab.controller.failed, timeout=WORK_TIMEOUT_MS) as failed:
        qtbot.mouseClick(tab.dry_run_button, Qt.MouseButton.LeftButton)
    assert failed.args[0] == "dry run"
    assert "rejected the API key" in tab.message.text() and "Connections tab" in tab.message.text()
    assert "tgp_wrong_key" not in tab.message.text()
    assert not tab.launch_button.isEnabled()

    tab.controller.read_api_key = lambda: None
    with qtbot.waitSignal(tab.controller.failed, timeout=WORK_TIMEOUT_MS):
        qtbot.mouseClick(tab.dry_run_button, Qt.MouseButton.LeftButton)
    assert "No Together API key" in tab.message.text()

    tab.controller.read_api_key = lambda: fake.api_key
    bad = data_file.parent / "bad.jsonl"
    bad.write_text(json.dumps({"messages": CONVERSATIONS[0]}) + "\n{not json\n", encoding="utf-8")
    tab.data_path.setText(str(bad))
    with qtbot.waitSignal(tab.controller.failed, timeout=WORK_TIMEOUT_MS):
        qtbot.mouseClick(tab.dry_run_button, Qt.MouseButton.LeftButton)
    assert "line 2" in tab.message.text() and str(bad) in tab.message.text()
    assert fake.count("POST", "/v1/files") == 0, "a bad file is refused before any upload"

    # A local-only base cannot be picked for Together.
    smol = tab.base_combo.findData("smollm2-135m")
    assert not tab._item_enabled(smol) and "local only" in tab.base_combo.itemText(smol)
    tab.set_backend("local")
    assert tab._item_enabled(smol)


@pytest.fixture()
def fake_key(monkeypatch, fake):
    import app.tabs.phase1_controller as controller_module

    monkeypatch.setattr(controller_module, "read_api_key", lambda: fake.api_key)
    return fake.api_key


def test_monitoring_resumes_in_a_new_window_after_a_restart(
    qtbot, qasync_loop, isolated_user_dirs, fake, fake_key, data_file, confirm, tmp_path, monkeypatch
):
    from app.main_window import MainWindow
    from app.tabs.phase1_controller import Phase1Controller
    from cognitivetwin_core.data.workspace import Workspace

    workspace_dir = tmp_path / "restart-ws"
    monkeypatch.setattr(Phase1Controller, "poll_interval", 60.0)  # the first window polls once, then waits
    first = MainWindow()
    qtbot.addWidget(first)
    assert first.open_workspace(workspace_dir)
    tab = first.tab_widgets["Phase 1"]
    _fill_together(tab, data_file)
    _dry_run(qtbot, tab)
    with qtbot.waitSignal(tab.controller.jobUpdated, timeout=WORK_TIMEOUT_MS) as first_update:
        qtbot.mouseClick(tab.launch_button, Qt.MouseButton.LeftButton)
    job_id = first_update.args[0].job_id
    assert not first_update.args[0].terminal
    first.close()  # the app quits while the job runs on Together
    assert not tab.controller.is_monitoring(job_id)
    with Workspace.open(workspace_dir) as ws:
        assert ws.get_phase1_job(job_id)["status"] not in ("completed", "error")

    monkeypatch.setattr(Phase1Controller, "poll_interval", 0.02)
    second = MainWindow()
    qtbot.addWidget(second)
    tab2 = second.tab_widgets["Phase 1"]
    with qtbot.waitSignal(tab2.controller.adapterReady, timeout=WORK_TIMEOUT_MS) as ready:
        assert second.open_workspace(workspace_dir)
        assert tab2.job_row(job_id) is not None, "the job is listed from the workspace at once"
    assert ready.args[0] == job_id
    assert "resumed watching" in tab2.log_view.toPlainText()
    qtbot.waitUntil(lambda: (tab2.job_row(job_id) or {}).get("Status") == "completed", timeout=5_000)
    assert second.workspace.get_adapter(f"together-{job_id}") is not None
    assert tab2.notifications and tab2.notifications[-1][0] == "Phase 1 job finished"
    second.close()


def test_together_cancel_from_the_table(tab, qtbot, fake, data_file, confirm):
    tab.controller.poll_interval = 0.3
    _fill_together(tab, data_file, api_key=fake.api_key)
    _dry_run(qtbot, tab)
    with qtbot.waitSignal(tab.controller.launched, timeout=WORK_TIMEOUT_MS) as launched:
        qtbot.mouseClick(tab.launch_button, Qt.MouseButton.LeftButton)
    job_id = launched.args[0]
    tab.refresh_jobs()
    tab._select_job(job_id)
    qtbot.waitUntil(tab.cancel_button.isEnabled, timeout=5_000)
    with qtbot.waitSignal(tab.controller.jobEnded, timeout=WORK_TIMEOUT_MS) as ended:
        qtbot.mouseClick(tab.cancel_button, Qt.MouseButton.LeftButton)
    assert ended.args[0].status == "cancelled"
    assert fake.count("POST", rf"/v1/fine-tunes/{job_id}/cancel") == 1
    assert tab.notifications[-1][0] == "Phase 1 job cancelled" and tab.message.kind == "info"


@pytest.mark.slow
def test_local_run_plots_its_loss_cancels_cleanly_and_resumes(
    tab, qtbot, data_file, tiny_model_dir, confirm, workspace, test_output_dir
):
    # One conversation per step and 240 steps, so the run has steps left when it is cancelled.
    tab.controller._local.max_batch_tokens = 64
    tab.controller._local.checkpoint_every = 5
    tab.set_local_base_folder(tiny_model_dir)
    tab.data_path.setText(str(data_file))
    tab.epochs.setValue(20)
    tab.lora_rank.setValue(4)
    plan = _dry_run(qtbot, tab)
    assert plan.backend == "local" and "expected time" in tab.dry_run_summary.text()

    with qtbot.waitSignal(tab.controller.launched, timeout=WORK_TIMEOUT_MS) as launched:
        qtbot.mouseClick(tab.launch_button, Qt.MouseButton.LeftButton)
    job_id = launched.args[0]
    assert job_id.startswith("local-") and tab.controller.local_job.is_running()
    assert "free" in confirm["asked"][-1][0]
    # The child records each checkpoint at once: freeze it at the first one, so that a fast
    # machine cannot finish the run before the Cancel below reaches it.
    qtbot.waitUntil(lambda: ((workspace.get_phase1_job(job_id) or {}).get("step") or 0) >= 5, timeout=WORK_TIMEOUT_MS)
    child = tab.controller.local_process.pid
    os.kill(child, signal.SIGSTOP)
    try:
        tab.refresh_jobs()
        tab._select_job(job_id)
        qtbot.waitUntil(tab.cancel_button.isEnabled, timeout=5_000)
        with qtbot.waitSignal(tab.controller.jobEnded, timeout=WORK_TIMEOUT_MS) as ended:
            qtbot.mouseClick(tab.cancel_button, Qt.MouseButton.LeftButton)
            # The click's handler runs on the event loop: go on once it has written the request.
            qtbot.waitUntil(lambda: tab.controller.local_process.child.requested is not None, timeout=5_000)
            os.kill(child, signal.SIGCONT)
    finally:
        with contextlib.suppress(ProcessLookupError):  # it has ended by now, unless the test failed
            os.kill(child, signal.SIGCONT)
    tab.loss_plot.flush()
    tab.grab().save(str(test_output_dir / "phase1_tab_local_cancelled.png"))
    assert ended.args[0].status == "cancelled"
    qtbot.waitUntil(lambda: not tab.controller.local_job.is_running(), timeout=WORK_TIMEOUT_MS)
    qtbot.waitUntil(lambda: not [t for t in threading.enumerate() if t.name.startswith("local-lora-")], timeout=5_000)
    stopped_at = len(tab.loss_plot.points("loss")[0])
    record = workspace.get_phase1_job(job_id)
    assert record["status"] == "cancelled" and "resumes from there" in record["error"]
    assert not (Path(workspace.adapters_dir) / job_id).exists(), "no adapter from a cancelled run"
    steps, losses = tab.loss_plot.points("loss")
    assert list(steps) == sorted(steps) and all(loss > 0 for loss in losses)
    assert tab.message.kind == "info" and tab.notifications[-1][0] == "Phase 1 job cancelled"

    # Resume: the same job goes on from its checkpoint to the end and registers its adapter.
    tab.refresh_jobs()
    tab._select_job(job_id)
    assert tab.resume_button.isEnabled()
    with qtbot.waitSignal(tab.controller.jobEnded, timeout=WORK_TIMEOUT_MS) as ended:
        qtbot.mouseClick(tab.resume_button, Qt.MouseButton.LeftButton)
    assert ended.args[0].status == "completed"
    first_resumed_step = tab.loss_plot.points("loss")[0][0]
    assert first_resumed_step > 1, "the resumed run started from its checkpoint, not from step 1"
    adapter = workspace.get_adapter(job_id)
    assert adapter is not None and (Path(adapter["path"]) / "adapter_model.safetensors").is_file()
    assert tab.notifications[-1][0] == "Phase 1 job finished"
    assert stopped_at >= 4


@needs_secret_service
def test_the_key_comes_from_the_keyring(tab, qtbot, fake, data_file):
    from app.tabs.phase1_controller import read_api_key

    if not secrets.keyring_status().available:
        pytest.fail("the test session's keyring should be unlocked")
    secrets.set_secret(secrets.TOGETHER_API_KEY, fake.api_key)
    try:
        tab.controller.read_api_key = read_api_key
        _fill_together(tab, data_file)
        plan = _dry_run(qtbot, tab)
        assert plan.training_file_id in fake.files
    finally:
        secrets.delete_secret(secrets.TOGETHER_API_KEY)


def test_export_from_the_workspace_feeds_the_dry_run(tab, qtbot, fake, workspace, confirm):
    from cognitivetwin_core.data.importers import import_into

    report = import_into(workspace, "demo")
    _fill_together(tab, Path("unused.jsonl"), api_key=fake.api_key)
    with qtbot.waitSignal(tab.export_job.finished, timeout=WORK_TIMEOUT_MS):
        qtbot.mouseClick(tab.data_export, Qt.MouseButton.LeftButton)
    exported = Path(tab.data_path.text())
    assert tab.message.kind == "ok", tab.message.text()
    assert exported == Path(workspace.path) / "exports" / "phase1-llama-3.2-3b.jsonl" and exported.is_file()
    lines = exported.read_text(encoding="utf-8").splitlines()
    assert 0 < len(lines) <= report.conversations_accepted
    plan = _dry_run(qtbot, tab)
    assert plan.data.examples == len(lines) and plan.training_file_id in fake.files


@pytest.mark.slow
def test_closing_during_a_local_run_stops_it_cleanly(tab, qtbot, data_file, tiny_model_dir, confirm, workspace):
    tab.controller._local.max_batch_tokens = 64
    tab.set_local_base_folder(tiny_model_dir)
    tab.data_path.setText(str(data_file))
    tab.epochs.setValue(3)
    _dry_run(qtbot, tab)
    with qtbot.waitSignal(tab.controller.launched, timeout=WORK_TIMEOUT_MS) as launched:
        qtbot.mouseClick(tab.launch_button, Qt.MouseButton.LeftButton)
    job_id = launched.args[0]
    qtbot.waitUntil(lambda: tab.plotted_steps() >= 2, timeout=WORK_TIMEOUT_MS)
    notified = len(tab.notifications)
    tab.shutdown()  # what the main window calls when it closes: it returns once the run stopped
    qtbot.waitUntil(lambda: not [t for t in threading.enumerate() if t.name.startswith("local-lora-")], timeout=5_000)
    qtbot.waitUntil(lambda: not tab.controller.local_job.is_running(), timeout=5_000)
    assert len(tab.notifications) == notified, "no 'failed' message for a run stopped by closing"
    record = workspace.get_phase1_job(job_id)
    assert record["status"] == "cancelled"
    checkpoint = Path(record["work_dir"]) / "checkpoint"
    assert (checkpoint / "adapter_model.safetensors").is_file() and (checkpoint / "trainer_state.json").is_file()
    assert not list(Path(record["work_dir"]).glob("*.tmp*")), "no half-written checkpoint"


def test_a_launch_cut_short_by_a_crash_is_adopted_and_watched(
    qtbot, qasync_loop, isolated_user_dirs, fake, fake_key, fast_polls, data_file, tmp_path
):
    from app.tabs.phase1_tab import Phase1Tab
    from cognitivetwin_core.data.workspace import Workspace
    from cognitivetwin_core.phase1.together_jobs import TogetherJobManager

    with Workspace.open(tmp_path / "crashed-ws") as ws:
        jobs = TogetherJobManager(ws, api_key=fake.api_key, base_url=fake.base_url)
        file_id = jobs.upload(data_file)
        # The app wrote its intent, Together created the job, then the app died.
        ws.upsert_phase1_job(
            "intent-crashed",
            {
                "backend": "together",
                "status": "creating",
                "base_model": "llama-3.2-3b",
                "model_id": "meta-llama/Llama-3.2-3B-Instruct",
                "suffix": "my-twin",
                "training_file": file_id,
                "intent_time": 0.0,
            },
        )
        created = jobs.client.fine_tuning.create(
            training_file=file_id,
            model="meta-llama/Llama-3.2-3B-Instruct",
            lora=True,
            suffix="my-twin",
            train_on_inputs=False,
        )
    with Workspace.open(tmp_path / "crashed-ws") as ws:
        tab = Phase1Tab()
        qtbot.addWidget(tab)
        with qtbot.waitSignal(tab.controller.adapterReady, timeout=WORK_TIMEOUT_MS) as ready:
            tab.set_workspace(ws)
        assert ready.args[0] == created.id
        assert ws.get_phase1_job("intent-crashed") is None and len(fake.jobs) == 1
        tab.shutdown()


@pytest.mark.parametrize("click, expected", [("launch", True), ("dont", False)])
def test_the_real_confirmation_dialog_opens_without_blocking_and_answers(qtbot, qasync_loop, click, expected):
    import asyncio

    from app.dialogs.phase1_confirm import LaunchConfirmDialog
    from app.qt.tasks import start_task
    from cognitivetwin_core.phase1.jobs import DatasetStats, DryRun, Phase1Settings

    plan = DryRun(
        backend="together",
        settings=Phase1Settings(epochs=2),
        model_id="meta-llama/Llama-3.2-3B-Instruct",
        data=DatasetStats("d.jsonl", "0" * 64, 12, 24, 12, 4000),
        estimated_price=1.25,
    )
    parent = QWidget()
    qtbot.addWidget(parent)
    answer = start_task(LaunchConfirmDialog.ask(parent, plan), name="ask")
    ticks = []
    start_task(asyncio.sleep(0), name="another task runs meanwhile").add_done_callback(lambda _t: ticks.append(1))
    qtbot.waitUntil(lambda: bool(parent.findChildren(LaunchConfirmDialog)) and bool(ticks), timeout=5_000)
    dialog = parent.findChildren(LaunchConfirmDialog)[0]
    assert "$1.25" in dialog.text() and "paid" in dialog.text()
    button = (
        dialog.launch_button
        if click == "launch"
        else next(b for b in dialog.buttons() if b is not dialog.launch_button)
    )
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(answer.done, timeout=5_000)
    assert answer.result() is expected


def test_local_controls_device_memory_verdict_and_download_row(tab, qtbot, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    tab.set_backend("together")
    assert tab.device_picker.isHidden() and not tab.base_download.isVisible()
    tab.set_local_base_folder(tiny_model_dir)
    assert tab.device_picker.isVisible() and not tab.base_download.isVisible()
    qtbot.waitUntil(lambda: tab.memory_verdict.fits is not None, timeout=WORK_TIMEOUT_MS)
    assert tab.memory_verdict.fits and "this fits" in tab.memory_verdict.text()

    tab.device_picker.set_device("cpu")
    assert tab.controller._local.device == "cpu"  # the next local run trains there

    # A catalog base not on disk: the Download row appears; nothing is fetched until pressed.
    tab.base_combo.setCurrentIndex(tab.base_combo.findData("llama-3.2-1b"))
    assert tab.base_download.isVisible() and tab.base_download.download_button.isEnabled()
    assert "download them below" in tab.base_info.text()
    qtbot.waitUntil(lambda: "Llama 3.2 1B" in tab.memory_verdict.text(), timeout=WORK_TIMEOUT_MS)
