"""Turn representations: one pooled vector per message, from one pass over its conversation.

A conversation is rendered with the base's own chat template and tokenised once. Each
message's vector is the mean of the backbone's last hidden states over the tokens of that
message's content, with every earlier message of the conversation as causal context
(DESIGN §4). Long conversations are split into overlapping windows that fit the context
budget; each message is pooled from the first window that holds it whole with up to
`overlap_tokens` of earlier context, so every message is pooled exactly once.

The backbone is `model.get_decoder()`: the vocabulary projection is wasted work for pooled
states. Windows are batched by a token budget, run under `torch.inference_mode()`, with
bf16/fp16 autocast on GPUs.

Public:
    EncodingSettings(max_window_tokens=1024, overlap_tokens=256, batch_tokens=8192)
    tokenize_conversation(tokenizer, messages) -> TokenizedConversation
    plan_windows(tokenized, max_window_tokens, overlap_tokens) -> list[Window]
    TurnEncoder(model, tokenizer, settings=None, device=None).encode(conversations,
        progress=None, should_stop=None) -> list[np.ndarray]   # per conversation [n, hidden] float32
        .iter_encode(conversations, should_stop=None)   # generator: yields progress, returns the arrays
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from cognitivetwin_core.conversation import Message

# Bump when the pooled vectors would change for the same model, data and settings.
ENCODER_VERSION = 1


@dataclass
class EncodingSettings:
    max_window_tokens: int = 1024
    overlap_tokens: int = 256
    # Tokens per forward batch (padded): bounds activation memory.
    batch_tokens: int = 8192
    pooling: str = "mean-content"

    def cache_identity(self) -> dict:
        """What changes the vectors (batching does not)."""
        identity = asdict(self)
        identity.pop("batch_tokens")
        identity["encoder_version"] = ENCODER_VERSION
        return identity


@dataclass
class TokenizedConversation:
    input_ids: list[int]
    # Per message: the token range that is pooled (its content) and the start of its turn
    # (the first token after the previous message's content: role header included).
    pool_spans: list[tuple[int, int]] = field(default_factory=list)
    turn_starts: list[int] = field(default_factory=list)


@dataclass
class Window:
    start: int
    end: int
    # (message index, pool start, pool end), token positions relative to the conversation.
    owned: list[tuple[int, int, int]]


def _as_chat(messages: Sequence[Message]) -> list[dict]:
    return [{"role": m.role, "content": m.content or ""} for m in messages]


def _render(tokenizer, messages: Sequence[Message]) -> str:
    chat = _as_chat(messages)
    try:
        if getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(chat, tokenize=False)
    except Exception:  # a template that rejects a role (e.g. no system/tool): fall back below
        pass
    return "".join(f"{m['role']}: {m['content']}\n\n" for m in chat)


def chat_template_identity(tokenizer) -> str:
    template = getattr(tokenizer, "chat_template", None) or ""
    if isinstance(template, dict):
        template = repr(sorted(template.items()))
    return hashlib.sha256(str(template).encode("utf-8")).hexdigest()[:16]


def _char_spans(tokenizer, messages: Sequence[Message], text: str) -> list[tuple[int, int, int]]:
    """Per message (turn_start, content_start, content_end) as character offsets in `text`."""
    spans = []
    cursor = 0
    for index, message in enumerate(messages):
        turn_start = cursor
        content = (message.content or "").strip()
        found = text.find(content, cursor) if content else -1
        if found < 0:
            # The template rewrote the content (or it is empty): take the whole turn, which ends
            # where the rendering of the conversation up to this message ends.
            prefix = _render(tokenizer, messages[: index + 1])
            end = len(prefix) if text.startswith(prefix) else len(text)
            end = max(end, cursor)
            spans.append((turn_start, turn_start, end))
            cursor = end
            continue
        spans.append((turn_start, found, found + len(content)))
        cursor = found + len(content)
    return spans


def tokenize_conversation(tokenizer, messages: Sequence[Message]) -> TokenizedConversation:
    text = _render(tokenizer, messages)
    char_spans = _char_spans(tokenizer, messages, text)
    if getattr(tokenizer, "is_fast", False):
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        input_ids = list(encoded["input_ids"])
        offsets = encoded["offset_mapping"]
        token_ends = [end for _, end in offsets]
        token_starts = [start for start, _ in offsets]

        def first_token_ending_after(char: int) -> int:
            return bisect.bisect_right(token_ends, char)

        def first_token_starting_at_or_after(char: int) -> int:
            return bisect.bisect_left(token_starts, char)

    else:  # slow tokenizers have no offsets: count the tokens of each prefix instead
        input_ids = tokenizer(text, add_special_tokens=False)["input_ids"]

        def first_token_ending_after(char: int) -> int:
            return len(tokenizer(text[:char], add_special_tokens=False)["input_ids"])

        first_token_starting_at_or_after = first_token_ending_after

    tokenized = TokenizedConversation(input_ids=input_ids)
    for turn_start, content_start, content_end in char_spans:
        turn_token = first_token_starting_at_or_after(turn_start)
        start = first_token_ending_after(content_start)
        end = max(start, first_token_starting_at_or_after(content_end))
        if end <= start:  # empty content: pool the turn's own tokens (role header)
            start, end = turn_token, max(turn_token + 1, first_token_starting_at_or_after(content_end))
        end = min(end, len(input_ids))
        start = min(start, max(0, end - 1))
        tokenized.pool_spans.append((start, end))
        tokenized.turn_starts.append(min(turn_token, start))
    return tokenized


def plan_windows(tokenized: TokenizedConversation, max_window_tokens: int, overlap_tokens: int) -> list[Window]:
    """Cover every message once; each window starts `overlap_tokens` before its first new turn."""
    spans = tokenized.pool_spans
    total = len(tokenized.input_ids)
    windows: list[Window] = []
    index = 0
    overlap_tokens = max(0, min(overlap_tokens, max_window_tokens // 2))
    while index < len(spans):
        start = 0 if index == 0 else max(0, tokenized.turn_starts[index] - overlap_tokens)
        # Never start before the previous window did: progress is guaranteed.
        if windows:
            start = max(start, windows[-1].start + 1)
        end = start + max_window_tokens
        owned = []
        cursor = index
        while cursor < len(spans) and spans[cursor][1] <= end:
            owned.append((cursor, *spans[cursor]))
            cursor += 1
        if not owned:
            # Message `index` does not fit with context: start at it, truncate it if alone too long.
            start = tokenized.turn_starts[index] if index else 0
            if spans[index][1] - start > max_window_tokens:
                start = spans[index][0]
            end = start + max_window_tokens
            while cursor < len(spans) and spans[cursor][1] <= end:
                owned.append((cursor, *spans[cursor]))
                cursor += 1
            if not owned:
                pool_start, pool_end = spans[index]
                owned.append((index, pool_start, min(pool_end, end)))
                cursor = index + 1
        windows.append(Window(start=start, end=min(end, total), owned=owned))
        index = cursor
    return windows


def context_limit(model) -> int | None:
    config = getattr(model, "config", None)
    return getattr(config, "max_position_embeddings", None)


class TurnEncoder:
    """Pools every message of many conversations through a frozen base, one pass each."""

    def __init__(self, model, tokenizer, settings: EncodingSettings | None = None, device: str | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.settings = settings or EncodingSettings()
        limit = context_limit(model)
        if limit:
            self.settings.max_window_tokens = min(self.settings.max_window_tokens, int(limit))
        self.device = device or str(next(model.parameters()).device)
        self.decoder = model.get_decoder()
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)

    def plan(self, conversations: Sequence[Sequence[Message]]):
        """[(conversation index, window, window token ids)], and the token count."""
        jobs = []
        for conv_index, messages in enumerate(conversations):
            if not messages:
                continue
            tokenized = tokenize_conversation(self.tokenizer, messages)
            for window in plan_windows(tokenized, self.settings.max_window_tokens, self.settings.overlap_tokens):
                jobs.append((conv_index, window, tokenized.input_ids[window.start : window.end]))
        return jobs

    def encode(
        self,
        conversations: Sequence[Sequence[Message]],
        progress: Callable[[int, int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ):
        """Per conversation a float32 array [messages, hidden].

        `progress(messages_done, messages_total, tokens_done)` after each batch; `should_stop()`
        is checked before each batch (returns None when it says stop).
        """
        steps = self.iter_encode(conversations, should_stop=should_stop)
        while True:
            try:
                done, total, tokens = next(steps)
            except StopIteration as finished:
                return finished.value
            if progress:
                progress(done, total, tokens)

    def iter_encode(self, conversations: Sequence[Sequence[Message]], should_stop: Callable[[], bool] | None = None):
        """A generator form of `encode`: yields (messages_done, messages_total, tokens_done) after
        each batch and returns the arrays (`result = yield from encoder.iter_encode(...)`)."""
        import numpy as np
        import torch

        hidden = self.model.config.hidden_size
        outputs = [np.zeros((len(messages), hidden), dtype=np.float32) for messages in conversations]
        jobs = self.plan(conversations)
        # Longest first: similar lengths share a batch (little padding), and an OOM shows up at once.
        jobs.sort(key=lambda job: len(job[2]), reverse=True)
        total_messages = sum(len(messages) for messages in conversations)
        done_messages = 0
        done_tokens = 0
        from cognitivetwin_core.models.devices import autocast_dtype

        amp_dtype = autocast_dtype(self.device)
        device_type = self.device.split(":")[0]
        position = 0
        while position < len(jobs):
            if should_stop and should_stop():
                return None
            longest = len(jobs[position][2])
            per_batch = max(1, self.settings.batch_tokens // max(1, longest))
            batch = jobs[position : position + per_batch]
            position += len(batch)
            ids = torch.full((len(batch), longest), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), longest), dtype=torch.long)
            for row, (_, _, token_ids) in enumerate(batch):
                ids[row, : len(token_ids)] = torch.tensor(token_ids, dtype=torch.long)
                mask[row, : len(token_ids)] = 1
            with (
                torch.inference_mode(),
                torch.autocast(
                    device_type=device_type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None
                ),
            ):
                states = self.decoder(
                    input_ids=ids.to(self.device), attention_mask=mask.to(self.device), use_cache=False
                ).last_hidden_state
            states = states.float()
            for row, (conv_index, window, token_ids) in enumerate(batch):
                for message_index, pool_start, pool_end in window.owned:
                    start, end = pool_start - window.start, pool_end - window.start
                    outputs[conv_index][message_index] = states[row, start:end].mean(dim=0).cpu().numpy()
                    done_messages += 1
                done_tokens += len(token_ids)
            yield done_messages, total_messages, done_tokens
        return outputs
