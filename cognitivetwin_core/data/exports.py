"""Exports from a workspace (or any conversations) to the two training formats.

- Phase 1: Together's conversation JSONL (`{"messages": [{"role", "content"}]}` a line),
  with the checks Together applies: known roles, non-empty content, the last message from
  the assistant, and each example's token count, with the chosen base's tokenizer, within
  its context. An optional validation split is made by conversation; a summary gives
  examples, tokens and the estimated training tokens for N epochs.
- Phase 2: the seed's trajectory JSONL, one line per message with its context:
  `{"conversation_id", "messages": [...context, message], "trajectory": {"coordinates",
  "phase_id", "homogeneity", "turn_index"}, "patterns": [...]}`.

Both write to a temporary file beside the target and rename it into place, so a failed or
cancelled export never leaves a half-written file.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from cognitivetwin_core.annotation.patterns import patterns_for
from cognitivetwin_core.annotation.trajectory import annotate
from cognitivetwin_core.atomic_files import open_atomically
from cognitivetwin_core.conversation import ROLES, Conversation, Message
from cognitivetwin_core.data.twin_speaker import DEFAULT_TWIN_SPEAKER, ROLE_SPEAKERS, describe, is_person, speaker_key
from cognitivetwin_core.errors import InputError
from cognitivetwin_core.models.catalog import DEFAULT_BASE_MODEL

log = logging.getLogger("cognitivetwin.exports")

TOGETHER_ROLES = ROLES  # Together takes exactly the roles a conversation has
_MESSAGE_OVERHEAD_TOKENS = 4  # role markers per message when the tokenizer has no chat template


@dataclass(frozen=True)
class SkippedExample:
    conversation_id: str
    reason: str

    def __str__(self) -> str:
        return f"{self.conversation_id}: {self.reason}"


@dataclass
class TogetherExportSummary:
    path: Path
    validation_path: Path | None
    base_model: str
    context_length: int
    examples: int = 0
    validation_examples: int = 0
    tokens: int = 0
    validation_tokens: int = 0
    max_example_tokens: int = 0
    epochs: int = 1
    trimmed: int = 0  # conversations whose trailing non-assistant messages were dropped
    cut: int = 0  # conversations too long for the context, cut into several examples
    left_out: int = 0  # conversations left out because they hold personal data
    twin_speaker: str = DEFAULT_TWIN_SPEAKER
    skipped: list[SkippedExample] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def estimated_training_tokens(self) -> int:
        return self.tokens * self.epochs

    def text(self) -> str:
        lines = [
            f"Wrote {self.examples} training examples ({self.tokens} tokens) to {self.path}",
            f"The twin speaks as {describe(self.twin_speaker)}: those messages are the training targets",
        ]
        if self.validation_path is not None:
            lines.append(
                f"Wrote {self.validation_examples} validation examples ({self.validation_tokens} tokens) "
                f"to {self.validation_path}"
            )
        lines.append(
            f"Longest example: {self.max_example_tokens} tokens (context of {self.base_model}: {self.context_length})"
        )
        lines.append(f"Estimated training tokens for {self.epochs} epochs: {self.estimated_training_tokens}")
        if self.trimmed:
            lines.append(f"{self.trimmed} conversations ended with someone else's message, which was dropped")
        if self.cut:
            lines.append(f"{self.cut} conversations were too long for the context and were cut into several examples")
        if self.left_out:
            lines.append(f"{self.left_out} conversations holding personal data were left out")
        if self.skipped:
            lines.append(f"Skipped {len(self.skipped)} conversations:")
            lines.extend(f"  {item}" for item in self.skipped[:20])
            if len(self.skipped) > 20:
                lines.append(f"  ... and {len(self.skipped) - 20} more")
        lines.extend(f"Warning: {warning}" for warning in self.warnings)
        return "\n".join(lines)


@dataclass
class TrajectoryExportSummary:
    path: Path
    conversations: int = 0
    lines: int = 0


def _conversations(source, ids: Iterable[str] | None) -> Iterator[Conversation]:
    if hasattr(source, "iter_conversations"):
        from cognitivetwin_core.data.person_identity import linked_conversations

        # One person across sources: linked aliases carry their one name (docs/importers.md).
        return linked_conversations(source, source.iter_conversations(ids=list(ids) if ids is not None else None))
    if ids is None:
        return iter(source)
    wanted = set(ids)
    return (conversation for conversation in source if conversation.id in wanted)


def in_validation(conversation_id: str, fraction: float, seed: int = 0) -> bool:
    """Deterministic split by conversation: the same id always lands on the same side."""
    if fraction <= 0:
        return False
    digest = hashlib.sha256(f"{seed}:{conversation_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


class TokenCounter:
    """Tokens of one chat example with a base model's tokenizer (its chat template when it
    has one). A catalog base that is not on this computer is counted with the embedded
    tokenizer, and the summary says so."""

    def __init__(self, base_model: str | Path, tokenizer=None):
        self.base_model = str(base_model)
        self.warning: str | None = None
        self.context_length = self._context_length(base_model)
        if tokenizer is None:
            tokenizer = self._load(base_model)
        self.tokenizer = tokenizer
        self.has_template = bool(getattr(tokenizer, "chat_template", None))

    @staticmethod
    def _context_length(base_model) -> int:
        from cognitivetwin_core.models.catalog import resolve_base

        try:
            resolved = resolve_base(base_model)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if isinstance(resolved, Path):
            try:
                config = json.loads((resolved / "config.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                config = {}
            return int(config.get("max_position_embeddings") or 2048)
        return resolved.context_length

    def _load(self, base_model):
        from cognitivetwin_core.models.loader import BaseModelUnavailableError, load_tokenizer

        try:
            return load_tokenizer(base_model)
        except BaseModelUnavailableError:
            self.warning = (
                f"the tokenizer of {base_model} is not on this computer: token counts use the "
                f"embedded {DEFAULT_BASE_MODEL} tokenizer and are approximate"
            )
            return load_tokenizer(DEFAULT_BASE_MODEL)

    def count(self, messages: list[dict]) -> int:
        if self.has_template:
            try:
                ids = self.tokenizer.apply_chat_template(messages, tokenize=True)
                if isinstance(ids, dict) or hasattr(ids, "keys"):
                    ids = ids["input_ids"]
                return len(ids)
            except Exception:  # a template that rejects a role (tool without a call): count plainly
                pass
        encoded = self.tokenizer([message["content"] for message in messages], add_special_tokens=False)
        return sum(len(ids) for ids in encoded["input_ids"]) + _MESSAGE_OVERHEAD_TOKENS * len(messages)


DEFAULT_MERGE_MINUTES = 10.0


def _gap_minutes(earlier, later) -> float | None:
    if earlier is None or later is None:
        return None
    if (earlier.tzinfo is None) != (later.tzinfo is None):
        earlier, later = earlier.replace(tzinfo=None), later.replace(tzinfo=None)
    return (later - earlier).total_seconds() / 60.0


def training_turns(
    conversation: Conversation,
    twin_speaker: str = DEFAULT_TWIN_SPEAKER,
    *,
    merge_minutes: float = DEFAULT_MERGE_MINUTES,
) -> list[dict]:
    """The conversation as the twin learns it: the person's messages become `assistant` turns,
    everyone else's `user` turns. Consecutive messages of one speaker become one turn when no
    more than `merge_minutes` apart (or without times); other people's messages between two of
    the person's always form one `user` turn, and in a group chat (more than two named
    participants) each keeps its author's name (`Name: text`)."""
    named = {message.speaker for message in conversation.messages if message.speaker is not None}
    group = len(named) > 2
    keep_tools = twin_speaker == "assistant"
    turns: list[dict] = []
    # Per turn: the speaker of its last part, that part's time, and its parts [speaker, [texts]].
    state: list[tuple[str, object, list]] = []
    for message in conversation.messages:
        if message.role == "system" and message.speaker is None:
            if not turns:
                turns.append({"role": "system", "content": message.content})
                state.append(("", None, []))
            continue
        if message.role == "tool" and message.speaker is None:
            if keep_tools:
                turns.append({"role": "tool", "content": message.content})
                state.append(("", None, []))
            continue
        role = "assistant" if is_person(message, twin_speaker) else "user"
        key = speaker_key(message)
        if turns and turns[-1]["role"] == role and state[-1][2]:
            last_key, last_time, parts = state[-1]
            gap = _gap_minutes(last_time, message.created_at)
            same_speaker = last_key == key
            if role == "user" or (same_speaker and (gap is None or gap <= merge_minutes)):
                if same_speaker:
                    parts[-1][1].append(message.content)
                else:
                    parts.append([key, [message.content]])
                state[-1] = (key, message.created_at, parts)
                continue
        turns.append({"role": role, "content": ""})
        state.append((key, message.created_at, [[key, [message.content]]]))
    for turn, (_, _, parts) in zip(turns, state):
        if not parts:
            continue
        if group and turn["role"] == "user":
            turn["content"] = "\n".join(f"{speaker}: " + "\n".join(texts) for speaker, texts in parts)
        else:
            turn["content"] = "\n".join(text for _, texts in parts for text in texts)
    return turns


