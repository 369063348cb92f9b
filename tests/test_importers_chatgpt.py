"""ChatGPT data export: the `mapping` tree, the path to `current_node` (edits and
regenerations are other branches), hidden/system scaffolding skipped, timestamps kept,
the export's .zip and folder, broken records with their positions."""

import json
import zipfile

from cognitivetwin_core.data.importers import read_conversations


def node(node_id, parent, children, role=None, text=None, *, time=None, content_type="text", hidden=False, parts=None):
    message = None
    if role is not None:
        message = {
            "id": node_id,
            "author": {"role": role, "name": None, "metadata": {}},
            "create_time": time,
            "update_time": None,
            "content": {"content_type": content_type, "parts": parts if parts is not None else [text]},
            "status": "finished_successfully",
            "end_turn": True,
            "weight": 1.0,
            "metadata": {"is_visually_hidden_from_conversation": True} if hidden else {},
            "recipient": "all",
        }
    return node_id, {"id": node_id, "message": message, "parent": parent, "children": children}


def export_record(conversation_id="c-1", current="n6"):
    nodes = dict(
        [
            node("root", None, ["n0"]),
            node("n0", "root", ["n1"], "system", "", hidden=True),
            node("n1", "n0", ["n2"], "user", "How do I undo the last git commit?", time=1760000000.5),
            node("n2", "n1", ["n3a", "n3b"], "assistant", "Use `git reset --soft HEAD~1`.", time=1760000010.0),
            node("n3a", "n2", [], "user", "(an edit the user abandoned)", time=1760000020.0),
            node(
                "n3b",
                "n2",
                ["n4"],
                "user",
                "And if I already pushed it?",
                time=1760000030.0,
                parts=["And if I already pushed it?", {"content_type": "image_asset_pointer", "asset_pointer": "x"}],
            ),
            node("n4", "n3b", ["n5"], "assistant", None, content_type="model_editable_context", parts=[]),
            node("n5", "n4", ["n6"], "tool", "", time=1760000035.0),
            node("n6", "n5", [], "assistant", "Then use `git revert HEAD` and push.", time=1760000040.0),
        ]
    )
    return {
        "title": "Undo a commit",
        "create_time": 1760000000.0,
        "update_time": 1760000040.0,
        "mapping": nodes,
        "current_node": current,
        "conversation_id": conversation_id,
        "id": conversation_id,
    }


def test_follows_the_path_to_current_node_and_skips_scaffolding(tmp_path):
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([export_record()], indent=1))
    [conversation], report = read_conversations(path)
    assert report.ok and report.importer == "chatgpt"
    assert conversation.id == "c-1" and conversation.title == "Undo a commit"
    assert [(m.role, m.content) for m in conversation.messages] == [
        ("user", "How do I undo the last git commit?"),
        ("assistant", "Use `git reset --soft HEAD~1`."),
        ("user", "And if I already pushed it?"),
        ("assistant", "Then use `git revert HEAD` and push."),
    ]
    assert conversation.messages[0].created_at.timestamp() == 1760000000.5
    assert conversation.messages[-1].created_at.timestamp() == 1760000040.0


def test_another_current_node_gives_the_other_branch(tmp_path):
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([export_record(current="n3a")]))
    [conversation], _ = read_conversations(path)
    assert conversation.messages[-1].content == "(an edit the user abandoned)"


def test_zip_and_folder_exports(tmp_path):
    archive = tmp_path / "chatgpt-export.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("chat.html", "<html></html>")
        handle.writestr("conversations.json", json.dumps([export_record("a"), export_record("b")]))
    conversations, report = read_conversations(archive)
    assert [c.id for c in conversations] == ["a", "b"] and report.importer == "chatgpt"
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "conversations.json").write_text(json.dumps([export_record("c")]))
    conversations, _ = read_conversations(folder)
    assert [c.id for c in conversations] == ["c"]
    empty_zip = tmp_path / "other.zip"
    with zipfile.ZipFile(empty_zip, "w") as handle:
        handle.writestr("readme.txt", "nothing")
    conversations, report = read_conversations(empty_zip)
    assert conversations == [] and "no conversations.json" in report.rejected[0].reason


def test_broken_records_are_reported(tmp_path):
    missing_node = export_record("d")
    missing_node["current_node"] = "ghost"
    only_scaffolding = export_record("e")
    only_scaffolding["current_node"] = "n0"
    no_mapping = {"title": "x", "id": "f"}
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps([export_record("ok"), missing_node, only_scaffolding, no_mapping], indent=1))
    conversations, report = read_conversations(path, importer="chatgpt")
    assert [c.id for c in conversations] == ["ok"]
    assert [(r.record, r.field) for r in report.rejected] == [(1, "mapping.ghost"), (2, "mapping"), (3, "mapping")]
    assert "missing node" in report.rejected[0].reason
    assert "empty conversation" in report.rejected[1].reason
    assert report.rejected[2].reason == "missing mapping"
    assert all(r.line is not None for r in report.rejected)


def test_truncated_export_keeps_complete_conversations(tmp_path):
    text = json.dumps([export_record(str(i)) for i in range(5)])
    path = tmp_path / "conversations.json"
    path.write_text(text[: text.index('"conversation_id": "3"')])
    conversations, report = read_conversations(path)
    assert [c.id for c in conversations] == ["0", "1", "2"]
    assert report.truncated_at is not None and report.rejected[0].record == 3
