"""Phase 1 starts where a job can run: this computer with the built-in model when there is no
Together key; Launch never enabled for a job that cannot start (the reason and one fix beside
it); the workspace's data used without a manual export; one token count that respects the
step cap; the choices remembered across a restart; a rising loss said in words."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tests.waits import WORK_TIMEOUT_MS


@pytest.fixture()
def workspace(tmp_path):
    from cognitivetwin_core.data.workspace import Workspace

    with Workspace.open(tmp_path / "ws") as ws:
        yield ws


def _make_tab(qtbot, workspace, *, key=None):
    from app.tabs.phase1_tab import Phase1Tab

    tab = Phase1Tab()
    tab.controller.read_api_key = lambda: key
    qtbot.addWidget(tab)
    tab.resize(1150, 780)
    tab.set_workspace(workspace)
    tab.show()
    qtbot.waitExposed(tab)
    qtbot.waitUntil(lambda: tab.has_key is not None, timeout=WORK_TIMEOUT_MS)
    return tab


@pytest.fixture()
def tab(qtbot, qasync_loop, isolated_user_dirs, workspace):
    from app.main import create_application

    create_application()
    widget = _make_tab(qtbot, workspace)
    yield widget
    widget.shutdown()


def test_without_a_key_it_starts_on_this_computer_and_explains_what_blocks(tab, qtbot, workspace):
    from cognitivetwin_core.data.importers import import_into

    assert tab.backend_name() == "local" and tab.base_combo.currentData() == "smollm2-135m"
    assert tab.has_key is False
    # No conversations yet: nothing can start, and the fix is named.
    assert not tab.dry_run_button.isEnabled() and not tab.launch_button.isEnabled()
    assert tab.launch_reason.isVisible() and "no conversations" in tab.launch_reason.text()
    assert tab.fix_button.text() == "Open Data"
    with qtbot.waitSignal(tab.openTabRequested) as opened:
        qtbot.mouseClick(tab.fix_button, Qt.MouseButton.LeftButton)
    assert opened.args == ["Data"]

    import_into(workspace, "demo")
    tab._update_buttons()
    assert tab.dry_run_button.isEnabled() and not tab.launch_reason.isVisible()

    # Together without a key: blocked, with the way to add one.
    tab.set_backend("together")
    qtbot.waitUntil(lambda: tab.has_key is False, timeout=WORK_TIMEOUT_MS)
    tab._update_buttons()
    assert not tab.dry_run_button.isEnabled() and "Together key" in tab.launch_reason.text()
    assert tab.fix_button.text() == "Add a key"

    # Back to this computer: a base that is not on disk is swapped for the built-in one.
    tab.base_combo.setCurrentIndex(tab.base_combo.findData("llama-3.2-3b"))
    tab.set_backend("local")
    assert tab.base_combo.currentData() == "smollm2-135m"
    assert "not on this computer" in tab.message.text()
    # Chosen by hand anyway: blocked, and the fix puts the built-in model back.
    tab.base_combo.setCurrentIndex(tab.base_combo.findData("llama-3.2-3b"))
    assert not tab.dry_run_button.isEnabled() and not tab.launch_button.isEnabled()
    assert "not on this computer" in tab.launch_reason.text() and tab.fix_button.text() == "Use the built-in model"
    qtbot.mouseClick(tab.fix_button, Qt.MouseButton.LeftButton)
    assert tab.base_combo.currentData() == "smollm2-135m" and tab.dry_run_button.isEnabled()


def test_with_a_key_and_no_saved_choice_it_starts_on_together(qtbot, qasync_loop, isolated_user_dirs, workspace):
    from app.main import create_application

    create_application()
    tab = _make_tab(qtbot, workspace, key="tgp_" + "0" * 40)
    try:
        assert tab.has_key is True and tab.backend_name() == "together"
    finally:
        tab.shutdown()


@pytest.mark.slow
def test_the_dry_run_uses_the_workspace_and_counts_tokens_once_with_the_step_cap(tab, qtbot, workspace):
    from cognitivetwin_core.data.importers import import_into

    import_into(workspace, "demo")
    assert tab.data_path.text() == ""
    tab.epochs.setValue(2)
    tab.max_steps.setValue(2)
    tab._update_buttons()
    with qtbot.waitSignal(tab.controller.dryRunDone, timeout=WORK_TIMEOUT_MS) as done:
        qtbot.mouseClick(tab.dry_run_button, Qt.MouseButton.LeftButton)
    plan = done.args[0]
    exported = Path(plan.data.path)
    assert exported.parent == Path(workspace.path) / "exports" and exported.is_file()
    assert not list(exported.parent.glob("*.tmp*")), "written atomically"
    size = plan.limits["local_size"]
    assert size["total_steps"] == 2 < size["steps_per_epoch"] * 2
    assert plan.estimated_tokens == size["tokens_to_train"] < size["tokens_per_epoch"] * 2
    text = tab.dry_run_summary.text()
    assert "your workspace's conversations" in text
    assert "the step cap stops it after 2 of" in text
    assert text.count("tokens:") == 1, "one token count"
    assert tab.launch_button.isEnabled()


def test_choices_are_remembered_across_a_restart(tab, qtbot, workspace):
    tab.epochs.setValue(5)
    tab.lora_rank.setValue(8)
    tab.max_steps.setValue(7)
    tab.learning_rate.setText("0.0003")
    tab.suffix.setText("me-too")
    tab.set_backend("local")
    tab.shutdown()
    again = _make_tab(qtbot, workspace)
    try:
        assert again.backend_name() == "local" and again.base_combo.currentData() == "smollm2-135m"
        assert (again.epochs.value(), again.lora_rank.value(), again.max_steps.value()) == (5, 8, 7)
        assert again.learning_rate.text() == "0.0003" and again.suffix.text() == "me-too"
    finally:
        again.shutdown()


def test_a_rising_loss_is_said_in_words(tab):
    for step, loss in enumerate([2.0, 2.1, 2.3], start=1):
        tab._on_loss_point("local-x", step, loss)
    assert tab.loss_verdict("local-x").kind == "unknown", "three steps are noise, not a trend"
    for step, loss in enumerate([2.6, 2.9, 3.3, 3.4, 3.6, 3.9], start=4):
        tab._on_loss_point("local-x", step, loss)
    verdict = tab.loss_verdict("local-x")
    assert verdict.kind == "rising" and "not learning" in verdict.message
