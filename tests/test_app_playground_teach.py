"""The Chat page's memory and teaching: remembered messages shown above the twin's reply,
thumbs and an in-place edit stored as feedback (and undone), and Teach run off the GUI
thread with its loss and reward margin plotted, ending on the new version of the twin."""

from __future__ import annotations

import json
import threading

import pytest

from tests.waits import WORK_TIMEOUT_MS

FACT = "My dog is called Biscuit, she's a three-legged greyhound."


@pytest.fixture()
def workspace(tmp_path, isolated_user_dirs):
    from cognitivetwin_core.conversation import Conversation, Message
    from cognitivetwin_core.data.exports import in_validation
    from cognitivetwin_core.data.message_memory import HELD_OUT_SHARE, build_memory
    from cognitivetwin_core.data.workspace import Workspace

    kept = next(f"dog-{i}" for i in range(100) if not in_validation(f"dog-{i}", HELD_OUT_SHARE))
    workspace = Workspace.open(tmp_path / "ws")
    workspace.add_conversations(
        [Conversation(kept, "test", [Message("user", "what's your dog called?"), Message("assistant", FACT)])]
    )
    build_memory(workspace)
    yield workspace
    workspace.close()


@pytest.mark.slow
def test_memory_feedback_and_teach_in_the_chat_page(qtbot, workspace, tiny_adapter, test_output_dir):
    from PySide6.QtWidgets import QApplication

    from app.tabs.playground_chat import ChatPanel
    from cognitivetwin_core.data.feedback import list_feedback

    panel = ChatPanel()
    qtbot.addWidget(panel)
    panel.resize(1000, 760)
    panel.show()
    qtbot.waitExposed(panel)
    panel.set_workspace(workspace)
    panel.add_adapter_folder(tiny_adapter)
    assert panel.memory_box.isEnabled() and panel.memory_box.isChecked()  # on where there is a memory
    panel.max_new_tokens.setValue(8)
    panel.seed.setValue(1)
    try:
        turns = []
        for text in ("what is your dog called?", "and your cat?"):
            panel.input.setPlainText(text)
            with qtbot.waitSignal(panel.replyFinished, timeout=WORK_TIMEOUT_MS) as finished:
                assert panel.send()
            turns.append(finished.args[0])
        view = panel.transcript_layout.itemAt(1).widget().layout().itemAt(0).widget()
        assert [item.text for item in turns[0].remembered] == [FACT]
        assert view.remembered.isVisible() and view.remembered.text() == f"remembered: {FACT}"

        # "I'd say it like this": the reply becomes an editor in place; the edit is stored.
        bar = view.feedback
        bar.edit_button.click()
        assert bar.editor.isVisible() and not view.text.isVisible()
        assert bar.editor.toPlainText() == turns[0].twin.text
        bar.editor.setPlainText("Biscuit! best dog in Yorkshire")
        bar.keep_button.click()
        assert view.text.isVisible() and "You'd say: Biscuit! best dog in Yorkshire" in view.text.text()
        records = list_feedback(workspace)
        assert [(r.verdict, r.edit, r.reply) for r in records] == [
            ("edit", "Biscuit! best dog in Yorkshire", turns[0].twin.text)
        ]
        assert records[0].context[-1] == {"role": "user", "content": "what is your dog called?"}
        assert FACT not in json.dumps(records[0].context)  # memory is not part of what was said
        second = panel.transcript_layout.itemAt(3).widget().layout().itemAt(0).widget().feedback
        second.bad_button.click()
        second.undo_button.click()
        second.good_button.click()
        assert [r.verdict for r in list_feedback(workspace)] == ["edit", "good"]
        QApplication.processEvents()  # the layout requests the new bars posted
        panel.grab().save(str(test_output_dir / "playground-feedback.png"))

        # Teach: off the GUI thread, loss and margin plotted, the new version chosen.
        teach = panel.teach
        teach.max_steps = 3
        threads = []
        teach.job.progress.connect(lambda _event: threads.append(threading.current_thread()))
        with qtbot.waitSignal(teach.taught, timeout=WORK_TIMEOUT_MS) as taught:
            teach.teach_button.click()
            assert not panel.adapter_combo.isEnabled()
        assert threads and all(t is threading.main_thread() for t in threads)  # relayed to the GUI thread
        teach.loss_plot.flush()
        teach.margin_plot.flush()
        assert teach.loss_plot.point_count("loss") == 3 and teach.margin_plot.point_count("margin") == 3
        assert panel.adapter_combo.currentData() == taught.args[0] != str(tiny_adapter)
        assert "new version" in teach.message.text()
        panel.grab().save(str(test_output_dir / "playground-teach.png"))
    finally:
        panel.shutdown()
