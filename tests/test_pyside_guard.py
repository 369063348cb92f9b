"""Guard against the PySide6 6.12 / CPython 3.11 refcount bug (docs/qt.md §1):
every void binding call there drops a reference to None until the process aborts."""

import sys

import pytest


def test_void_qt_calls_do_not_leak_none_references(qapp):
    from PySide6.QtWidgets import QLabel

    label = QLabel()
    if hasattr(sys, "_is_immortal") and sys._is_immortal(None):  # 3.12+: None cannot die
        pytest.skip("None is immortal on this Python")
    before = sys.getrefcount(None)
    for _ in range(20_000):
        label.setText("x")
        label.update()
    after = sys.getrefcount(None)
    assert after >= before - 50, f"None lost {before - after} references over 20,000 void Qt calls"


def test_installed_pyside6_respects_the_pin():
    import PySide6

    version = tuple(int(p) for p in PySide6.__version__.split(".")[:2])
    if sys.version_info < (3, 12):
        assert version < (6, 12), f"PySide6 {PySide6.__version__} on Python 3.11 crashes the app"