def _check_example(turns: list[dict], twin_speaker: str) -> tuple[list[dict] | None, str | None, bool]:
    """(turns ending on the person's turn, or None with the reason; whether turns were trimmed)."""
    trimmed = False
    while turns and turns[-1]["role"] != "assistant":
        turns = turns[:-1]
        trimmed = True
    if not turns:
        who = f"{twin_speaker} message" if twin_speaker in ROLE_SPEAKERS else f"message from {twin_speaker}"
        return None, f"no {who} to learn from", False
    if not any(turn["role"] == "user" for turn in turns):
        if twin_speaker == "assistant":
            return None, "no user message before the assistant's", False
        return None, f"no one else's message before {describe(twin_speaker)}'s", False
    return turns, None, trimmed


def together_example(
    conversation: Conversation,
    twin_speaker: str = DEFAULT_TWIN_SPEAKER,
    *,
    merge_minutes: float = DEFAULT_MERGE_MINUTES,
) -> tuple[list[dict] | None, str | None, bool]:
    """(messages for Together, or None with the reason it cannot be one; whether trailing
    turns that are not the person's were trimmed)."""
    for index, message in enumerate(conversation.messages):
        if message.role not in TOGETHER_ROLES:
            return None, f"message {index} has role {message.role!r}, which Together does not accept", False
        if not message.content.strip():
            return None, f"message {index} is empty", False
    turns = training_turns(conversation, twin_speaker, merge_minutes=merge_minutes)
    return _check_example(turns, twin_speaker)


