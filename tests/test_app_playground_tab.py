"""The Playground tab against a real Phase 2 model trained for a few steps on the
demo data (a tiny random Llama base, so the whole module stays fast): every panel shows
exactly what the core's `analyze` returns for the same input (computed here, the tab's in
its child process); typed text, trajectory edits, compare and export work; what crosses
from the child holds no torch object; a screenshot goes to the test output folder."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tests.pickled_modules import torch_modules
from tests.waits import WORK_TIMEOUT_MS

LOAD_TIMEOUT_MS = WORK_TIMEOUT_MS
ANALYSIS_TIMEOUT_MS = WORK_TIMEOUT_MS


def _train(output_dir, seed: int, base_dir, **source):
    from cognitivetwin_core.phase2.config import Phase2Config
    from cognitivetwin_core.phase2.trainer import Phase2Trainer

    config = Phase2Config(
        base_model=str(base_dir),
        output_dir=str(output_dir),
        epochs=1,
        batch_size=8,
        gradient_accumulation=1,
        lr=1e-3,
        device="cpu",
        seed=seed,
        cache_dir=str(output_dir.parent / "features"),
    )
    events = list(Phase2Trainer(config, **source).run())
    assert events[-1].kind == "finished" and events[-1].outcome == "completed", events[-1]
    return output_dir.resolve()


@pytest.fixture(scope="module")
def trained_workspace(tmp_path_factory, tiny_model_dir):
    """The demo data in a workspace with a Phase 2 run of it (a tiny base, one epoch), and a
    second run outside the workspace (another seed, a few of the conversations), which the
    tab opens as a folder."""
    from cognitivetwin_core.data.importers import import_into
    from cognitivetwin_core.data.workspace import Workspace

    root = tmp_path_factory.mktemp("playground")
    workspace = Workspace.open(root / "workspace")
    import_into(workspace, "demo")
    first = _train(workspace.runs_dir / "run-a", 1, tiny_model_dir, workspace=workspace)
    some = list(workspace.iter_conversations())[::4]
    second = _train(root / "elsewhere" / "run-b", 2, tiny_model_dir, conversations=some)
    yield workspace, first, second
    workspace.close()


@pytest.fixture(scope="module")
def shared_process():
    """The analysis child with its loaded models and indexes, shared by the tabs of this module
    (loading is the slow part; the first test still loads through the tab and sees its progress)."""
    from cognitivetwin_core.playground.analysis_process import PlaygroundProcess

    process = PlaygroundProcess()
    yield process
    process.close()


@pytest.fixture(scope="module")
def core_session():
    """The same runs loaded in this process: the core's own analysis, to compare the tab's with."""
    from cognitivetwin_core.playground.session import PlaygroundSession

    return PlaygroundSession()


def _share(widget, process) -> None:
    """Let `widget`'s controller use the module's child, and not end it when the tab shuts down."""
    from cognitivetwin_core.playground.analysis_process import PlaygroundProcess

    own = widget.controller.process
    widget.controller.process = process
    shutdown = widget.controller.shutdown

    def shut_down_without_ending_the_shared_child():
        widget.controller.process = own
        shutdown()

    widget.controller.shutdown = shut_down_without_ending_the_shared_child
    assert isinstance(own, PlaygroundProcess) and own.pid is None


@pytest.fixture()
def tab(qtbot, trained_workspace, shared_process, isolated_user_dirs):
    from app.tabs.playground_tab import PlaygroundTab

    workspace, first, _second = trained_workspace
    widget = PlaygroundTab()
    _share(widget, shared_process)
    widget.progress_texts = []
    widget.controller.progress.connect(lambda text, _fraction: widget.progress_texts.append(text))
    qtbot.addWidget(widget)
    widget.resize(1500, 950)
    widget.show()
    qtbot.waitExposed(widget)
    with qtbot.waitSignal(widget.runLoaded, timeout=LOAD_TIMEOUT_MS):
        widget.set_workspace(workspace)
    yield widget
    widget.shutdown()


def _wait_main(qtbot, tab, action):
    with qtbot.waitSignal(tab.analysisShown, timeout=ANALYSIS_TIMEOUT_MS, check_params_cb=lambda slot: slot == "main"):
        action()
    qtbot.waitUntil(lambda: not tab.controller.is_busy(), timeout=ANALYSIS_TIMEOUT_MS)
    return tab.main_result


def _loaded_here(session, run_dir, workspace_path):
    from cognitivetwin_core.cancellation import Cancellation

    return session.ensure_loaded(run_dir, workspace_path, lambda _event: None, Cancellation())[0]


def _expected(session, tab, request):
    """The core's analysis of the same input, computed here, outside the tab (and its child)."""
    from cognitivetwin_core.playground.analysis import analyze

    loaded = _loaded_here(session, request.run_dir, tab.workspace.path)
    from app.tabs.playground_controller import NEIGHBOURS_PER_STEP

    return analyze(
        request.message,
        request.context,
        loaded.model,
        trajectory=request.trajectory,
        neighbours_index=loaded.neighbours,
        top_k=NEIGHBOURS_PER_STEP,
    )


