"""The Playground's Chat panel: replies stream in from a worker thread, Stop stops, the
scores are shown, and the GUI thread keeps running while the model works."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from tests.pickled_modules import torch_modules
from tests.waits import WORK_TIMEOUT_MS


@pytest.fixture()
def panel(qtbot, isolated_user_dirs, tiny_adapter):
    from app.tabs.playground_chat import ChatPanel

    widget = ChatPanel()
    qtbot.addWidget(widget)
    widget.resize(1000, 640)
    widget.show()
    qtbot.waitExposed(widget)
    widget.add_adapter_folder(tiny_adapter)
    yield widget
    widget.shutdown()


def test_chat_panel_streams_compares_and_shows_scores(panel, qtbot, phase2_demo_run, test_output_dir):
    from PySide6.QtCore import QTimer

    panel.set_phase2_run(phase2_demo_run)
    panel.temperature.setValue(1.0)
    panel.seed.setValue(3)
    panel.max_new_tokens.setValue(30)
    panel.compare_box.setChecked(True)
    panel.system_prompt.setText("Answer like me.")
    pieces = {"twin": [], "base": []}
    panel.textArrived.connect(lambda who, piece: pieces[who].append(piece))
    # The GUI thread's event loop must keep turning while the model works.
    ticks = []
    timer = QTimer(panel, interval=20)
    timer.timeout.connect(lambda: panel.is_busy() and ticks.append(threading.current_thread()))
    timer.start()
    panel.input.setPlainText("the migration hangs again. why")
    with qtbot.waitSignal(panel.replyFinished, timeout=WORK_TIMEOUT_MS) as finished:
        assert panel.send()
        assert not panel.send_button.isEnabled() and panel.stop_button.isEnabled()
    timer.stop()
    turn = finished.args[0]
    assert panel.chat.pid not in (None, os.getpid())  # written in the chat's child process
    assert torch_modules(turn) == []  # so what it sent imports no torch here
    assert len(pieces["twin"]) >= 3 and len(pieces["base"]) >= 3  # streamed in several signals
    assert "".join(pieces["twin"]).strip() == turn.twin.text
    assert len(ticks) >= 3 and all(t is threading.main_thread() for t in ticks)
    twin_view, base_view = panel._views["twin"], panel._views["base"]
    assert twin_view.text.text() == turn.twin.text and base_view.text.text() == turn.base.text
    for view, reply in ((twin_view, turn.twin), (base_view, turn.base)):
        assert f"style closeness: {reply.score.sounds_like:.2f}" in view.score.text()
        assert "patterns:" in view.score.text()
    assert panel.send_button.isEnabled() and not panel.stop_button.isEnabled()
    # Once the layout has caught up, each reply's frame holds its whole text and scores.
    for view in (twin_view, base_view):
        for label in (view.text, view.score):
            qtbot.waitUntil(lambda label=label: label.height() >= label.heightForWidth(label.width()), timeout=5_000)
        assert view.text.geometry().bottom() < view.score.geometry().top()
        assert view.score.geometry().bottom() < view.height()
    panel.grab().save(str(test_output_dir / "playground-chat.png"))

    saved = panel.save(test_output_dir / "playground-chat.json")
    record = json.loads(saved.read_text())
    assert (
        record["system_prompt"] == "Answer like me." and record["turns"][0]["base"]["score"]["sounds_like"] is not None
    )
    panel.clear()
    assert panel.turns() == [] and not panel.save_button.isEnabled()


@pytest.mark.slow
def test_chat_panel_stop_ends_the_reply(panel, qtbot):
    panel.set_phase2_run(None)
    panel.temperature.setValue(1.0)
    panel.max_new_tokens.setValue(1500)
    panel.compare_box.setChecked(True)
    panel.textArrived.connect(lambda who, piece: panel.stop())
    with qtbot.waitSignal(panel.replyFinished, timeout=WORK_TIMEOUT_MS) as finished:
        assert panel.send("tell me everything")
    turn = finished.args[0]
    assert turn.twin.stopped and turn.twin.tokens < 1500
    assert turn.base is None  # a stopped twin reply skips the base's
    assert panel.status.text() == "Stopped." and "stopped" in panel._views["twin"].score.text()
    # The conversation goes on after a stop.
    panel.textArrived.disconnect()
    panel.max_new_tokens.setValue(5)
    panel.compare_box.setChecked(False)
    with qtbot.waitSignal(panel.replyFinished, timeout=WORK_TIMEOUT_MS):
        assert panel.send("and then?")
    assert len(panel.turns()) == 2


def test_chat_panel_says_when_there_is_no_adapter(qtbot, isolated_user_dirs):
    from app.tabs.playground_chat import ChatPanel
    from cognitivetwin_core.data.workspace import Workspace

    widget = ChatPanel()
    qtbot.addWidget(widget)
    with Workspace.open(isolated_user_dirs / "ws") as workspace:
        widget.set_workspace(workspace)
        assert "no Phase 1 adapter" in widget.message.text() and not widget.send_button.isEnabled()


def test_the_playground_has_the_chat_scored_by_its_run(qtbot, isolated_user_dirs, phase2_demo_run, tiny_adapter):
    from app.tabs.playground_tab import PlaygroundTab
    from cognitivetwin_core.data.workspace import Workspace

    tab = PlaygroundTab()
    qtbot.addWidget(tab)
    with Workspace.open(isolated_user_dirs / "ws") as workspace:
        workspace.register_adapter("local-tiny", tiny_adapter, {"backend": "local", "base_model": "tiny"})
        tab.set_workspace(workspace)
        assert tab.result_tabs.tabText(2) == "Chat"
        assert tab.chat_panel.adapter_combo.currentData() == str(tiny_adapter)
        assert "not scored" in tab.chat_panel.run_label.text()
        assert tab.add_run_folder(phase2_demo_run)  # not shown yet: nothing is loaded
        assert tab.chat_panel.run_dir == str(Path(phase2_demo_run).resolve())
        assert phase2_demo_run.name in tab.chat_panel.run_label.text()
        tab.shutdown()


def test_a_reply_cut_by_the_length_limit_says_so(qtbot):
    from app.tabs.playground_chat import ReplyView
    from cognitivetwin_core.playground.chat import ChatReply

    view = ReplyView("Twin")
    qtbot.addWidget(view)
    view.finish(ChatReply(text="It depends on the", tokens=160), "", 160)
    assert "cut short at the longest reply allowed" in view.score.text()
    view.finish(ChatReply(text="Done.", tokens=3), "", 160)
    assert "cut short" not in view.score.text()


@pytest.mark.slow
def test_a_killed_chat_process_fails_the_reply_and_the_next_message_restarts_it(panel, qtbot):
    import signal

    panel.max_new_tokens.setValue(1500)
    panel.temperature.setValue(1.0)
    killed = []

    def kill(_who, _piece):
        if not killed:
            killed.append(panel.chat.pid)
            os.kill(killed[0], signal.SIGKILL)  # as the kernel's out-of-memory killer would

    panel.textArrived.connect(kill)
    with qtbot.waitSignal(panel.failed, timeout=WORK_TIMEOUT_MS) as failed:
        assert panel.send("tell me everything")
    assert failed.args[0].startswith("The chat process was ended by signal SIGKILL before it finished")
    assert "your next message starts it again" in panel.message.text()
    assert panel.turns() == [] and panel.send_button.isEnabled()
    panel.textArrived.disconnect(kill)
    panel.max_new_tokens.setValue(5)
    with qtbot.waitSignal(panel.replyFinished, timeout=WORK_TIMEOUT_MS):
        assert panel.send("are you back?")
    assert len(panel.turns()) == 1 and panel.chat.pid not in (None, killed[0])


@pytest.mark.slow
def test_the_window_process_imports_no_torch_through_a_chat_turn(tiny_adapter):
    """The chat panel, driven without a test runner that imported torch: the twin loads and
    writes in the chat's child process; the window's process never imports torch."""
    import os
    import subprocess
    import sys
    import textwrap

    repo = Path(__file__).resolve().parent.parent
    script = textwrap.dedent(
        f"""
        import os, sys
        from PySide6.QtCore import QEventLoop, QTimer
        from PySide6.QtWidgets import QApplication
        from app.tabs.playground_chat import ChatPanel

        app = QApplication([])
        panel = ChatPanel()
        panel.add_adapter_folder({str(tiny_adapter)!r})
        panel.max_new_tokens.setValue(6)
        panel.compare_box.setChecked(True)
        loop, ended, pieces = QEventLoop(), [], []
        panel.textArrived.connect(lambda who, piece: pieces.append(who))
        panel.replyFinished.connect(lambda turn: (ended.append(turn), loop.quit()))
        panel.failed.connect(lambda message: (ended.append(message), loop.quit()))
        QTimer.singleShot(300_000, loop.quit)
        panel.send("hello there")
        loop.exec()
        child = panel.chat.pid
        panel.shutdown()
        print(type(ended[0]).__name__ if ended else "none", sorted(set(pieces)), child != os.getpid(),
              "torch" in sys.modules)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(repo), "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=repo, capture_output=True, text=True, timeout=600, env=env
    )
    assert result.stdout.split("\n")[0] == "ChatTurn ['base', 'twin'] True False", result.stderr[-3000:]
