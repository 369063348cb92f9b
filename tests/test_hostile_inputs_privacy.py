"""Personal data written to hide from the redaction (a family of test_hostile_inputs.py): a
card number with its expiry and code written right after it, and an address that is a phone
number and an e-mail at once. A redacted export leaves no part of either."""

from __future__ import annotations

import pytest

from cognitivetwin_core.cli import main
from cognitivetwin_core.conversation import Conversation, Message
from cognitivetwin_core.data.privacy import PrivacyScanner, redact
from cognitivetwin_core.data.workspace import Workspace

CARD = "card details: 4111 1111 1111 1111 12/27 123"
GATEWAY = "text me at +1 415 555 2671@txt.att.net"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (CARD, "card details: <CARD> 12/27 123"),
        ("card 4111111111111111 12 27", "card <CARD> 12 27"),
        ("cards 4111-1111-1111-1111 5555 5555 5555 4444 99", "cards <CARD> <CARD> 99"),
        (GATEWAY, "text me at <EMAIL>"),
        ("sms 4155552671@vtext.com please", "sms <EMAIL> please"),
    ],
)
def test_numbers_beside_a_card_and_overlapping_findings_are_redacted_whole(text, expected):
    scanner = PrivacyScanner(region="US")
    assert redact(text, scanner.find(text)) == expected


def test_long_digit_runs_without_a_card_number_in_whole_groups_are_left_alone():
    scanner = PrivacyScanner(region="US")
    for text in ("order 12345678901234567890", "serial 4111 1111 1111 1112 00"):
        assert [f for f in scanner.find(text) if f.kind == "card"] == [], text


def test_a_redacted_export_holds_neither_the_card_nor_any_part_of_the_address(tmp_path, tiny_model_dir):
    workspace = tmp_path / "ws"
    with Workspace.open(workspace) as ws:
        ws.add_conversations(
            [Conversation("c1", "test", [Message("user", "how do I pay?"), Message("assistant", f"{CARD}. {GATEWAY}")])]
        )
    out = tmp_path / "upload.jsonl"
    args = ["data", "export", "--workspace", str(workspace), "--format", "together", "--out", str(out)]
    assert main([*args, "--base-model", str(tiny_model_dir), "--redact"]) == 0
    text = out.read_text(encoding="utf-8")
    for secret in ("4111", "1111", "415", "555", "2671", "txt.att.net"):
        assert secret not in text, (secret, text)
    assert "<CARD>" in text and "<EMAIL>" in text
