"""The privacy check before anything leaves the computer (a Together upload): personal data
in the text, counted by kind with examples, and redaction with placeholders.

Found with maintained libraries that run offline where one exists: phone numbers with
`phonenumbers` (Google's libphonenumber: real numbering plans, not digit patterns), IBANs
with `stdnum.iban` (country formats and the mod-97 checksum), card numbers with
`stdnum.luhn`, IP addresses with the standard `ipaddress`. E-mail addresses and API keys
and tokens (known prefixes: OpenAI, Anthropic, GitHub, Slack, AWS, Google, JWTs, bearer
tokens) are patterns, since no offline library recognises those better. Names: no offline
name recogniser ships without a language model download (Presidio's needs spaCy and a model),
so names are the chat's own participants' names found in the text.
See docs/twin-speaker.md.
"""

from __future__ import annotations

import ipaddress
import json
import locale
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn

KINDS = ("secret", "email", "iban", "card", "ip", "phone", "name")
PLACEHOLDERS = {
    "secret": "<SECRET>",
    "email": "<EMAIL>",
    "iban": "<IBAN>",
    "card": "<CARD>",
    "ip": "<IP>",
    "phone": "<PHONE>",
    "name": "<NAME>",
}
KIND_WORDS = {  # (one, several)
    "secret": ("API key or token", "API keys and tokens"),
    "email": ("e-mail address", "e-mail addresses"),
    "iban": ("bank account number (IBAN)", "bank account numbers (IBAN)"),
    "card": ("card number", "card numbers"),
    "ip": ("IP address", "IP addresses"),
    "phone": ("phone number", "phone numbers"),
    "name": ("participant's name", "participants' names"),
}
UPLOAD_ADVICE = (
    "This text would be uploaded. To leave it out, export again with personal data replaced by "
    "placeholders (Data tab, or `cognitivetwin data export --redact`, `phase1 --redact`)."
)
CLI_ADVICE = (
    "Redact them with placeholders (<EMAIL>, <PHONE>, …) with `--redact`, leave those conversations out "
    "with `--leave-out-private`, or keep them as they are."
)
PRIVACY_CHOICES = ("keep", "redact", "leave-out")

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_SECRETS = re.compile(
    r"\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35}|hf_[A-Za-z0-9]{30,}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"
    r"|(?<=Bearer )[A-Za-z0-9._~+/-]{20,}=*"
)
_IBAN_CANDIDATE = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
# Runs of digit groups split by single spaces or dashes; a card number is found among the
# groups of a run, so a number written beside it ("4111 1111 1111 1111 12/27") does not hide it.
_DIGIT_GROUPS = re.compile(r"(?<![\d-])\d+(?:[ -]\d+)*(?![\d-])")
_GROUP = re.compile(r"\d+")
_DIGIT_RUN = re.compile(r"\d(?:[\s().\-/]{0,3}\d){5}")
_IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int
    text: str


def _default_region() -> str:
    try:
        name = locale.getlocale()[0] or ""
    except ValueError:
        name = ""
    region = name.split("_")[-1][:2].upper() if "_" in name else ""
    return region if region in phonenumbers.SUPPORTED_REGIONS else "US"


class PrivacyScanner:
    """Finds personal data in texts. `names` are the participants to look for (whole words);
    `region` is where numbers without a +country code are read (default: this computer's)."""

    def __init__(self, names: Iterable[str] = (), region: str | None = None):
        self.region = region or _default_region()
        words: set[str] = set()
        for name in names:
            name = name.strip()
            if not name or name.startswith("+") or name.startswith("user") and name[4:].isdigit():
                continue
            words.add(name)
            words.update(part for part in name.split() if len(part) >= 3 and part[:1].isupper())
        self._names = (
            re.compile(
                r"(?<!\w)(?:" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) + r")(?!\w)"
            )
            if words
            else None
        )

    def find(self, text: str) -> list[Finding]:
        """Non-overlapping findings in order; overlapping ones are joined, of the more specific kind."""
        found: list[Finding] = []
        for match in _SECRETS.finditer(text):
            found.append(Finding("secret", match.start(), match.end(), match.group()))
        for match in _EMAIL.finditer(text):
            found.append(Finding("email", match.start(), match.end(), match.group()))
        for match in _IBAN_CANDIDATE.finditer(text):
            found.extend(self._iban(match))
        for match in _DIGIT_GROUPS.finditer(text):
            found.extend(_cards(text, match))
        for pattern in (_IPV4, _IPV6):
            for match in pattern.finditer(text):
                value = match.group()
                if value.count(":") >= 2 and len(value) < 6:
                    continue
                try:
                    ipaddress.ip_address(value)
                except ValueError:
                    continue
                found.append(Finding("ip", match.start(), match.end(), value))
        # The matcher is the costly part: only texts with a run of digits long enough for a number.
        if _DIGIT_RUN.search(text):
            for match in phonenumbers.PhoneNumberMatcher(text, self.region, leniency=phonenumbers.Leniency.VALID):
                found.append(Finding("phone", match.start, match.end, match.raw_string))
        if self._names is not None:
            for match in self._names.finditer(text):
                found.append(Finding("name", match.start(), match.end(), match.group()))
        return _without_overlaps(found)

    @staticmethod
    def _iban(match: re.Match) -> list[Finding]:
        # The candidate may run into the next word: the longest valid IBAN at its start wins.
        text = match.group()
        ends = [m.start() for m in re.finditer(" ", text)] + [len(text)]
        for end in reversed(ends):
            if stdnum_iban.is_valid(text[:end]):
                return [Finding("iban", match.start(), match.start() + end, text[:end])]
        return []


