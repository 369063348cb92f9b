"""E-mail in mbox format: a Gmail Takeout mailbox and a Thunderbird "Sent" folder
(tests/fixtures/mail), with quoted-printable, base64, multipart/alternative, HTML-only and
iso-8859-1 mails, replies quoting the mail before them and signatures."""

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from cognitivetwin_core.data.importers import detect_importer, read_conversations
from cognitivetwin_core.data.importers.mbox import html_to_text, new_text

MAIL = Path(__file__).parent / "fixtures" / "mail"
TAKEOUT = MAIL / "All mail Including Spam and Trash.mbox"


def test_gmail_takeout_threads():
    assert detect_importer(TAKEOUT).name == "mbox"
    conversations, report = read_conversations(TAKEOUT)
    assert report.ok, report.rejected
    assert report.participants == {"Zoë Martins": 3, "Lucas Almeida": 1, "Marta Costa": 1}
    assert report.owner == "Zoë Martins" and not report.owner_only  # X-Gmail-Labels: Sent
    trip, dinner = conversations
    assert trip.title == "Trip plans"
    assert [m.content for m in trip.messages] == [
        "Hi Lucas,\n\nShall we book the train for Friday? I’d leave at 9.",  # quoted-printable, no signature
        "Yes, 9 works. I'll bring snacks.",  # base64 plain part; the wrapped "On … wrote:" and quote gone
        "Great, I'll book it.\n\nAté já!",  # HTML only, iso-8859-1, the gmail_quote left out
    ]
    assert trip.messages[0].created_at == datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
    assert trip.messages[1].created_at == datetime(2024, 3, 4, 11, 30, tzinfo=timezone(timedelta(hours=1)))
    assert [m.content for m in dinner.messages] == ["Jantar amanhã?", "Sim, claro!"]
    assert dinner.messages[-1].created_at == datetime(2024, 3, 5, 18, 10, tzinfo=UTC)


def test_sent_folder_holds_only_the_owner():
    assert detect_importer(MAIL / "Sent").name == "mbox"
    conversations, report = read_conversations(MAIL / "Sent")
    assert report.owner == "Zoe Martins" and report.owner_only
    assert [m.content for c in conversations for m in c.messages] == [
        "Thanks all, notes are in the shared folder.",
        "Looks good to me, ship it.",
    ]


def test_new_text():
    assert new_text("Sounds good.\n\nOn Fri, Mar 1, 2024 at 9:00 AM Ana Lima <ana@example.org>\nwrote:\n> hi\n") == (
        "Sounds good."
    )
    assert new_text("Fine by me\n-----Original Message-----\nFrom: Ana\nSent: Monday\n\nhello") == "Fine by me"
    assert new_text("Top\nFrom: Ana Lima\nSent: Monday, March 4\nTo: me\nSubject: x\n\nold") == "Top"
    assert new_text("a\n> quoted\nb\n-- \nsig") == "a\nb"
    assert html_to_text("<p>One &amp; two</p><blockquote>old</blockquote><br>three") == "One & two\n\nthree"