def _assert_panels_show(tab, expected, request):
    """Every panel shows the numbers of `expected` (the core's Analysis)."""
    from cognitivetwin_core.annotation.stylometrics import stylometric_dict

    assert expected.pattern_labels == tab.main_result.analysis.pattern_labels
    rows = tab.pattern_bars.rows()
    assert len(rows) == 12
    assert [value for _, value, _ in rows] == sorted((value for _, value, _ in rows), reverse=True)
    for name, value, kind in rows:
        assert value == pytest.approx(expected.pattern_probabilities[name], abs=1e-5)
        assert (kind != "") == (name in expected.pattern_labels)
    assert np.allclose(tab.signature_strip.values(), expected.style_signature, atol=1e-5)
    assert len(tab.signature_strip.values()) == 256
    readout = tab.stylometric_readout.predicted()
    assert readout.keys() == expected.stylometrics.keys()
    for name, value in expected.stylometrics.items():
        assert readout[name] == pytest.approx(value, abs=1e-5)
    assert tab.stylometric_readout.measured() == pytest.approx(stylometric_dict(request.text))
    assert tab.stylometric_readout.measured() == pytest.approx(expected.measured_stylometrics)
    shown_steps = tab.plan_steps.steps()
    assert len(shown_steps) == len(expected.plan_steps) >= 1
    for shown, step in zip(shown_steps, expected.plan_steps):
        assert [(cid, turn) for _, cid, turn, _, _ in shown] == [(n.conversation_id, n.message_index) for n in step]
        assert [score for score, *_ in shown] == pytest.approx([n.score for n in step], abs=1e-5)
        assert len(shown) >= 1
    assert tab.plan_steps.topLevelItemCount() == len(expected.plan_steps)
    # Who wrote each neighbour reads "you" or "them" (the twin speaker), never a raw role.
    person = tab.workspace.twin_speaker()
    for number, shown in enumerate(shown_steps):
        step_item = tab.plan_steps.topLevelItem(number)
        words = [step_item.child(row).text(2) for row in range(step_item.childCount())]
        assert words == ["you" if writer == person else "them" for _, _, _, writer, _ in shown]
    # The map highlights the message where the same PCA puts its signature.
    assert tab.style_map.current_xy is not None
    assert np.allclose(tab.style_map.current_xy, tab.style_map.project(expected.style_signature), atol=1e-6)


