"""Whose twin: choosing "me" decides whose turns are the training targets, in the Together
JSONL and in what local LoRA trains on; turns are merged, named in group chats, end on the
person's turn; the privacy check finds the numbers and addresses and --redact removes them."""

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cognitivetwin_core.cli import main as cli_main
from cognitivetwin_core.conversation import Conversation, Message
from cognitivetwin_core.data.exports import export_together, training_turns
from cognitivetwin_core.data.importers import import_into
from cognitivetwin_core.data.privacy import PrivacyScanner, redact, scan_conversations
from cognitivetwin_core.data.workspace import Workspace
from cognitivetwin_core.errors import InputError
from cognitivetwin_core.phase1.assistant_tokens import IGNORE_INDEX, tokenize_conversation

FIXTURES = Path(__file__).parent / "fixtures" / "messenger"
ANDROID = FIXTURES / "WhatsApp Chat with Cabin trip.txt"
TELEGRAM_FULL = FIXTURES / "telegram_full_export.json"


@pytest.fixture()
def cabin(tmp_path):
    with Workspace.open(tmp_path / "ws") as workspace:
        import_into(workspace, ANDROID)
        yield workspace


def _examples(path: Path) -> list[list[dict]]:
    return [json.loads(line)["messages"] for line in path.read_text(encoding="utf-8").splitlines()]


def _targets(examples) -> list[str]:
    return [m["content"] for messages in examples for m in messages if m["role"] == "assistant"]


@pytest.mark.slow
def test_choosing_me_changes_the_targets_of_the_together_export(cabin, tmp_path, tiny_model_dir):
    cabin.set_twin_speaker("Maya Lindqvist")
    maya = export_together(cabin, tmp_path / "maya.jsonl", base_model=tiny_model_dir)
    examples = _examples(tmp_path / "maya.jsonl")
    assert maya.twin_speaker == "Maya Lindqvist" and maya.examples == len(examples) == 2
    assert all(messages[-1]["role"] == "assistant" for messages in examples)
    assert _targets(examples) == [
        "ok so who's actually coming on the 5th??",
        "perfect. send the deposit to me, IBAN DE89 3704 0044 0532 0130 00\nlol what did you delete 👀",
        "last call for the grocery list",
        "done",
    ]
    # A group chat: the others' messages between two of Maya's are one user turn, by name.
    assert examples[0][1] == {
        "role": "user",
        "content": "Jonas Berg: me! bringing the sled\nand snacks obviously\n"
        "Priya Nair: I'm in, but I can only leave after work\nso maybe 6ish?\n"
        "my number if the signal is bad up there: +1 415-555-0132",
    }
    # Someone else: Priya's messages are the targets now, Maya's are context.
    cabin.set_twin_speaker("Priya Nair")
    export_together(cabin, tmp_path / "priya.jsonl", base_model=tiny_model_dir)
    priya = _examples(tmp_path / "priya.jsonl")
    assert _targets(priya) == [
        "I'm in, but I can only leave after work\nso maybe 6ish?\nmy number if the signal is bad up there: "
        "+1 415-555-0132",
        "👍",
        "oat milk pls",
    ]
    assert all("Priya Nair:" not in m["content"] for messages in priya for m in messages)
    # Nobody chosen on messenger data: nothing to learn, and the error says how to choose.
    cabin.set_twin_speaker("assistant")
    with pytest.raises(InputError, match="--me NAME"):
        export_together(cabin, tmp_path / "nobody.jsonl", base_model=tiny_model_dir)


def test_local_lora_learns_the_chosen_persons_turns(cabin, tmp_path, tiny_model_dir, embedded_tokenizer):
    def learned(speaker: str) -> str:
        export_together(cabin, tmp_path / "d.jsonl", base_model=tiny_model_dir, twin_speaker=speaker)
        texts = []
        for messages in _examples(tmp_path / "d.jsonl"):
            example = tokenize_conversation(embedded_tokenizer, messages, 512)
            texts.append(embedded_tokenizer.decode([t for t in example.labels if t != IGNORE_INDEX]))
        return "\n".join(texts)

    as_maya = learned("Maya Lindqvist")
    assert "last call for the grocery list" in as_maya and "oat milk" not in as_maya
    as_priya = learned("Priya Nair")
    assert "oat milk pls" in as_priya and "last call for the grocery list" not in as_priya
    assert cabin.twin_speaker() == "assistant"  # an export's speaker does not change the setting


