"""Playground latency in the real tab: first load, then request -> panels shown.

Opens the Playground tab (offscreen unless a display is set) on a workspace with a
finished Phase 2 run, and measures:

- the first load (base + components, the workspace's neighbour index from the feature
  cache, the map's signatures), with the tab's progress messages;
- selecting workspace messages (their pooled states come from the feature cache);
- moving a trajectory slider on an analysed message (the pooled state is cached: only the
  small components run), including the tab's debounce;
- typed text (analyse-as-you-type, including the debounce).

Issue 9's target: results well under a second after the model is loaded.

    .venv/bin/python benchmarks/playground_latency.py --workspace DIR [--run RUN_DIR] [--messages 12]

Without --run the newest usable run of the workspace is used. Without --workspace a
temporary one is made with the demo data and a one-epoch run on --base (default
smollm2-135m) is trained first (minutes on a CPU).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _train(workspace, base: str) -> None:
    from cognitivetwin_core.phase2.config import Phase2Config
    from cognitivetwin_core.phase2.trainer import Phase2Trainer

    config = Phase2Config(base_model=base, epochs=1, device="auto", batch_size=4, gradient_accumulation=1)
    for event in Phase2Trainer(config, workspace=workspace).run():
        if event.kind == "finished":
            print(f"trained: {event.outcome} ({event.message})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace")
    parser.add_argument("--run")
    parser.add_argument("--base", default="smollm2-135m")
    parser.add_argument("--messages", type=int, default=12)
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from cognitivetwin_core.data.importers import import_into
    from cognitivetwin_core.data.workspace import Workspace

    app = QApplication.instance() or QApplication([])
    if args.workspace:
        workspace = Workspace.open(args.workspace)
    else:
        workspace = Workspace.open(Path(tempfile.mkdtemp(prefix="playground-bench-")) / "workspace")
        import_into(workspace, "demo")
        _train(workspace, args.base)

    from app.tabs.playground_tab import PlaygroundTab

    tab = PlaygroundTab()
    tab.resize(1500, 950)
    progress: list[tuple[float, str]] = []
    started = time.perf_counter()
    tab.controller.progress.connect(lambda text, _f: progress.append((time.perf_counter() - started, text)))

    def wait_for(signal, check=lambda *a: True, timeout_s: float = 600.0) -> float:
        """Seconds until `signal` fires with arguments passing `check` (after the caller's action)."""
        loop = QEventLoop()
        hit: list[float] = []

        def on_signal(*values):
            if check(*values) and not hit:
                hit.append(time.perf_counter())
                loop.quit()

        signal.connect(on_signal)
        QTimer.singleShot(int(timeout_s * 1000), loop.quit)
        begin = time.perf_counter()
        loop.exec()
        signal.disconnect(on_signal)
        if not hit:
            raise SystemExit(f"timed out after {timeout_s:.0f} s waiting for {signal}")
        return hit[0] - begin

    def timed(action, signal, check=lambda *a: True) -> float:
        loop_begin = time.perf_counter()
        QTimer.singleShot(0, action)
        wait_for(signal, check)
        return time.perf_counter() - loop_begin

    tab.show()
    tab.set_workspace(workspace)
    if args.run:
        tab.add_run_folder(args.run)
    if tab.current_run() is None:
        print("No usable Phase 2 run in the workspace: train one first (or omit --workspace).")
        return 1
    wait_for(tab.runLoaded)
    load_s = time.perf_counter() - started  # from set_workspace to the map drawn
    while tab.controller.is_busy():
        app.processEvents()
    print(f"run: {tab.current_run().run_dir}")
    print(f"first load: {load_s:.2f} s")
    for at, text in progress:
        print(f"  {at:7.2f} s  {text}")

    main_shown = tab.analysisShown
    conversations = list(workspace.iter_conversations())
    picks = [(c.id, i % len(c.messages)) for i, c in enumerate(conversations) if c.messages][: args.messages]
    select_s, compute_s = [], []
    for conversation_id, turn in picks:
        select_s.append(
            timed(lambda c=conversation_id, t=turn: tab.picker.select(c, t), main_shown, lambda slot: slot == "main")
        )
        compute_s.append(tab.main_result.seconds)
    slider_s, slider_compute_s = [], []
    for value in (0.1, 0.3, 0.5, 0.7, 0.9, 0.95):
        slider_s.append(
            timed(lambda v=value: tab.sliders.set_coordinate(0, v), main_shown, lambda slot: slot == "main")
        )
        slider_compute_s.append(tab.main_result.seconds)
    tab.input_tabs.setCurrentIndex(1)
    typed_s, typed_compute_s = [], []
    for text in ("How do I read a CSV file in pandas?", "ok thanks", "Can you explain why the join is slow?"):
        typed_s.append(timed(lambda t=text: tab.typed_text.setPlainText(t), main_shown, lambda slot: slot == "main"))
        typed_compute_s.append(tab.main_result.seconds)

    def line(name, values):
        return f"{name:<44} median {statistics.median(values) * 1000:8.1f} ms   max {max(values) * 1000:8.1f} ms   (n={len(values)})"

    print(line("select a message -> panels shown", select_s))
    print(line("  of which analyze() (pooled state from cache)", compute_s))
    print(line(f"move a slider -> panels shown (debounce {tab._slider_timer.interval()} ms)", slider_s))
    print(line("  of which analyze() (cached pooled state)", slider_compute_s))
    print(line(f"typed text -> panels shown (debounce {tab._typing_timer.interval()} ms)", typed_s))
    print(line("  of which analyze() (base forward + heads)", typed_compute_s))
    ratio = statistics.median(typed_compute_s) / max(statistics.median(compute_s), 1e-9)
    print(f"analyze(): typed text (base runs) / workspace message (cached pooled state) = {ratio:.0f}x")
    tab.shutdown()
    workspace.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
