"""The Phase 1 tab's dry run and launch: the launch check with its one fix, the dry run's summary, the confirmed launch.

A part of `Phase1Tab` (app/tabs/phase1_tab.py), mixed into it: the widgets and state are
the tab's attributes."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
)

from app import settings
from app.dialogs.phase1_confirm import LaunchConfirmDialog
from app.qt.tasks import start_task
from app.tabs.phase1_form import DATA_PATH_SETTING
from app.widgets.memory_verdict import MemoryVerdictLabel
from cognitivetwin_core.models.catalog import DEFAULT_BASE_MODEL
from cognitivetwin_core.phase1.jobs import DryRun
from cognitivetwin_core.phase1.readiness import (
    FIX_ADD_KEY,
    FIX_CHOOSE_FILE,
    FIX_IMPORT_DATA,
    FIX_USE_BUILTIN,
    LaunchCheck,
    launch_check,
)


def counts_note(export, conversations: int) -> str:
    """Why the training examples are not as many as the workspace's conversations, in words."""
    if export is None or export.examples == conversations:
        return ""
    reasons = []
    if export.skipped:
        reasons.append(f"{len(export.skipped)} have no reply of yours to learn from (or cannot be used)")
    if export.left_out:
        reasons.append(f"{export.left_out} hold personal data and stay out")
    if export.cut:
        reasons.append(f"{export.cut} are too long for the model and are cut into parts")
    if export.validation_examples:
        reasons.append(f"{export.validation_examples} are kept aside to check the twin")
    why = "; ".join(reasons) or "some conversations are merged or split"
    return f"why {export.examples} examples from {conversations} conversations: {why}."


