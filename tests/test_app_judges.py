"""The judges in the app: the Playground's blind test page (pairs from an evaluated twin, keys 1
and 2, S skips, each answer saved in the workspace, the score shown as "N of M"), and the
Phase 1 jobs' "Open the report" for an evaluated twin."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt

from tests.waits import WORK_TIMEOUT_MS


def test_blind_test_page_takes_keys_and_saves_answers(qtbot, isolated_user_dirs, tmp_path):
    from app.tabs.playground_blind import BlindTestPanel
    from cognitivetwin_core.data.blind_answers import blind_tally
    from cognitivetwin_core.data.workspace import Workspace

    adapter = tmp_path / "twin"
    adapter.mkdir()
    examples = [
        {"context": f"message {i}", "real": f"my real reply {i}", "twin": f"the twin's reply {i}", "base": "b"}
        for i in range(4)
    ]
    (adapter / "evaluation.json").write_text(json.dumps({"examples": examples}), encoding="utf-8")
    with Workspace.open(tmp_path / "ws") as workspace:
        workspace.register_adapter("twin", adapter, {"backend": "local"})
        panel = BlindTestPanel()
        qtbot.addWidget(panel)
        panel.set_workspace(workspace)
        panel.show()
        assert panel.adapter_combo.count() == 1 and not panel.choose_first.isEnabled()
        assert panel.start(seed=3)
        assert panel.progress.text().startswith("Pair 1 of 4: Which one did you write?")
        pair = panel.test.pairs[0]
        shown = {panel.first_text.text(), panel.second_text.text()}
        assert shown == {f"my real reply {pair.example}", f"the twin's reply {pair.example}"}
        qtbot.keyClick(panel, Qt.Key.Key_1 if pair.real_position == 1 else Qt.Key.Key_2)  # picks the real one
        qtbot.keyClick(panel, Qt.Key.Key_S)
        qtbot.mouseClick(panel.choose_first, Qt.MouseButton.LeftButton)
        qtbot.mouseClick(panel.choose_second, Qt.MouseButton.LeftButton)
        assert panel.progress.text().startswith("Done: 4 pairs")
        assert not panel.choose_first.isEnabled()
        tally = blind_tally(workspace, adapter, "mine")
        assert tally.answered == 3 and tally.skipped == 1 and tally.correct >= 1
        assert f"You picked your own reply {tally.correct} of 3" in panel.score.text()


def test_phase1_jobs_offer_the_report_of_an_evaluated_twin(qtbot, qasync_loop, isolated_user_dirs, tmp_path):
    from app.tabs.phase1_tab import Phase1Tab
    from cognitivetwin_core.data.workspace import Workspace

    adapter = tmp_path / "twin"
    adapter.mkdir()
    with Workspace.open(tmp_path / "ws") as workspace:
        workspace.register_adapter("local-twin", adapter, {"backend": "local"})
        workspace.upsert_phase1_job(
            "local-twin",
            {"backend": "local", "status": "completed", "adapter_id": "local-twin", "adapter_path": str(adapter)},
        )
        tab = Phase1Tab()
        qtbot.addWidget(tab)
        tab.set_workspace(workspace)
        tab.report_button.open_in_browser = False
        qtbot.waitUntil(lambda: tab.job_row("local-twin") is not None, timeout=5_000)
        tab._select_job("local-twin")
        assert not tab.report_button.isEnabled()  # not evaluated yet
        evaluation = {
            "held_out": {"source": "s", "replies": 3, "person": "Maya"},
            "perplexity": {"base": 9.0, "twin": 7.0},
            "examples": [{"context": "c", "real": "r", "twin": "t", "base": "b"}],
        }
        (adapter / "evaluation.json").write_text(json.dumps(evaluation), encoding="utf-8")
        tab.report_button.refresh()
        assert tab.report_button.isEnabled()
        with qtbot.waitSignal(tab.report_button.written, timeout=WORK_TIMEOUT_MS) as done:
            qtbot.mouseClick(tab.report_button, Qt.MouseButton.LeftButton)
        page = (adapter / "report.html").read_text(encoding="utf-8")
        assert done.args == [str(adapter / "report.html")] and "Is it you?" in page
        tab.shutdown()


def test_phase2_offers_a_phase1_adapter_that_appeared_while_it_was_hidden(qtbot, isolated_user_dirs, tmp_path):
    from app.tabs.phase2_tab import Phase2Tab
    from cognitivetwin_core.data.workspace import Workspace

    with Workspace.open(tmp_path / "ws") as workspace:
        tab = Phase2Tab()
        qtbot.addWidget(tab)
        tab.set_workspace(workspace)
        assert tab.adapter_combo.currentData() is None  # no Phase 1 voice yet: the base alone
        adapter = tmp_path / "voice"
        adapter.mkdir()
        base = tab.base_combo.currentData()
        workspace.register_adapter("local-voice", adapter, {"backend": "local", "base_model": base})
        tab.show()  # the person comes back to the tab after the Phase 1 job finished
        assert tab.adapter_combo.currentData() == str(adapter)
        tab.shutdown()
