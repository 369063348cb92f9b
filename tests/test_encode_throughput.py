"""The fast encode path (batched background tokenising, pooling on the device with one host
copy per batch, OOM halving) gives the vectors the straightforward path gives; the working
dtype and the token budget follow the device (CUDA faked: no GPU here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cognitivetwin_core.conversation import Conversation, Message

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _reference_vectors(model, tokenizer, conversations, window, overlap):
    """The pre-GPU-work path, one window at a time: the float32 mean of the backbone's last
    states over each message's content tokens, copied to the host message by message."""
    from cognitivetwin_core.phase2.turn_encoder import plan_windows, tokenize_conversation

    decoder = model.get_decoder()
    outputs = []
    for messages in conversations:
        tokenized = tokenize_conversation(tokenizer, messages)
        vectors = np.zeros((len(messages), model.config.hidden_size), dtype=np.float32)
        for w in plan_windows(tokenized, window, overlap):
            ids = torch.tensor([tokenized.input_ids[w.start : w.end]])
            with torch.inference_mode():
                states = decoder(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False).last_hidden_state
            for index, start, end in w.owned:
                vectors[index] = states[0, start - w.start : end - w.start].float().mean(0).numpy()
        outputs.append(vectors)
    return outputs


def _assert_equal_within_fp16(new, old):
    for a, b in zip(new, old):
        assert a.shape == b.shape
        # The cache stores float16: equal after that rounding (relative to each row's scale).
        scale = np.abs(b).max(axis=1, keepdims=True) + 1e-6
        assert np.abs(a - b).max() <= (2**-10 * scale).max()
        assert np.array_equal(a.astype(np.float16), b.astype(np.float16)) or np.allclose(a, b, rtol=1e-3, atol=1e-4)


def test_fast_path_equals_the_reference_on_the_embedded_model(embedded_model, demo_conversations):
    from cognitivetwin_core.phase2.turn_encoder import EncodingSettings, TurnEncoder

    model, tokenizer = embedded_model
    conversations = [c.messages for c in demo_conversations[:6]]
    settings = EncodingSettings(max_window_tokens=160, overlap_tokens=32, batch_tokens=512)
    new = TurnEncoder(model, tokenizer, settings).encode(conversations)
    old = _reference_vectors(model, tokenizer, conversations, 160, 32)
    _assert_equal_within_fp16(new, old)


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["llama", "gemma3"])
def test_fast_path_equals_the_reference_on_tiny_shapes(tiny_catalog_model, shape, demo_conversations):
    from cognitivetwin_core.models.frozen_base import load_frozen_base
    from cognitivetwin_core.phase2.turn_encoder import EncodingSettings, TurnEncoder

    model, tokenizer = load_frozen_base(str(tiny_catalog_model(shape)))
    conversations = [c.messages for c in demo_conversations[:10]] + [[]]  # an empty one is skipped
    encoder = TurnEncoder(model, tokenizer, EncodingSettings(max_window_tokens=96, overlap_tokens=16, batch_tokens=300))
    new = encoder.encode(conversations)
    assert new[-1].shape == (0, 64)
    old = _reference_vectors(model, tokenizer, conversations[:-1], 96, 16)
    _assert_equal_within_fp16(new[:-1], old)
    assert encoder.stats["batches"] > 1 and encoder.stats["tokens"] > 0


def test_batched_tokenising_equals_one_at_a_time(embedded_tokenizer, demo_conversations):
    from cognitivetwin_core.phase2.turn_encoder import tokenize_conversation, tokenize_conversations

    conversations = [c.messages for c in demo_conversations[:20]]
    batched = tokenize_conversations(embedded_tokenizer, conversations)
    for messages, together in zip(conversations, batched):
        alone = tokenize_conversation(embedded_tokenizer, messages)
        assert (alone.input_ids, alone.pool_spans, alone.turn_starts) == (
            together.input_ids,
            together.pool_spans,
            together.turn_starts,
        )


