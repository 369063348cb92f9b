"""The Data tab: imports (demo, a broken file, strict, cancel, Supabase) with their report,
the lazily paged conversation list (qtmodeltester; 100k messages), filters, the annotated
conversation view, statistics charts."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt

from tests.waits import WORK_TIMEOUT_MS


def _wait_job(qtbot, tab, start, timeout=WORK_TIMEOUT_MS):
    with qtbot.waitSignal(tab.jobFinished, timeout=timeout):
        assert start()


@pytest.mark.slow
def test_demo_offer_imports_the_demo_and_browses_annotated_conversations(window, qtbot, test_output_dir):
    from cognitivetwin_core.annotation.trajectory import PHASE_NAMES

    tab = window.data_tab
    assert window.demo_banner.isVisible()
    with qtbot.waitSignal(tab.importFinished, timeout=WORK_TIMEOUT_MS) as done:
        qtbot.mouseClick(window.demo_load_button, Qt.MouseButton.LeftButton)
    report = done.args[0]
    assert report.conversations_accepted >= 40 and report.rejected == []
    assert window.tabs.currentWidget() is tab
    assert not window.demo_banner.isVisible(), "the offer goes once the workspace has data"
    assert tab.message.kind == "ok" and f"Imported {report.conversations_accepted} conversations" in tab.message.text()
    assert tab.list_model.total == report.conversations_accepted
    assert tab.count_label.text() == f"{report.conversations_accepted} conversations"

    # Pick the longest conversation to see several phases.
    longest = max(range(tab.list_model.rowCount()), key=lambda r: tab.list_model.summary(r).message_count)
    summary = tab.list_model.summary(longest)
    with qtbot.waitSignal(tab.conversationShown, timeout=WORK_TIMEOUT_MS):
        tab.select_row(longest)
    view = tab.conversation_view
    annotations = window.workspace.annotations(summary.id)
    assert len(view.cards) == min(summary.message_count, 100)
    first_card, last_card = view.cards[0], view.cards[-1]
    assert first_card.phase_tag.text() == PHASE_NAMES[annotations[0].phase_id] == "opening"
    assert last_card.phase_tag.text() == PHASE_NAMES[annotations[len(view.cards) - 1].phase_id]
    assert [chip.text() for chip in first_card.chips] == list(annotations[0].patterns)
    assert first_card.bars.coordinates == pytest.approx(annotations[0].coordinates)
    # The plot holds the 5 coordinates along the conversation.
    xs, ys = view._curves[0].getData()
    assert len(xs) == summary.message_count
    assert list(ys) == pytest.approx([a.coordinates[0] for a in annotations])
    qtbot.wait(100)  # layouts show newly added widgets through queued calls
    window.grab().save(str(test_output_dir / "data_tab_conversation.png"))

    tab.details.setCurrentWidget(tab.stats_view)
    stats = window.workspace.stats()
    assert tab.stats_view.conversations_label.text() == f"{stats['conversations']:,}"
    assert tab.stats_view.bar_heights("phase") == [stats["by_phase"].get(i, 0) for i in range(6)]
    assert sum(tab.stats_view.bar_heights("pattern")) == sum(stats["by_pattern"].values()) > 0
    qtbot.wait(100)
    window.grab().save(str(test_output_dir / "data_tab_statistics.png"))

    # Importing the same data again adds nothing: the report says they were already there.
    with qtbot.waitSignal(tab.importFinished, timeout=WORK_TIMEOUT_MS) as again:
        tab.import_demo()
    assert again.args[0].duplicates == report.conversations_accepted
    assert "already in the workspace" in tab.message.text()


@pytest.mark.slow
def test_filters_narrow_the_list(window, qtbot):
    from cognitivetwin_core.annotation.patterns import PATTERN_NAMES

    tab = window.data_tab
    with qtbot.waitSignal(tab.importFinished, timeout=WORK_TIMEOUT_MS):
        tab.import_demo()
    workspace = window.workspace
    total = tab.list_model.total

    tab.pattern_filter.setCurrentIndex(tab.pattern_filter.findData("code"))
    assert tab.list_model.total == workspace.count_conversations(pattern="code") < total
    assert all("code" in tab.list_model.summary(r).patterns for r in range(tab.list_model.rowCount()))
    assert "match" in tab.count_label.text()
    tab.pattern_filter.setCurrentIndex(0)

    tab.phase_filter.setCurrentIndex(tab.phase_filter.findData(5))
    assert tab.list_model.total == workspace.count_conversations(phase=5)
    tab.phase_filter.setCurrentIndex(0)

    tab.min_messages.setValue(10)
    qtbot.waitUntil(lambda: tab.list_model.total == workspace.count_conversations(min_messages=10), timeout=3_000)
    assert all(tab.list_model.summary(r).message_count >= 10 for r in range(tab.list_model.rowCount()))
    tab.min_messages.setValue(0)

    word = workspace.get_conversation(tab.list_model.summary(0).id).messages[0].content.split()[-1].strip(".,?!")
    qtbot.keyClicks(tab.search_field, word)
    expected = workspace.count_conversations(search=word)
    qtbot.waitUntil(lambda: tab.list_model.total == expected, timeout=3_000)
    assert 0 < expected <= total
    assert len(PATTERN_NAMES) + 1 == tab.pattern_filter.count()


def _write_broken_chat_jsonl(path):
    good = {
        "messages": [
            {"role": "user", "content": "How do I sort a list in Python?"},
            {"role": "assistant", "content": "Use sorted(items) or items.sort()."},
        ]
    }
    lines = [
        json.dumps(good),
        '{"messages": [{"role": "user", "content": "unterminated"',  # line 2: bad JSON
        json.dumps({"messages": [{"role": "user"}]}),  # line 3: no content
        json.dumps({"messages": [{"role": "wizard", "content": "hi"}]}),  # line 4: unknown role
        json.dumps({**good, "messages": good["messages"] + [{"role": "user", "content": "thanks!"}]}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_broken_file_shows_the_report_with_line_numbers(window, qtbot, tmp_path, test_output_dir):
    tab = window.data_tab
    window.tabs.setCurrentWidget(tab)
    broken = tmp_path / "broken.jsonl"
    _write_broken_chat_jsonl(broken)
    with qtbot.waitSignal(tab.importFinished, timeout=WORK_TIMEOUT_MS) as done:
        tab.import_file(broken)
    report = done.args[0]
    assert report.conversations_accepted == 2 and len(report.rejected) == 3
    assert tab.message.kind == "error"
    assert "Imported 2 conversations" in tab.message.text() and "3 records were rejected" in tab.message.text()
    lines = tab.report_view.toPlainText().splitlines()
    assert tab.report_view.isVisible() and len(lines) == 3
    assert [line.split(",")[0].split(":")[1] for line in lines] == ["2", "3", "4"]
    assert "broken.jsonl:3" in lines[1] and "content" in lines[1]
    assert tab.list_model.total == 2
    qtbot.wait(100)
    window.grab().save(str(test_output_dir / "data_tab_broken_import.png"))


def test_strict_import_writes_nothing_and_says_why(window, qtbot, tmp_path):
    tab = window.data_tab
    broken = tmp_path / "broken.jsonl"
    _write_broken_chat_jsonl(broken)
    tab.strict_box.setChecked(True)
    _wait_job(qtbot, tab, lambda: tab.import_file(broken))
    assert tab.message.kind == "error" and "nothing written" in tab.message.text()
    assert "broken.jsonl:2" in tab.message.text()
    assert window.workspace.count_conversations() == 0 and tab.list_model.total == 0


def test_cancelled_import_writes_nothing(window, qtbot, tmp_path):
    tab = window.data_tab
    big = tmp_path / "big.jsonl"
    line = json.dumps(
        {"messages": [{"role": "user", "content": "word " * 400}, {"role": "assistant", "content": "reply " * 400}]}
    )
    with open(big, "w", encoding="utf-8") as stream:
        for number in range(2500):  # ~10 MB: progress ticks every MB give cancel its chances
            stream.write(line.replace("word", f"w{number}", 1) + "\n")
    with qtbot.waitSignal(tab.jobFinished, timeout=WORK_TIMEOUT_MS):
        assert tab.import_file(big)
        assert tab.cancel_button.isVisibleTo(tab)
        qtbot.mouseClick(tab.cancel_button, Qt.MouseButton.LeftButton)
    assert tab.message.kind == "info" and "nothing was imported" in tab.message.text()
    assert window.workspace.count_conversations() == 0

    # Closing the window mid-import (shutdown) cancels the job and waits for its thread.
    assert tab.import_file(big)
    tab.shutdown()
    thread = tab.job._thread
    assert thread is None or thread.isFinished()
    qtbot.waitUntil(lambda: not tab.job.is_running(), timeout=WORK_TIMEOUT_MS)
    assert window.workspace.count_conversations() == 0
    assert tab.import_demo_button.isEnabled() and not tab.cancel_button.isVisibleTo(tab)


def test_supabase_import_uses_the_keyring_and_the_mapping(window, qtbot, tmp_path, monkeypatch):
    from postgrest_server import PostgrestServer, make_turns_table

    from app import settings
    from app.tabs import data_jobs
    from cognitivetwin_core.connections import secrets

    rows = make_turns_table(tmp_path / "turns.sqlite3", 40)
    stored = {}
    monkeypatch.setattr(secrets, "get_secret", lambda name: stored.get(name))
    tab = window.data_tab

    # Nothing saved yet: a plain message that points at the Connections tab.
    _wait_job(qtbot, tab, tab.import_supabase)
    assert tab.message.kind == "error" and "Connections tab" in tab.message.text()

    with PostgrestServer(tmp_path / "turns.sqlite3", key="sb_secret_test_0123456789abcdef", max_rows=100) as server:
        stored.update({secrets.SUPABASE_URL: server.url, secrets.SUPABASE_KEY: server.key})
        settings.write(settings.SUPABASE_TABLE, "memory_turns")
        with qtbot.waitSignal(tab.importFinished, timeout=WORK_TIMEOUT_MS) as done:
            tab.import_supabase()
        report = done.args[0]
        assert report.conversations_accepted == 40 and report.messages_accepted == rows
        assert tab.list_model.total == 40
        assert "memory_turns" in tab.source_filter.itemText(1) or tab.source_filter.count() == 2

        settings.write(settings.SUPABASE_TABLE, "no_such_table")
        _wait_job(qtbot, tab, tab.import_supabase)
        assert tab.message.kind == "error" and "no_such_table" in tab.message.text()
        assert server.key not in tab.message.text()
    assert data_jobs  # the jobs module is what the tab runs


@pytest.mark.slow
def test_list_model_passes_qtmodeltester_and_pages_lazily(qtmodeltester, isolated_user_dirs, big_workspace):
    from app.tabs.conversation_list_model import PAGE_SIZE, ConversationListModel

    model = ConversationListModel()
    model.set_workspace(big_workspace)
    assert model.total == 10_000 and model.rowCount() == 0 and model.canFetchMore()
    model.fetchMore()
    assert model.rowCount() == PAGE_SIZE, "only one page is read at a time"
    qtmodeltester.check(model, force_py=True)
    while model.canFetchMore() and model.rowCount() < 5 * PAGE_SIZE:
        model.fetchMore()
    assert model.rowCount() == 5 * PAGE_SIZE
    assert model.data(model.index(0, 2)) == 10
    model.set_filters(source="other", search="word5")
    assert model.total == big_workspace.count_conversations(source="other", search="word5")
    assert model.rowCount() == 0
    model.fetchMore()
    assert 0 < model.rowCount() <= PAGE_SIZE
    assert all(model.summary(r).source == "other" for r in range(model.rowCount()))


def test_data_tab_stays_usable_with_100k_messages(window, qtbot, big_workspace, test_output_dir):
    tab = window.data_tab
    window.tabs.setCurrentWidget(tab)
    tab.set_workspace(big_workspace)
    assert tab.list_model.total == 10_000
    assert tab.list_model.rowCount() < 1_000, "the list must not load every conversation"
    tab.list_view.scrollToBottom()
    qtbot.wait(50)
    assert tab.list_model.rowCount() < 1_000
    with qtbot.waitSignal(tab.conversationShown, timeout=WORK_TIMEOUT_MS):
        tab.select_row(3)
    assert len(tab.conversation_view.cards) == 10
    tab.details.setCurrentWidget(tab.stats_view)
    assert tab.stats_view.conversations_label.text() == "10,000"
    qtbot.wait(100)
    window.grab().save(str(test_output_dir / "data_tab_100k_messages.png"))


@pytest.fixture(scope="session")
def big_workspace(tmp_path_factory):
    """10,000 conversations of 10 messages: 100k annotated messages (built once per session)."""
    from cognitivetwin_core.conversation import Conversation, Message
    from cognitivetwin_core.data.workspace import Workspace

    workspace = Workspace.open(tmp_path_factory.mktemp("big-workspace"))

    def conversations():
        for i in range(10_000):
            yield Conversation(
                id=f"c{i:05d}",
                source="other" if i % 2 else "bench",
                messages=[
                    Message(
                        role="user" if j % 2 == 0 else "assistant",
                        content=f"message {j} of conversation {i}: how do I fix this bug? word{i % 97} t{j}",
                    )
                    for j in range(10)
                ],
            )

    workspace.add_conversations(conversations(), source_label="generated")
    yield workspace
    workspace.close()


@pytest.mark.slow
def test_exports_and_token_count_run_in_the_background(window, qtbot, tmp_path, embedded_model_dir, test_output_dir):
    tab = window.data_tab
    window.tabs.setCurrentWidget(tab)
    with qtbot.waitSignal(tab.importFinished, timeout=WORK_TIMEOUT_MS):
        tab.import_demo()
    stats = window.workspace.stats()

    phase2 = tmp_path / "phase2.jsonl"
    with qtbot.waitSignal(tab.exportFinished, timeout=WORK_TIMEOUT_MS) as done:
        tab.export("phase2", phase2)
    lines = phase2.read_text(encoding="utf-8").splitlines()
    assert len(lines) == done.args[0].lines == stats["messages"]
    first = json.loads(lines[0])
    assert set(first) >= {"conversation_id", "messages", "trajectory", "patterns"}
    assert tab.message.kind == "ok" and f"Wrote {len(lines)} lines" in tab.message.text()

    phase1 = tmp_path / "phase1.jsonl"
    tab.validation_box.setChecked(True)
    with qtbot.waitSignal(tab.exportFinished, timeout=WORK_TIMEOUT_MS) as done:
        tab.export("phase1", phase1)
    summary = done.args[0]
    examples = phase1.read_text(encoding="utf-8").splitlines()
    assert len(examples) == summary.examples > 0
    assert summary.validation_path is not None and summary.validation_path.is_file()
    assert all(json.loads(line)["messages"][-1]["role"] == "assistant" for line in examples)
    assert f"Wrote {summary.examples} training examples" in tab.message.text()
    qtbot.wait(100)
    window.grab().save(str(test_output_dir / "data_tab_export.png"))

    tab.details.setCurrentWidget(tab.stats_view)
    with qtbot.waitSignal(tab.jobFinished, timeout=WORK_TIMEOUT_MS):
        assert tab.count_tokens()
    text = tab.stats_view.tokens_label.text()
    assert "smollm2-135m tokenizer" in text
    assert int(text.split()[0].replace(",", "")) > stats["characters"] / 10

    # Export failures a user can fix are shown inline: a target "folder" that is a file.
    (tmp_path / "a-file").write_text("x")
    blocked = tmp_path / "a-file" / "out.jsonl"
    _wait_job(qtbot, tab, lambda: tab.export("phase2", blocked))
    assert tab.message.kind == "error" and tab.message.text().startswith(f"Cannot write {blocked}")
    assert "choose a folder" in tab.message.text()


def test_an_unexpected_failure_is_shown_inline_and_in_the_error_dialog(window, qtbot, monkeypatch):
    from app.dialogs.errors import ErrorDialog
    from app.tabs import data_jobs

    def broken_import(progress, cancellation, *args):
        raise ZeroDivisionError("a bug in an importer")

    shown = []
    monkeypatch.setattr(data_jobs, "run_import", broken_import)
    monkeypatch.setattr(
        ErrorDialog, "show_error", classmethod(lambda cls, summary, details: shown.append((summary, details)))
    )
    tab = window.data_tab
    _wait_job(qtbot, tab, tab.import_demo)
    assert tab.message.kind == "error" and "unexpected error (ZeroDivisionError)" in tab.message.text()
    [(summary, details)] = shown
    assert "a bug in an importer" in summary and "Traceback" in details and "broken_import" in details
    assert tab.import_demo_button.isEnabled(), "the tab is usable again"


def test_import_menu_lists_every_file_importer(window, monkeypatch, tmp_path, qtbot):
    from cognitivetwin_core.data.importers import IMPORTERS

    tab = window.data_tab
    tab.import_menu.aboutToShow.emit()
    actions = tab.import_menu.actions()
    labels = [action.text() for action in actions if not action.isSeparator()]
    # First any export, recognised from a file or a folder as downloaded; then each format.
    assert labels[:2] == ["Any export (recognised automatically)…", "An export folder (as downloaded and unpacked)…"]
    assert labels[2:] == [info.title for info in IMPORTERS.values() if info.file_filter]
    assert len(labels) >= 12
    chosen = {}
    monkeypatch.setattr(tab, "import_file", lambda path, name=None: chosen.update(path=path, name=name) or True)
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(tmp_path / "x.json"), ""))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(tmp_path))
    actions[3 + 2].trigger()  # after the two "any" entries and the separator
    assert chosen == {"path": str(tmp_path / "x.json"), "name": list(IMPORTERS)[2]}
    actions[1].trigger()
    assert chosen == {"path": str(tmp_path), "name": None}


@pytest.mark.slow
def test_the_tab_asks_which_speaker_is_you_and_exports_their_turns(
    window, qtbot, tmp_path, embedded_model_dir, test_output_dir
):
    from pathlib import Path

    from PySide6.QtWidgets import QLabel

    chat = Path(__file__).parent / "fixtures" / "messenger" / "WhatsApp Chat with Cabin trip.txt"
    tab = window.data_tab
    window.tabs.setCurrentWidget(tab)
    with qtbot.waitSignal(tab.importFinished, timeout=WORK_TIMEOUT_MS):
        tab.import_file(chat)
    assert "Participants: Maya Lindqvist (6), Jonas Berg (3), Priya Nair (3)." in tab.message.text()
    assert "Left out: 1 deleted, 1 media omitted, 5 system." in tab.message.text()
    combo = tab.speaker_combo
    assert tab.speaker_question.isVisible() and tab.speaker_question.text() == "<b>Which of these is you?</b>"
    items = [combo.itemText(i) for i in range(combo.count())]
    assert items == [
        "Maya Lindqvist — 6 messages",
        "Jonas Berg — 3 messages",
        "Priya Nair — 3 messages",
        "The AI's answers — no messages",
    ]
    assert combo.currentData() == "assistant" and "Not chosen yet" in tab.speaker_status.text()

    combo.setCurrentIndex(0)
    combo.activated.emit(0)  # what a click on the item sends
    assert window.workspace.twin_speaker() == "Maya Lindqvist"
    assert combo.currentData() == "Maya Lindqvist"
    assert tab.speaker_status.text() == (
        "You: Maya Lindqvist (6 messages). The twin learns to write like that; "
        "everyone else's messages are what it answers."
    )
    with qtbot.waitSignal(tab.conversationShown, timeout=WORK_TIMEOUT_MS):
        tab.select_row(0)
    headers = [card.findChildren(QLabel)[0].text() for card in tab.conversation_view.cards]
    assert headers[0] == "<b>Maya Lindqvist (you)</b> · #1 · 2023-12-30 20:05"
    assert headers[1].startswith("<b>Jonas Berg</b>")
    qtbot.wait(100)
    window.grab().save(str(test_output_dir / "data_tab_which_is_you.png"))

    out = tmp_path / "phase1.jsonl"
    with qtbot.waitSignal(tab.exportFinished, timeout=WORK_TIMEOUT_MS):
        tab.export("phase1", out)
    examples = [json.loads(line)["messages"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert examples[-1][-1] == {"role": "assistant", "content": "done"}
    assert "+1 415-555-0132" in out.read_text(encoding="utf-8")

    # The personal-data check, then an export with placeholders.
    _wait_job(qtbot, tab, tab.check_privacy)
    assert tab.last_privacy.counts == {"email": 1, "iban": 1, "phone": 1}
    assert tab.message.text().startswith("privacy check: 3 personal details in 2 conversations")
    assert "[[maya.cabins@example.org]]" in tab.report_view.toPlainText()
    qtbot.wait(100)
    window.grab().save(str(test_output_dir / "data_tab_privacy_check.png"))
    tab.privacy_choice.setCurrentIndex(tab.privacy_choice.findData("redact"))
    with qtbot.waitSignal(tab.exportFinished, timeout=WORK_TIMEOUT_MS):
        tab.export("phase1", out)
    text = out.read_text(encoding="utf-8")
    assert "+1 415-555-0132" not in text and "<PHONE>" in text and "<IBAN>" in text

    # Nobody chosen and a two-person chat imported: the tab suggests its exporter.
    window.workspace.set_twin_speaker("assistant")
    with qtbot.waitSignal(tab.importFinished, timeout=WORK_TIMEOUT_MS):
        tab.import_file(chat.with_name("WhatsApp Chat - Lea Vogel.zip"))
    assert "The last import looks like Sam Okafor's export." in tab.speaker_status.text()


def test_statistics_name_the_files_to_import_again(qtbot, tmp_path):
    """An import that compared conversations by their texts alone (an older workspace) is named,
    with what to do, where the statistics are shown."""
    import sqlite3

    from app.widgets.stats_view import StatsView
    from cognitivetwin_core.data.importers import import_into
    from cognitivetwin_core.data.workspace import DB_NAME, Workspace

    data = tmp_path / "chats.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n", encoding="utf-8")
    with Workspace.open(tmp_path / "ws") as workspace:
        import_into(workspace, data)
    with sqlite3.connect(tmp_path / "ws" / DB_NAME) as db:  # as the migration marks such an import
        db.execute("UPDATE imports SET duplicates=3, duplicates_by_text=3")
    view = StatsView()
    qtbot.addWidget(view)
    with Workspace.open(tmp_path / "ws", read_only=True) as workspace:
        view.show_stats(workspace.stats())
    assert view.repeat_label.isVisibleTo(view)
    assert f"Import {data} again" in view.repeat_label.text() and "skipped 3 conversations" in view.repeat_label.text()
    with Workspace.open(tmp_path / "ws") as workspace:
        import_into(workspace, data)
        view.show_stats(workspace.stats())
    assert not view.repeat_label.isVisibleTo(view)


def test_an_export_folder_is_recognised_and_its_owner_is_you(window, qtbot, test_output_dir):
    from pathlib import Path

    from PySide6.QtCore import QMimeData, QPoint, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    folder = Path(__file__).parent / "fixtures" / "meta" / "facebook-zoemartins"
    tab = window.data_tab
    window.tabs.setCurrentWidget(tab)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    drop = QDropEvent(
        QPointF(QPoint(10, 10)),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(tab.importFinished, timeout=WORK_TIMEOUT_MS) as done:
        tab.dropEvent(drop)  # the folder dropped on the tab, as downloaded and unpacked
    assert done.args[0].importer == "facebook-messenger"
    text = tab.message.text()
    assert text.startswith("Recognised: Facebook Messenger download (folder or .zip). Imported 3 conversations")
    assert "The twin now speaks as Zoë Martins, the export's owner" in text
    # "Which of these is you?" answers with the export's owner, not the AI's side.
    assert tab.speaker_combo.currentData() == "Zoë Martins"
    assert tab.speaker_status.text() == (
        "You: Zoë Martins (3 messages). The twin learns to write like that; "
        "everyone else's messages are what it answers."
    )
    qtbot.wait(100)
    window.grab().save(str(test_output_dir / "data_tab_export_folder.png"))

    # Her Signal messages are signed "Me": "These are all me" makes one speaker of both.
    with qtbot.waitSignal(tab.importFinished, timeout=WORK_TIMEOUT_MS):
        tab.import_file(folder.parent.parent / "signal" / "sigtop")
    assert tab.link_speakers_button.isVisible()
    dialog = tab.open_link_speakers()
    names = [dialog.list.item(row).data(Qt.ItemDataRole.UserRole) for row in range(dialog.list.count())]
    assert "Me" in names and "Zoë Martins" in names
    for row in range(dialog.list.count()):
        if dialog.list.item(row).data(Qt.ItemDataRole.UserRole) in ("Me", "Zoë Martins"):
            dialog.list.item(row).setCheckState(Qt.CheckState.Checked)
    dialog.name_edit.setText("Zoë Martins")
    dialog.accept()
    assert tab.speaker_combo.currentData() == "Zoë Martins"
    assert tab.speaker_combo.currentText() == "Zoë Martins — 5 messages"
    assert window.workspace.twin_speaker() == "Zoë Martins"