def _cut_to_context(turns: list[dict], counter: TokenCounter, limit: int, twin_speaker: str) -> list[list[dict]]:
    """A conversation too long for the context as several examples, each within it and ending on
    the person's turn; the others' turns that close one window open the next one."""
    system = turns[:1] if turns and turns[0]["role"] == "system" else []
    body = turns[len(system) :]
    budget = limit - (counter.count(system) if system else 0)
    sizes = [counter.count([turn]) for turn in body]
    windows: list[list[int]] = []
    current: list[int] = []
    used = 0
    for index, size in enumerate(sizes):
        if current and used + size > budget:
            cut = len(current)
            while cut and body[current[cut - 1]]["role"] != "assistant":
                cut -= 1
            windows.append(current[:cut])
            current = current[cut:]
            while current and sum(sizes[i] for i in current) + size > budget:
                current = current[1:]
            used = sum(sizes[i] for i in current)
        current.append(index)
        used += size
    windows.append(current)
    examples = []
    for window in windows:
        candidate = system + [body[i] for i in window]
        checked, _, _ = _check_example(candidate, twin_speaker)
        while checked is not None and counter.count(checked) > limit:
            start = len(system)
            checked, _, _ = _check_example(checked[:start] + checked[start + 1 :], twin_speaker)
        if checked is not None:
            examples.append(checked)
    return examples


