"""Messenger import and privacy-check speed: messages per second for a WhatsApp chat (.txt,
Android layout, read twice: once for the date order, once to parse), a Telegram Desktop
result.json (streamed), and the privacy scan over the messages' text.

Generates both files (about 200,000 messages each by default: a chat of several years with
multi-line messages, media placeholders, deleted messages, phone numbers and e-mails) in a
temporary folder, times reading them into conversations (no workspace: the annotation and
SQLite writes are import_annotate.py's), then the privacy scan.

    .venv/bin/python benchmarks/messenger_import.py [--messages 200000]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

NAMES = ["Maya Lindqvist", "Jonas Berg", "Priya Nair", "Sam Okafor"]
TEXTS = [
    "ok",
    "see you at 5",
    "lol what\nno way\nreally?",
    "<Media omitted>",
    "This message was deleted",
    "call me at +1 415-555-0132 later, ok?",
    "the address is maya.cabins@example.org if you need it",
    "I think we should leave early, the traffic on friday is always terrible and the cabin is far",
]


def _times(count: int, seed: int):
    rng = random.Random(seed)
    stamp = datetime(2019, 1, 1, 8, 0)
    for _ in range(count):
        stamp += timedelta(minutes=rng.choice([1, 1, 2, 5, 30, 60 * 9]))
        yield rng, stamp


def write_whatsapp(path: Path, count: int) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for rng, t in _times(count, 1):
            hour = t.hour % 12 or 12
            meridiem = "AM" if t.hour < 12 else "PM"
            handle.write(
                f"{t.month}/{t.day}/{t.year % 100:02d}, {hour}:{t.minute:02d}\u202f{meridiem} - "
                f"{rng.choice(NAMES)}: {rng.choice(TEXTS)}\n"
            )


def write_telegram(path: Path, count: int) -> None:
    messages = []
    for index, (rng, t) in enumerate(_times(count, 2)):
        text = rng.choice(TEXTS)
        messages.append(
            {
                "id": index,
                "type": "message",
                "date": t.isoformat(),
                "date_unixtime": str(int(t.timestamp())),
                "from": rng.choice(NAMES),
                "from_id": f"user{rng.randrange(4)}",
                "text": text if rng.random() < 0.7 else [text[:3], {"type": "bold", "text": text[3:]}],
                "text_entities": [],
            }
        )
    path.write_text(json.dumps({"name": "x", "type": "personal_chat", "id": 1, "messages": messages}), "utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000)
    args = parser.parse_args()
    from cognitivetwin_core.data.importers import iter_source
    from cognitivetwin_core.data.privacy import PrivacyScanner

    with tempfile.TemporaryDirectory() as folder:
        whatsapp, telegram = Path(folder) / "WhatsApp Chat with Cabin.txt", Path(folder) / "result.json"
        write_whatsapp(whatsapp, args.messages)
        write_telegram(telegram, args.messages)
        texts: list[str] = []
        for path in (whatsapp, telegram):
            started = time.perf_counter()
            conversations, report = iter_source(path)
            messages = 0
            for conversation in conversations:
                messages += len(conversation.messages)
                if len(texts) < 100_000:
                    texts.extend(message.content for message in conversation.messages)
            seconds = time.perf_counter() - started
            print(
                f"{report.importer:<9} {path.stat().st_size / 1e6:6.1f} MB  {messages:>8,} messages kept "
                f"({sum(report.skipped_messages.values()):,} skipped) in {report.conversations_accepted:,} "
                f"conversations: {seconds:6.2f} s, {messages / seconds:,.0f} messages/s"
            )
        scanner = PrivacyScanner(NAMES, region="US")
        started = time.perf_counter()
        found = sum(len(scanner.find(text)) for text in texts)
        seconds = time.perf_counter() - started
        print(
            f"privacy   {len(texts):,} messages, {found:,} findings: {seconds:.2f} s, {len(texts) / seconds:,.0f} messages/s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