def test_batches_are_longest_first_within_the_budget_and_barely_padded(embedded_tokenizer, demo_conversations):
    from cognitivetwin_core.phase2.turn_encoder import MAX_PADDING, plan_batches, plan_windows, tokenize_conversations

    jobs = []
    for index, tokenized in enumerate(
        tokenize_conversations(embedded_tokenizer, [c.messages for c in demo_conversations])
    ):
        for window in plan_windows(tokenized, 1024, 256):
            jobs.append((index, window, tokenized.input_ids[window.start : window.end]))
    batches = plan_batches(jobs, 8192)
    assert sorted(map(id, (job for batch in batches for job in batch))) == sorted(map(id, jobs))  # each once
    lengths = [len(job[2]) for batch in batches for job in batch]
    assert lengths == sorted(lengths, reverse=True)
    real = padded = 0
    for batch in batches:
        rows, longest = len(batch), len(batch[0][2])
        tokens = sum(len(job[2]) for job in batch)
        assert rows * longest <= 8192 or rows == 1
        assert rows * longest <= (1 + MAX_PADDING) * tokens
        real, padded = real + tokens, padded + rows * longest
    # A cut by the budget alone padded the demo's windows by 44%.
    assert padded <= (1 + MAX_PADDING) * real and len(jobs) > len(batches) > 1
    # Windows of one length fill a batch up to the budget.
    same = [(0, None, [1] * 100)] * 250
    assert [len(batch) for batch in plan_batches(same, 8192)] == [81, 81, 81, 7]


def test_the_backbone_gives_the_causal_lms_last_hidden_states(tiny_model_dir, embedded_tokenizer, demo_conversations):
    """The encoder runs the backbone alone (no vocabulary projection): its states are those
    the full causal LM reports as its last hidden states."""
    from transformers import AutoModelForCausalLM

    from cognitivetwin_core.models.frozen_base import load_frozen_base
    from cognitivetwin_core.phase2.turn_encoder import tokenize_conversation

    backbone, _ = load_frozen_base(str(tiny_model_dir))
    full = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)).eval()
    ids = torch.tensor([tokenize_conversation(embedded_tokenizer, demo_conversations[0].messages).input_ids[:200]])
    with torch.inference_mode():
        alone = backbone.get_decoder()(input_ids=ids, use_cache=False).last_hidden_state
        reported = full(input_ids=ids, output_hidden_states=True, use_cache=False).hidden_states[-1]
    assert not hasattr(backbone, "lm_head")
    torch.testing.assert_close(alone, reported)


@pytest.mark.slow
def test_out_of_memory_halves_the_budget_and_retries(tiny_model_dir, demo_conversations, monkeypatch):
    from cognitivetwin_core.models.frozen_base import load_frozen_base
    from cognitivetwin_core.phase2.turn_encoder import EncodingSettings, TurnEncoder

    model, tokenizer = load_frozen_base(str(tiny_model_dir))
    conversations = [c.messages for c in demo_conversations[:8]]
    settings = EncodingSettings(max_window_tokens=128, overlap_tokens=16, batch_tokens=2048)
    expected = TurnEncoder(model, tokenizer, EncodingSettings(**vars(settings))).encode(conversations)

    encoder = TurnEncoder(model, tokenizer, settings)
    real = encoder._pool_batch
    sizes = []

    def pool_or_oom(batch):
        sizes.append(len(batch.jobs))
        if len(batch.jobs) > 2:  # the device "holds" two windows at most
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(batch)

    monkeypatch.setattr(encoder, "_pool_batch", pool_or_oom)
    vectors = encoder.encode(conversations)
    assert encoder.stats["oom_retries"] > 0 and encoder.batch_tokens < 2048
    assert max(sizes) > 2 and all(np.isfinite(v).all() for v in vectors)
    _assert_equal_within_fp16(vectors, expected)


def test_non_finite_states_are_never_cached(tiny_model_dir, tmp_path, monkeypatch):
    from cognitivetwin_core.phase2 import turn_encoder
    from cognitivetwin_core.phase2.feature_cache import FeatureCache, NonFiniteVectorsError, encode_with_cache

    conversations = [Conversation("c1", "test", [Message("user", "hello there"), Message("assistant", "hi")])]
    real = turn_encoder.TurnEncoder._pool_batch

    def nan_pool(self, batch):
        pooled = real(self, batch)
        pooled[0, 0] = np.nan
        return pooled

    monkeypatch.setattr(turn_encoder.TurnEncoder, "_pool_batch", nan_pool)
    with pytest.raises(turn_encoder.NonFiniteFeaturesError, match="NaN or infinite"):
        encode_with_cache(conversations, base_model=str(tiny_model_dir), cache_dir=tmp_path)
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    # The cache's own guard: float16 overflow or NaN never reaches disk either.
    cache = FeatureCache(tmp_path)
    with pytest.raises(NonFiniteVectorsError, match="too large for the float16 cache"):
        cache.store("k", [np.full((2, 4), 1e6, dtype=np.float32)], ["c1"], {})
    with pytest.raises(NonFiniteVectorsError, match="conversation c1"):
        cache.store("k", [np.array([[np.inf, 0.0]], dtype=np.float32)], ["c1"], {})
    assert cache.lookup("k") is None