def test_user_role_makes_the_person_of_an_ai_chat_the_twin(tmp_path, tiny_model_dir):
    chat = Conversation(
        "c1",
        "chatgpt",
        [
            Message("system", "You are helpful."),
            Message("user", "how do I boil an egg"),
            Message("assistant", "Put it in boiling water for 8 minutes."),
            Message("user", "thanks, and soft?"),
        ],
    )
    export_together([chat], tmp_path / "u.jsonl", base_model=tiny_model_dir, twin_speaker="user")
    (messages,) = _examples(tmp_path / "u.jsonl")
    assert messages == [
        {"role": "system", "content": "You are helpful."},
        {"role": "assistant", "content": "how do I boil an egg"},
        {"role": "user", "content": "Put it in boiling water for 8 minutes."},
        {"role": "assistant", "content": "thanks, and soft?"},
    ]


def test_consecutive_messages_merge_only_within_the_gap():
    start = datetime(2024, 5, 1, 9, 0)
    chat = Conversation(
        "c",
        "whatsapp",
        [
            Message("user", "hi", created_at=start, speaker="Ana"),
            Message("user", "you there?", created_at=start + timedelta(minutes=1), speaker="Ana"),
            Message("user", "yes", created_at=start + timedelta(minutes=2), speaker="Me"),
            Message("user", "one sec", created_at=start + timedelta(minutes=3), speaker="Me"),
            Message("user", "back, sorry", created_at=start + timedelta(minutes=40), speaker="Me"),
        ],
    )
    turns = training_turns(chat, "Me", merge_minutes=10)
    assert turns == [
        {"role": "user", "content": "hi\nyou there?"},
        {"role": "assistant", "content": "yes\none sec"},
        {"role": "assistant", "content": "back, sorry"},
    ]
    assert training_turns(chat, "Me", merge_minutes=60)[-1] == {
        "role": "assistant",
        "content": "yes\none sec\nback, sorry",
    }


def test_privacy_finds_addresses_and_numbers_in_both_exports_and_redacts(tmp_path):
    with Workspace.open(tmp_path / "ws") as workspace:
        import_into(workspace, ANDROID)
        import_into(workspace, TELEGRAM_FULL)
        names = [s.name for s in workspace.speakers() if s.named]
        summary = scan_conversations(workspace.iter_conversations(), names, region="US")
    assert summary.counts["email"] == 2  # maya.cabins@… (WhatsApp), lea.vogel@… (Telegram)
    assert summary.counts["phone"] == 2  # +1 415 … (WhatsApp), +49 30 … (Telegram)
    assert summary.counts["iban"] == 1
    found = {found for items in summary.examples.values() for _, found, _ in items}
    assert {"maya.cabins@example.org", "lea.vogel@example.net", "+1 415-555-0132", "+49 30 901820"} <= found
    assert any("[[+1 415-555-0132]]" in line for line in summary.lines())
    scanner = PrivacyScanner(["Lea Vogel"], region="US")
    text = "card 4111 1111 1111 1111, host 10.0.0.7, key sk-proj-abcdefghijklmnopqrstuvwx1234, ask Lea"
    assert redact(text, scanner.find(text)) == "card <CARD>, host <IP>, key <SECRET>, ask <NAME>"
    # Not personal data: times, years, counts, a non-checksummed "IBAN".
    plain = "at 10:15 in 2023 I had 1234567 points, ref DE00 1234 5678 9012 3456 78"
    assert scanner.find(plain) == []


