"""The Playground's blind test page: pairs from an evaluated twin, answered with the keys 1
and 2 (S skips), each answer saved in the workspace and the score shown as "N of M"."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt


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
