"""The guided path from a fresh start to the Playground, as a person follows it: the Start
tab's buttons, the demo data, Phase 1 on this computer with the built-in model (two steps),
a one-epoch Phase 2 run, then the Playground; a screenshot of each step in
test-output/guided_path/. Also: every technical word on every tab has its meaning in a
tooltip, the window keeps its width whichever tab is shown, and Help ▸ Guide opens."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QGroupBox, QLabel, QTableWidget

from cognitivetwin_core import glossary
from tests.waits import WORK_TIMEOUT_MS

PATH_TIMEOUT_MS = WORK_TIMEOUT_MS


@pytest.fixture()
def confirm_launch(monkeypatch):
    from app.dialogs.phase1_confirm import LaunchConfirmDialog, confirmation_text

    asked = []

    async def ask(cls, parent, plan):
        asked.append(confirmation_text(plan))
        return True

    monkeypatch.setattr(LaunchConfirmDialog, "ask", classmethod(ask))
    return asked


def _shot(window, folder, name):
    """Grab the window into `folder` at the default size (1200×800), and into the guide's
    folder when packaging/update_guide.py runs; then at the smallest usable size (1000×680).
    At both, nothing a person would stumble on (`tests/window_checks.py`)."""
    import os
    from pathlib import Path

    from PySide6.QtWidgets import QApplication
    from window_checks import SIZES, check_window

    folder.mkdir(parents=True, exist_ok=True)
    problems = check_window(window, _qtbot(), folder, name, _machine_paths())
    window.resize(*SIZES[0])
    QApplication.processEvents()
    path = folder / f"{name}.png"
    image = window.grab()
    assert image.save(str(path)), path
    guide = os.environ.get("COGNITIVETWIN_GUIDE_SHOTS")
    if guide:
        assert image.save(str(Path(guide) / f"{name}.png"))
    assert not problems, "\n".join(problems)
    return path


_current = {}


def _qtbot():
    return _current["qtbot"]


def _machine_paths():
    return _current["paths"]


def _follow(window, qtbot, start, key):
    """Back to Start, check `key` is the step it highlights, press its button."""
    window.open_tab("Start")
    journey = start.refresh()
    assert journey.current is not None and journey.current.key == key, journey.headline
    card = start.card(key)
    assert card.button.isDefault(), "the step to do next is the highlighted one"
    qtbot.mouseClick(card.button, Qt.MouseButton.LeftButton)
    return window.tabs.currentWidget()


@pytest.mark.slow
def test_the_guided_path_from_a_fresh_start_to_the_playground(
    window, qtbot, test_output_dir, confirm_launch, isolated_user_dirs
):
    from window_checks import SIZES, machine_paths

    _current.update(qtbot=qtbot, paths=machine_paths(isolated_user_dirs))
    shots = test_output_dir / "guided_path"
    window.resize(*SIZES[0])
    with qtbot.waitSignal(window.deviceDetected, timeout=WORK_TIMEOUT_MS):  # the status bar as a person sees it
        window.detect_device()
    start = window.tab_widgets["Start"]
    assert window.tabs.currentWidget() is start, "a fresh start opens on the guided path"
    assert start.journey.current.key == "data" and start.demo_button.isVisible()
    _shot(window, shots, "1_fresh_start")

    # 1. Bring your conversations: the demo.
    data_tab = _follow(window, qtbot, start, "data")
    assert data_tab is window.data_tab
    with qtbot.waitSignal(data_tab.importFinished, timeout=WORK_TIMEOUT_MS):
        window.load_demo_data()
    qtbot.waitUntil(lambda: not data_tab.is_busy() if hasattr(data_tab, "is_busy") else True, timeout=WORK_TIMEOUT_MS)
    _shot(window, shots, "2_data")
    workspace = window.workspace
    if hasattr(workspace, "set_twin_speaker") and start.refresh().current.key == "data":
        workspace.set_twin_speaker("assistant")  # "Which of these is you?" (the Data tab's picker)
    window.open_tab("Start")
    _shot(window, shots, "3_start_after_data")

    # 2. Teach the base your voice: this computer, the built-in model, two steps.
    phase1 = _follow(window, qtbot, start, "phase1")
    assert phase1 is window.tab_widgets["Phase 1"]
    qtbot.waitUntil(lambda: phase1.has_key is not None, timeout=WORK_TIMEOUT_MS)
    assert phase1.backend_name() == "local" and phase1.base_combo.currentData() == "smollm2-135m"
    assert phase1.data_path.text() == "" and phase1.dry_run_button.isEnabled()
    phase1.epochs.setValue(1)
    phase1.max_steps.setValue(2)
    with qtbot.waitSignal(phase1.controller.dryRunDone, timeout=WORK_TIMEOUT_MS):
        qtbot.mouseClick(phase1.dry_run_button, Qt.MouseButton.LeftButton)
    assert phase1.launch_button.isEnabled()
    with qtbot.waitSignal(phase1.controller.jobEnded, timeout=PATH_TIMEOUT_MS) as ended:
        qtbot.mouseClick(phase1.launch_button, Qt.MouseButton.LeftButton)
    assert ended.args[0].status == "completed", ended.args[0].message
    qtbot.wait(200)
    _shot(window, shots, "4_phase1")

    # 3. Learn your style: one epoch of Phase 2 on this computer.
    phase2 = _follow(window, qtbot, start, "phase2")
    assert phase2 is window.tab_widgets["Phase 2"]
    adapter = workspace.adapters()[-1]
    assert phase2.adapter_combo.currentData() == adapter["path"], "Phase 2 learns on the voice of Phase 1"
    phase2.epochs_spin.setValue(1)
    phase2.device_combo.setCurrentIndex(phase2.device_combo.findData("cpu"))
    with qtbot.waitSignal(phase2.controller.runFinished, timeout=PATH_TIMEOUT_MS) as finished:
        assert phase2.start()
    assert finished.args[0].outcome == "completed", finished.args[0].message
    qtbot.waitUntil(lambda: not phase2.controller.is_running(), timeout=WORK_TIMEOUT_MS)
    qtbot.wait(300)
    _shot(window, shots, "5_phase2")

    # 4. Meet your twin.
    playground = window.tab_widgets["Playground"]
    with qtbot.waitSignal(playground.runLoaded, timeout=PATH_TIMEOUT_MS):
        assert _follow(window, qtbot, start, "playground") is playground
    qtbot.waitUntil(lambda: not playground.controller.is_busy(), timeout=PATH_TIMEOUT_MS)
    qtbot.wait(300)
    _shot(window, shots, "6_playground")
    window.open_tab("Start")
    journey = start.refresh()
    assert [s.state for s in journey.steps[:3]] == ["done", "done", "done"]
    _shot(window, shots, "7_start_at_the_end")


def _shown_terms(widget) -> list[tuple[str, str]]:
    """(text, tooltip) of every label, button, group title and table header under `widget`
    that shows a glossary term, found here independently of app.widgets.glossary_tips."""
    found = []
    for child in [widget, *widget.findChildren(QLabel), *widget.findChildren(QAbstractButton)]:
        if not child.isVisibleTo(widget) or child.window() is not widget.window():
            continue  # hidden, or a popup (the tooltip's own label)
        text = child.text() if isinstance(child, (QLabel, QAbstractButton)) else ""
        if glossary.terms_in(text):
            found.append((text, child.toolTip()))
    for group in widget.findChildren(QGroupBox):
        if glossary.terms_in(group.title()):
            found.append((group.title(), group.toolTip()))
    from PySide6.QtWidgets import QHeaderView

    from app.widgets.glossary_tips import header_tooltip

    for table in widget.findChildren(QTableWidget):
        for column in range(table.columnCount()):
            item = table.horizontalHeaderItem(column)
            if item is not None and glossary.terms_in(item.text()):
                found.append((item.text(), item.toolTip()))
    # Every other item view's header (custom models): the tooltip a hover over the section shows.
    for header in widget.findChildren(QHeaderView):
        model = header.model()
        if model is None or header.isHidden():
            continue
        count = model.columnCount() if header.orientation() == Qt.Orientation.Horizontal else model.rowCount()
        for section in range(count):
            title = str(model.headerData(section, header.orientation(), Qt.ItemDataRole.DisplayRole) or "")
            if glossary.terms_in(title):
                found.append((title, header_tooltip(header, section)))
    return found


def _hover_everything(widget) -> None:
    """Hand each label, button and group the event a mouse hover sends before its tooltip, to
    the app's filter (as Qt does first; the popup itself cannot show offscreen)."""
    from PySide6.QtCore import QEvent, QPoint
    from PySide6.QtGui import QHelpEvent
    from PySide6.QtWidgets import QApplication

    tooltips = QApplication.instance()._glossary_tooltips
    for child in [*widget.findChildren(QLabel), *widget.findChildren(QAbstractButton), *widget.findChildren(QGroupBox)]:
        if child.isVisibleTo(widget) and child.window() is widget.window():
            point = QPoint(1, 1)
            tooltips.eventFilter(child, QHelpEvent(QEvent.Type.ToolTip, point, child.mapToGlobal(point)))