def test_selecting_a_message_fills_all_panels_with_the_cores_analysis(
    tab, core_session, qtbot, trained_workspace, test_output_dir
):
    workspace, first, _ = trained_workspace
    assert [choice.run_dir for choice in tab.runs] == [first]
    if tab.progress_texts:  # this test loaded the run itself: the load showed its steps
        assert any("Loading the base model" in text for text in tab.progress_texts)
        assert any("workspace" in text for text in tab.progress_texts)
    # The map holds every workspace message, coloured by role, with hover text.
    assert len(tab.style_map.points) == workspace.count_messages()
    assert tab.style_map.hover_text(0).endswith(" ".join(tab.style_map.points[0].text.split())[:200])
    conversation = next(workspace.iter_conversations())
    turn = min(2, len(conversation.messages) - 1)
    result = _wait_main(qtbot, tab, lambda: tab.picker.select(conversation.id, turn))
    request = result.request
    assert request.source == (conversation.id, turn)
    assert request.text == conversation.messages[turn].content
    assert [m.content for m in request.context] == [m.content for m in conversation.messages[:turn]]
    annotation = workspace.annotations(conversation.id)[turn]
    assert request.trajectory == annotation.trajectory and not request.trajectory_edited
    assert set(result.analysis.pattern_labels) == set(annotation.patterns) and annotation.patterns
    _assert_panels_show(tab, _expected(core_session, tab, request), request)
    # The result came from the tab's child process, and it names no torch object (which
    # would import torch into the window's process where it is unpickled).
    assert tab.controller.process.pid not in (None, os.getpid())
    assert torch_modules(result, tab.controller.last_run_map) == []
    # The base did not run again: the message's pooled state came from the feature cache,
    # and it is what encoding the message after its context gives (up to float16 storage).
    loaded = _loaded_here(core_session, request.run_dir, workspace.path)
    seeded = loaded.model._pooled_cache[type(conversation)("k", "k", conversation.messages[: turn + 1]).content_hash()]
    fresh = loaded.model.encode_conversation(conversation.messages[: turn + 1])[-1]
    cosine = float(np.dot(seeded, fresh) / np.linalg.norm(seeded) / np.linalg.norm(fresh))
    assert cosine > 0.999 and np.allclose(seeded, fresh, rtol=2e-2, atol=2e-2)
    assert tab.sliders.coordinates() == pytest.approx(annotation.coordinates)
    assert tab.sliders.phase_id() == annotation.phase_id
    # Colour by conversation recolours the same points.
    by_role = tab.style_map.point_colors()
    tab.map_color_combo.setCurrentIndex(1)
    assert tab.style_map.color_by == "conversation" and tab.style_map.point_colors() != by_role
    tab.map_color_combo.setCurrentIndex(0)
    tab.grab().save(str(test_output_dir / "playground-tab.png"))


def test_typed_text_with_context_is_analysed_as_you_type(tab, core_session, qtbot):
    from cognitivetwin_core.conversation import Message

    tab.input_tabs.setCurrentIndex(1)
    tab.typed_context.setPlainText("user: How do I reverse a list in Python?\n\nUse reversed() or slicing.")
    text = "Thanks! Could you show me the slicing version with an example?"

    # The tab opens the first workspace message by itself after loading; let that analysis land
    # first, or on a busy machine it arrives during the typing and is taken for the typed one.
    qtbot.waitUntil(lambda: tab.main_result is not None and not tab.controller.is_busy(), timeout=ANALYSIS_TIMEOUT_MS)
    submitted_before = tab._serial
    qtbot.keyClicks(tab.typed_text, text)

    def typed_result_shown():
        shown = tab.main_result
        return shown is not None and shown.request.source is None and not tab.controller.is_busy()

    qtbot.waitUntil(typed_result_shown, timeout=ANALYSIS_TIMEOUT_MS)
    request = tab.main_result.request
    assert request.source is None and request.text == text
    # Debounced: a burst of keystrokes is analysed once it pauses, not per character.
    assert tab._serial - submitted_before < len(text) // 4
    assert [(m.role, m.content) for m in request.context] == [
        ("user", "How do I reverse a list in Python?"),
        ("assistant", "Use reversed() or slicing."),
    ]
    assert request.trajectory.coordinates[0] == pytest.approx(1.0)  # depth: last of three messages
    assert request.label_kind == "rules"
    _assert_panels_show(tab, _expected(core_session, tab, request), request)
    assert isinstance(request.context[0], Message)
    source = tab.source_label.text()
    assert "a typed message (" in source and ") after 2 context message(s)" in source
    assert "(user)" not in source and "(assistant)" not in source, "you or them, not a raw role"
    assert "100% of the way into the conversation" in source and "0.33" not in source, "words, not raw numbers"


