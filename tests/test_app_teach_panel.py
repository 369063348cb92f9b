"""The Playground's Teach panel: a Together twin is taught on Together from the app (the same
preference file, price and confirmation as `cognitivetwin teach`, the real `together` SDK
against the loopback fake) and the Phase 1 tab's job list follows the job to the new
version; a local Teach stopped from the panel is resumed with its Resume button."""

from __future__ import annotations

import gc
import json
import uuid
from pathlib import Path

import pytest
from together_server import FakeTogether, make_tiny_lora_adapter

from cognitivetwin_core.data.feedback import EDIT, GOOD, add_feedback
from tests.waits import WORK_TIMEOUT_MS


@pytest.fixture(scope="module", autouse=True)
def collect_earlier_garbage():
    """Collect cycles holding earlier modules' Qt objects here, on the GUI thread (as the Phase 1
    tab's tests do: a worker thread must never be the one that collects them)."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture(autouse=True)
def collect_qt_garbage_on_the_gui_thread():
    yield
    gc.collect()


@pytest.fixture(scope="module")
def served_adapter(tiny_model_dir, tmp_path_factory):
    return make_tiny_lora_adapter(tiny_model_dir, tmp_path_factory.mktemp("teach-panel-adapter"))


@pytest.fixture()
def fake(served_adapter, monkeypatch):
    with FakeTogether(api_key="tgp_" + uuid.uuid4().hex, adapter_dir=served_adapter) as server:
        monkeypatch.setenv("TOGETHER_BASE_URL", server.base_url)
        yield server


@pytest.fixture()
def workspace(tmp_path, isolated_user_dirs):
    from cognitivetwin_core.data.workspace import Workspace

    with Workspace.open(tmp_path / "ws") as ws:
        yield ws


@pytest.fixture()
def confirm(monkeypatch):
    """The Teach confirmation patched: `answer` is what the person clicks, `asked` what was shown."""
    from app.dialogs.phase1_confirm import confirmation_text
    from app.tabs.teach_on_together import TeachConfirmDialog

    state = {"answer": True, "asked": []}

    async def ask(cls, parent, plan):
        state["asked"].append(confirmation_text(plan))
        return state["answer"]

    monkeypatch.setattr(TeachConfirmDialog, "ask", classmethod(ask))
    return state


def _together_twin(fake, workspace, tmp_path):
    """A twin trained by a (fake) Together job and downloaded: (its job id, its folder)."""
    from cognitivetwin_core.phase1.jobs import Phase1Settings
    from cognitivetwin_core.phase1.together_jobs import TogetherJobManager

    data = tmp_path / "phase1.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
        for i in range(4)
    ]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    jobs = TogetherJobManager(workspace, api_key=fake.api_key, sleep=lambda s: None, poll_interval=0.0)
    settings = Phase1Settings(base_model="llama-3.2-1b", epochs=1, lora_r=8, lora_alpha=16, suffix="my-twin")
    job_id = jobs.launch(jobs.dry_run(data, settings))
    assert jobs.wait(job_id).status == "completed"
    return job_id, jobs.download(job_id)


def test_a_together_twin_is_taught_on_together_and_followed_in_phase1(
    qtbot, qasync_loop, fake, workspace, confirm, tmp_path, monkeypatch, test_output_dir
):
    from app.main import create_application
    from app.tabs.phase1_controller import Phase1Controller
    from app.tabs.phase1_tab import Phase1Tab
    from app.tabs.playground_teach import TOGETHER_TEACH, TeachPanel

    monkeypatch.setattr(Phase1Controller, "poll_interval", 0.02)
    monkeypatch.setattr(Phase1Controller, "max_poll_interval", 0.1)
    parent_job, twin = _together_twin(fake, workspace, tmp_path)
    edit = add_feedback(
        workspace, twin, "weekend plans?", "As an assistant I have no plans.", verdict=EDIT, edit="fell running"
    )
    add_feedback(workspace, twin, "hello?", "Hello! How can I help?", verdict=GOOD)

    create_application()
    phase1 = Phase1Tab()
    qtbot.addWidget(phase1)
    phase1.controller.read_api_key = lambda: fake.api_key
    phase1.set_workspace(workspace)
    panel = TeachPanel()
    qtbot.addWidget(panel)
    panel.read_api_key = lambda: fake.api_key
    panel.togetherLaunched.connect(phase1.follow_together_job)  # what the window wires (main_window._tab_built)
    panel.resize(900, 200)
    panel.show()
    qtbot.waitExposed(panel)
    try:
        panel.set_target(workspace, str(twin))
        assert panel.teach_button.text() == TOGETHER_TEACH and parent_job in panel.teach_button.toolTip()
        assert not panel.resume_button.isVisible()

        # Declined at the price: nothing is created.
        confirm["answer"] = False
        created = len(fake.create_bodies)
        panel.teach_button.click()
        qtbot.waitUntil(lambda: panel.message.kind == "info", timeout=WORK_TIMEOUT_MS)
        assert "nothing was charged" in panel.message.text() and len(fake.create_bodies) == created
        headline, details = confirm["asked"][-1]
        assert "paid" in headline and "$" in headline
        assert f'"from_checkpoint": "{parent_job}"' in details and "fell running" in details
        assert panel.teach_button.isEnabled()

        confirm["answer"] = True
        downloaded = []
        phase1.controller.adapterReady.connect(lambda job, folder: downloaded.append((job, folder)))
        with qtbot.waitSignal(panel.togetherLaunched, timeout=WORK_TIMEOUT_MS) as launched:
            panel.teach_button.click()
            assert not panel.teach_button.isEnabled()
        job_id = launched.args[0]
        body = fake.create_bodies[-1]
        assert body["from_checkpoint"] == parent_job and body["training_method"]["method"] == "dpo"
        assert "Phase 1 tab" in panel.message.text() and job_id in panel.message.text()
        panel.grab().save(str(test_output_dir / "playground-teach-together.png"))

        # The Phase 1 tab's ordinary monitoring follows it to the download.
        qtbot.waitUntil(lambda: bool(downloaded), timeout=WORK_TIMEOUT_MS)
        assert downloaded[0][0] == job_id
        taught = downloaded[0][1]
        qtbot.waitUntil(lambda: (phase1.job_row(job_id) or {}).get("Status") == "completed", timeout=5_000)
        lineage = json.loads((Path(taught) / "lineage.json").read_text())
        assert lineage["feedback_ids"] == [edit.id] and lineage["parent_adapter"] == str(twin.resolve())

        # The taught version has learned that edit (the thumb is no pair): nothing to send.
        uploads = fake.count("POST", r"^/v1/files$")
        panel.set_target(workspace, taught)
        panel.teach_button.click()
        qtbot.waitUntil(lambda: panel.message.kind == "error", timeout=WORK_TIMEOUT_MS)
        assert "already taught" in panel.message.text() and fake.count("POST", r"^/v1/files$") == uploads
    finally:
        panel.shutdown()
        phase1.shutdown()


@pytest.mark.slow
def test_a_stopped_teach_is_resumed_from_the_panel(qtbot, workspace, tiny_adapter, test_output_dir):
    from app.tabs.playground_teach import TeachPanel
    from cognitivetwin_core.phase1.teach_checkpoint import stopped_teach

    for context, reply, edit in (("tea?", "I cannot drink.", "builder's, two sugars"), ("hi", "Hello.", "ey up")):
        add_feedback(workspace, tiny_adapter, context, reply, verdict=EDIT, edit=edit)
    panel = TeachPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.max_steps = 4
    panel.set_target(workspace, str(tiny_adapter))
    assert panel.teach_button.text() != "Teach on Together…" and not panel.resume_button.isVisible()
    steps, stopping = [], [True]

    def on_event(event):
        if event.kind == "step":
            steps.append(event.step)
            if stopping[0]:
                panel.stop_button.click()  # Stop as the first step shows; it takes effect between steps

    panel.job.progress.connect(on_event)
    try:
        with qtbot.waitSignal(panel.job.cancelled, timeout=WORK_TIMEOUT_MS):
            panel.teach_button.click()
        qtbot.waitUntil(lambda: not panel.job.is_running(), timeout=WORK_TIMEOUT_MS)
        stopped = stopped_teach(workspace, tiny_adapter)["step"]
        assert 1 <= stopped < 4 and steps == list(range(1, stopped + 1))
        assert panel.resume_button.isVisible() and f"step {stopped} of 4" in panel.resume_button.toolTip()
        assert "Resume" in panel.status.text() and panel.teach_button.isEnabled()
        panel.grab().save(str(test_output_dir / "playground-teach-stopped.png"))

        stopping[0] = False
        steps.clear()
        with qtbot.waitSignal(panel.taught, timeout=WORK_TIMEOUT_MS) as taught:
            panel.resume_button.click()
            assert not panel.resume_button.isEnabled() and panel.stop_button.isEnabled()
        assert steps == list(range(stopped + 1, 5))
        panel.loss_plot.flush()
        assert panel.loss_plot.point_count("loss") == 4 - stopped
        lineage = json.loads((Path(taught.args[0]) / "lineage.json").read_text())
        assert lineage["steps"] == 4 and lineage["resumed_at_step"] == stopped
        assert not panel.resume_button.isVisible() and stopped_teach(workspace, tiny_adapter) is None
    finally:
        panel.shutdown()


def test_the_window_hands_a_together_teach_job_to_the_phase1_tab(qtbot, qasync_loop, isolated_user_dirs, monkeypatch):
    from PySide6.QtWidgets import QWidget

    from app import main_window

    class Phase1(QWidget):
        followed: list[str] = []

        def follow_together_job(self, job_id):
            self.followed.append(job_id)

    factories = list(main_window.TAB_FACTORIES)
    factories[3] = ("Phase &1", "4", Phase1)
    monkeypatch.setattr(main_window, "TAB_FACTORIES", factories)
    win = main_window.MainWindow()
    qtbot.addWidget(win)
    try:
        phase1, playground = win.tab_widgets["Phase 1"], win.tab_widgets["Playground"]
        playground.chat_panel.teach.togetherLaunched.emit("ft-taught")  # the real Playground's Teach panel
        assert phase1.followed == ["ft-taught"]
    finally:
        win.close()