@pytest.mark.slow
def test_every_technical_word_on_every_tab_has_its_meaning_in_a_tooltip(window, qtbot):
    checked = 0
    for index in range(window.tabs.count()):
        window.tabs.setCurrentIndex(index)
        qtbot.wait(20)
        tab = window.tabs.currentWidget()
        _hover_everything(tab)
        for text, tip in _shown_terms(tab):
            for term in glossary.terms_in(text):
                assert term.meaning in tip, f"{window.tabs.tabText(index)}: {text!r} lacks the meaning of {term.name!r}"
                checked += 1
    assert checked >= 30, "the tabs show many technical words"
    # A tooltip the app wrote itself stays, with the meaning under it.
    phase1 = window.tab_widgets["Phase 1"]
    assert phase1.lora_rank.toolTip() == "LoRA rank r; alpha is set to 2 x r." or "alpha" in phase1.lora_rank.toolTip()


@pytest.mark.slow
def test_the_window_keeps_its_width_whichever_tab_is_shown(window, qtbot):
    window.resize(1100, 760)
    qtbot.wait(50)
    width = window.width()
    for index in [*range(window.tabs.count()), 0]:
        window.tabs.setCurrentIndex(index)
        qtbot.wait(50)
        assert window.width() == width, f"showing {window.tabs.tabText(index)} changed the window's width"