def test_editing_a_trajectory_slider_changes_the_outputs(tab, core_session, qtbot, trained_workspace):
    workspace = trained_workspace[0]
    conversation = next(workspace.iter_conversations())
    before = _wait_main(qtbot, tab, lambda: tab.picker.select(conversation.id, 0))
    assert before.request.trajectory.coordinates[0] == 0.0
    after = _wait_main(qtbot, tab, lambda: tab.sliders.set_coordinate(0, 0.95))
    request = after.request
    assert request.trajectory_edited and request.trajectory.coordinates[0] == pytest.approx(0.95)
    assert request.trajectory.phase_id == 5, "moving depth moves the phase along with it"
    assert request.trajectory.coordinates[1:] == pytest.approx(before.request.trajectory.coordinates[1:])
    assert not np.allclose(after.analysis.style_signature, before.analysis.style_signature, atol=1e-6)
    changed = [
        name
        for name in after.analysis.pattern_probabilities
        if abs(after.analysis.pattern_probabilities[name] - before.analysis.pattern_probabilities[name]) > 1e-6
    ]
    assert changed, "pattern probabilities should depend on the trajectory"
    _assert_panels_show(tab, _expected(core_session, tab, request), request)
    assert "95% of the way into the conversation, closing (position changed by hand)" in tab.source_label.text()
    reset = _wait_main(qtbot, tab, tab.sliders.reset)
    assert not reset.request.trajectory_edited
    assert np.allclose(reset.analysis.style_signature, before.analysis.style_signature, atol=1e-6)
    # An edit belongs to its message: the next message starts from its own trajectory.
    _wait_main(qtbot, tab, lambda: tab.sliders.set_coordinate(4, 0.99))
    other = _wait_main(qtbot, tab, lambda: tab.picker.select(conversation.id, 1))
    own = workspace.annotations(conversation.id)[1]
    assert not other.request.trajectory_edited and other.request.trajectory == own.trajectory
    assert tab.sliders.coordinates() == pytest.approx(own.coordinates) and not tab.sliders.is_edited()


def _wait_compare(qtbot, tab, action):
    with qtbot.waitSignal(
        tab.analysisShown, timeout=ANALYSIS_TIMEOUT_MS, check_params_cb=lambda slot: slot == "compare"
    ):
        action()
    qtbot.waitUntil(lambda: not tab.controller.is_busy(), timeout=LOAD_TIMEOUT_MS)


@pytest.mark.slow
def test_compare_two_messages_and_one_message_under_two_runs(
    tab, core_session, qtbot, trained_workspace, test_output_dir
):
    workspace, first, second = trained_workspace
    conversations = list(workspace.iter_conversations())
    _wait_main(qtbot, tab, lambda: tab.picker.select(conversations[0].id, 1))
    tab.compare_picker.select(conversations[3].id, 0)
    _wait_compare(qtbot, tab, lambda: tab.compare_check.setChecked(True))
    a, b = tab.main_result, tab.compare_result
    assert b.request.source == (conversations[3].id, 0) and a.request.source == (conversations[0].id, 1)
    cosine = float(np.dot(a.analysis.style_signature, b.analysis.style_signature))
    assert tab.compare_cosine == pytest.approx(cosine)
    assert f"{cosine:.4f}" in tab.cosine_label.text()
    assert np.allclose(tab.compare_panel_a.signature_strip.values(), a.analysis.style_signature)
    assert np.allclose(tab.compare_panel_b.signature_strip.values(), b.analysis.style_signature)
    assert conversations[3].id in tab.compare_panel_b.source_label.text()
    assert tab.style_map.compare_xy is not None
    expected_b = _expected(core_session, tab, b.request)
    assert np.allclose(b.analysis.style_signature, expected_b.style_signature, atol=1e-5)
    assert tab.result_tabs.currentIndex() == 1
    tab.grab().save(str(test_output_dir / "playground-compare-messages.png"))

    # The same message under another run, opened as a folder.
    assert tab.add_run_folder(second) and tab.current_run().run_dir == second
    with qtbot.waitSignal(
        tab.runLoaded, timeout=LOAD_TIMEOUT_MS, check_params_cb=lambda run_dir: run_dir == str(first)
    ):
        tab.run_combo.setCurrentIndex(0)  # back to the workspace's run (its map comes back too)
    qtbot.waitUntil(lambda: not tab.controller.is_busy(), timeout=LOAD_TIMEOUT_MS)
    a = tab.main_result
    assert a.request.run_dir == first
    tab.compare_run_combo.setCurrentIndex(tab.compare_run_combo.findText(tab.run_combo.itemText(1)))
    _wait_compare(qtbot, tab, lambda: tab.compare_run_radio.setChecked(True))
    b = tab.compare_result
    assert b.request.text == a.request.text and b.request.run_dir != a.request.run_dir
    assert {a.request.run_dir, b.request.run_dir} == {first, second}
    assert not np.allclose(b.analysis.style_signature, a.analysis.style_signature, atol=1e-4), "two runs, two models"
    assert tab.compare_cosine == pytest.approx(float(np.dot(a.analysis.style_signature, b.analysis.style_signature)))
    expected_b = _expected(core_session, tab, b.request)
    assert np.allclose(tab.compare_panel_b.signature_strip.values(), expected_b.style_signature, atol=1e-5)
    tab.grab().save(str(test_output_dir / "playground-compare-runs.png"))


