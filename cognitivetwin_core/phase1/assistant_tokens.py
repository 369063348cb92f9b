"""Conversations as the tokens local LoRA learns from, in batches, and the loss on them.

- Each conversation is rendered with the base's own chat template; the loss is on the
  assistant turns only (their text and end-of-turn token). Which tokens those are is found
  by rendering each prefix of the conversation and mapping the character span of every
  assistant turn to tokens (offsets), so it works with any template, `{% generation %}`
  markers or not.
- Conversations are cut to a maximum length and batched by length under a token budget
  (little padding); the vocabulary projection is only computed at the positions that have a
  label (`assistant_loss`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# Padded tokens a step: bounds activation memory (about 2.5 GB on the embedded model), and
# small data gets more optimizer steps per epoch (the demo: about 13 instead of 7 at 2048).
DEFAULT_BATCH_TOKENS = 1024
IGNORE_INDEX = -100


@dataclass
class TokenizedExample:
    input_ids: list[int]
    labels: list[int]

    @property
    def length(self) -> int:
        return len(self.input_ids)

    @property
    def labelled(self) -> int:
        """Positions the loss counts (as `assistant_loss` counts them: the first token never)."""
        return sum(1 for label in self.labels[1:] if label != IGNORE_INDEX)


# ----- data ---------------------------------------------------------------------------------


def _render(tokenizer, messages: list[dict], *, generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def assistant_char_spans(tokenizer, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant turns."""
    messages = [{"role": m["role"], "content": m["content"]} for m in messages]
    full = _render(tokenizer, messages)
    spans = []
    cursor = 0
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        span = None
        try:
            before = _render(tokenizer, messages[:index], generation_prompt=True) if index else ""
            through = _render(tokenizer, messages[: index + 1])
            if full.startswith(through) and through.startswith(before) and len(through) > len(before):
                start = len(before)
                # Only the reply and its end-of-turn marker, not a next turn's header.
                span = (start, len(through))
        except Exception:  # templates that reject a prefix (e.g. one must end with a user turn)
            span = None
        if span is None:
            start = full.find(message["content"], cursor)
            if start < 0:
                continue
            span = (start, start + len(message["content"]))
        spans.append(span)
        cursor = span[1]
    return full, spans


def tokenize_conversation(tokenizer, messages: list[dict], max_length: int) -> TokenizedExample | None:
    """Token ids and labels (assistant tokens only, -100 elsewhere); None if nothing to learn."""
    text, spans = assistant_char_spans(tokenizer, messages)
    encoded = tokenizer(
        text, add_special_tokens=False, return_offsets_mapping=True, truncation=True, max_length=max_length
    )
    ids = encoded["input_ids"]
    labels = [IGNORE_INDEX] * len(ids)
    span_index = 0
    for position, (start, end) in enumerate(encoded["offset_mapping"]):
        while span_index < len(spans) and spans[span_index][1] <= start:
            span_index += 1
        if span_index < len(spans) and end > start and spans[span_index][0] <= start < spans[span_index][1]:
            labels[position] = ids[position]
    if not any(label != IGNORE_INDEX for label in labels[1:]):
        return None
    return TokenizedExample(ids, labels)


def length_batches(examples: list[TokenizedExample], max_batch_tokens: int, seed: int) -> list[list[int]]:
    """Indices grouped by similar length, each batch under `max_batch_tokens` padded tokens."""
    order = sorted(range(len(examples)), key=lambda i: examples[i].length)
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index in order:
        length = examples[index].length
        if current and max(longest, length) * (len(current) + 1) > max_batch_tokens:
            batches.append(current)
            current, longest = [], 0
        current.append(index)
        longest = max(longest, length)
    if current:
        batches.append(current)
    random.Random(seed).shuffle(batches)
    return batches


def collate(examples: list[TokenizedExample], pad_token: int):
    import torch

    width = max(e.length for e in examples)
    ids = torch.full((len(examples), width), pad_token, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        ids[row, : example.length] = torch.tensor(example.input_ids)
        labels[row, : example.length] = torch.tensor(example.labels)
        mask[row, : example.length] = 1
    return ids, labels, mask


def assistant_loss(model, input_ids, labels, attention_mask):
    """Mean next-token loss over labelled positions, projecting only those to the vocabulary."""
    import torch.nn.functional as F

    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = causal_lm.get_decoder()(
        input_ids=input_ids, attention_mask=attention_mask, use_cache=False
    ).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    logits = causal_lm.get_output_embeddings()(hidden[:, :-1][keep])
    return F.cross_entropy(logits.float(), targets[keep]), int(keep.sum())


def evaluate_loss(
    model,
    tokenizer,
    conversations: list[list[dict]],
    *,
    max_length: int = 512,
    max_batch_tokens: int = DEFAULT_BATCH_TOKENS,
) -> float:
    """Mean assistant-token loss of `model` on `conversations` (no gradients)."""
    import torch

    examples = [e for e in (tokenize_conversation(tokenizer, c, max_length) for c in conversations) if e]
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in length_batches(examples, max_batch_tokens, seed=0):
            ids, labels, mask = collate([examples[i] for i in batch], pad_id(tokenizer))
            loss, n = assistant_loss(model, ids.to(model.device), labels.to(model.device), mask.to(model.device))
            total += float(loss) * n
            count += n
    return total / max(count, 1)


def conversation_losses(model, tokenizer, conversations: list[list[dict]], *, max_length: int = 512):
    """Per conversation, (summed assistant-token loss, tokens counted); (0.0, 0) for one with no
    assistant token left after cutting. For intervals over conversations (no gradients)."""
    import torch

    sums = []
    with torch.no_grad():
        for conversation in conversations:
            example = tokenize_conversation(tokenizer, conversation, max_length)
            if not example or not example.labelled:
                sums.append((0.0, 0))
                continue
            ids, labels, mask = collate([example], pad_id(tokenizer))
            loss, n = assistant_loss(model, ids.to(model.device), labels.to(model.device), mask.to(model.device))
            sums.append((float(loss) * n, n))
    return sums


def pad_id(tokenizer) -> int:
    """The token that pads a batch: the tokenizer's own, or its end-of-text token."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
