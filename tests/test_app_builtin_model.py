"""The built-in model's one-time preparation says what it prepares and how long it takes."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtWidgets import QWidget


@pytest.mark.usefixtures("qasync_loop")
def test_a_first_start_says_it_prepares_the_builtin_model_and_how_long(qtbot):
    from app.qt.builtin_model import FAILED, PREPARING, READY, BuiltinModelPreparation
    from app.widgets.builtin_model_status import BuiltinModelStatus

    release = threading.Event()
    calls = []

    def prepare():
        calls.append(1)
        assert release.wait(10)

    preparation = BuiltinModelPreparation(is_ready=lambda: False, prepare=prepare)
    window = QWidget()
    qtbot.addWidget(window)
    status = BuiltinModelStatus(preparation, window)
    window.show()
    assert not status.isVisible(), "nothing to say before it starts"

    preparation.start()
    qtbot.waitUntil(lambda: preparation.state == PREPARING, timeout=5_000)
    assert status.isVisible() and status.bar.isVisible()
    assert "Preparing the built-in model, once: about 2 minutes" in status.label.text()
    assert 0 <= status.bar.value() < 100
    preparation.start()  # a second start while it runs does not prepare twice
    release.set()
    qtbot.waitUntil(lambda: preparation.state == READY, timeout=5_000)
    assert calls == [1] and status.label.text() == "The built-in model is ready." and not status.bar.isVisible()

    broken = BuiltinModelPreparation(is_ready=lambda: False, prepare=lambda: 1 / 0)
    broken_status = BuiltinModelStatus(broken)
    qtbot.addWidget(broken_status)
    broken.start()
    qtbot.waitUntil(lambda: broken.state == FAILED, timeout=5_000)
    assert "could not be prepared" in broken_status.label.text()


@pytest.mark.usefixtures("qasync_loop")
def test_nothing_is_said_when_the_builtin_model_is_already_there(qtbot):
    from app.qt.builtin_model import READY, BuiltinModelPreparation
    from app.widgets.builtin_model_status import BuiltinModelStatus

    preparation = BuiltinModelPreparation(is_ready=lambda: True, prepare=lambda: pytest.fail("prepared again"))
    window = QWidget()
    qtbot.addWidget(window)
    status = BuiltinModelStatus(preparation, window)
    window.show()
    preparation.start()
    qtbot.waitUntil(lambda: preparation.state == READY, timeout=5_000)
    assert not status.isVisible()