def test_export_writes_the_view_and_its_numbers(tab, qtbot, trained_workspace, tmp_path):
    from PySide6.QtGui import QImage

    workspace = trained_workspace[0]
    conversation = next(workspace.iter_conversations())
    result = _wait_main(qtbot, tab, lambda: tab.picker.select(conversation.id, 1))
    assert tab.export_button.isEnabled()
    with qtbot.waitSignal(tab.exported, timeout=5_000):
        png, numbers_path = tab.export_view(tmp_path / "out" / "view.png")
    image = QImage(str(png))
    assert not image.isNull() and image.width() == tab.width() and image.height() == tab.height()
    numbers = json.loads(numbers_path.read_text(encoding="utf-8"))
    main = numbers["main"]
    assert main["source"] == {"conversation_id": conversation.id, "turn_index": 1}
    assert main["message"] == conversation.messages[1].content and main["trajectory"]["coordinates"]
    assert main["style_signature"] == pytest.approx(list(result.analysis.style_signature))
    assert main["pattern_probabilities"] == pytest.approx(dict(result.analysis.pattern_probabilities))
    assert main["stylometrics"] == pytest.approx(dict(result.analysis.stylometrics))
    assert len(main["plan_steps"]) == len(result.analysis.plan_steps)
    assert main["plan_steps"][0][0]["score"] == pytest.approx(result.analysis.plan_steps[0][0].score)
    assert numbers["compare"] is None and numbers["signature_cosine"] is None
    assert [p.name for p in (tmp_path / "out").iterdir()] and not [
        p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")
    ]


def test_no_run_yet_says_what_to_do_and_a_bad_folder_is_reported(qtbot, tmp_path, isolated_user_dirs):
    from app.tabs.playground_tab import PlaygroundTab
    from cognitivetwin_core.data.workspace import Workspace

    widget = PlaygroundTab()
    qtbot.addWidget(widget)
    with Workspace.open(tmp_path / "empty") as workspace:
        widget.set_workspace(workspace)
        assert widget.message.kind == "info" and "Phase 2 tab" in widget.message.text()
        assert widget.run_combo.count() == 0 and not widget.export_button.isEnabled()
        assert not widget.add_run_folder(tmp_path)
        assert widget.message.kind == "error" and "config.json" in widget.message.text()
        widget.shutdown()


def test_typed_context_parsing():
    from app.tabs.playground_controller import parse_context

    assert parse_context("") == []
    parsed = parse_context("Hi there\n\nHello! How can I help?\n\nsystem: be brief", before_role="user")
    assert [(m.role, m.content) for m in parsed] == [
        ("assistant", "Hi there"),
        ("user", "Hello! How can I help?"),
        ("system", "be brief"),
    ]
    parsed = parse_context("first\n\nsecond", before_role="assistant")
    assert [m.role for m in parsed] == ["assistant", "user"]
    assert [m.content for m in parse_context("note: not a role\n\nuser: yes")] == ["note: not a role", "yes"]


