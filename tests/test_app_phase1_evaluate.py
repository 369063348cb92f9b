"""The Phase 1 tab's Evaluate button: a finished job's adapter is compared with its base off
the GUI thread, and the headline figure lands in the jobs table."""

from __future__ import annotations

import json
import threading

import pytest
from PySide6.QtCore import Qt

from tests.waits import WORK_TIMEOUT_MS


@pytest.fixture()
def workspace_with_job(tmp_path, tiny_model_dir):
    """A workspace holding a completed local job whose tiny adapter kept a validation split."""
    from cognitivetwin_core.data.workspace import Workspace
    from cognitivetwin_core.paths import resources_dir
    from cognitivetwin_core.phase1.jobs import Phase1Settings, read_chat_jsonl
    from cognitivetwin_core.phase1.local_lora import train_local_lora

    conversations = read_chat_jsonl(resources_dir() / "demo" / "conversations.jsonl")
    train, held = tmp_path / "train.jsonl", tmp_path / "held.jsonl"
    train.write_text("".join(json.dumps({"messages": c}) + "\n" for c in conversations[:4]), encoding="utf-8")
    held.write_text("".join(json.dumps({"messages": c}) + "\n" for c in conversations[40:42]), encoding="utf-8")
    settings = Phase1Settings(
        base_model=str(tiny_model_dir), epochs=1, max_seq_length=64, max_steps=2, validation_file=str(held)
    )
    with Workspace.open(tmp_path / "ws") as ws:
        folder = ws.adapters_dir / "local-test"
        train_local_lora(train, tiny_model_dir, folder, settings, max_batch_tokens=200)
        lineage = json.loads((folder / "lineage.json").read_text())
        ws.register_adapter("local-test", folder, lineage)
        ws.upsert_phase1_job(
            "local-test",
            {"backend": "local", "status": "completed", "adapter_id": "local-test", "adapter_path": str(folder)},
        )
        yield ws, folder


@pytest.mark.slow
def test_evaluate_button_fills_the_evaluation_column(qtbot, qasync_loop, isolated_user_dirs, workspace_with_job):
    from PySide6.QtCore import QTimer

    from app.tabs.phase1_tab import Phase1Tab

    workspace, folder = workspace_with_job
    tab = Phase1Tab()
    qtbot.addWidget(tab)
    tab.controller.evaluation_samples = 1
    tab.set_workspace(workspace)
    tab.show()
    qtbot.waitUntil(lambda: tab.job_row("local-test") is not None, timeout=5_000)
    assert tab.job_row("local-test")["Evaluation"] == "–"
    tab._select_job("local-test")
    assert tab.evaluate_button.isEnabled()
    ticks = []
    timer = QTimer(tab, interval=20)
    timer.timeout.connect(lambda: tab.controller.evaluate_job.is_running() and ticks.append(threading.current_thread()))
    timer.start()
    shown = []  # what the progress row said while the evaluation ran (a bar, not only a cell)
    tab.controller.evaluationProgress.connect(
        lambda *_: shown.append((tab.evaluation_row.isVisibleTo(tab), tab.evaluation_label.text()))
    )
    with qtbot.waitSignal(tab.controller.evaluationDone, timeout=WORK_TIMEOUT_MS) as done:
        qtbot.mouseClick(tab.evaluate_button, Qt.MouseButton.LeftButton)
        assert not tab.evaluate_button.isEnabled()
    timer.stop()
    job_id, report = done.args
    assert shown and all(visible for visible, _text in shown), shown
    assert any("held-out message" in text for _visible, text in shown) and "local-test" not in shown[-1][1]
    assert not tab.evaluation_row.isVisibleTo(tab), "the bar goes once the evaluation is done"
    assert job_id == "local-test" and report["held_out"]["conversations"] == 2 and len(report["examples"]) == 1
    assert (folder / "evaluation.json").is_file()
    assert ticks and all(t is threading.main_thread() for t in ticks)  # the GUI kept running
    qtbot.waitUntil(lambda: tab.job_row("local-test")["Evaluation"].startswith("perplexity "), timeout=5_000)
    assert "perplexity" in tab.log_view.toPlainText() and tab.message.kind == "ok"
    tab.shutdown()


def test_a_finished_local_runs_curve_is_drawn_again_after_a_restart(
    qtbot, qasync_loop, isolated_user_dirs, workspace_with_job
):
    """The tab opened on a workspace (as after a restart) draws the last local run's loss curve
    from its adapter's lineage, not only its first and last loss."""
    from app.tabs.phase1_tab import Phase1Tab
    from cognitivetwin_core.phase1.adapter_archive import read_lineage, read_loss_curve

    workspace, folder = workspace_with_job
    lineage = read_lineage(folder)
    curve = read_loss_curve(lineage)
    assert [step for step, _loss in curve] == list(range(1, lineage["steps"] + 1)) and curve[-1][1] == lineage[
        "last_loss"
    ]
    tab = Phase1Tab()
    qtbot.addWidget(tab)
    tab.set_workspace(workspace)
    tab.show()
    qtbot.waitUntil(lambda: tab.plotted_steps() == len(curve), timeout=5_000)
    assert tab.loss_plot.isVisibleTo(tab) and "went from" in tab.loss_status.text()
    tab.shutdown()


def test_a_long_runs_curve_is_thinned_and_keeps_its_last_step():
    from cognitivetwin_core.phase1.adapter_archive import loss_curve_points, read_loss_curve

    losses = [1.0 / step for step in range(1, 10_001)]
    points = loss_curve_points(losses, max_points=2000)
    assert len(points) <= 2001 and points[0] == [1, 1.0] and points[-1] == [10_000, losses[-1]]
    assert all(losses[step - 1] == loss for step, loss in points)
    assert loss_curve_points([]) == []
    assert read_loss_curve({"loss_curve": [[1, 0.5], ["x", 1], [2]]}) == [(1, 0.5)]
    assert read_loss_curve({}) == [] and read_loss_curve({"loss_curve": "junk"}) == []
