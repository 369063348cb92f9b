"""GUI event-loop stalls while Phase 2 trains in the studio with its live plots.

Opens the real main window (offscreen unless a display is set) on a temporary workspace
with the demo data, lets it settle for 2 s (its first paint, the tab's first checks), then
starts a Phase 2 run from the Phase 2 tab (the tab visible, so every plot redraw is real
work), and lets a 5 ms `QTimer` record how late each of its ticks fires. Lateness = (time since the previous tick) - 5 ms: any stall of the GUI thread (a
slow slot, a redraw, the GIL held by the training thread) shows up there.

Each stage of the run is its own row, then an `all` row:
    load        the start until the first encoding event (data, the base model)
    encoding    until the first training step (the frozen base encodes every message)
    training    at least `--seconds` (default 60) of training
    stop+save   Stop & save pressed until the run's end reached the window
With `--run local-lora` it trains Phase 1 locally from the Phase 1 tab's controller instead
(the run in its supervised child): rows `dry run`, `training` (`--seconds` from the first
step), `cancel` (Cancel pressed until the job's end reached the window), `all`.
With `--run chat` it talks to a twin of `--base` (an adapter trained one step, made first in
the helper child, or `--adapter FOLDER`) on the Playground's Chat page, the base's reply
beside it (the model in the chat's child): rows `first reply` (Send until the first reply
ended: the twin's load included), `streaming` (further replies for `--seconds`), `stop`
(Stop pressed at the first word of a long reply until it ended), `all`.
With `--run evaluation` it evaluates that adapter from the Phase 1 tab (the Evaluate button's
work, in its child): rows `evaluation` (until the report reached the window), `all`.
Every run prints whether the window's process imported torch (it must not).
Targets for every row: p99 < 17 ms (one frame at 60 Hz) and max < 100 ms. The figures are
those measured in this run, with the load average at its start and end (the machine is
shared: run it when the load is low, and more than once).

    .venv/bin/python benchmarks/gui_responsiveness.py [--seconds 60] [--base smollm2-135m|FOLDER]
        [--cache-dir DIR] [--plots-hidden] [--run phase2|local-lora|chat|evaluation] [--adapter FOLDER]

The feature cache is a new temporary folder unless `--cache-dir` names one (the user's
Phase 2 cache, for example): a warm cache skips encoding. Like the studio's `main()`, the
benchmark collects garbage on the GUI thread only.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TICK_MS = 5
SETTLE_MS = 2000  # the shown window's first paint and checks, before Start is pressed


def _percentile(values, q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else float("nan")


TARGET_P99_MS = 17.0  # one frame at 60 Hz
TARGET_MAX_MS = 100.0
STAGES = ("load", "encoding", "training", "stop+save")


def _report(name: str, lateness_ms: list[float], seconds: float) -> bool:
    """Print one stage's row; True when it met the targets."""
    if not lateness_ms:
        print(f"{name:<10} {seconds:7.1f} s  no ticks")
        return True
    p50, p99 = _percentile(lateness_ms, 50), _percentile(lateness_ms, 99)
    worst = max(lateness_ms)
    met = p99 < TARGET_P99_MS and worst < TARGET_MAX_MS
    print(
        f"{name:<10} {seconds:7.1f} s  ticks {len(lateness_ms):>6}  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  "
        f"max {worst:7.2f} ms  {'OK' if met else 'MISSED'}"
    )
    return met


