"""Turn encoding (windows, pooling) and the feature cache (hit, invalidation, atomicity)."""

from __future__ import annotations

import numpy as np
import pytest

from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.conversation import Conversation, Message


def _conversations():
    return [
        Conversation(
            "c1",
            "test",
            [
                Message("user", "How do I reverse a list in Python?"),
                Message("assistant", "Use `items[::-1]` or `items.reverse()`."),
                Message("user", "Thanks!"),
            ],
        ),
        Conversation(
            "c2",
            "test",
            [Message("user", "Plan a three day trip to Lisbon."), Message("assistant", "Day 1: Alfama. " * 40)],
        ),
    ]


def test_windows_cover_every_message_once_with_context(embedded_tokenizer):
    from cognitivetwin_core.phase2.turn_encoder import plan_windows, tokenize_conversation

    messages = [
        Message("user" if i % 2 == 0 else "assistant", f"Message {i}: " + "word " * (5 + 7 * i)) for i in range(12)
    ]
    tokenized = tokenize_conversation(embedded_tokenizer, messages)
    assert len(tokenized.pool_spans) == 12
    # Each pooled span decodes to its message's content.
    for (start, end), message in zip(tokenized.pool_spans, messages):
        assert embedded_tokenizer.decode(tokenized.input_ids[start:end]).strip() == message.content.strip()
    windows = plan_windows(tokenized, max_window_tokens=96, overlap_tokens=24)
    owned = [m for w in windows for m, _, _ in w.owned]
    assert sorted(owned) == list(range(12)) and len(windows) > 3
    for window in windows:
        assert window.end - window.start <= 96
        for _, start, end in window.owned:
            assert window.start <= start and end <= window.end
    # Later windows carry earlier context (overlap) unless a message alone fills the window.
    assert any(w.start < w.owned[0][1] - 10 for w in windows[1:])


def test_windowed_encoding_matches_full_pass_for_short_context(tiny_model_dir):
    """Pooling from windows equals one full pass when the window holds the whole conversation,
    and differs only by context when it does not (every message still gets a finite vector)."""
    from cognitivetwin_core.models.frozen_base import load_frozen_base
    from cognitivetwin_core.phase2.turn_encoder import EncodingSettings, TurnEncoder

    model, tokenizer = load_frozen_base(str(tiny_model_dir))
    convs = [c.messages for c in _conversations()]
    full = TurnEncoder(model, tokenizer, EncodingSettings(max_window_tokens=2048)).encode(convs)
    batched = TurnEncoder(model, tokenizer, EncodingSettings(max_window_tokens=2048, batch_tokens=64)).encode(convs)
    for a, b in zip(full, batched):
        assert np.allclose(a, b, atol=1e-4)  # padding and batching change nothing
    windowed = TurnEncoder(model, tokenizer, EncodingSettings(max_window_tokens=40, overlap_tokens=8)).encode(convs)
    assert all(np.isfinite(v).all() and v.shape == f.shape for v, f in zip(windowed, full))
    assert np.allclose(windowed[0][0], full[0][0], atol=1e-4)  # first message: same context either way


@pytest.mark.slow
def test_cache_hit_skips_encoding_and_invalidation(tiny_model_dir, tmp_path, monkeypatch):
    from cognitivetwin_core.phase2 import turn_encoder
    from cognitivetwin_core.phase2.feature_cache import encode_with_cache
    from cognitivetwin_core.phase2.turn_encoder import EncodingSettings

    calls = []
    original = turn_encoder.TurnEncoder.iter_encode

    def counting(self, conversations, **kwargs):
        calls.append(len(conversations))
        return original(self, conversations, **kwargs)

    monkeypatch.setattr(turn_encoder.TurnEncoder, "iter_encode", counting)
    convs = _conversations()
    first, hit = encode_with_cache(convs, base_model=str(tiny_model_dir), cache_dir=tmp_path)
    assert not hit and calls == [2]
    assert first.features.dtype == np.float16 and first.features.shape == (5, 64)
    assert isinstance(first.features, np.memmap)
    assert first.conversation_ids == ["c1", "c2"] and list(first.rows(1)) == [3, 4]

    second, hit = encode_with_cache(convs, base_model=str(tiny_model_dir), cache_dir=tmp_path)
    assert hit and calls == [2] and second.path == first.path
    assert np.array_equal(np.asarray(second.features), np.asarray(first.features))

    # Changed data, changed pooling settings: new entries, encoded again.
    changed = _conversations()
    changed[0].messages[2].content = "Thanks a lot!"
    _, hit = encode_with_cache(changed, base_model=str(tiny_model_dir), cache_dir=tmp_path)
    assert not hit and calls == [2, 2]
    _, hit = encode_with_cache(
        convs, base_model=str(tiny_model_dir), cache_dir=tmp_path, settings=EncodingSettings(overlap_tokens=64)
    )
    assert not hit and calls == [2, 2, 2]
    # Batching is not part of the key.
    _, hit = encode_with_cache(
        convs, base_model=str(tiny_model_dir), cache_dir=tmp_path, settings=EncodingSettings(batch_tokens=128)
    )
    assert hit
    entries = [p for p in tmp_path.iterdir()]
    assert len(entries) == 3 and not any(p.name.startswith(".writing") for p in entries)


def test_cache_key_follows_adapter_and_base_weights(tiny_model_dir, tmp_path, embedded_tokenizer):
    from cognitivetwin_core.phase2.feature_cache import FeatureCache, model_identity
    from cognitivetwin_core.phase2.turn_encoder import EncodingSettings

    settings = EncodingSettings()
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(b"one")
    keys = {
        FeatureCache.key(model_identity(str(tiny_model_dir), None, embedded_tokenizer), settings, "d"),
        FeatureCache.key(model_identity(str(tiny_model_dir), adapter, embedded_tokenizer), settings, "d"),
    }
    (adapter / "adapter_model.safetensors").write_bytes(b"two")
    keys.add(FeatureCache.key(model_identity(str(tiny_model_dir), adapter, embedded_tokenizer), settings, "d"))
    keys.add(FeatureCache.key(model_identity(str(tiny_model_dir), None, embedded_tokenizer), settings, "other data"))
    assert len(keys) == 4


def test_interrupted_encoding_stores_nothing(tiny_model_dir, tmp_path):
    from cognitivetwin_core.phase2.feature_cache import encode_with_cache

    stopped = Cancellation()
    stopped.cancel()
    cached, hit = encode_with_cache(
        _conversations(), base_model=str(tiny_model_dir), cache_dir=tmp_path, cancellation=stopped
    )
    assert cached is None and not hit
    assert not any(tmp_path.iterdir())


def test_damaged_entry_is_ignored_and_rebuilt(tiny_model_dir, tmp_path):
    from cognitivetwin_core.phase2.feature_cache import encode_with_cache

    cached, _ = encode_with_cache(_conversations(), base_model=str(tiny_model_dir), cache_dir=tmp_path)
    (cached.path / "features.npy").write_bytes(b"garbage")
    again, hit = encode_with_cache(_conversations(), base_model=str(tiny_model_dir), cache_dir=tmp_path)
    assert not hit and again.features.shape == (5, 64)