def test_help_guide_opens_offline_with_the_apps_screenshots_and_the_glossary(window, qtbot):
    from app.dialogs.guide import guide_dir

    dialog = window.show_guide()
    qtbot.waitExposed(dialog)
    text = dialog.browser.toPlainText()
    for step in ("Bring your conversations", "Teach the base your voice", "Learn your style", "Meet your twin"):
        assert step in text
    assert glossary.meaning("LoRA rank") in text
    html = (guide_dir() / "guide.html").read_text(encoding="utf-8")
    import re

    images = re.findall(r'<img[^>]+src="([^"]+)"', html)
    assert len(images) >= 5
    for name in images:
        assert (guide_dir() / name).is_file(), name
    dialog.close()


def test_the_start_tab_says_what_to_do_next_and_its_buttons_open_the_tabs(window, qtbot):
    from cognitivetwin_core.data.importers import import_into

    start = window.tab_widgets["Start"]
    assert start.headline.text().startswith("Step 1 of 4") and start.demo_button.isVisible()
    states = [card.step.state for card in start.cards]
    assert states == ["next", "later", "later", "later"]
    assert start.card("data").button.isDefault() and not start.card("phase1").button.isDefault()
    qtbot.mouseClick(start.card("data").button, Qt.MouseButton.LeftButton)
    assert window.tabs.currentWidget() is window.data_tab
    import_into(window.workspace, "demo")
    if hasattr(window.workspace, "set_twin_speaker"):
        window.workspace.set_twin_speaker("assistant")
    qtbot.keyClick(window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is start
    assert start.headline.text().startswith("Step 2 of 4"), "the page is redrawn when shown"
    assert not start.demo_button.isVisible()
    qtbot.mouseClick(start.card("phase1").button, Qt.MouseButton.LeftButton)
    assert window.tabs.currentWidget() is window.tab_widgets["Phase 1"]


def test_the_data_tab_keeps_its_layout_when_conversations_arrive(window, qtbot):
    data_tab = window.data_tab
    window.open_tab("Data")
    qtbot.wait(50)
    from PySide6.QtCore import QPoint

    def list_geometry():
        return data_tab.list_view.mapTo(data_tab, QPoint(0, 0))

    before = data_tab.minimumSizeHint().width()
    where = list_geometry()
    seen = []
    data_tab.jobFinished.connect(lambda: seen.append(list_geometry()))
    with qtbot.waitSignal(data_tab.importFinished, timeout=WORK_TIMEOUT_MS):
        assert data_tab.import_demo()
        # Lay out now rather than wait: on a quiet machine the demo import ends within a wait.
        data_tab.layout().activate()
        assert data_tab.progress_bar.isVisible()
        seen.append(list_geometry())  # while the progress row shows
    qtbot.wait(100)
    seen.append(list_geometry())
    assert data_tab.minimumSizeHint().width() == before, "a filter grew with the new sources or patterns"
    assert all(geometry == where for geometry in seen), f"the list pane moved: {where} then {seen}"
