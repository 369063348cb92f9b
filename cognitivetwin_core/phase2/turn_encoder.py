"""Turn representations: one pooled vector per message, from one pass over its conversation.

A conversation is rendered with the base's own chat template and tokenised once. Each
message's vector is the mean of the backbone's last hidden states over the tokens of that
message's content, with every earlier message of the conversation as causal context
(docs/data-and-model.md). Long conversations are split into overlapping windows that fit the context
budget; each message is pooled from the first window that holds it whole with up to
`overlap_tokens` of earlier context, so every message is pooled exactly once.

The backbone is `model.get_decoder()`: the vocabulary projection is wasted work for pooled
states. Windows are batched by a token budget, run under `torch.inference_mode()`, with
bf16/fp16 autocast on GPUs (docs/gpu.md).

Throughput: a background thread renders, tokenises (a batch of conversations per tokenizer
call) and collates the next batches while the device runs the current one. Batches group
windows of similar length, so padding stays under 10% of the real tokens. Each batch is
pooled on the device with one segment sum (index_add) and comes back in ONE host copy. The
token budget per batch is sized from free device memory (a constant on the CPU) and halved
on out-of-memory; the batch that failed is split and retried.

Public:
    EncodingSettings(max_window_tokens=1024, overlap_tokens=256, batch_tokens=None)
    default_window_tokens(device) -> int        # longer on CUDA: less overlap re-encoded
    auto_batch_tokens(model, device, window) -> int
    tokenize_conversation(tokenizer, messages) -> TokenizedConversation
    tokenize_conversations(tokenizer, list of messages) -> list[TokenizedConversation]  # batched
    plan_windows(tokenized, max_window_tokens, overlap_tokens) -> list[Window]
    plan_batches(jobs, batch_tokens, max_padding=0.1) -> list of batches   # longest first, little padding
    TurnEncoder(model, tokenizer, settings=None, device=None).encode(conversations,
        progress=None, cancellation=None) -> list[np.ndarray]   # per conversation [n, hidden] float32
        .iter_encode(conversations, cancellation=None)   # generator: yields progress, returns the arrays
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.conversation import Message
from cognitivetwin_core.errors import CognitiveTwinError

# Bump when the pooled vectors would change for the same model, data and settings.
ENCODER_VERSION = 1


@dataclass
class EncodingSettings:
    max_window_tokens: int = 1024
    overlap_tokens: int = 256
    # Tokens per forward batch (padded): bounds activation memory. None: sized from the free
    # device memory (auto_batch_tokens).
    batch_tokens: int | None = None
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
    return tokenize_conversations(tokenizer, [messages])[0]


def tokenize_conversations(tokenizer, conversations: Sequence[Sequence[Message]]) -> list[TokenizedConversation]:
    """Tokenise many conversations; a fast tokenizer takes them in one batched call."""
    texts = [_render(tokenizer, messages) for messages in conversations]
    char_spans = [_char_spans(tokenizer, messages, text) for messages, text in zip(conversations, texts)]
    if getattr(tokenizer, "is_fast", False):
        encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True) if texts else None
        return [
            _from_offsets(list(encoded["input_ids"][i]), encoded["offset_mapping"][i], char_spans[i])
            for i in range(len(texts))
        ]
    return [_tokenize_slow(tokenizer, text, spans) for text, spans in zip(texts, char_spans)]


def _from_offsets(input_ids: list[int], offsets, char_spans) -> TokenizedConversation:
    token_ends = [end for _, end in offsets]
    token_starts = [start for start, _ in offsets]

    def first_token_ending_after(char: int) -> int:
        return bisect.bisect_right(token_ends, char)

    def first_token_starting_at_or_after(char: int) -> int:
        return bisect.bisect_left(token_starts, char)

    return _spans_to_tokens(input_ids, char_spans, first_token_ending_after, first_token_starting_at_or_after)


def _tokenize_slow(tokenizer, text: str, char_spans) -> TokenizedConversation:
    """Slow tokenizers have no offsets: count the tokens of each prefix instead."""
    input_ids = tokenizer(text, add_special_tokens=False)["input_ids"]

    def first_token_ending_after(char: int) -> int:
        return len(tokenizer(text[:char], add_special_tokens=False)["input_ids"])

    return _spans_to_tokens(input_ids, char_spans, first_token_ending_after, first_token_ending_after)


def _spans_to_tokens(
    input_ids, char_spans, first_token_ending_after, first_token_starting_at_or_after
) -> TokenizedConversation:
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
    from cognitivetwin_core.models.loader import text_config

    config = getattr(model, "config", None)
    return getattr(text_config(config), "max_position_embeddings", None) if config is not None else None


CPU_BATCH_TOKENS = 8192
MAX_BATCH_TOKENS = 131072
# Conversations rendered and tokenised per background chunk: big enough for one batched
# tokenizer call to pay off, small enough that the first forward pass starts at once.
TOKENIZE_CHUNK = 256
_PREFETCH_BATCHES = 4
# Padding allowed in a forward batch, as a share of its real tokens (plan_batches).
MAX_PADDING = 0.1


def default_window_tokens(device: str) -> int:
    """The encoding window: 4096 tokens on CUDA (a 256-token overlap then re-encodes ~6% of a
    long conversation instead of ~28% at 1024), 1024 elsewhere (attention cost on the CPU)."""
    return 4096 if device.startswith("cuda") else 1024


def auto_batch_tokens(model, device: str, window: int) -> int:
    """Tokens per forward batch: from free device memory on CUDA, CPU_BATCH_TOKENS elsewhere.

    Under inference_mode a layer's activations are freed before the next: what a batch holds
    is about one layer's worth (attention projections, the MLP's widened states) plus the
    output states and the float32 tokens picked for pooling. Half the free memory is used;
    an out-of-memory still halves it (TurnEncoder).
    """
    from cognitivetwin_core.models.devices import free_memory_bytes
    from cognitivetwin_core.models.loader import text_config

    free = free_memory_bytes(device)
    if free is None:
        return CPU_BATCH_TOKENS
    config = text_config(model.config)
    hidden = int(config.hidden_size)
    intermediate = int(getattr(config, "intermediate_size", 4 * hidden) or 4 * hidden)
    element = next(model.parameters()).element_size()
    per_token = element * (8 * hidden + 4 * intermediate) + 4 * hidden
    tokens = int(0.5 * free / per_token)
    return max(int(window), min(MAX_BATCH_TOKENS, tokens))


def plan_batches(jobs, batch_tokens: int, max_padding: float = MAX_PADDING) -> list[list]:
    """Windows [(conversation index, window, token ids)] cut into forward batches, longest first.

    A batch takes the next (shorter) window while it stays within `batch_tokens` padded
    tokens and its padding within `max_padding` of its real tokens. A cut by the budget alone
    padded the demo's 12,675 tokens to 18,197 (its windows run from 1,024 tokens down to 66):
    44% more forward work for nothing. Rows of padding cost a forward pass as much as real
    tokens, while a smaller batch costs little more per token.
    """
    batches: list[list] = []
    real = 0  # unpadded tokens of the last batch
    for job in sorted(jobs, key=lambda job: len(job[2]), reverse=True):
        length = len(job[2])
        if batches:
            batch = batches[-1]
            padded = (len(batch) + 1) * len(batch[0][2])
            if padded <= batch_tokens and padded <= (1 + max_padding) * (real + length):
                batch.append(job)
                real += length
                continue
        batches.append([job])
        real = length
    return batches


class NonFiniteFeaturesError(CognitiveTwinError):
    """The base produced NaN or infinite hidden states: nothing is cached."""


@dataclass
class _Batch:
    jobs: list  # [(conversation index, window, token ids)]
    ids: object  # long [B, L]
    mask: object  # long [B, L]
    token_index: object  # long [T]: flat positions (row * L + column) of every pooled token
    segment: object  # long [T]: which pooled message each of those tokens belongs to
    counts: object  # float [S]: tokens per pooled message
    targets: list  # [(conversation index, message index)] per segment
    tokens: int  # real (unpadded) tokens


def _collate(jobs, pad_id: int, pin: bool) -> _Batch:
    import torch

    longest = max(len(job[2]) for job in jobs)
    ids = torch.full((len(jobs), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(jobs), longest), dtype=torch.long)
    token_index: list[int] = []
    segment: list[int] = []
    counts: list[float] = []
    targets = []
    tokens = 0
    for row, (conv_index, window, token_ids) in enumerate(jobs):
        ids[row, : len(token_ids)] = torch.tensor(token_ids, dtype=torch.long)
        mask[row, : len(token_ids)] = 1
        tokens += len(token_ids)
        for message_index, pool_start, pool_end in window.owned:
            start, end = pool_start - window.start, pool_end - window.start
            token_index.extend(range(row * longest + start, row * longest + end))
            segment.extend([len(targets)] * (end - start))
            counts.append(float(end - start))
            targets.append((conv_index, message_index))
    batch = _Batch(
        jobs=jobs,
        ids=ids,
        mask=mask,
        token_index=torch.tensor(token_index, dtype=torch.long),
        segment=torch.tensor(segment, dtype=torch.long),
        counts=torch.tensor(counts, dtype=torch.float32),
        targets=targets,
        tokens=tokens,
    )
    if pin:  # page-locked: the copy to the GPU runs asynchronously
        for name in ("ids", "mask", "token_index", "segment", "counts"):
            setattr(batch, name, getattr(batch, name).pin_memory())
    return batch


class _Prefetcher:
    """Renders, tokenises, plans and collates batches on a background thread.

    The producer reads the encoder's current `batch_tokens` for each new batch, so a budget
    halved after an out-of-memory applies to what comes next. Exceptions in the thread are
    re-raised in the consumer.
    """

    _DONE = object()

    def __init__(self, encoder: TurnEncoder, conversations: Sequence[Sequence[Message]]):
        import queue
        import threading

        self.encoder = encoder
        self.conversations = conversations
        self.queue: queue.Queue = queue.Queue(maxsize=_PREFETCH_BATCHES)
        self.closed = threading.Event()
        self.error: BaseException | None = None
        self.tokenize_seconds = 0.0
        self.thread = threading.Thread(target=self._produce, name="turn-encoder-tokenize", daemon=True)
        self.thread.start()

    def _put(self, item) -> bool:
        import queue

        while not self.closed.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        import time

        encoder = self.encoder
        try:
            indices = [i for i, messages in enumerate(self.conversations) if messages]
            for chunk_start in range(0, len(indices), TOKENIZE_CHUNK):
                started = time.perf_counter()
                chunk = indices[chunk_start : chunk_start + TOKENIZE_CHUNK]
                tokenized = tokenize_conversations(encoder.tokenizer, [self.conversations[i] for i in chunk])
                jobs = []
                for conv_index, conversation in zip(chunk, tokenized):
                    settings = encoder.settings
                    for window in plan_windows(conversation, settings.max_window_tokens, settings.overlap_tokens):
                        jobs.append((conv_index, window, conversation.input_ids[window.start : window.end]))
                batches = plan_batches(jobs, encoder.batch_tokens)
                collated = [_collate(b, encoder.pad_id, encoder.pin_memory) for b in batches]
                self.tokenize_seconds += time.perf_counter() - started
                for batch in collated:
                    if not self._put(batch):
                        return
        except BaseException as exc:  # handed to the consumer
            self.error = exc
        self._put(self._DONE)

    def __iter__(self):
        while True:
            item = self.queue.get()
            if item is self._DONE:
                if self.error is not None:
                    raise self.error
                return
            yield item

    def close(self) -> None:
        self.closed.set()
        self.thread.join(timeout=5)


class TurnEncoder:
    """Pools every message of many conversations through a frozen base, one pass each."""

    def __init__(self, model, tokenizer, settings: EncodingSettings | None = None, device: str | None = None):
        from cognitivetwin_core.models.loader import text_config

        self.model = model
        self.tokenizer = tokenizer
        self.settings = settings or EncodingSettings()
        limit = context_limit(model)
        if limit:
            self.settings.max_window_tokens = min(self.settings.max_window_tokens, int(limit))
        self.device = device or str(next(model.parameters()).device)
        self.decoder = model.get_decoder()
        self.hidden_size = int(text_config(model.config).hidden_size)
        self.model_type = getattr(text_config(model.config), "model_type", None)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
        self.batch_tokens = int(
            self.settings.batch_tokens or auto_batch_tokens(model, self.device, self.settings.max_window_tokens)
        )
        self.pin_memory = self.device.startswith("cuda")
        # Filled by iter_encode: seconds spent tokenising (in the background), in forward
        # passes and pooling (the critical path), tokens encoded, and OOM retries.
        self.stats: dict = {}

    def plan(self, conversations: Sequence[Sequence[Message]]):
        """[(conversation index, window, window token ids)], in conversation order."""
        jobs = []
        indices = [i for i, messages in enumerate(conversations) if messages]
        for conv_index, tokenized in zip(
            indices, tokenize_conversations(self.tokenizer, [conversations[i] for i in indices])
        ):
            for window in plan_windows(tokenized, self.settings.max_window_tokens, self.settings.overlap_tokens):
                jobs.append((conv_index, window, tokenized.input_ids[window.start : window.end]))
        return jobs

    def encode(
        self,
        conversations: Sequence[Sequence[Message]],
        progress: Callable[[int, int, int], None] | None = None,
        cancellation: Cancellation | None = None,
    ):
        """Per conversation a float32 array [messages, hidden].

        `progress(messages_done, messages_total, tokens_done)` after each batch; `cancellation`
        is checked before each batch (returns None once it is cancelled).
        """
        steps = self.iter_encode(conversations, cancellation=cancellation)
        while True:
            try:
                done, total, tokens = next(steps)
            except StopIteration as finished:
                return finished.value
            if progress:
                progress(done, total, tokens)

    def _autocast(self):
        import torch

        from cognitivetwin_core.models.devices import autocast_dtype

        weights = next(self.model.parameters()).dtype
        amp = weights if weights in (torch.bfloat16, torch.float16) else autocast_dtype(self.device, self.model_type)
        return torch.autocast(
            device_type=self.device.split(":")[0], dtype=amp or torch.float32, enabled=amp is not None
        )

    def _pool_batch(self, batch: _Batch):
        """[segments, hidden] float32 numpy: the mean over each message's tokens, pooled on the device."""
        import torch

        device = self.device
        with torch.inference_mode(), self._autocast():
            states = self.decoder(
                input_ids=batch.ids.to(device, non_blocking=True),
                attention_mask=batch.mask.to(device, non_blocking=True),
                use_cache=False,
            ).last_hidden_state
            flat = states.reshape(-1, states.shape[-1])
            picked = flat.index_select(0, batch.token_index.to(states.device, non_blocking=True)).float()
            sums = torch.zeros((len(batch.targets), flat.shape[-1]), dtype=torch.float32, device=states.device)
            sums.index_add_(0, batch.segment.to(states.device, non_blocking=True), picked)
            means = sums / batch.counts.to(states.device, non_blocking=True).unsqueeze(1)
        return means.cpu().numpy()  # the batch's one device-to-host copy

    def _pool_with_retry(self, batch: _Batch):
        """Pool a batch; on out-of-memory halve the token budget, split the batch and retry."""
        from cognitivetwin_core.models.devices import is_out_of_memory

        try:
            return [(batch, self._pool_batch(batch))]
        except Exception as exc:
            if not is_out_of_memory(exc) or len(batch.jobs) < 2:
                raise
        self._release_memory()
        self.batch_tokens = max(self.settings.max_window_tokens, self.batch_tokens // 2)
        self.stats["oom_retries"] = self.stats.get("oom_retries", 0) + 1
        half = len(batch.jobs) // 2
        results = []
        for part in (batch.jobs[:half], batch.jobs[half:]):
            results.extend(self._pool_with_retry(_collate(part, self.pad_id, self.pin_memory)))
        return results

    def _release_memory(self) -> None:
        import gc

        import torch

        gc.collect()
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()

    def iter_encode(self, conversations: Sequence[Sequence[Message]], cancellation: Cancellation | None = None):
        """A generator form of `encode`: yields (messages_done, messages_total, tokens_done) after
        each batch and returns the arrays (`result = yield from encoder.iter_encode(...)`)."""
        import time

        import numpy as np

        outputs = [np.zeros((len(messages), self.hidden_size), dtype=np.float32) for messages in conversations]
        total_messages = sum(len(messages) for messages in conversations)
        done_messages = done_tokens = 0
        self.stats = {"tokenize_s": 0.0, "forward_s": 0.0, "tokens": 0, "batches": 0, "oom_retries": 0}
        prefetcher = _Prefetcher(self, conversations)
        try:
            for batch in prefetcher:
                if cancellation is not None and cancellation.cancelled:
                    return None
                started = time.perf_counter()
                for part, pooled in self._pool_with_retry(batch):
                    if not np.isfinite(pooled).all():
                        raise NonFiniteFeaturesError(
                            "The base model produced NaN or infinite hidden states while encoding "
                            f"(in {self._precision_name()}); nothing was cached. Encode in float32: use "
                            "--device cpu, or a GPU with bf16 (compute capability 8.0 or newer)."
                        )
                    for (conv_index, message_index), vector in zip(part.targets, pooled):
                        outputs[conv_index][message_index] = vector
                    done_messages += len(part.targets)
                    done_tokens += part.tokens
                self.stats["forward_s"] += time.perf_counter() - started
                self.stats["batches"] += 1
                self.stats["tokens"] = done_tokens
                yield done_messages, total_messages, done_tokens
        finally:
            prefetcher.close()
            self.stats["tokenize_s"] = prefetcher.tokenize_seconds
        return outputs

    def _precision_name(self) -> str:
        return str(next(self.model.parameters()).dtype).replace("torch.", "")