class _StallTracer:
    """A watchdog thread: while the GUI thread's last tick is 50 ms old or more, it samples every
    thread's Python stack (C code shows its Python caller), so a stall says which code ran: on the
    GUI thread itself, or on another thread holding the interpreter."""

    STALL_MS = 50.0

    def __init__(self, last_tick_ms, clock):
        import threading

        self._last_tick_ms, self._clock = last_tick_ms, clock
        self._gui_thread = threading.get_ident()
        self._stop = threading.Event()
        self.samples: dict[tuple, int] = {}
        self._thread = threading.Thread(target=self._watch, name="stall tracer", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        import threading
        import traceback

        while not self._stop.wait(0.01):
            last = self._last_tick_ms()
            if last is None or self._clock.nsecsElapsed() / 1e6 - last < self.STALL_MS:
                continue
            for thread_id, frame in sys._current_frames().items():
                if thread_id == threading.get_ident():
                    continue
                who = "GUI" if thread_id == self._gui_thread else "other"
                stack = tuple(f"{Path(s.filename).name}:{s.lineno} {s.name}" for s in traceback.extract_stack(frame))
                key = (who, *stack[-10:])
                self.samples[key] = self.samples.get(key, 0) + 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def report(self) -> None:
        print(f"stall samples (every 10 ms while the GUI thread was {self.STALL_MS:.0f} ms late), every thread:")
        for (who, *stack), count in sorted(self.samples.items(), key=lambda item: -item[1])[:16]:
            print(f"  {count} x {who}: " + " <- ".join(reversed(stack)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of training to measure (at least)")
    parser.add_argument("--base", default="smollm2-135m", help="catalog name or local model folder")
    parser.add_argument("--cache-dir", help="Phase 2 feature cache folder (default: a new temporary one)")
    parser.add_argument("--epochs", type=int, default=1000, help="more than the measurement can finish")
    parser.add_argument(
        "--plots-hidden",
        action="store_true",
        help="keep another tab in front (no plot painting): separates drawing from training",
    )
    parser.add_argument(
        "--trace-stalls",
        action="store_true",
        help="print where the GUI thread was (its Python stack) during each stall of 50 ms or more",
    )
    parser.add_argument(
        "--idle",
        type=float,
        metavar="SECONDS",
        help="no run: the same window and timer for SECONDS (the machine's own floor, for comparison)",
    )
    parser.add_argument(
        "--run",
        choices=("phase2", "local-lora", "chat", "evaluation"),
        default="phase2",
        help="which work to measure",
    )
    parser.add_argument("--adapter", help="chat and evaluation: a Phase 1 adapter folder (default: one made first)")
    parser.add_argument("--samples", type=int, default=4, help="evaluation: held-out replies compared")
    args = parser.parse_args(argv)

    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    scratch = Path(tempfile.mkdtemp(prefix="ct-gui-bench-"))
    for name in ("DATA", "LOG", "CONFIG"):
        folder = scratch / name.lower()
        folder.mkdir()
        os.environ[f"COGNITIVETWIN_{name}_DIR"] = str(folder)

    from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer

    from app.main import create_application
    from app.main_window import MainWindow
    from cognitivetwin_core.data.importers import import_into

    torch_importers = []  # where the GUI process first imported torch (it holds the interpreter meanwhile)

    def on_audit(event, event_args):
        if event == "import" and event_args[0] == "torch" and not torch_importers:
            import threading
            import traceback

            stack = [f"{Path(s.filename).name}:{s.lineno} {s.name}" for s in traceback.extract_stack()]
            torch_importers.append((threading.current_thread().name, [s for s in stack if "importlib" not in s][-8:]))

    sys.addaudithook(on_audit)
    app = create_application()
    import asyncio

    import qasync

    # The studio's asyncio loop on Qt's (as under qasync.run), driven by app.exec() below.
    loop = qasync.QEventLoop(app, already_running=True)
    asyncio.set_event_loop(loop)
    # asyncio.to_thread runs on the loop's default executor, QThreads; a loop that is never
    # closed (it runs "already") never ends them, and Qt aborts the process at exit when a
    # QThread object is destroyed while its thread runs. This one is ended below.
    executor = qasync.QThreadExecutor()
    loop.set_default_executor(executor)
    try:  # as app.main.run_window does
        from app.qt.gui_thread_gc import GuiThreadGarbageCollector

        collector = GuiThreadGarbageCollector(app)
    except ImportError:
        collector = None
    window = MainWindow()
    window.open_workspace(scratch / "workspace")
    import_into(window.workspace, "demo")
    window._update_demo_offer()
    window.resize(1400, 900)
    window.show()
    if args.run != "phase2":
        measure = {"local-lora": _measure_local_lora, "chat": _measure_chat, "evaluation": _measure_evaluation}
        met = measure[args.run](args, app, window, scratch)
        for thread_name, stack in torch_importers:
            print(f"torch first imported on thread {thread_name!r} by: " + " <- ".join(reversed(stack)))
        window.close()
        executor.shutdown(wait=True)
        return 0 if met else 1
    tab = window.tab_widgets["Phase 2"]
    window.tabs.setCurrentWidget(tab)
    if args.plots_hidden:
        window.tabs.setCurrentWidget(window.tab_widgets["Data"])
    tab.set_workspace(window.workspace)
    tab.feature_cache_dir = args.cache_dir or str(scratch / "feature-cache")
    if args.base in {tab.base_combo.itemData(i) for i in range(tab.base_combo.count())}:
        tab.base_combo.setCurrentIndex(tab.base_combo.findData(args.base))
    else:
        tab.choose_base_folder(args.base)
    tab.epochs_spin.setValue(args.epochs)
    tab.patience_spin.setValue(0)  # never stop early: train for --seconds, then Stop & save
    tab.batch_spin.setValue(4)
    tab.accumulation_spin.setValue(1)

    lateness = {stage: [] for stage in STAGES}
    stage_started = {stage: None for stage in STAGES}
    stage = {"name": "load", "stopping_at": None, "finished_at": None}
    counts = {"steps": 0, "encoding events": 0}
    clock = QElapsedTimer()
    last = {"t": None}

    def enter(name: str) -> None:
        stage["name"] = name
        stage_started[name] = time.monotonic()
        print(f"{name} from {time.monotonic() - started:.1f} s", flush=True)

    stalls = []  # (lateness ms, seconds since the start, stage)

    def tick() -> None:
        now = clock.nsecsElapsed() / 1e6
        if last["t"] is not None:
            late = max(0.0, now - last["t"] - TICK_MS)
            lateness[stage["name"]].append(late)
            if late >= TARGET_P99_MS:
                stalls.append((late, now / 1000, stage["name"]))
        last["t"] = now

    redraw_costs = {}  # plot title -> [(setData ms, its paint ms)]

    def timed(plot, name):
        original = plot._redraw

        def redraw(force=False):
            began = time.perf_counter()
            result = original(force)
            redraw_costs.setdefault(name, []).append(((time.perf_counter() - began) * 1000, None))
            QTimer.singleShot(0, lambda: record_paint(name, plot))
            return result

        plot._redraw = redraw

    def record_paint(name, plot):
        costs = redraw_costs[name]
        costs[-1] = (costs[-1][0], plot.plot_widget.last_paint_ms)

    def on_step(_event) -> None:
        counts["steps"] += 1
        if stage["name"] in ("load", "encoding"):
            if stage_started["encoding"] is None:
                enter("encoding")  # a warm cache: no encoding event before the first step
            enter("training")

    def on_encoding(_event) -> None:
        counts["encoding events"] += 1
        if stage["name"] == "load":
            enter("encoding")

    def check_done() -> None:
        now = time.monotonic()
        if stage["finished_at"] is not None:
            if now - stage["finished_at"] >= 0.5:  # the thread's end and the last repaints
                finish()
        elif stage["name"] == "training" and now - stage_started["training"] >= args.seconds:
            enter("stop+save")
            tab.stop_and_save()  # as the button does
        elif stage["name"] != "stop+save" and not tab.controller.is_running() and now - started > 5:
            print("the run ended early", flush=True)
            stage["finished_at"] = now

    def on_finished(event) -> None:
        print(f"run finished: {event.outcome}: {event.message}", flush=True)
        stage["finished_at"] = time.monotonic()

    def on_failed(message) -> None:
        print("FAILED:", message, flush=True)
        stage["finished_at"] = time.monotonic()

    def finish() -> None:
        checker.stop()
        timer.stop()
        stage["ended"] = time.monotonic()
        if tab.controller.is_running():
            print("still running: cancelling", flush=True)
            tab.controller.request_cancel()
            tab.controller.wait(300_000)
        app.processEvents()
        app.quit()

    tab.controller.stepDone.connect(on_step)
    tab.controller.encodingProgress.connect(on_encoding)
    tab.controller.runFinished.connect(on_finished)
    tab.controller.failed.connect(on_failed)

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(TICK_MS)
    timer.timeout.connect(tick)
    checker = QTimer()
    checker.setInterval(100)
    checker.timeout.connect(check_done)

    tab._ensure_plots()
    for plot_name in ("loss_plot", "metrics_plot", "throughput_plot"):
        timed(getattr(tab, plot_name), plot_name)
    # As a user would: the window is shown and painted before Start is pressed (its first
    # paint and the tab's first checks are not part of the run).
    settle = QEventLoop()
    QTimer.singleShot(SETTLE_MS, settle.quit)
    settle.exec()
    load_at_start = os.getloadavg()
    started = time.monotonic()
    clock.start()
    timer.start()
    if args.idle:
        stage["name"] = "idle"
        lateness["idle"] = []
        QTimer.singleShot(int(args.idle * 1000), app.quit)
        app.exec()
        print(f"load average (1, 5, 15 min) at the start: {load_at_start}; at the end: {os.getloadavg()}")
        _report("idle", lateness["idle"], time.monotonic() - started)
        window.close()
        executor.shutdown(wait=True)
        return 0
    stage_started["load"] = started
    tracer = _StallTracer(lambda: last["t"], clock) if args.trace_stalls else None
    checker.start()
    began = time.perf_counter()
    if not tab.start():
        print("could not start:", tab.message.text())
        executor.shutdown(wait=True)
        return 1
    print(f"Start took {(time.perf_counter() - began) * 1000:.0f} ms on the GUI thread", flush=True)
    app.exec()

    loss_plot = tab.loss_plot
    trainer = tab.controller.trainer
    record = getattr(trainer, "run_record", None) or {}
    print(f"load average (1, 5, 15 min) at the start: {load_at_start}; at the end: {os.getloadavg()}")
    print(
        f"base {args.base}; torch threads {record.get('torch_threads')}; {os.cpu_count()} CPUs; "
        f"platform {app.platformName()}; plots {'hidden' if args.plots_hidden else 'visible'}"
    )
    print(
        f"training steps {counts['steps']} (plot points {loss_plot.point_count('total')}, loss plot redraws "
        f"{loss_plot.redraws}); encoding events {counts['encoding events']}; torch imported in the GUI process: "
        f"{'torch' in sys.modules}"
    )
    for name, costs in redraw_costs.items():
        data = [c[0] for c in costs]
        paints = [c[1] for c in costs if c[1] is not None]
        print(
            f"{name}: {len(costs)} redraws; setData median {_percentile(data, 50):.1f} ms, max {max(data):.1f} ms; "
            f"paint median {_percentile(paints, 50):.1f} ms, max {max(paints, default=float('nan')):.1f} ms"
        )
    for thread_name, stack in torch_importers:
        print(f"torch first imported on thread {thread_name!r} by: " + " <- ".join(reversed(stack)))
    if tracer is not None:
        tracer.stop()
        tracer.report()
    worst = sorted(stalls, reverse=True)[:8]
    print("worst stalls:", ", ".join(f"{late:.0f} ms at {at:.1f} s ({name})" for late, at, name in worst))
    per_stage = {name: sum(1 for s in stalls if s[2] == name) for name in STAGES}
    print(f"ticks late by {TARGET_P99_MS:.0f} ms or more, per stage: {per_stage}")
    ended = stage.get("ended", time.monotonic())
    begun = [(name, stage_started[name]) for name in STAGES if stage_started[name] is not None]
    met = True
    for (name, start), following in zip(begun, [*begun[1:], (None, ended)]):
        met &= _report(name, lateness[name], following[1] - start)
    everything = [value for name in STAGES for value in lateness[name]]
    met &= _report("all", everything, stage.get("ended", time.monotonic()) - started)
    print(
        f"targets (every row): p99 < {TARGET_P99_MS:.0f} ms, max < {TARGET_MAX_MS:.0f} ms: {'met' if met else 'MISSED'}"
    )
    window.close()
    if collector is not None:
        collector.stop()
    executor.shutdown(wait=True)
    return 0


class _Stages:
    """The 5 ms timer's lateness per named stage of a run, and the rows it makes."""

    def __init__(self, names: tuple[str, ...], trace_stalls: bool):
        from PySide6.QtCore import QElapsedTimer, Qt, QTimer

        self.names, self.trace_stalls = names, trace_stalls
        self.lateness = {name: [] for name in names}
        self.began = {name: None for name in names}
        self.current: str | None = None
        self.clock, self.last = QElapsedTimer(), {"t": None}
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.tracer = None
        self.load_at_start = None

    def _tick(self) -> None:
        now = self.clock.nsecsElapsed() / 1e6
        if self.last["t"] is not None and self.current is not None:
            self.lateness[self.current].append(max(0.0, now - self.last["t"] - TICK_MS))
        self.last["t"] = now

    def start(self) -> None:
        """After the window's first paint and checks (as a user would: the window is shown first)."""
        from PySide6.QtCore import QEventLoop, QTimer

        settle = QEventLoop()
        QTimer.singleShot(SETTLE_MS, settle.quit)
        settle.exec()
        self.load_at_start = os.getloadavg()
        self.clock.start()
        if self.trace_stalls:
            self.tracer = _StallTracer(lambda: self.last["t"], self.clock)
        self.timer.start()

    def quit_soon(self, app) -> None:
        """The last repaints (500 ms), then the end of the measurement, then quit: Qt closes the
        window on quit (saving its state, closing the workspace), which is not the run's work."""
        from PySide6.QtCore import QTimer

        QTimer.singleShot(500, lambda: (self.timer.stop(), app.quit()))

    def enter(self, name: str) -> None:
        self.current, self.began[name] = name, time.monotonic()
        print(f"{name} from {time.monotonic() - self.began[self.names[0]]:.1f} s", flush=True)

    def stop(self) -> None:
        self.timer.stop()
        if self.tracer is not None:
            self.tracer.stop()
            self.tracer.report()

    def report(self, ended: float) -> bool:
        """Each stage's row, then `all`; True when every row met the targets."""
        print(f"load average (1, 5, 15 min) at the start: {self.load_at_start}; at the end: {os.getloadavg()}")
        begun = [(name, self.began[name]) for name in self.names if self.began[name] is not None]
        met = True
        for (name, start_time), following in zip(begun, [*begun[1:], (None, ended)]):
            met &= _report(name, self.lateness[name], following[1] - start_time)
        everything = [v for name in self.names for v in self.lateness[name]]
        met &= _report("all", everything, ended - self.began[self.names[0]])
        print(
            f"targets (every row): p99 < {TARGET_P99_MS:.0f} ms, max < {TARGET_MAX_MS:.0f} ms: "
            f"{'met' if met else 'MISSED'}"
        )
        return met


def _adapter(args, scratch: Path) -> str:
    """`--adapter`, else an adapter on `--base` trained one step (in the helper child: no torch here)."""
    if args.adapter:
        return str(Path(args.adapter).resolve())
    from cognitivetwin_core.child_processes import call_in_child
    from cognitivetwin_core.paths import resources_dir
    from cognitivetwin_core.phase1.jobs import Phase1Settings
    from cognitivetwin_core.phase1.local_lora import train_local_lora

    settings = Phase1Settings(base_model=args.base, epochs=1, max_seq_length=64, max_steps=1, lora_r=8)
    data = resources_dir() / "demo" / "conversations.jsonl"
    print("making an adapter (one training step)…", flush=True)
    result = call_in_child(
        train_local_lora, data, args.base, scratch / "adapter", settings, device="cpu", max_batch_tokens=256
    )
    return str(result.adapter_dir)


def _measure_chat(args, app, window, scratch: Path) -> bool:
    """The Playground's chat: a first reply (the twin loads), `--seconds` of replies, a Stop."""
    from PySide6.QtCore import QTimer

    from cognitivetwin_core.child_processes import end_helper

    adapter = _adapter(args, scratch)
    end_helper()  # the adapter's trainer: not running beside the measurement
    tab = window.tab_widgets["Playground"]
    window.tabs.setCurrentWidget(tab)
    chat = tab.chat_panel
    tab.result_tabs.setCurrentWidget(chat)
    chat.add_adapter_folder(adapter)
    chat.compare_box.setChecked(True)
    chat.max_new_tokens.setValue(48)
    chat.seed.setValue(1)
    stages = _Stages(("first reply", "streaming", "stop"), args.trace_stalls)
    state = {"replies": 0, "pieces": 0, "ended": None, "failed": None}
    prompts = ["How was your weekend?", "What are you working on?", "Any plans for tonight?"]

    def send() -> None:
        chat.send(prompts[state["replies"] % len(prompts)])

    def on_piece(_who, _piece) -> None:
        state["pieces"] += 1
        if stages.current == "stop" and chat.status.text() != "Stopping…":
            chat.stop()

    def on_reply(_turn) -> None:
        state["replies"] += 1
        if stages.current == "stop":
            state["ended"] = time.monotonic()
            stages.quit_soon(app)
            return
        if stages.current == "first reply":
            stages.enter("streaming")
        if time.monotonic() - stages.began["streaming"] >= args.seconds:
            stages.enter("stop")
            chat.max_new_tokens.setValue(1500)
        QTimer.singleShot(0, send)

    def on_failed(message) -> None:
        print(f"FAILED: {message}", flush=True)
        state["failed"], state["ended"] = message, time.monotonic()
        stages.quit_soon(app)

    chat.textArrived.connect(on_piece)
    chat.replyFinished.connect(on_reply)
    chat.failed.connect(on_failed)
    stages.start()
    stages.enter("first reply")
    send()
    app.exec()
    stages.stop()
    print(
        f"chat with {args.base}: {state['replies']} replies (twin and base), {state['pieces']} text signals; "
        f"torch imported in the GUI process: {'torch' in sys.modules}"
    )
    met = stages.report(state["ended"] or time.monotonic())
    chat.shutdown()
    return met and not state["failed"] and "torch" not in sys.modules


def _measure_evaluation(args, app, window, scratch: Path) -> bool:
    """The Evaluate button's work on the adapter, from the Phase 1 tab's controller."""

    from cognitivetwin_core.child_processes import end_helper

    adapter = _adapter(args, scratch)
    end_helper()
    tab = window.tab_widgets["Phase 1"]
    window.tabs.setCurrentWidget(tab)
    tab.set_workspace(window.workspace)
    job_id = "local-benchmark"
    window.workspace.upsert_phase1_job(
        job_id,
        {"backend": "local", "status": "completed", "base_model": args.base, "adapter_path": adapter},
    )
    controller = tab.controller
    controller.evaluation_samples = args.samples
    stages = _Stages(("evaluation",), args.trace_stalls)
    state = {"ended": None, "report": None, "progress": 0}

    def ended(report=None) -> None:
        state["report"], state["ended"] = report, time.monotonic()
        stages.quit_soon(app)

    controller.evaluationProgress.connect(lambda *_: state.__setitem__("progress", state["progress"] + 1))
    controller.evaluationDone.connect(lambda _job, report: ended(report))
    controller.failed.connect(lambda what, message: (print(f"FAILED ({what}): {message}", flush=True), ended()))
    stages.start()
    stages.enter("evaluation")
    if not controller.evaluate(job_id):
        print("could not start the evaluation", flush=True)
        return False
    app.exec()
    stages.stop()
    controller.evaluate_job.wait(60_000)
    print(
        f"evaluation of a twin of {args.base} on {args.samples} held-out replies: "
        f"{'a report' if state['report'] else 'no report'}, {state['progress']} progress events; "
        f"torch imported in the GUI process: {'torch' in sys.modules}"
    )
    met = stages.report(state["ended"] or time.monotonic())
    return met and state["report"] is not None and "torch" not in sys.modules


def _measure_local_lora(args, app, window, scratch: Path) -> bool:
    """Local LoRA from the Phase 1 tab's controller: dry run, `--seconds` of training, Cancel."""
    import asyncio

    from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer

    from cognitivetwin_core.child_processes import end_helper
    from cognitivetwin_core.paths import resources_dir
    from cognitivetwin_core.phase1.jobs import Phase1Settings

    tab = window.tab_widgets["Phase 1"]
    window.tabs.setCurrentWidget(tab)
    tab.set_workspace(window.workspace)
    controller = tab.controller
    controller.set_local_device("cpu")
    data = resources_dir() / "demo" / "conversations.jsonl"
    settings = Phase1Settings(base_model=args.base, epochs=args.epochs, max_seq_length=256, lora_r=8)
    stages = ("dry run", "training", "cancel")
    lateness = {name: [] for name in stages}
    began_at = {name: None for name in stages}
    state = {"stage": None, "ended": None, "steps": 0, "status": None}
    clock, last = QElapsedTimer(), {"t": None}

    def enter(name: str) -> None:
        state["stage"], began_at[name] = name, time.monotonic()
        print(f"{name} from {time.monotonic() - began_at['dry run']:.1f} s", flush=True)

    def tick() -> None:
        now = clock.nsecsElapsed() / 1e6
        if last["t"] is not None and state["stage"] is not None:
            lateness[state["stage"]].append(max(0.0, now - last["t"] - TICK_MS))
        last["t"] = now

    def on_loss(_job_id, _step, _loss) -> None:
        state["steps"] += 1
        if state["stage"] == "dry run":
            enter("training")

    def on_ended(update) -> None:
        state["status"], state["ended"] = update.status, time.monotonic()
        # The last repaints, then the end of the measurement before quitting: Qt closes the
        # window on quit (saving its state, closing the workspace), which is not the run's.
        QTimer.singleShot(500, lambda: (timer.stop(), app.quit()))

    def check() -> None:
        if state["stage"] == "training" and time.monotonic() - began_at["training"] >= args.seconds:
            enter("cancel")
            asyncio.ensure_future(controller.cancel(controller.local_job_id))

    async def start() -> None:
        plan = await controller.dry_run("local", data, settings)
        if plan is None or not await controller.launch(plan):
            print("could not start the local run", flush=True)
            app.quit()

    controller.lossPoint.connect(on_loss)
    controller.jobEnded.connect(on_ended)
    controller.failed.connect(lambda what, message: print(f"FAILED ({what}): {message}", flush=True))
    timer, checker = QTimer(), QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(TICK_MS)
    timer.timeout.connect(tick)
    checker.setInterval(100)
    checker.timeout.connect(check)
    settle = QEventLoop()
    QTimer.singleShot(SETTLE_MS, settle.quit)
    settle.exec()
    load_at_start = os.getloadavg()
    clock.start()
    tracer = _StallTracer(lambda: last["t"], clock) if args.trace_stalls else None
    timer.start()
    checker.start()
    enter("dry run")
    asyncio.ensure_future(start())
    app.exec()
    timer.stop()
    checker.stop()
    if tracer is not None:
        tracer.stop()
        tracer.report()
    controller.local_job.wait(60_000)  # the thread that followed the child
    ended = state["ended"] or time.monotonic()
    print(f"load average (1, 5, 15 min) at the start: {load_at_start}; at the end: {os.getloadavg()}")
    print(
        f"local LoRA on {args.base}: {state['steps']} steps, ended {state['status']}; "
        f"torch imported in the GUI process: {'torch' in sys.modules}"
    )
    begun = [(name, began_at[name]) for name in stages if began_at[name] is not None]
    met = True
    for (name, start_time), following in zip(begun, [*begun[1:], (None, ended)]):
        met &= _report(name, lateness[name], following[1] - start_time)
    met &= _report("all", [v for name in stages for v in lateness[name]], ended - began_at["dry run"])
    print(
        f"targets (every row): p99 < {TARGET_P99_MS:.0f} ms, max < {TARGET_MAX_MS:.0f} ms: {'met' if met else 'MISSED'}"
    )
    end_helper()
    return met and "torch" not in sys.modules


if __name__ == "__main__":
    sys.exit(main())
