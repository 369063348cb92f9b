"""The Phase 2 tab: real runs of the core trainer on a QThread, watched through the
controller's signals (never the worker's, docs/qt.md §4): live plots, cancel, stop & save
and resume, comparing runs, and closing the window during a run.

Most runs use the tiny random Llama (fast); one uses the embedded SmolLM2 on a few demo
conversations, as the issue asks. Every test shares one feature cache folder, so the
tiny model encodes the demo once per session.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cognitivetwin_core.paths import resources_dir
from tests.waits import WORK_TIMEOUT_MS

RUN_TIMEOUT_MS = WORK_TIMEOUT_MS


@pytest.fixture(scope="module")
def shared_feature_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("phase2-feature-cache")


@pytest.fixture()
def demo_workspace(tmp_path):
    from cognitivetwin_core.data.importers import import_into
    from cognitivetwin_core.data.workspace import Workspace

    workspace = Workspace.open(tmp_path / "workspace")
    import_into(workspace, "demo")
    yield workspace
    workspace.close()


@pytest.fixture()
def tab(qtbot, demo_workspace, tiny_model_dir, shared_feature_cache):
    from app.tabs.phase2_tab import Phase2Tab

    widget = Phase2Tab()
    qtbot.addWidget(widget)
    widget.resize(1300, 850)
    widget.set_workspace(demo_workspace)
    widget.feature_cache_dir = str(shared_feature_cache)
    widget.choose_base_folder(tiny_model_dir)
    widget.epochs_spin.setValue(1)
    widget.batch_spin.setValue(8)
    widget.accumulation_spin.setValue(1)
    widget.device_combo.setCurrentIndex(widget.device_combo.findData("cpu"))
    yield widget
    widget.controller.shutdown(save=False)


def _run_record(folder) -> dict:
    return json.loads((Path(folder) / "run.json").read_text(encoding="utf-8"))


def _stray_temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp" in p.name or p.name.endswith(".partial")]


# --- the plot widget ----------------------------------------------------------------------------


def test_live_plot_buffers_grow_and_redraws_are_throttled(qtbot):
    from app.widgets.live_plot import INITIAL_CAPACITY, MAX_DRAWN_POINTS, LivePlot, _redraw_queue

    plot = LivePlot("loss")
    qtbot.addWidget(plot)
    plot.show()
    plot.add_series("loss", (0, 0, 255), smooth=True)
    values = np.linspace(5.0, 1.0, 5000)
    values[1234] = 9.0  # a spike: drawn although the curve is thinned out
    for step, value in enumerate(values, start=1):
        plot.append("loss", step, value)
    plot.append("loss", 5001, float("nan"))  # a NaN loss is not drawn
    assert plot.point_count("loss") == 5000
    assert plot._series["loss"].x.dtype == np.float64 and len(plot._series["loss"].x) >= 5000 > INITIAL_CAPACITY
    assert plot.redraws == 0, "appending never draws by itself"
    qtbot.waitUntil(lambda: plot.redraws >= 1, timeout=2000)
    assert plot.redraws <= 2, "5000 points were drawn in one or two timer ticks, not one per point"
    xs, ys = plot.points("loss")
    assert np.array_equal(ys, values) and xs[0] == 1
    smoothed = plot._series["loss"].smoothed[:5000]
    assert smoothed[0] == pytest.approx(5.0), "the smoothed line starts at the first point (bias-corrected)"
    assert values[-1] < smoothed[-1] < values[-200], "the smoothed line lags a falling raw line"
    raw_curve, _main = plot._curves["loss"]
    drawn_x, drawn_y = raw_curve.getData()
    assert len(drawn_y) <= MAX_DRAWN_POINTS + 10, "pyqtgraph gets a thinned-out curve"
    assert drawn_y.max() == 9.0 and drawn_y.min() == pytest.approx(1.0) and drawn_x[-1] == 5000
    (x_low, x_high), (y_low, y_high) = plot._view.viewRange()
    assert x_low <= 1 and x_high >= 5000 and y_low <= 1.0 and y_high >= 9.0, "the ranges hold all the data"
    qtbot.waitUntil(lambda: not _redraw_queue().is_active(), timeout=2000)  # idle: the timer stops

    # A plot on a tab not in front keeps its points but draws only once shown again.
    plot.hide()
    redraws = plot.redraws
    plot.append("loss", 5001, 0.5)
    qtbot.waitUntil(lambda: not _redraw_queue().is_active(), timeout=5000)  # its next tick finds it hidden
    assert plot.redraws == redraws and plot.redraw_pending()
    plot.show()
    qtbot.waitUntil(lambda: plot.redraws == redraws + 1, timeout=5000)
    assert plot.point_count("loss") == 5001 and not plot.redraw_pending()


def test_live_plot_legend_sits_outside_the_curves_and_end_points_show_whole(qtbot):
    """At a size the Phase 2 tab gives its plots, six named series fit in a legend row below
    the x axis (not over the curves), and the one point of epoch 1 is drawn inside the plot."""
    from PySide6.QtCore import QPointF

    from app.widgets.live_plot import LivePlot

    plot = LivePlot("metrics", x_label="epoch")
    qtbot.addWidget(plot)
    plot.resize(480, 260)
    plot.show()
    for number in range(6):
        plot.add_series(f"s{number}", (0, 0, 255), symbol="o", label=f"series {number}")
    plot.add_series("baseline", (0, 0, 255), dashed=True, in_legend=False)  # the title explains it
    plot.append("s0", 1, 0.5)
    plot.flush()
    legend, view = plot.plot_widget.plotItem.legend, plot._view
    # The plot's layout places the legend on a coming event-loop turn.
    qtbot.waitUntil(lambda: legend.sceneBoundingRect().top() > 0, timeout=2000)
    assert [label.text for _, label in legend.items] == [f"series {n}" for n in range(6)]
    legend_box, view_box = legend.sceneBoundingRect(), view.sceneBoundingRect()
    assert legend_box.top() >= view_box.bottom(), "the legend is below the curves, not over them"
    assert legend_box.bottom() <= plot.plot_widget.height() + 1, "and inside the widget"
    assert legend_box.right() <= plot.plot_widget.width() + 1, "its rows no wider than the plot"
    assert legend.columnCount >= 2, "short names share a row"
    plot.resize(470, 260)  # a resize after the layout stretched the names' cells: still side by side
    qtbot.waitUntil(lambda: plot.width() == 470, timeout=2000)
    assert legend.columnCount >= 2
    marker = 3  # px: half of the symbol size
    for epochs in ([1], [1, 2, 3]):
        for epoch in epochs:
            plot.append("s1", epoch, 0.4)
        plot.flush()
        for epoch in (epochs[0], epochs[-1]):
            x = view.mapViewToScene(QPointF(epoch, 0.5)).x()
            assert view_box.left() + marker <= x <= view_box.right() - marker, f"epoch {epoch} of {epochs}"


def test_live_plots_redraw_one_at_a_time(qtbot):
    """Plots that all got points are drawn on successive ticks, never in one event-loop turn."""
    from app.widgets.live_plot import LivePlot

    plots = [LivePlot(f"plot {i}") for i in range(3)]
    order = []
    for plot in plots:
        qtbot.addWidget(plot)
        plot.show()
        plot.add_series("y", (0, 0, 255))
        original = plot._redraw
        plot._redraw = lambda force=False, plot=plot, original=original: (order.append(plot), original(force))[1]
    for plot in plots:
        plot.append("y", 1, 1.0)
    qtbot.waitUntil(lambda: len(order) == 3, timeout=5000)
    assert order == plots, "the longest waiting plot first, each once"
    assert all(plot.redraws == 1 for plot in plots)


# --- runs -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_unusable_data_is_reported_in_the_tab(qtbot, tmp_path, tiny_model_dir):
    from app.tabs.phase2_tab import Phase2Tab
    from cognitivetwin_core.data.workspace import Workspace

    widget = Phase2Tab()
    qtbot.addWidget(widget)
    with Workspace.open(tmp_path / "empty") as workspace:
        widget.set_workspace(workspace)
        widget.choose_base_folder(tiny_model_dir)
        with qtbot.waitSignal(widget.controller.failed, timeout=WORK_TIMEOUT_MS) as blocker:
            assert widget.start()
        qtbot.waitUntil(lambda: not widget.controller.is_running(), timeout=WORK_TIMEOUT_MS)
    assert "no conversations" in blocker.args[0].lower() and "import" in blocker.args[0].lower()
    assert not widget.message.isHidden() and widget.message.kind == "error"
    assert widget.start_button.isEnabled()
    assert not any((tmp_path / "empty" / "runs").glob("*")), "nothing was written for unusable inputs"


@pytest.mark.slow
def test_embedded_model_run_on_demo_conversations_plots_and_saves(
    qtbot, tmp_path, embedded_model_dir, test_output_dir, shared_feature_cache
):
    """The issue's main path with the embedded SmolLM2: a few demo conversations (one
    source of the workspace), one epoch; the plots get points, the model is saved."""
    from app.tabs.phase2_tab import Phase2Tab
    from cognitivetwin_core.data.importers import import_into
    from cognitivetwin_core.data.workspace import Workspace

    demo_lines = (resources_dir() / "demo" / "conversations.jsonl").read_text(encoding="utf-8").splitlines()
    few = tmp_path / "few-demo-conversations.jsonl"
    # The three shortest demo conversations: encoding with the 135M model on one CPU thread is slow.
    few.write_text("\n".join(demo_lines[i] for i in (9, 14, 22)) + "\n", encoding="utf-8")
    workspace = Workspace.open(tmp_path / "workspace")
    import_into(workspace, few, importer="chat-jsonl")
    widget = Phase2Tab()
    qtbot.addWidget(widget)
    widget.resize(1300, 850)
    widget.show()
    widget.set_workspace(workspace)
    widget.feature_cache_dir = str(shared_feature_cache)
    assert widget.base_combo.currentData() == "smollm2-135m"
    sources = [widget.data_combo.itemData(i) for i in range(widget.data_combo.count())]
    few_source = next(s for s in sources if s.get("kind") == "source")
    widget.data_combo.setCurrentIndex(sources.index(few_source))
    widget.epochs_spin.setValue(1)
    widget.batch_spin.setValue(1)
    widget.accumulation_spin.setValue(1)
    assert widget.build_config().patience == widget.patience_spin.value() == 5  # stop early: on by default

    encoding_events = []
    widget.controller.encodingProgress.connect(encoding_events.append)
    with qtbot.waitSignal(widget.controller.stepDone, timeout=RUN_TIMEOUT_MS):
        assert widget.start()
    assert widget.controller.is_running() and not widget.start_button.isEnabled() and widget.stop_button.isEnabled()
    assert encoding_events and encoding_events[-1].done == encoding_events[-1].total
    with qtbot.waitSignal(widget.runFinished, timeout=RUN_TIMEOUT_MS) as blocker:
        pass
    finished = blocker.args[0]
    assert finished.outcome == "completed", finished.message
    output = Path(finished.output_dir)
    record = _run_record(output)
    steps = record["split"]["train_conversations"]  # batch 1: one step per training conversation
    assert steps == 2
    for head in ("total", "style", "stylometric", "pattern", "planning"):
        assert widget.loss_plot.point_count(head) == steps
    assert widget.metrics_plot.point_count("pattern_macro_f1") == 1
    assert widget.metrics_plot.point_count("pattern_macro_f1_baseline") == 1
    assert widget.throughput_plot.point_count("examples_per_s") == steps
    assert output.parent == workspace.runs_dir
    assert (output / "model.safetensors").is_file() and (output / "config.json").is_file()
    assert record["outcome"] == "completed" and record["base_model"] == "smollm2-135m"
    assert record["data"]["conversations"] == 3
    assert widget.summary.isVisible() and str(output) in widget.summary.location.toolTip()
    assert str(output) not in widget.summary.location.text(), "the path is in the tooltip, not in the words"
    assert set(widget.summary.verdicts) == {"pattern_macro_f1", "planning_cosine", "style_retrieval"}
    qtbot.waitUntil(lambda: not widget.controller.is_running(), timeout=WORK_TIMEOUT_MS)
    widget.grab().save(str(test_output_dir / "phase2_tab_embedded_finished.png"))
    # The run is listed with the source it was trained on (kept for resuming).
    listed = {run["run_id"]: run for run in widget.runs}
    assert listed[record["run_id"]]["studio_data_selection"] == few_source
    workspace.close()


@pytest.mark.slow
def test_cancel_mid_run_leaves_no_thread_and_no_files(qtbot, tab, demo_workspace):
    tab.epochs_spin.setValue(20)  # the run cannot end on its own before the click lands
    with qtbot.waitSignal(tab.controller.stepDone, timeout=RUN_TIMEOUT_MS) as first_step:
        assert tab.start()
    thread = tab.controller._job._thread
    run_id = tab.controller.trainer.run_id
    output = Path(tab.controller.trainer.output_dir)
    assert (output / "run.json").is_file()
    assert first_step.args[0].global_step == 1
    with qtbot.waitSignal(tab.controller.runFinished, timeout=RUN_TIMEOUT_MS) as blocker:
        tab.cancel_button.click()
    assert blocker.args[0].outcome == "cancelled"
    qtbot.waitUntil(lambda: not tab.controller.is_running(), timeout=WORK_TIMEOUT_MS)
    assert tab.controller._job._thread is None
    assert thread.isFinished() and not thread.isRunning()
    assert not output.exists(), "a cancelled run is discarded"
    assert _stray_temp_files(demo_workspace.path) == []
    assert tab.start_button.isEnabled() and not tab.cancel_button.isEnabled()
    assert tab.loss_plot.point_count("total") < first_step.args[0].total_steps, "the run stopped early"
    assert demo_workspace.get_phase2_run(run_id)["outcome"] == "cancelled"


@pytest.mark.slow
def test_stop_and_save_then_resume_then_compare_two_runs(qtbot, tab, demo_workspace, test_output_dir):
    tab.epochs_spin.setValue(2)
    tab.batch_spin.setValue(1)  # 35 steps an epoch: the stop lands well before epoch 2 ends
    checkpoints = []
    tab.controller.checkpointSaved.connect(checkpoints.append)
    with qtbot.waitSignal(tab.controller.checkpointSaved, timeout=RUN_TIMEOUT_MS):
        assert tab.start()
    with qtbot.waitSignal(tab.controller.stepDone, timeout=RUN_TIMEOUT_MS):
        pass  # a step of epoch 2
    with qtbot.waitSignal(tab.runFinished, timeout=RUN_TIMEOUT_MS) as blocker:  # the tab's: after the summary
        tab.stop_button.click()
    stopped = blocker.args[0]
    assert stopped.outcome == "stopped", stopped.message
    output = Path(stopped.output_dir)
    assert (output / "model.safetensors").is_file(), "stop & save leaves a usable model"
    assert _run_record(output)["outcome"] == "stopped"
    assert len(checkpoints) == 1 and (output / "checkpoint").is_dir()
    # The summary reports the finished epoch (it once said "no epoch finished").
    assert "No validation metrics" not in tab.summary.heads.text()
    assert "epoch <b>1</b> of 1" in tab.summary.heads.text() and "than guessing" in tab.summary.heads.text()
    assert "position" in tab.summary.details.text()  # the trajectory ablation, in words
    qtbot.waitUntil(lambda: not tab.controller.is_running(), timeout=WORK_TIMEOUT_MS)

    run_id = _run_record(output)["run_id"]
    tab.pages.setCurrentIndex(1)
    tab.select_runs([run_id])
    assert tab.resume_button.isEnabled()
    assert run_id in tab.lineage.text() and "hash" in tab.lineage.text()
    steps = []
    tab.controller.stepDone.connect(steps.append)
    with qtbot.waitSignal(tab.runFinished, timeout=RUN_TIMEOUT_MS) as blocker:
        tab.resume_button.click()
    resumed = blocker.args[0]
    assert resumed.outcome == "completed", resumed.message
    assert Path(resumed.output_dir) == output
    assert steps and all(step.epoch == 2 for step in steps), "resuming continues at epoch 2"
    # The plots continue the run's history: epoch 1 (read back from metrics.json) and epoch 2.
    assert tab.metrics_plot.point_count("pattern_macro_f1") == 2
    metrics = json.loads((output / "metrics.json").read_text(encoding="utf-8"))
    assert [e["epoch"] for e in metrics["epochs"] if e.get("epoch") is not None] == [1, 2]
    assert _run_record(output)["outcome"] == "completed"
    qtbot.waitUntil(lambda: not tab.controller.is_running(), timeout=WORK_TIMEOUT_MS)

    # A second run, then both on the same axes.
    tab.epochs_spin.setValue(1)
    tab.lr_spin.setValue(5e-4)
    with qtbot.waitSignal(tab.runFinished, timeout=RUN_TIMEOUT_MS) as blocker:
        assert tab.start()
    assert blocker.args[0].outcome == "completed"
    qtbot.waitUntil(lambda: not tab.controller.is_running(), timeout=WORK_TIMEOUT_MS)
    assert len(tab.runs) == 2 and tab.runs_table.rowCount() == 2
    second_id = _run_record(blocker.args[0].output_dir)["run_id"]
    tab.select_runs([run_id, second_id])
    assert tab.compare_button.isEnabled() and not tab.resume_button.isEnabled()
    tab.compare_button.click()
    assert tab.compare_loss_plot.point_count(f"{run_id} train") == 2
    assert tab.compare_loss_plot.point_count(f"{run_id} validation") == 2
    assert tab.compare_loss_plot.point_count(f"{second_id} train") == 1
    assert tab.compare_metric_plot.point_count(run_id) == 2 and tab.compare_metric_plot.point_count(second_id) == 1
    # Runs are listed by readable names, and a name can be edited in place.
    assert " · " in tab.runs_table.item(0, 0).text() and "conv.)" in tab.runs_table.item(0, 0).text()
    row = next(i for i, run in enumerate(tab.runs) if run["run_id"] == run_id)
    tab.runs_table.item(row, 0).setText("First try, stopped and resumed")
    assert _run_record(output)["name"] == "First try, stopped and resumed"
    tab.refresh_runs()
    assert "First try, stopped and resumed" in [tab.runs_table.item(i, 0).text() for i in range(2)]
    tab.show()
    tab.pages.setCurrentIndex(1)
    tab.grab().save(str(test_output_dir / "phase2_tab_compare.png"))


@pytest.mark.slow
def test_closing_the_window_during_a_run_stops_saves_and_ends_the_thread(
    qtbot, qasync_loop, isolated_user_dirs, tiny_model_dir, shared_feature_cache, monkeypatch, test_output_dir
):
    from PySide6.QtWidgets import QMessageBox

    from app.main_window import MainWindow
    from app.tabs.phase2_tab import Phase2Tab
    from cognitivetwin_core.data.importers import import_into

    window = MainWindow()
    qtbot.addWidget(window)
    window.open_initial_workspace()
    import_into(window.workspace, "demo")
    window._update_demo_offer()
    window.show()
    qtbot.waitExposed(window)
    tab: Phase2Tab = window.tab_widgets["Phase 2"]
    tab.set_workspace(window.workspace)
    tab.feature_cache_dir = str(shared_feature_cache)
    tab.choose_base_folder(tiny_model_dir)
    tab.epochs_spin.setValue(20)  # cannot end on its own during the test
    tab.batch_spin.setValue(8)
    tab.accumulation_spin.setValue(1)
    window.tabs.setCurrentWidget(tab)
    questions = []
    monkeypatch.setattr(
        Phase2Tab, "ask_close", staticmethod(lambda parent, answer: questions.append(parent) or answer("keep"))
    )
    steps = []
    tab.controller.stepDone.connect(steps.append)
    assert tab.start()
    qtbot.waitUntil(lambda: len(steps) >= 7, timeout=RUN_TIMEOUT_MS)  # into epoch 2
    tab.loss_plot.flush()
    window.grab().save(str(test_output_dir / "phase2_tab_mid_run.png"))

    assert window.close() is False, "'Keep training' keeps the window open"
    assert window.isVisible() and tab.controller.is_running() and len(questions) == 1

    monkeypatch.undo()  # the real question this time: a window-modal box opened, not exec'd
    with qtbot.waitSignal(tab.controller.runFinished, timeout=RUN_TIMEOUT_MS) as blocker:
        assert window.close() is False, "the window waits for the answer, then for the run to stop and save"
        box = next(b for b in tab.findChildren(QMessageBox) if b.isVisible())
        stop = next(b for b in box.buttons() if box.buttonRole(b) == QMessageBox.ButtonRole.AcceptRole)
        assert stop.text().replace("&&", "&") == "Stop & save"
        stop.click()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=WORK_TIMEOUT_MS)
    assert not tab.controller.is_running() and tab.controller._job._thread is None
    finished = blocker.args[0]
    assert finished.outcome == "stopped"
    assert (Path(finished.output_dir) / "model.safetensors").is_file()
    assert _run_record(finished.output_dir)["outcome"] == "stopped"
    assert window.workspace is None, "the window closed for real and released its workspace"


@pytest.mark.slow
def test_switching_workspace_during_a_run_stops_and_saves_it_first(qtbot, tab, demo_workspace, tmp_path):
    from cognitivetwin_core.data.workspace import Workspace

    tab.epochs_spin.setValue(20)
    with qtbot.waitSignal(tab.controller.stepDone, timeout=RUN_TIMEOUT_MS):
        assert tab.start()
    output = Path(tab.controller.trainer.output_dir)
    with Workspace.open(tmp_path / "other") as other:
        tab.set_workspace(other)  # the window closes the previous workspace right after this
        assert not tab.controller.is_running()
        assert _run_record(output)["outcome"] == "stopped"
        assert "stopped and saved" in tab.message.text()
        qtbot.waitUntil(lambda: tab.start_button.isEnabled(), timeout=WORK_TIMEOUT_MS)
        assert tab.runs == []  # the new workspace has no runs
    assert demo_workspace.get_phase2_run(_run_record(output)["run_id"])["outcome"] == "stopped"


def test_encoding_eta_counts_down_between_batches(qtbot, monkeypatch):
    """An encoding batch can take longer than a second: the ETA shown still moves every second."""
    from app.tabs import phase2_live, phase2_tab
    from cognitivetwin_core.durations import format_duration
    from cognitivetwin_core.phase2.events import EncodingEvent, StepEvent

    widget = phase2_tab.Phase2Tab()
    qtbot.addWidget(widget)
    now = [1000.0]
    monkeypatch.setattr(phase2_live.time, "monotonic", lambda: now[0])
    widget._on_run_started(None)
    widget._on_encoding(EncodingEvent(10, 100, 5000, 50.0, 90.0, False))
    assert widget.eta_label.text() == f"ETA {format_duration(90.0, clock=True)} (encoding)"
    now[0] += 30  # no new batch yet; the once-a-second clock ticks
    widget._count_down_eta()
    assert widget.eta_label.text().startswith(f"ETA {format_duration(60.0, clock=True)} (encoding)")
    assert "last update 30s ago" in widget.eta_label.text()
    now[0] += 500  # a slow machine: the estimate ran out, it does not go negative
    widget._count_down_eta()
    assert widget.eta_label.text().startswith(f"ETA {format_duration(0.0, clock=True)} (encoding)")
    widget._on_step(StepEvent(1, 1, 1, 2, 1, 2, {"total": 1.0}, 1e-3, 1.0, 5.0))
    widget._count_down_eta()  # training: the step's own ETA, just given
    assert widget.eta_label.text() == f"ETA {format_duration(5.0, clock=True)}"
    widget._tick()
    assert "VRAM" not in widget.memory_label.text()  # a CPU run's steps carry no device memory
    gib = 2**30
    widget._on_step(StepEvent(1, 1, 2, 2, 2, 2, {"total": 1.0}, 1e-3, 1.0, 0.0, device_memory=(3 * gib, 5 * gib)))
    widget._tick()  # a CUDA run: the figure comes from the training child's step, not this process
    assert widget.memory_label.text().endswith("VRAM 3.00 GiB (peak 5.00 GiB)")


def test_memory_verdict_before_start_and_catalog_bases_to_download(qtbot, tab, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    tab.show()
    qtbot.waitUntil(lambda: tab.memory_verdict.fits is not None, timeout=WORK_TIMEOUT_MS)
    assert tab.memory_verdict.fits and "Encoding your conversations with" in tab.memory_verdict.text()
    assert not tab.base_download.isVisible()  # a folder: nothing to download

    index = tab.base_combo.findData("llama-3.1-8b")
    assert index >= 0 and "not downloaded" in tab.base_combo.itemText(index)
    tab.base_combo.setCurrentIndex(index)
    assert tab.base_download.isVisible() and "Llama 3.1 8B" in tab.base_download.label.text()
    qtbot.waitUntil(lambda: "Llama 3.1 8B" in tab.memory_verdict.text(), timeout=WORK_TIMEOUT_MS)

    # A base that does not fit is refused at Start with the verdict's sentence.
    from cognitivetwin_core.models import memory

    monkeypatch.setattr(memory, "free_memory", lambda device: (1 * memory.GIB, None))
    tab.memory_verdict.in_child = False  # the patch above lives in this process
    with qtbot.waitSignal(tab.memory_verdict.checked, timeout=WORK_TIMEOUT_MS):
        tab._check_memory()
    assert tab.memory_verdict.fits is False
    assert tab.start() is False and "needs about" in tab.message.text()
    assert not tab.controller.is_running()
    tab.base_download.shutdown()
    tab.memory_verdict.shutdown()


def test_all_gpus_is_offered_past_one_gpu_and_starts_one_process_each(qtbot, tab, monkeypatch):
    from app.tabs.phase2_form import ALL_GPUS

    tab.show()  # counts the GPUs in the helper child: none on this machine, so no such choice
    qtbot.waitUntil(lambda: tab.gpu_count is not None, timeout=WORK_TIMEOUT_MS)
    assert tab.gpu_count == 0 and tab.device_combo.findData(ALL_GPUS) < 0

    tab.show_gpu_count(4)  # what a four-GPU machine reports
    index = tab.device_combo.findData(ALL_GPUS)
    assert index >= 0 and tab.device_combo.itemText(index) == "All 4 GPUs"
    tab.device_combo.setCurrentIndex(index)
    started = {}

    def start(config, **kwargs):
        started.update(kwargs, device=config.device)
        return True

    monkeypatch.setattr(tab.controller, "start", start)
    assert tab.start()
    assert started["device"] == "cuda" and started["processes"] == 4

    tab.device_combo.setCurrentIndex(tab.device_combo.findData("cpu"))
    assert tab.start() and started["device"] == "cpu" and started["processes"] == 1
    tab.show_gpu_count(1)
    assert tab.device_combo.findData(ALL_GPUS) < 0