def _redacted(conversation: Conversation, scanner) -> Conversation:
    from cognitivetwin_core.data.privacy import redact

    messages = [
        replace(message, content=redact(message.content, scanner.find(message.content)))
        for message in conversation.messages
    ]
    return Conversation(conversation.id, conversation.source, messages, conversation.title)


def _participant_names(source) -> list[str]:
    if hasattr(source, "speakers"):
        return [item.name for item in source.speakers() if item.named]
    return []


def export_together(
    source,
    out: str | Path,
    *,
    base_model: str | Path = DEFAULT_BASE_MODEL,
    validation_fraction: float = 0.0,
    validation_out: str | Path | None = None,
    epochs: int = 3,
    seed: int = 0,
    ids: Iterable[str] | None = None,
    max_tokens: int | None = None,
    tokenizer=None,
    progress: Callable[[int], None] | None = None,
    twin_speaker: str | None = None,
    merge_minutes: float = DEFAULT_MERGE_MINUTES,
    privacy: str = "keep",
) -> TogetherExportSummary:
    """Write Together conversation JSONL from a workspace (or conversations).

    The person (`twin_speaker`; default: the workspace's setting, else the assistant role)
    is the `assistant` of every example and the target of training (`training_turns`).
    Conversations that cannot be examples are skipped and listed in the summary; ones too
    long for the base's context are cut into several examples. `privacy`: "keep" the text,
    "redact" personal data with placeholders, or "leave-out" conversations holding any.
    With `validation_fraction` > 0 a share of conversations goes to `validation_out`
    (default: `<out stem>.validation.jsonl`)."""
    if not 0.0 <= validation_fraction < 1.0:
        raise InputError(f"The validation fraction must be in [0, 1), got {validation_fraction}.")
    if privacy not in ("keep", "redact", "leave-out"):
        raise InputError(f"Unknown privacy choice {privacy!r}: use keep, redact or leave-out.")
    if twin_speaker is None:
        twin_speaker = source.twin_speaker() if hasattr(source, "twin_speaker") else DEFAULT_TWIN_SPEAKER
    if hasattr(source, "iter_conversations"):
        from cognitivetwin_core.data.person_identity import canonical, speaker_links

        twin_speaker = canonical(speaker_links(source), twin_speaker)
    scanner = None
    if privacy != "keep":
        from cognitivetwin_core.data.privacy import PrivacyScanner

        scanner = PrivacyScanner(_participant_names(source))
    out = Path(out)
    counter = TokenCounter(base_model, tokenizer)
    limit = min(max_tokens or counter.context_length, counter.context_length)
    validation_path = None
    if validation_fraction > 0:
        validation_path = Path(validation_out) if validation_out else out.with_name(f"{out.stem}.validation.jsonl")
    summary = TogetherExportSummary(out, validation_path, str(base_model), limit, epochs=epochs)
    summary.twin_speaker = twin_speaker
    if counter.warning:
        summary.warnings.append(counter.warning)
    with open_atomically(out) as train, open_atomically(validation_path) if validation_path else _nothing() as valid:
        for number, conversation in enumerate(_conversations(source, ids), start=1):
            if scanner is not None:
                if privacy == "leave-out":
                    if any(scanner.find(message.content) for message in conversation.messages):
                        summary.left_out += 1
                        continue
                else:
                    conversation = _redacted(conversation, scanner)
            messages, reason, trimmed = together_example(conversation, twin_speaker, merge_minutes=merge_minutes)
            if messages is None:
                summary.skipped.append(SkippedExample(conversation.id, reason))
                continue
            tokens = counter.count(messages)
            examples = [(messages, tokens)]
            if tokens > limit:
                examples = [
                    (part, counter.count(part)) for part in _cut_to_context(messages, counter, limit, twin_speaker)
                ]
                if not examples:
                    summary.skipped.append(
                        SkippedExample(
                            conversation.id,
                            f"{tokens} tokens, over the {limit}-token context of {base_model}, and no part of it fits",
                        )
                    )
                    continue
                summary.cut += 1
            summary.trimmed += trimmed
            to_validation = valid is not None and in_validation(conversation.id, validation_fraction, seed)
            for example, example_tokens in examples:
                summary.max_example_tokens = max(summary.max_example_tokens, example_tokens)
                line = json.dumps({"messages": example}, ensure_ascii=False) + "\n"
                if to_validation:
                    valid.write(line)
                    summary.validation_examples += 1
                    summary.validation_tokens += example_tokens
                else:
                    train.write(line)
                    summary.examples += 1
                    summary.tokens += example_tokens
            if progress is not None and number % 100 == 0:
                progress(number)
        if summary.examples == 0:
            raise InputError(
                f"No conversation can be a Together training example (each needs someone else's message followed "
                f"by one from {describe(twin_speaker)}, the twin's speaker); nothing was written."
                + (f" First problem: {summary.skipped[0]}." if summary.skipped else "")
                + (
                    " Choose who you are with `cognitivetwin data speakers` and --me NAME."
                    if twin_speaker in ROLE_SPEAKERS and _participant_names(source)
                    else ""
                )
            )
    return summary


