"""Chat generation with a base model (or base + adapter), through its own chat template.

`chat_generate` is the one-shot greedy reply. `generate_reply` is what the chat and the
Phase 1 evaluation use: sampling settings (temperature, top-p, max new tokens, seed), text
streamed to a callback as it is decoded (word by word, on the caller's thread: the app calls
it from a worker thread), and a `Cancellation` (cognitivetwin_core/cancellation.py) that stops it between two tokens.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.errors import InputError

# torch's default generator is process-wide: two seeded generations at once would
# interleave their draws, so a seeded generation holds this lock.
_SEED_LOCK = threading.Lock()


@dataclass(frozen=True)
class SamplingSettings:
    """How a reply is drawn. temperature 0 means greedy (the seed then does not matter)."""

    temperature: float = 0.7
    top_p: float = 0.9
    max_new_tokens: int = 160
    seed: int | None = None
    repetition_penalty: float = 1.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.temperature <= 5.0:
            raise InputError(f"The temperature must be between 0 and 5, got {self.temperature}.")
        if not 0.0 < self.top_p <= 1.0:
            raise InputError(f"top-p must be above 0 and at most 1, got {self.top_p}.")
        if not 1 <= self.max_new_tokens <= 8192:
            raise InputError(f"The maximum new tokens must be between 1 and 8192, got {self.max_new_tokens}.")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class GeneratedReply:
    text: str
    tokens: int  # new tokens generated
    stopped: bool  # True when the stop event ended it early
    left_out: int = 0  # the oldest messages of the history left out to fit the model's context


def chat_generate(base_model: str, prompt: str, *, max_new_tokens: int = 48, model=None, tokenizer=None) -> str:
    import torch

    from cognitivetwin_core.models.loader import load_base_model

    if model is None or tokenizer is None:
        model, tokenizer = load_base_model(base_model)
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    inputs = {k: v.to(model.device) for k, v in inputs.items()}
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    new_tokens = output[0][inputs["input_ids"].shape[1] :]
    return tokenizer.decode(new_tokens, skip_special_tokens=True).strip()


def chat_inputs(tokenizer, messages: Sequence[dict], device, *, max_context_tokens: int | None = None):
    """(the chat template's token ids for `messages` with the assistant's turn opened, how many
    of the oldest messages were left out).

    A long history is cut from the front (keeping a leading system message) until it fits
    `max_context_tokens`, so a long chat keeps working; a last message that cannot fit on its
    own is refused here, before any generation (which would otherwise run far past the
    model's context, for many minutes on a CPU)."""
    messages = [{"role": m["role"], "content": m["content"]} for m in messages]
    if not messages:
        raise InputError("There is no message to reply to.")
    keep_system = 1 if messages[0]["role"] == "system" else 0
    left_out = 0
    while True:
        inputs = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        length = inputs["input_ids"].shape[1]
        if max_context_tokens is None or length <= max_context_tokens:
            break
        if len(messages) - keep_system <= 1:
            with_system = " with the system prompt" if keep_system else ""
            raise InputError(
                f"The message is {length:,} tokens long{with_system}, more than the {max_context_tokens:,} the "
                "model can read at once (its context, less room for the reply): shorten it or send it in parts."
            )
        del messages[keep_system]
        left_out += 1
    return {k: v.to(device) for k, v in inputs.items()}, left_out


def context_limit(model, settings: SamplingSettings, max_context_tokens: int | None = None) -> int | None:
    """How many tokens a prompt may have: the model's context less `settings.max_new_tokens`
    (room for the reply), and at most `max_context_tokens`; None when neither is known."""
    from cognitivetwin_core.models.loader import text_config

    config = getattr(model, "config", None)
    window = getattr(text_config(config), "max_position_embeddings", None) if config is not None else None
    if not isinstance(window, int) or window <= 0:
        return max_context_tokens
    room = window - settings.max_new_tokens
    if room < 1:
        raise InputError(
            f"A reply of up to {settings.max_new_tokens:,} tokens leaves no room for the conversation in the "
            f"model's context of {window:,} tokens: ask for a shorter reply."
        )
    return room if max_context_tokens is None else min(room, max_context_tokens)


def generate_reply(
    model,
    tokenizer,
    messages: Sequence[dict],
    settings: SamplingSettings | None = None,
    *,
    on_text: Callable[[str], None] | None = None,
    cancellation: Cancellation | None = None,
    max_context_tokens: int | None = 2048,
) -> GeneratedReply:
    """The model's reply to `messages` (dicts with role and content).

    `on_text(piece)` receives the reply as it is decoded (whole words: the streamer holds
    back a partial word); the pieces join to the returned text. `cancellation`, once cancelled,
    ends the generation before its next token; what was generated so far is returned.
    The prompt fits the model's context with room for the reply (and `max_context_tokens`,
    which bounds a CPU's work): the oldest messages are left out (`left_out` says how many),
    and a last message too long on its own is refused before generating."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList, TextStreamer

    settings = settings or SamplingSettings()
    limit = context_limit(model, settings, max_context_tokens)
    inputs, left_out = chat_inputs(tokenizer, messages, model.device, max_context_tokens=limit)
    pieces: list[str] = []

    class _Streamer(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            if text:
                pieces.append(text)
                if on_text is not None:
                    on_text(text)

    class _StopOnCancel(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            stopped = cancellation is not None and cancellation.cancelled
            return torch.full((input_ids.shape[0],), stopped, dtype=torch.bool, device=input_ids.device)

    greedy = settings.temperature <= 0.0
    options = {
        "max_new_tokens": settings.max_new_tokens,
        "do_sample": not greedy,
        "repetition_penalty": settings.repetition_penalty,
        "streamer": _Streamer(tokenizer, skip_prompt=True, skip_special_tokens=True),
        "stopping_criteria": StoppingCriteriaList([_StopOnCancel()]),
        "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    }
    if greedy:  # the model's generation config may carry sampling defaults; greedy ignores them
        options.update(temperature=None, top_p=None, top_k=None)
    else:
        options.update(temperature=settings.temperature, top_p=settings.top_p, top_k=0)
    lock = _SEED_LOCK if settings.seed is not None and not greedy else None
    if lock is not None:
        lock.acquire()
    try:
        if lock is not None:
            torch.manual_seed(settings.seed)
        with torch.inference_mode():
            output = model.generate(**inputs, **options)
    finally:
        if lock is not None:
            lock.release()
    new_tokens = output[0][inputs["input_ids"].shape[1] :]
    text = tokenizer.decode(new_tokens, skip_special_tokens=True)
    stopped = cancellation is not None and cancellation.cancelled
    return GeneratedReply(text.strip(), int(new_tokens.shape[0]), stopped, left_out)
