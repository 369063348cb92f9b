"""The window checks themselves: a bare role in a tree's child cell is caught, a person's own
message that mentions a role is not."""

from __future__ import annotations

from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from tests.window_checks import stumbles


def test_a_bare_role_in_a_nested_cell_is_caught_and_a_message_is_not(qtbot):
    root = QWidget()
    qtbot.addWidget(root)
    tree = QTreeWidget()
    tree.setColumnCount(2)
    QVBoxLayout(root).addWidget(tree)
    step = QTreeWidgetItem(["Step 1", ""])
    step.addChild(QTreeWidgetItem(["ask the user what they want, then the assistant answers", "you"]))
    tree.addTopLevelItem(step)
    root.show()
    assert stumbles(root) == []
    step.addChild(QTreeWidgetItem(["a reply", "assistant"]))
    found = stumbles(root)
    assert len(found) == 1 and "'assistant'" in found[0] and "cell (1:1, 1)" in found[0]