class Phase1DryRunAndLaunch:
    def _build_dry_run_group(self) -> QGroupBox:
        group = QGroupBox("Dry run, then launch")
        box = QVBoxLayout(group)
        self.dry_run_summary = QLabel(
            "First a dry run: it checks your data and says how long (this computer) or how much "
            "(Together AI) training takes. Nothing starts and nothing is paid before you launch."
        )
        self.dry_run_summary.setWordWrap(True)
        self.dry_run_summary.setTextFormat(Qt.TextFormat.PlainText)
        self.dry_run_summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.dry_run_summary.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.upload_progress = QProgressBar()
        self.upload_progress.setFormat("uploading %p%")
        self.upload_progress.hide()
        buttons = QHBoxLayout()
        self.dry_run_button = QPushButton("Dry run")
        self.dry_run_button.setToolTip(
            "Check the data and settings; on Together also upload the file and get the price. Costs nothing."
        )
        self.launch_button = QPushButton("Launch…")
        self.launch_button.setToolTip("Start the job described by the dry run (asks for confirmation first).")
        self.dry_run_button.clicked.connect(lambda: start_task(self.dry_run(), name="phase 1 dry run"))
        self.launch_button.clicked.connect(lambda: start_task(self.launch(), name="phase 1 launch"))
        buttons.addWidget(self.dry_run_button)
        buttons.addWidget(self.launch_button)
        buttons.addStretch(1)
        # Why Launch cannot be pressed, and the one fix, right beside it.
        self.launch_reason = QLabel()
        self.launch_reason.setObjectName("launchReason")
        self.launch_reason.setWordWrap(True)
        self.launch_reason.setProperty("role", "message-info")
        self.launch_reason.hide()
        self.fix_button = QPushButton()
        self.fix_button.hide()
        self.fix_button.clicked.connect(self._apply_fix)
        reason_row = QHBoxLayout()
        reason_row.addWidget(self.launch_reason, 1)
        reason_row.addWidget(self.fix_button, 0, Qt.AlignmentFlag.AlignTop)
        # A dry run says a lot (counts, tokens, examples): it scrolls rather than being cut.
        summary_area = QScrollArea()
        summary_area.setWidget(self.dry_run_summary)
        summary_area.setWidgetResizable(True)
        summary_area.setFrameShape(QFrame.Shape.NoFrame)
        summary_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        box.addWidget(summary_area, 1)
        from app.qt.builtin_model import builtin_model_preparation
        from app.widgets.builtin_model_status import BuiltinModelStatus

        # The built-in model's one-time preparation, where the person waits for it.
        self.builtin_model_status = BuiltinModelStatus(builtin_model_preparation())
        self.builtin_model_status.label.setWordWrap(True)
        box.addWidget(self.builtin_model_status)
        # Local runs: will the base fit on the chosen device? Shown before Launch.
        self.memory_verdict = MemoryVerdictLabel()
        box.addWidget(self.memory_verdict)
        box.addWidget(self.upload_progress)
        box.addLayout(reason_row)
        box.addLayout(buttons)
        return group

    async def dry_run(self) -> DryRun | None:
        from cognitivetwin_core.errors import CognitiveTwinError

        self.message.clear_message()
        try:
            settings_ = self.current_settings()
        except CognitiveTwinError as exc:
            self.message.show_error(str(exc))
            return None
        check = self.launch_check()
        if not check.ok:
            self.message.show_error(check.reason)
            return None
        if not await self._builtin_model_ready(settings_.base_model):
            return None
        data = self.data_path.text().strip()
        if data:
            settings.write(DATA_PATH_SETTING, data)
        else:
            data = await self._export_for_dry_run(settings_.base_model)
            if data is None:
                return None
        backend = self.backend_name()
        self.dry_run_summary.setText(
            "Checking the data and uploading it to Together…"
            if backend == "together"
            else "Checking the data and estimating the time…"
        )
        self.plan = None
        self._update_buttons()
        plan = await self.controller.dry_run(backend, data, settings_)
        if plan is not None:
            try:
                still = (
                    self.current_settings() == settings_
                    and self.backend_name() == backend
                    and (self.data_path.text().strip() or self._auto_data_path) == data
                )
            except CognitiveTwinError:
                still = False
            if still:  # the form did not change while the dry run ran
                self.plan = plan
                self._update_buttons()
        return plan

    async def _builtin_model_ready(self, base_model: str) -> bool:
        """A local dry run of the built-in base waits for its one-time preparation, and says so
        (`app/qt/builtin_model.py`); other bases and Together need none."""
        from app.qt.builtin_model import READY, builtin_model_preparation
        from cognitivetwin_core.models.catalog import CATALOG

        spec = CATALOG.get(str(base_model))
        if self.backend_name() != "local" or spec is None or not spec.embedded:
            return True
        preparation = builtin_model_preparation()
        if preparation.state == READY:
            return True
        self.dry_run_summary.setText(
            "Preparing the built-in model, once: about 2 minutes. The dry run goes on by itself after that."
        )
        if await preparation.wait():
            return True
        self.message.show_error(preparation.text())
        self.dry_run_summary.setText("The dry run did not pass: see the message above.")
        return False

    async def _export_for_dry_run(self, base_model: str) -> str | None:
        """The workspace's conversations as Phase 1 JSONL for `base_model`, written atomically
        into the workspace's exports folder off the GUI thread (no manual export needed)."""
        import asyncio

        from app.tabs.data_jobs import run_export
        from cognitivetwin_core.cancellation import Cancellation
        from cognitivetwin_core.errors import CognitiveTwinError

        target = Path(self.workspace.path) / "exports" / f"phase1-{Path(str(base_model)).name}.jsonl"
        self.dry_run_summary.setText("Preparing your conversations for training…")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._auto_export = await asyncio.to_thread(
                run_export, lambda *_: None, Cancellation(), self.workspace.path, "phase1", target, base_model
            )
        except (CognitiveTwinError, OSError) as exc:
            self.message.show_error(f"Could not prepare your conversations for training: {exc}")
            self.dry_run_summary.setText("The dry run did not pass: see the message above.")
            return None
        self._auto_data_path = str(target)
        return str(target)

    def _on_dry_run_done(self, plan: DryRun) -> None:
        self.upload_progress.hide()
        lines = plan.summary_lines()
        if plan.data.path == self._auto_data_path:
            lines[0] = (
                f"data: your workspace's conversations ({plan.data.examples} training examples, "
                f"{plan.data.assistant_messages} replies of yours to learn from)"
            )
            note = counts_note(getattr(self, "_auto_export", None), self.workspace.count_conversations())
            if note:
                lines.insert(1, note)
        if plan.backend == "local" and plan.estimate_note:
            lines.append(plan.estimate_note)
        if plan.backend == "together":
            lines.append("Launching starts a paid job; you will be asked to confirm.")
        self.dry_run_summary.setText("\n".join(lines))
        self._update_buttons()

    def _on_upload_progress(self, done: int, total: int) -> None:
        self.upload_progress.show()
        self.upload_progress.setRange(0, max(total, 1))
        self.upload_progress.setValue(done)

    async def launch(self) -> str | None:
        plan = self.plan
        if plan is None:
            self.message.show_error("Run the dry run of these settings first: it shows what the launch costs.")
            return None
        if not await LaunchConfirmDialog.ask(self, plan):
            self.message.show_info("Not launched: nothing was started and nothing was charged.")
            return None
        # A plan is launched once: a second launch needs a new dry run (and a new confirmation).
        self.plan = None
        self.dry_run_summary.setText(
            self.dry_run_summary.text() + "\n\nLaunched. Run the dry run again for another job."
        )
        self._update_buttons()
        if plan.backend == "local":
            self._reset_plot()
            self._local_plot_job = None
            self.loss_status.setText("Loading the base model…")
        job_id = await self.controller.launch(plan)
        if job_id:
            self.message.show_ok(
                f"Launched {self._job_name(job_id)}. You can close the app: monitoring resumes when it opens again."
            )
        return job_id

    def _on_launched(self, job_id: str) -> None:
        record = self._record(job_id)
        if record is not None and record.backend == "local":
            self._local_plot_job = job_id
            self.loss_status.setText(f"{self._job_name(job_id)}: training on this computer…")
            self.message.show_ok(
                f"Started the local run {self._job_name(job_id)}. Cancel stops it after the current step."
            )
        self._select_job(job_id)
        self.refresh_jobs()

    def launch_check(self) -> LaunchCheck:
        """Whether a job with the form's choices can start (the core's check)."""
        if self.workspace is None:
            return LaunchCheck(False, "No workspace is open yet.")
        return launch_check(
            self.backend_name(),
            str(self.base_combo.currentData()),
            has_key=self.has_key,
            conversations=self.workspace.count_conversations(),
            data_path=self.data_path.text().strip() or None,
        )

    def _show_launch_check(self, check: LaunchCheck) -> None:
        self.launch_reason.setVisible(not check.ok)
        self.launch_reason.setText(check.reason)
        self.fix_button.setVisible(not check.ok and bool(check.fix))
        self.fix_button.setText(check.fix_label)
        self.fix_button.setProperty("fix", check.fix or "")

    def _apply_fix(self) -> None:
        fix = self.fix_button.property("fix")
        if fix == FIX_USE_BUILTIN:
            self.set_backend("local")
            self.base_combo.setCurrentIndex(self.base_combo.findData(DEFAULT_BASE_MODEL))
        elif fix == FIX_CHOOSE_FILE:
            self.data_path.clear()  # back to the workspace's conversations
        elif fix == FIX_ADD_KEY:
            self.openTabRequested.emit("Connections")
        elif fix == FIX_IMPORT_DATA:
            self.openTabRequested.emit("Data")
        self._update_buttons()