@pytest.mark.slow
def test_cli_speakers_me_privacy_and_redacted_export(tmp_path, capsys, tiny_model_dir):
    ws = str(tmp_path / "ws")
    assert cli_main(["data", "import", "--workspace", ws, str(TELEGRAM_FULL), "--quiet", "--me", "sam okafor"]) == 0
    out = capsys.readouterr().out
    assert "Sam Okafor (4 messages)" in out and "The twin speaks as Sam Okafor." in out
    assert cli_main(["data", "speakers", "--workspace", ws]) == 0
    out = capsys.readouterr().out
    assert " * Sam Okafor" in out and "Lea Vogel" in out and "Tomás Ruiz" in out
    assert cli_main(["data", "privacy", "--workspace", ws]) == 0
    out = capsys.readouterr().out
    assert "lea.vogel@example.net" in out and "+49 30 901820" in out
    target = tmp_path / "upload.jsonl"
    common = ["data", "export", "--workspace", ws, "--format", "together", "--base-model", str(tiny_model_dir)]
    assert cli_main([*common, "--out", str(target)]) == 0
    assert "lea.vogel@example.net" in target.read_text(encoding="utf-8")
    assert cli_main([*common, "--out", str(target), "--redact"]) == 0
    text = target.read_text(encoding="utf-8")
    assert "lea.vogel@example.net" not in text and "+49 30 901820" not in text
    assert "<EMAIL>" in text and "<PHONE>" in text
    assert all(m[-1]["role"] == "assistant" for m in _examples(target))
    # --me on an export is for that export: Lea's turns are the targets, the setting stays Sam.
    assert cli_main([*common, "--out", str(target), "--me", "Lea Vogel"]) == 0
    assert "count me in" in _targets(_examples(target))
    capsys.readouterr()
    assert cli_main(["data", "speakers", "--workspace", ws, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["twin_speaker"] == "Sam Okafor"


def test_the_dry_run_and_launch_confirmation_show_example_turns_and_the_privacy_check(tmp_path):
    from app.dialogs.phase1_confirm import confirmation_text
    from cognitivetwin_core.data.privacy import scan_chat_jsonl
    from cognitivetwin_core.phase1.jobs import DryRun, Phase1Settings, validate_chat_jsonl

    data = tmp_path / "upload.jsonl"
    data.write_text(
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": "where do I send the form?"},
                    {"role": "assistant", "content": "to me: ana@example.org, or call +1 415-555-0132"},
                ]
            }
        )
        + "\n",
        encoding="utf-8",
    )
    stats = validate_chat_jsonl(data)
    privacy = scan_chat_jsonl(data, region="US")
    plan = DryRun(
        "together",
        Phase1Settings(),
        stats,
        "meta-llama/x",
        estimated_price=1.5,
        privacy_lines=privacy.lines(),
        privacy_counts=dict(privacy.counts),
    )
    assert plan.example_turns == [
        {
            "context": [{"role": "user", "content": "where do I send the form?"}],
            "target": "to me: ana@example.org, or call +1 415-555-0132",
        }
    ]
    _, details = confirmation_text(plan)
    assert "1.      them (context): where do I send the form?" in details
    assert "1.    you (learned): to me: ana@example.org" in details
    assert "privacy check: 2 personal details in 1 conversations" in details
    assert "[[ana@example.org]]" in details and "[[+1 415-555-0132]]" in details
    assert plan.privacy_counts == {"email": 1, "phone": 1}


def test_hostile_participant_names_are_printed_safely(tmp_path, capsys):
    chat = tmp_path / "chat.txt"
    chat.write_text(
        "31/12/2023, 21:15 - Eve\x1b]0;pwned\x07: hi \x1b[2J there\n31/12/2023, 21:16 - Bob: call +1 415-555-0132\n",
        encoding="utf-8",
    )
    ws = str(tmp_path / "ws")
    assert cli_main(["data", "import", "--workspace", ws, str(chat), "--quiet"]) == 0
    assert cli_main(["data", "speakers", "--workspace", ws, "--me", "Bob"]) == 0
    assert cli_main(["data", "privacy", "--workspace", ws]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "Eve\\x1b]0;pwned\\x07" in out and "[[+1 415-555-0132]]" in out