def _fake_cuda(monkeypatch, capability=(9, 0), free=80 * 2**30):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: capability)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda index=None: (free, 2 * free))


@pytest.mark.parametrize(
    ("capability", "model_type", "expected"),
    [
        ((9, 0), "llama", torch.bfloat16),  # H100/H200
        ((8, 0), "gemma3_text", torch.bfloat16),  # A100: bf16 native
        ((8, 6), "qwen3", torch.bfloat16),
        ((7, 5), "llama", torch.float16),  # T4: no native bf16; Llama is safe in fp16
        ((7, 0), "gemma3_text", torch.float32),  # V100: Gemma overflows fp16
        ((7, 5), "qwen3", torch.float32),
        ((6, 1), None, torch.float32),
    ],
)
def test_working_dtype_follows_compute_capability_and_family(monkeypatch, capability, model_type, expected):
    from cognitivetwin_core.models.devices import autocast_dtype, working_dtype

    _fake_cuda(monkeypatch, capability)
    assert working_dtype("cuda", model_type) == expected
    assert working_dtype("cuda:0", model_type) == expected
    assert autocast_dtype("cuda", model_type) == (None if expected == torch.float32 else expected)
    assert working_dtype("cpu", model_type) == torch.float32
    assert working_dtype("mps", "llama") == torch.float16 and working_dtype("mps", "gemma3_text") == torch.float32


def test_batch_tokens_and_window_follow_the_device(tiny_model_dir, monkeypatch):
    from cognitivetwin_core.models.frozen_base import load_frozen_base
    from cognitivetwin_core.phase2.turn_encoder import (
        CPU_BATCH_TOKENS,
        MAX_BATCH_TOKENS,
        auto_batch_tokens,
        default_window_tokens,
    )

    model, _ = load_frozen_base(str(tiny_model_dir))
    assert auto_batch_tokens(model, "cpu", 1024) == CPU_BATCH_TOKENS
    assert default_window_tokens("cpu") == 1024 and default_window_tokens("cuda:1") == 4096
    _fake_cuda(monkeypatch, free=80 * 2**30)
    assert auto_batch_tokens(model, "cuda", 4096) == MAX_BATCH_TOKENS  # a tiny model on a big GPU: the cap
    _fake_cuda(monkeypatch, free=2**20)  # 1 MiB free: never below one window
    assert auto_batch_tokens(model, "cuda", 4096) == 4096
    _fake_cuda(monkeypatch, free=128 * 2**20)
    middle = auto_batch_tokens(model, "cuda", 1024)
    assert 1024 < middle < MAX_BATCH_TOKENS
    _fake_cuda(monkeypatch, free=256 * 2**20)
    assert auto_batch_tokens(model, "cuda", 1024) == pytest.approx(2 * middle, abs=1)


def test_phase2_config_picks_window_and_budget_per_device(tmp_path):
    from cognitivetwin_core.phase2.config import Phase2Config
    from cognitivetwin_core.phase2.trainer import Phase2Trainer

    trainer = Phase2Trainer(Phase2Config(output_dir=str(tmp_path)), conversations=[])
    assert trainer.encoding_settings_for("cpu").max_window_tokens == 1024
    assert trainer.encoding_settings_for("cuda").max_window_tokens == 4096
    assert trainer.encoding_settings_for("cuda").batch_tokens is None
    fixed = Phase2Trainer(
        Phase2Config(output_dir=str(tmp_path), max_window_tokens=512, encode_batch_tokens=2048), conversations=[]
    )
    assert fixed.encoding_settings_for("cuda").max_window_tokens == 512
    assert fixed.encoding_settings_for("cuda").batch_tokens == 2048


def test_a_base_larger_than_one_gpu_is_spread_with_device_map_auto(tiny_model_dir, monkeypatch):
    """Only the decision (no GPU here): the load itself with device_map="auto" is untested."""
    from cognitivetwin_core.models.frozen_base import _device_map_for

    def weights(_base):
        return 6 * 2**30  # a 3B base stored in bf16

    assert _device_map_for(str(tiny_model_dir), "cpu", torch.float32, weights) is None
    _fake_cuda(monkeypatch, free=80 * 2**30)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert _device_map_for(str(tiny_model_dir), "cuda", torch.bfloat16, weights) is None  # fits on one
    _fake_cuda(monkeypatch, free=5 * 2**30)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert _device_map_for(str(tiny_model_dir), "cuda", torch.bfloat16, weights) == "auto"
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # nowhere to spread it
    assert _device_map_for(str(tiny_model_dir), "cuda", torch.bfloat16, weights) is None