def test_map_hover_names_the_message_and_a_click_selects_it(tab, qtbot, trained_workspace):
    scatter = tab.style_map.scatter
    spots = scatter.points()
    assert len(spots) == len(tab.style_map.points)
    spot = spots[7]
    point = tab.style_map.points[spot.data()]
    tip = scatter.opts["tip"](x=spot.pos().x(), y=spot.pos().y(), data=spot.data())
    who = "you" if point.person else "them"
    assert tip.startswith(f"{point.conversation_id}, message {point.turn_index + 1} ({who})")
    assert " ".join(point.text.split())[:100] in tip
    result = _wait_main(qtbot, tab, lambda: tab.style_map._clicked(scatter, [spot]))
    assert result.request.source == (point.conversation_id, point.turn_index)
    assert tab.picker.current() == (point.conversation_id, point.turn_index)
    # A plan-step neighbour opens the same way (double-click).
    first_neighbour = tab.plan_steps.topLevelItem(0).child(0)
    cid, turn = first_neighbour.data(0, 0x0100)
    again = _wait_main(qtbot, tab, lambda: tab.plan_steps.itemDoubleClicked.emit(first_neighbour, 0))
    assert again.request.source == (cid, turn)


def test_a_run_whose_base_is_gone_is_reported_inline(tab, qtbot, trained_workspace, tmp_path):
    import shutil

    _, first, _ = trained_workspace
    broken = tmp_path / "moved-run"
    shutil.copytree(first, broken, ignore=shutil.ignore_patterns("checkpoint"))
    config = json.loads((broken / "config.json").read_text(encoding="utf-8"))
    config["base_model"] = str(tmp_path / "deleted-base")
    (broken / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with qtbot.waitSignal(tab.controller.failed, timeout=LOAD_TIMEOUT_MS):
        assert tab.add_run_folder(broken)
    qtbot.waitUntil(lambda: not tab.controller.is_busy(), timeout=LOAD_TIMEOUT_MS)
    assert tab.message.kind == "error" and "deleted-base" in tab.message.text()
    # Back to a good run: the error goes, results come.
    _wait_main(qtbot, tab, lambda: tab.run_combo.setCurrentIndex(0))
    assert tab.message.kind != "error" and tab.main_result.request.run_dir == first


def test_the_last_viewed_run_opens_again_and_old_numbers_go_while_the_next_loads(
    tab, qtbot, trained_workspace, shared_process
):
    """Last in this module: it adds a second run to the shared workspace."""
    import shutil
    from pathlib import Path

    from app.tabs.playground_tab import PlaygroundTab

    workspace, first, _second = trained_workspace
    copy = workspace.runs_dir / "run-a-copy"
    shutil.copytree(first, copy)
    workspace.upsert_phase2_run("run-a-copy", {"output_dir": str(copy), "outcome": "completed"})
    tab.refresh_runs()
    assert tab.run_combo.count() == 2 and Path(tab.current_run().run_dir) == Path(first).resolve()
    conversation = next(workspace.iter_conversations())
    _wait_main(qtbot, tab, lambda: tab.picker.select(conversation.id, min(2, len(conversation.messages) - 1)))
    assert tab.main_result is not None and tab.pattern_bars.rows()

    # Another run: the numbers of the one before are gone at once, before it has loaded.
    other = next(i for i in range(tab.run_combo.count()) if Path(tab.run_combo.itemData(i).run_dir) == copy.resolve())
    tab.run_combo.setCurrentIndex(other)
    assert tab.main_result is None and tab.pattern_bars.rows() == [] and "Loading" in tab.source_label.text()
    qtbot.waitUntil(lambda: not tab.controller.is_busy(), timeout=LOAD_TIMEOUT_MS)

    # A restart (a new tab) opens the run looked at last, not the newest.
    again = PlaygroundTab()
    _share(again, shared_process)
    qtbot.addWidget(again)
    again.set_workspace(workspace)
    try:
        assert Path(again.current_run().run_dir) == copy.resolve()
    finally:
        again.shutdown()
