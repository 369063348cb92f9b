"""The Phase 2 tab's live page: the phase with its progress, epoch and step, elapsed time, an ETA
that counts down between events, RAM and VRAM, and the live plots (loss per step, held-out
scores against baselines, throughput), built when first shown (see phase2_tab.py).
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QGridLayout, QLabel, QProgressBar, QSizePolicy, QVBoxLayout, QWidget

from app.tabs.phase2_runs_panel import Phase2RunsPanel, read_runs  # noqa: F401 - read_runs: the tab's API
from app.widgets.live_plot import LivePlot
from app.widgets.run_summary_card import HEAD_COLORS, HEAD_METRICS, SummaryCard
from cognitivetwin_core.durations import format_duration

STEP_LABELS_MS = 250  # the step labels change at most 4 times a second


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


class Phase2LivePage:
    """The live page: phase, epoch and step, elapsed, ETA, memory, and the loss, score and
    throughput plots."""

    def _build_live_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        status = QGridLayout()
        self.phase_label = QLabel("Not running.")
        self.phase_label.setStyleSheet("font-weight: bold;")
        self.phase_progress = QProgressBar()
        self.phase_progress.setRange(0, 1)
        self.phase_progress.setValue(0)
        self.position_label = QLabel("Epoch – · step –")
        self.elapsed_label = QLabel("Elapsed –")
        self.eta_label = QLabel("ETA –")
        self.memory_label = QLabel("RAM –")
        self.throughput_label = QLabel("–")
        for label in (
            self.phase_label,
            self.position_label,
            self.elapsed_label,
            self.eta_label,
            self.memory_label,
            self.throughput_label,
        ):
            # Text that changes every step must not change the layout: a new size hint would
            # re-lay out the page and repaint every plot, once per step.
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        status.addWidget(self.phase_label, 0, 0, 1, 2)
        status.addWidget(self.phase_progress, 0, 2, 1, 2)
        # Two lines of two: each text has half the width (on one line of five they were cut:
        # "90/9", "lr 1.00e-0", the ETA running into the memory).
        status.addWidget(self.position_label, 1, 0, 1, 2)
        status.addWidget(self.eta_label, 1, 2, 1, 2)
        status.addWidget(self.elapsed_label, 2, 0)
        status.addWidget(self.memory_label, 2, 1)
        status.addWidget(self.throughput_label, 2, 2, 1, 2)
        for column in range(4):
            status.setColumnStretch(column, 1)
        layout.addLayout(status)

        # The plots are built when first needed (`_ensure_plots`): importing pyqtgraph costs
        # seconds, and the window must open fast.
        self._live_plots_layout = QGridLayout()
        self._live_plots_layout.setRowStretch(0, 3)
        self._live_plots_layout.setRowStretch(1, 2)
        self._live_plots_layout.setColumnStretch(0, 3)
        self._live_plots_layout.setColumnStretch(1, 2)
        layout.addLayout(self._live_plots_layout, 1)
        self.summary = SummaryCard()
        layout.addWidget(self.summary)
        return page

    def _ensure_plots(self) -> None:
        if hasattr(self, "loss_plot"):
            return
        self.loss_plot = LivePlot("Training loss per step", x_label="step", y_label="loss")
        for head, color in HEAD_COLORS.items():
            self.loss_plot.add_series(head, color, smooth=True)
        self.loss_plot.add_series("validation total", (120, 120, 120), symbol="o", dashed=True)
        self.metrics_plot = LivePlot("Held-out scores (dashed: baselines)", x_label="epoch")
        for key, baseline_key, label, _text, color in HEAD_METRICS:
            self.metrics_plot.add_series(key, color, symbol="o", label=label.split(":")[0])
            # A symbol too: after one epoch a dashed line of one point would not show.
            # Unnamed: the title says the dashed lines are the baselines, and the legend keeps one row.
            self.metrics_plot.add_series(
                baseline_key, color, dashed=True, symbol="x", label=f"{label.split(':')[0]} baseline", in_legend=False
            )
        self.throughput_plot = LivePlot("Throughput", x_label="step", y_label="examples/s")
        self.throughput_plot.add_series("examples_per_s", (28, 126, 214), label="examples/s")
        self._live_plots_layout.addWidget(self.loss_plot, 0, 0, 1, 2)
        self._live_plots_layout.addWidget(self.metrics_plot, 1, 0)
        self._live_plots_layout.addWidget(self.throughput_plot, 1, 1)
        self.runs_panel.ensure_plots()

    def _on_run_started(self, trainer) -> None:
        self._forget_steps()
        self._ensure_plots()
        for plot in (self.loss_plot, self.metrics_plot, self.throughput_plot):
            for name in plot.series_names():
                plot.set_points(name, [], [])
            plot.flush()
        self.summary.hide()
        if trainer is not None and trainer.config.resume and trainer.config.output_dir:
            self._show_earlier_epochs(Path(trainer.config.output_dir))
        self._selection_recorded = False
        self.peak_rss = 0
        self.phase_label.setText(
            "Loading the base model and reading your messages (the first update can take a while)…"
        )
        self.phase_progress.setRange(0, 0)  # busy until the first event
        self._eta = None
        # The previous run's numbers must not pass for this one's while it loads.
        self.throughput_label.setText("–")
        self.elapsed_label.setText("Elapsed 0:00")
        self.position_label.setText("Epoch – · step –")
        self.eta_label.setText("ETA –")
        self.pages.setCurrentIndex(0)
        self._tick()
        self._clock.start()

    def _show_earlier_epochs(self, run_dir: Path) -> None:
        """A resumed run: draw the epochs it already trained (from its metrics.json), so the
        plots continue its history instead of starting again."""
        from cognitivetwin_core.phase2.runs import METRICS_FILE, read_json

        for entry in (read_json(run_dir / METRICS_FILE) or {}).get("epochs") or []:
            epoch = entry.get("epoch")
            if epoch is None:
                continue
            metrics = entry.get("metrics") or {}
            for key, baseline_key, *_ in HEAD_METRICS:
                self.metrics_plot.append(key, epoch, metrics.get(key))
                self.metrics_plot.append(baseline_key, epoch, metrics.get(baseline_key))
            step = entry.get("global_step")  # absent in runs saved before it was recorded
            if step is not None:
                self.loss_plot.append("validation total", step, (entry.get("validation") or {}).get("total"))
                self.loss_plot.append("total", step, (entry.get("train") or {}).get("total"))
                self._last_global_step = step
        for plot in (self.loss_plot, self.metrics_plot):
            plot.flush()

    def _on_encoding(self, event) -> None:
        self._record_selection()
        if event.cache_hit:
            self.phase_label.setText("Encoding conversations (cache): found in the feature cache")
        else:
            self.phase_label.setText(
                f"Encoding conversations (cache): {event.done}/{event.total} messages, {event.tokens_per_s:.0f} tokens/s"
            )
        self.phase_progress.setRange(0, max(event.total, 1))
        self.phase_progress.setValue(event.done)
        self._set_eta(event.eta_s, " (encoding)")

    def _on_step(self, event) -> None:
        self._record_selection()
        for head, value in event.losses.items():
            if self.loss_plot.has_series(head):
                self.loss_plot.append(head, event.global_step, value)
        self.throughput_plot.append("examples_per_s", event.global_step, event.examples_per_s)
        self._last_global_step = event.global_step
        # New label texts re-lay out the whole tab (~10 ms here): at most STEP_LABELS_MS apart,
        # the first at once, the latest when the interval ends (docs/gui-responsiveness.md).
        self._latest_step = event
        timer = getattr(self, "_step_labels_timer", None)
        if timer is None:
            timer = self._step_labels_timer = QTimer(self)
            timer.setSingleShot(True)
            timer.setInterval(STEP_LABELS_MS)
            timer.timeout.connect(self._show_latest_step)
        if not timer.isActive():
            self._show_step(event)
            timer.start()

    def _show_latest_step(self) -> None:
        if self._latest_step is not None and self._latest_step is not self._shown_step:
            self._show_step(self._latest_step)
            self._step_labels_timer.start()

    def _show_step(self, event) -> None:
        self._shown_step = event
        self.phase_label.setText(f"Training: epoch {event.epoch} of {event.epochs}")
        self.phase_progress.setRange(0, max(event.total_steps, 1))
        self.phase_progress.setValue(event.global_step)
        self.position_label.setText(
            f"Epoch {event.epoch}/{event.epochs} · step {event.step}/{event.steps_per_epoch} · {event.global_step}/{event.total_steps} total"
        )
        self._set_eta(event.eta_s, "")
        self.throughput_label.setText(f"{event.examples_per_s:.1f} examples/s")
        self.throughput_label.setToolTip(f"Learning rate now: {event.lr:.2e}")

    def _forget_steps(self) -> None:
        """No step label update may land after the run's end (or in the next run)."""
        self._latest_step = self._shown_step = None
        timer = getattr(self, "_step_labels_timer", None)
        if timer is not None:
            timer.stop()

    def _on_epoch(self, event) -> None:
        step = getattr(self, "_last_global_step", event.epoch)
        self.loss_plot.append("validation total", step, event.val_losses.get("total"))
        for key, baseline_key, *_ in HEAD_METRICS:
            self.metrics_plot.append(key, event.epoch, event.metrics.get(key))
            self.metrics_plot.append(baseline_key, event.epoch, event.metrics.get(baseline_key))

    def _on_checkpoint(self, event) -> None:
        self.phase_label.setText(f"Training: epoch {event.epoch} saved (checkpoint)")

    def _set_eta(self, eta_s, suffix: str) -> None:
        """Remember the ETA with its time, so the clock counts it down between the core's events
        (a batch of the encoder can take many seconds: the display must not stand still)."""
        self._eta = (time.monotonic(), eta_s, suffix) if eta_s is not None else None
        self.eta_label.setText(f"ETA {format_duration(eta_s, clock=True)}{suffix}" if eta_s is not None else "ETA –")

    def _count_down_eta(self) -> None:
        eta = getattr(self, "_eta", None)
        if eta is None:
            return
        since, eta_s, suffix = eta
        waited = time.monotonic() - since
        left = max(0.0, eta_s - waited)
        text = f"ETA {format_duration(left, clock=True)}{suffix}"
        if waited >= 5:
            text += f" · working, last update {format_duration(waited)} ago"
        self.eta_label.setText(text)

    def _tick(self) -> None:
        """Once a second while running: elapsed time, memory and the ETA counting down."""
        import psutil

        if self.controller.is_running():
            self._count_down_eta()

        self.elapsed_label.setText(f"Elapsed {format_duration(self.controller.elapsed_s(), clock=True)}")
        rss = psutil.Process().memory_info().rss
        pid = self.controller.worker_pid()
        if pid is not None:  # the training runs in its own process: its memory counts too
            try:
                rss += psutil.Process(pid).memory_info().rss
            except psutil.Error:  # it has just ended
                pass
        self.peak_rss = max(self.peak_rss, rss)
        text = f"RAM {_gib(rss)}"
        step = getattr(self, "_latest_step", None)
        if step is not None and getattr(step, "device_memory", None):
            # The training child's own figure: this process has no torch (docs/gui-responsiveness.md).
            allocated, peak = step.device_memory
            text += f" · VRAM {_gib(allocated)} (peak {_gib(peak)})"
        self.memory_label.setText(text)
