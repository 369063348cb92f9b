"""The studio's shell: the window, its tabs and status bar, settings, the demo offer, the
background-job controller, task tracking, the error dialog, and `main()` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tests.waits import WORK_TIMEOUT_MS, WORK_TIMEOUT_S

# The offscreen platform warns that it cannot propagate size hints whenever a window is shown.


REPO = Path(__file__).resolve().parent.parent


def test_six_tabs_with_shortcuts_and_a_status_bar(window, qtbot):
    from app import main_window

    titles = [window.tabs.tabText(i).replace("&", "") for i in range(window.tabs.count())]
    assert titles == ["Start", "Connections", "Data", "Phase 1", "Phase 2", "Playground"]
    assert window.tabs.currentIndex() == 0, "a fresh start opens on the guided path"
    # Ctrl+N is the N-th tab, and each tab's tooltip says so.
    assert [digit for _title, digit, _factory in main_window.TAB_FACTORIES] == [str(i) for i in range(1, 7)]
    for index in range(window.tabs.count()):
        assert window.tabs.tabToolTip(index).endswith(f"(Ctrl+{index + 1})")
    qtbot.keyClick(window, Qt.Key.Key_4, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentIndex() == 3
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentIndex() == 1
    assert window.workspace_status.text() == "Workspace: default"
    assert str(window.workspace.path) in window.workspace_status.toolTip()
    assert "SmolLM2" in window.base_model_status.text()
    with qtbot.waitSignal(window.deviceDetected, timeout=WORK_TIMEOUT_MS) as blocker:
        window.detect_device()
    assert blocker.args[0].startswith(("CPU", "GPU", "Apple"))
    assert window.device_status.text() == f"Device: {blocker.args[0]}"


def test_first_start_creates_the_default_workspace_and_offers_the_demo(window, isolated_user_dirs):
    from cognitivetwin_core.data.workspace import DB_NAME
    from cognitivetwin_core.paths import default_workspace_dir

    assert window.workspace.path == default_workspace_dir().resolve()
    assert (default_workspace_dir() / DB_NAME).is_file()
    assert window.demo_banner.isVisible()
    window.dismiss_demo_offer()
    assert not window.demo_banner.isVisible()
    window._update_demo_offer()
    assert not window.demo_banner.isVisible(), "a dismissed offer stays dismissed"


def test_open_workspace_remembers_it_and_reports_a_bad_folder(window, tmp_path):
    from app import settings

    other = tmp_path / "other-workspace"
    assert window.open_workspace(other)
    assert settings.read(settings.LAST_WORKSPACE) == str(other.resolve())
    assert window.data_tab.workspace is window.workspace
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    assert not window.open_workspace(not_a_folder)
    assert window.workspace_message.isVisible() and "is a file, not a folder" in window.workspace_message.text()
    assert window.workspace.path == other.resolve(), "the previous workspace stays open"


def test_later_tabs_are_built_on_first_show_with_the_current_workspace(
    qtbot, qasync_loop, isolated_user_dirs, monkeypatch
):
    from PySide6.QtWidgets import QWidget

    from app import main_window

    built = []

    class RecordingTab(QWidget):
        def __init__(self):
            super().__init__()
            self.calls = []
            built.append(self)

        def set_workspace(self, workspace):
            self.calls.append(("set_workspace", workspace))

        def set_base_model(self, name):
            self.calls.append(("set_base_model", name))

    factories = list(main_window.TAB_FACTORIES)
    factories[5] = ("&Playground", "6", RecordingTab)
    monkeypatch.setattr(main_window, "TAB_FACTORIES", factories)
    win = main_window.MainWindow()
    qtbot.addWidget(win)
    win.open_initial_workspace()
    win.show()
    qtbot.waitExposed(win)
    assert built == [], "a tab nobody has looked at is not built"
    win.tabs.setCurrentIndex(5)
    assert len(built) == 1
    tab = built[0]
    assert tab.isVisible() and win.tabs.currentWidget() is tab and win.tab_widgets["Playground"] is tab
    assert tab.calls == [("set_base_model", win.base_model), ("set_workspace", win.workspace)]
    win.tabs.setCurrentIndex(0)
    win.tabs.setCurrentWidget(tab)
    assert win.tabs.currentIndex() == 5 and len(built) == 1
    win.close()


def test_the_window_opens_workspaces_on_a_worker_thread(window, qtbot, tmp_path, monkeypatch):
    from cognitivetwin_core.data.workspace import Workspace

    opened_in = []
    original_open = Workspace.open.__func__

    def recording_open(cls, path=None):
        opened_in.append(threading.current_thread() is threading.main_thread())
        return original_open(cls, path)

    monkeypatch.setattr(Workspace, "open", classmethod(recording_open))
    other = tmp_path / "background-workspace"
    with qtbot.waitSignal(window.workspaceChanged, timeout=WORK_TIMEOUT_MS) as changed:
        assert window.open_workspace_in_background(other)
        assert window.is_opening_workspace()
        assert "Opening" in window.statusBar().currentMessage()
        assert not window.open_workspace_in_background(tmp_path / "second"), "one open at a time"
    assert opened_in == [False]
    assert changed.args[0] is window.workspace and window.workspace.path == other.resolve()
    assert window.data_tab.workspace is window.workspace
    qtbot.waitUntil(lambda: not window.is_opening_workspace())
    assert window.statusBar().currentMessage() == ""

    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    window.open_workspace_in_background(not_a_folder)
    qtbot.waitUntil(lambda: not window.is_opening_workspace(), timeout=WORK_TIMEOUT_MS)
    assert "is a file, not a folder" in window.workspace_message.text()
    assert window.workspace.path == other.resolve(), "the previous workspace stays open"


def test_geometry_and_current_tab_restore(qtbot, qasync_loop, isolated_user_dirs):
    from app.main_window import MainWindow

    first = MainWindow()
    qtbot.addWidget(first)
    first.open_initial_workspace()
    first.resize(700, 520)  # within the offscreen screen (800x600): restoreGeometry clamps to it
    first.tabs.setCurrentIndex(2)
    first.close()
    second = MainWindow()
    qtbot.addWidget(second)
    assert second.tabs.currentIndex() == 2
    assert (second.width(), second.height()) == (700, 520)
    second.close()


def test_settings_refuse_key_like_values(isolated_user_dirs):
    from app import settings
    from cognitivetwin_core.logging_setup import register_secret

    with pytest.raises(ValueError):
        settings.write("supabase/table", "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2lnbmF0dXJlLXN0dWZm")
    register_secret("my-private-token-value")
    with pytest.raises(ValueError):
        settings.write("supabase/table", "my-private-token-value")
    settings.write("supabase/table", "memory_turns")
    assert settings.supabase_table() == "memory_turns"
    assert "my-private-token-value" not in settings.settings_path().read_text()


# --- the background-job controller (threads: docs/qt.md §3-9) -----------------------------------


def _work(progress, cancellation, n, fail_with=None, gate=None):
    from cognitivetwin_core.cancellation import Cancellation

    assert isinstance(cancellation, Cancellation), "a job function gets the core's Cancellation"
    for i in range(n):
        if gate is not None:
            gate.wait(5)
        cancellation.raise_if_cancelled("stopped")
        progress((i, threading.current_thread().name))
    if fail_with is not None:
        raise fail_with
    return f"done {n} on {threading.current_thread().name}"


def test_background_job_runs_off_the_gui_thread_and_relays_to_it(qtbot, qapp):
    from app.qt.background_job import BackgroundJob

    job = BackgroundJob(name="test job")
    seen = []
    job.progress.connect(lambda value: seen.append((value, threading.current_thread() is threading.main_thread())))
    with (
        qtbot.waitSignal(job.finished, timeout=WORK_TIMEOUT_MS),
        qtbot.waitSignal(job.succeeded, timeout=WORK_TIMEOUT_MS) as done,
    ):
        job.start(_work, 5)
    assert done.args[0].startswith("done 5") and threading.main_thread().name not in done.args[0]
    assert [value[0] for value, _ in seen] == [0, 1, 2, 3, 4]
    assert all(on_gui for _, on_gui in seen), "progress must be delivered in the GUI thread"
    assert not job.is_running()


def test_background_job_reports_failures_and_cancels(qtbot):
    from app.qt.background_job import BackgroundJob
    from cognitivetwin_core.errors import InputError

    job = BackgroundJob()
    with qtbot.waitSignal(job.failed, timeout=WORK_TIMEOUT_MS) as failed:
        job.start(_work, 2, InputError("line 3: bad"))
    assert isinstance(failed.args[0], InputError)
    qtbot.waitUntil(lambda: not job.is_running())

    gate = threading.Event()
    with qtbot.waitSignal(job.cancelled, timeout=WORK_TIMEOUT_MS):
        job.start(_work, 1000, None, gate)
        job.cancel()
        assert job.is_cancel_requested()
        gate.set()
    qtbot.waitUntil(lambda: not job.is_running())
    with qtbot.waitSignal(job.succeeded, timeout=WORK_TIMEOUT_MS):
        job.start(_work, 1)  # a new run gets a fresh Cancellation: the last run's request is over
    assert not job.is_cancel_requested()


def test_a_job_freed_with_its_owner_while_running_keeps_its_thread_until_it_ends(qtbot, qapp):
    """A running QThread destroyed aborts the process: freeing the job's owner mid-run (a
    closed widget) must leave the thread alone until the function returns."""
    import gc
    import weakref

    from PySide6.QtCore import QCoreApplication, QEvent, QObject

    from app.qt.background_job import BackgroundJob, running_job_threads

    before = running_job_threads()
    owner = QObject()
    job = BackgroundJob(owner, name="orphaned job")
    gate = threading.Event()
    job.start(_work, 1, None, gate)
    thread = weakref.ref(job._thread)
    owner.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    del owner, job
    gc.collect()  # the job's wrappers go; without the keeper its running thread went too
    assert thread() is not None and thread().isRunning()
    assert running_job_threads() == before + 1
    gate.set()
    qtbot.waitUntil(lambda: running_job_threads() == before, timeout=WORK_TIMEOUT_MS)
    gc.collect()
    assert thread() is None, "let go once stopped"


def test_tracked_tasks_are_cancelled_on_quit(qasync_loop, qtbot):
    import asyncio

    from app.qt.tasks import cancel_all, running_tasks, start_task

    started = asyncio.Event()

    async def forever():
        started.set()
        await asyncio.sleep(3600)

    task = start_task(forever(), name="forever")
    qtbot.waitUntil(started.is_set)
    assert task in running_tasks()
    assert cancel_all() >= 1
    qtbot.waitUntil(task.done)
    assert task.cancelled() and task not in running_tasks()


def test_unexpected_errors_open_a_dialog_with_details_and_the_log_path(qtbot, isolated_user_dirs, monkeypatch):
    from test_secrets import active_log_file

    from app.dialogs import errors as errors_dialog
    from cognitivetwin_core.logging_setup import log_file_path, register_secret

    log_path = active_log_file()
    secret = "sk-" + "z" * 30
    register_secret(secret)
    try:
        raise RuntimeError(f"boom with {secret}")
    except RuntimeError as exc:
        errors_dialog.report_unexpected(exc, context="a test")
    dialog = errors_dialog._open_dialogs[-1]
    qtbot.addWidget(dialog)
    assert "RuntimeError" in dialog.text() and secret not in dialog.text()
    assert str(log_file_path()) in dialog.informativeText()
    assert "Traceback" in dialog.detailedText() and secret not in dialog.detailedText()
    for handler in __import__("logging").getLogger().handlers:
        handler.flush()
    log_text = log_path.read_text()
    assert "boom with [REDACTED]" in log_text and secret not in log_text
    dialog.close()


@pytest.mark.slow
def test_screenshots_of_every_tab(window, qtbot, test_output_dir):
    with qtbot.waitSignal(window.connections_tab.refreshed, timeout=WORK_TIMEOUT_MS):
        window.connections_tab.refresh()
    window.resize(1280, 820)
    for index in range(window.tabs.count()):
        window.tabs.setCurrentIndex(index)
        qtbot.wait(30)
        name = window.tabs.tabText(index).replace("&", "").replace(" ", "_").lower()
        path = test_output_dir / f"studio_tab_{index + 1}_{name}.png"
        assert window.grab().save(str(path)), path
        assert path.stat().st_size > 5_000


@pytest.mark.slow
def test_main_opens_the_window_and_quits_in_a_subprocess(tmp_path):
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "COGNITIVETWIN_DATA_DIR": str(tmp_path / "data"),
        "COGNITIVETWIN_CONFIG_DIR": str(tmp_path / "config"),
        "COGNITIVETWIN_LOG_DIR": str(tmp_path / "log"),
    }
    code = (
        "import sys; from app.main import main; rc = main(['--quit-after', '1.5', '--report-startup']); "
        "print('heavy:', sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules)); "
        "print('later tabs:', sorted(m for m in sys.modules if m.startswith(('app.tabs.phase', 'app.tabs.playground')))); "
        "sys.exit(rc)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=WORK_TIMEOUT_S, cwd=REPO
    )
    assert out.returncode == 0, out.stderr
    assert "window shown after" in out.stdout
    assert "heavy: []" in out.stdout, "the window must open without torch/transformers"
    assert "later tabs: []" in out.stdout, "tabs never shown are never built (nor their modules imported)"
    assert "Traceback" not in out.stderr
    assert (tmp_path / "data" / "workspace").is_dir()
    assert "opened workspace" in (tmp_path / "log" / "cognitivetwin.log").read_text()
    assert (tmp_path / "config" / "studio.ini").is_file()


def test_garbage_is_collected_on_the_gui_thread_only(qapp, qtbot):
    import gc

    from app.qt.gui_thread_gc import GuiThreadGarbageCollector

    collector = GuiThreadGarbageCollector(interval_ms=20)
    try:
        assert not gc.isenabled()
        collected_in = []
        gc.callbacks.append(
            lambda phase, info: collected_in.append(threading.current_thread().name) if phase == "stop" else None
        )

        class Cycle:
            def __init__(self):
                self.me = self

        def allocate_in_a_thread():
            for _ in range(5 * gc.get_threshold()[0]):
                Cycle()

        worker = threading.Thread(target=allocate_in_a_thread, name="allocating worker")
        worker.start()
        worker.join()
        assert collected_in == [], "no automatic collection in the worker"
        qtbot.waitUntil(lambda: bool(collected_in), timeout=5_000)
        assert set(collected_in) == {threading.main_thread().name}
    finally:
        gc.callbacks.pop()
        collector.stop()
    assert gc.isenabled()