@contextmanager
def _nothing():
    yield None


def trajectory_lines(conversation: Conversation, *, recompute: bool = False) -> Iterator[dict]:
    """The seed's lines for one conversation: one per message, with the messages before it."""
    context: list[dict] = []
    for message, turn in zip(conversation.messages, annotate(conversation, recompute=recompute)):
        context.append(_message_dict(message))
        yield {
            "conversation_id": conversation.id,
            "messages": list(context),
            "trajectory": turn.to_dict(),
            "patterns": patterns_for(message),
        }


def _message_dict(message: Message) -> dict:
    item = {"role": message.role, "content": message.content}
    if message.created_at is not None:
        item["created_at"] = message.created_at.isoformat()
    if message.speaker is not None:
        item["speaker"] = message.speaker
    return item


def export_trajectory(
    source,
    out: str | Path,
    *,
    ids: Iterable[str] | None = None,
    recompute: bool = False,
    progress: Callable[[int], None] | None = None,
) -> TrajectoryExportSummary:
    """Write the seed's trajectory JSONL from a workspace (or conversations)."""
    summary = TrajectoryExportSummary(Path(out))
    with open_atomically(out) as handle:
        for conversation in _conversations(source, ids):
            for line in trajectory_lines(conversation, recompute=recompute):
                handle.write(json.dumps(line, ensure_ascii=False) + "\n")
                summary.lines += 1
            summary.conversations += 1
            if progress is not None and summary.conversations % 100 == 0:
                progress(summary.conversations)
        if summary.conversations == 0:
            raise InputError("There are no conversations to export: import some first (cognitivetwin data import).")
    return summary


def write_conversations_jsonl(conversations: Iterable[Conversation], out: str | Path) -> int:
    """Plain chat JSONL with ids, titles, timestamps and explicit labels: a lossless copy."""
    count = 0
    with open_atomically(out) as handle:
        for conversation in conversations:
            record = {"conversation_id": conversation.id, "messages": []}
            if conversation.title:
                record["title"] = conversation.title
            for message in conversation.messages:
                item = _message_dict(message)
                if message.patterns is not None:
                    item["patterns"] = list(message.patterns)
                record["messages"].append(item)
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count
