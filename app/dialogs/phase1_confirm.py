"""The confirmation a Phase 1 launch needs: what will run, on what data, and what it costs.

`await LaunchConfirmDialog.ask(parent, plan)` opens the dialog with `open()` (never
`exec()`, which breaks other tasks of the qasync loop, docs/qt.md §11) and resolves to True
only when the user pressed the launch button. Tests patch `ask` (docs/qt.md §17).
"""

from __future__ import annotations

import asyncio

from PySide6.QtWidgets import QMessageBox, QWidget

from cognitivetwin_core.phase1.jobs import DryRun


def confirmation_text(plan: DryRun) -> tuple[str, str]:
    """(headline, details) for `plan`."""
    details = "\n".join(plan.summary_lines())
    if plan.backend == "together":
        if plan.estimated_price is not None:
            headline = (
                f"Launch this job on Together AI? It is paid: Together estimates "
                f"${plan.estimated_price:.2f}, charged to your account."
            )
        else:
            headline = (
                "Launch this job on Together AI? It is paid, and Together gave no price estimate "
                f"({plan.estimate_note or 'no estimate'})."
            )
    else:
        headline = "Start training on this computer? It is free and can be cancelled at any step."
        if plan.estimate_note:
            details += f"\n{plan.estimate_note}"
    return headline, details


class LaunchConfirmDialog(QMessageBox):
    def __init__(self, plan: DryRun, parent: QWidget | None = None):
        super().__init__(parent)
        headline, details = confirmation_text(plan)
        self.setIcon(QMessageBox.Icon.Question)
        self.setWindowTitle("Launch Phase 1 on Together AI" if plan.backend == "together" else "Start local Phase 1")
        self.setText(headline)
        self.setInformativeText(details)
        self.launch_button = self.addButton(
            "Launch (paid)" if plan.backend == "together" else "Start training", QMessageBox.ButtonRole.AcceptRole
        )
        self.addButton("Don't launch", QMessageBox.ButtonRole.RejectRole)
        self.setDefaultButton(None)

    @classmethod
    async def ask(cls, parent: QWidget | None, plan: DryRun) -> bool:
        dialog = cls(plan, parent)
        answer: asyncio.Future = asyncio.get_running_loop().create_future()

        def finished(_result: int) -> None:
            if not answer.done():
                answer.set_result(dialog.clickedButton() is dialog.launch_button)

        dialog.finished.connect(finished)
        dialog.open()
        return await answer