def _is_card_number(digits: str) -> bool:
    # Card numbers start with 2-6 (the major networks' ranges) and pass the Luhn checksum.
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and len(set(digits)) > 1 and luhn.is_valid(digits)


def _cards(text: str, run: re.Match) -> list[Finding]:
    """The card numbers among a run's digit groups: from each group, the longest span of
    whole groups that is one; found spans do not overlap."""
    groups = [(run.start() + g.start(), run.start() + g.end()) for g in _GROUP.finditer(run.group())]
    found: list[Finding] = []
    first = 0
    while first < len(groups):
        best = None
        digits = ""
        for last in range(first, len(groups)):
            digits += text[groups[last][0] : groups[last][1]]
            if len(digits) > 19:
                break
            if _is_card_number(digits):
                best = last
        if best is None:
            first += 1
            continue
        start, end = groups[first][0], groups[best][1]
        found.append(Finding("card", start, end, text[start:end]))
        first = best + 1
    return found


def _without_overlaps(found: list[Finding]) -> list[Finding]:
    """Overlapping findings joined into one covering them all (so redacting leaves no part of
    either), of the most specific kind among them."""
    rank = {kind: index for index, kind in enumerate(KINDS)}
    merged: list[Finding] = []
    for finding in sorted(found, key=lambda f: (f.start, -f.end)):
        if merged and finding.start < merged[-1].end:
            last = merged[-1]
            start, end = last.start, max(last.end, finding.end)
            kind = min(last.kind, finding.kind, key=rank.__getitem__)
            merged[-1] = Finding(kind, start, end, last.text + finding.text[last.end - finding.start :])
        else:
            merged.append(finding)
    return merged


def redact(text: str, findings: list[Finding]) -> str:
    """The text with each finding replaced by its placeholder (`<EMAIL>`, `<PHONE>`, ...)."""
    out = []
    last = 0
    for finding in findings:
        out.append(text[last : finding.start])
        out.append(PLACEHOLDERS[finding.kind])
        last = finding.end
    out.append(text[last:])
    return "".join(out)


@dataclass
class PrivacySummary:
    """Personal data found in the text that would leave the computer, by kind."""

    messages_scanned: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    # Up to a few examples per kind: (text before, the finding, text after), for highlighting.
    examples: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    conversations: list[str] = field(default_factory=list)  # ids of conversations with findings
    max_examples: int = 3

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, text: str, findings: list[Finding]) -> None:
        self.messages_scanned += 1
        for finding in findings:
            self.counts[finding.kind] = self.counts.get(finding.kind, 0) + 1
            examples = self.examples.setdefault(finding.kind, [])
            if len(examples) < self.max_examples:
                before = text[max(0, finding.start - 30) : finding.start].split("\n")[-1]
                after = text[finding.end : finding.end + 30].split("\n")[0]
                examples.append((before, finding.text, after))

    def lines(self, advice: str | None = CLI_ADVICE) -> list[str]:
        """The summary in words, each finding shown as [[...]] within its context, and `advice`
        (what to do about it) last when anything was found."""
        if not self.total:
            return [f"privacy check: no personal data found in {self.messages_scanned} messages"]
        lines = [
            f"privacy check: {self.total} personal details in {len(self.conversations)} conversations "
            f"({self.messages_scanned} messages scanned):"
        ]
        for kind in KINDS:
            if kind in self.counts:
                count = self.counts[kind]
                lines.append(f"  {count} {KIND_WORDS[kind][count != 1]}, e.g.")
                for before, found, after in self.examples.get(kind, []):
                    lines.append(f"      …{before}[[{found}]]{after}…")
        if advice:
            lines.append(f"  {advice}")
        return lines

    def to_dict(self) -> dict:
        return {
            "messages_scanned": self.messages_scanned,
            "counts": dict(self.counts),
            "examples": {kind: [list(item) for item in items] for kind, items in self.examples.items()},
            "conversations": len(self.conversations),
        }


def scan_conversations(
    conversations: Iterable,
    names: Iterable[str] = (),
    region: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> PrivacySummary:
    """Scan conversations (e.g. a workspace's `iter_conversations()`), message by message;
    `progress(conversations done)` after each conversation (it may raise to cancel)."""
    scanner = PrivacyScanner(names, region)
    summary = PrivacySummary()
    for done, conversation in enumerate(conversations, start=1):
        if progress is not None:
            progress(done)
        before = summary.total
        for message in conversation.messages:
            summary.add(message.content, scanner.find(message.content))
        if summary.total > before:
            summary.conversations.append(conversation.id)
    return summary


def scan_chat_jsonl(path: str | Path, names: Iterable[str] = (), region: str | None = None) -> PrivacySummary:
    """Scan a Phase 1 chat JSONL file exactly as it would be uploaded (line by line); a line in
    Together's preference format (`input.messages`, `preferred_output`, `non_preferred_output`)
    is scanned in all three."""
    scanner = PrivacyScanner(names, region)
    summary = PrivacySummary()
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            record = json.loads(line)
            before = summary.total
            messages = list(record.get("messages") or [])
            if isinstance(record.get("input"), dict):
                messages += list(record["input"].get("messages") or [])
            for key in ("preferred_output", "non_preferred_output"):
                messages += list(record.get(key) or [])
            for message in messages:
                content = message.get("content") if isinstance(message, dict) else None
                if isinstance(content, str):
                    summary.add(content, scanner.find(content))
            if summary.total > before:
                summary.conversations.append(f"line {number}")
    return summary
