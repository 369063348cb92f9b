"""The Phase 2 feature cache: each message's pooled base state, computed once (docs/data-and-model.md).

The base (and its LoRA adapter) is frozen during Phase 2, so the pooled turn vectors never
change: encode every conversation once, store the vectors, and let every epoch (and every
later run on the same data and base, and the playground's neighbour index) read them.

An entry is keyed by the base model (folder, config and a fingerprint of its weights), the
adapter (a hash of its files), the tokenizer (class, vocabulary, chat template), the
pooling settings and the data's content hash. Any change gives a new key: stale vectors
are never reused. An entry is a folder `<root>/<key>/` with `features.npy` (float16,
`[messages, hidden]`, opened memory-mapped) and `index.json` (conversation ids and row
offsets). It is written to a temporary folder and renamed into place, so an interrupted
encoding never leaves an entry that looks complete.

Public:
    data_hash(conversations) -> str
    model_identity(base_model, adapter_dir, tokenizer) -> dict
    FeatureCache(root).key(identity, settings, data_hash) / .lookup(key) / .store(...)
    CachedFeatures: .features (memmap), .offsets, .conversation_ids, .conversation(i), .rows(i)
    encode_with_cache(conversations, base_model=..., adapter_dir=..., cache_dir=..., ...)
        -> (CachedFeatures | None, hit: bool)     # None when cancelled
    iter_encode_with_cache(...)   # the same as a generator of progress tuples
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cognitivetwin_core.cancellation import Cancellation
from cognitivetwin_core.conversation import Conversation
from cognitivetwin_core.errors import CognitiveTwinError
from cognitivetwin_core.phase2.turn_encoder import EncodingSettings, chat_template_identity

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
_FINGERPRINT_BYTES = 1 << 20  # head and tail of each weights file: cheap even for 16 GB bases


def data_hash(conversations: Sequence[Conversation]) -> str:
    digest = hashlib.sha256()
    for conversation in conversations:
        digest.update(conversation.content_hash().encode("ascii"))
    return digest.hexdigest()


def _file_fingerprint(path: Path, full: bool = False) -> str:
    digest = hashlib.sha256()
    size = path.stat().st_size
    digest.update(str(size).encode())
    with open(path, "rb") as handle:
        if full or size <= 2 * _FINGERPRINT_BYTES:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        else:
            digest.update(handle.read(_FINGERPRINT_BYTES))
            handle.seek(size - _FINGERPRINT_BYTES)
            digest.update(handle.read(_FINGERPRINT_BYTES))
    return digest.hexdigest()[:24]


def _folder_fingerprint(folder: Path, patterns: Sequence[str], full: bool) -> dict:
    files = sorted({p for pattern in patterns for p in folder.glob(pattern) if p.is_file()})
    return {p.name: _file_fingerprint(p, full=full) for p in files}


def base_identity(base_model: str | Path) -> dict:
    from cognitivetwin_core.models.loader import base_model_dir

    folder = base_model_dir(base_model)
    if isinstance(folder, str):
        folder = Path(folder)
    return {
        "name": str(base_model),
        "files": _folder_fingerprint(Path(folder), ("config.json", "*.safetensors", "*.bin"), full=False),
    }


def adapter_identity(adapter_dir: str | Path | None) -> dict | None:
    if not adapter_dir:
        return None
    folder = Path(adapter_dir)
    return {"files": _folder_fingerprint(folder, ("adapter_config.json", "*.safetensors", "*.bin"), full=True)}


def tokenizer_identity(tokenizer) -> dict:
    return {
        "class": type(tokenizer).__name__,
        "vocab_size": len(tokenizer),
        "chat_template": chat_template_identity(tokenizer),
    }


def model_identity(base_model: str | Path, adapter_dir: str | Path | None, tokenizer) -> dict:
    return {
        "base": base_identity(base_model),
        "adapter": adapter_identity(adapter_dir),
        "tokenizer": tokenizer_identity(tokenizer),
    }


@dataclass
class CachedFeatures:
    path: Path
    features: object  # numpy memmap float16 [messages, hidden]
    offsets: list[int]  # conversation i owns rows offsets[i]:offsets[i+1]
    conversation_ids: list[str]

    @property
    def hidden_size(self) -> int:
        return int(self.features.shape[1])

    def rows(self, conversation_index: int) -> range:
        return range(self.offsets[conversation_index], self.offsets[conversation_index + 1])

    def conversation(self, conversation_index: int):
        return self.features[self.offsets[conversation_index] : self.offsets[conversation_index + 1]]


class FeatureCache:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    @staticmethod
    def key(identity: dict, settings: EncodingSettings, data_digest: str) -> str:
        payload = {
            "format": CACHE_FORMAT,
            "model": identity,
            "pooling": settings.cache_identity(),
            "data": data_digest,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()[:32]

    def entry_dir(self, key: str) -> Path:
        return self.root / key

    def lookup(self, key: str) -> CachedFeatures | None:
        import numpy as np

        folder = self.entry_dir(key)
        index_path = folder / "index.json"
        if not index_path.is_file():
            return None
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
            features = np.load(folder / "features.npy", mmap_mode="r")
        except (OSError, ValueError) as exc:
            log.warning("Ignoring unreadable feature cache entry %s: %s", folder, exc)
            return None
        if features.shape[0] != index["offsets"][-1]:
            log.warning("Ignoring inconsistent feature cache entry %s", folder)
            return None
        return CachedFeatures(folder, features, index["offsets"], index["conversation_ids"])

    def store(
        self, key: str, per_conversation: Sequence, conversation_ids: Sequence[str], description: dict
    ) -> CachedFeatures:
        import numpy as np

        self.root.mkdir(parents=True, exist_ok=True)
        offsets = [0]
        for vectors in per_conversation:
            offsets.append(offsets[-1] + len(vectors))
        hidden = int(per_conversation[0].shape[1]) if per_conversation else 0
        for index, vectors in enumerate(per_conversation):
            _check_finite(vectors, conversation_ids[index])
        tmp = Path(tempfile.mkdtemp(prefix=".writing-", dir=self.root))
        try:
            array = np.lib.format.open_memmap(
                tmp / "features.npy", mode="w+", dtype=np.float16, shape=(offsets[-1], hidden)
            )
            for index, vectors in enumerate(per_conversation):
                array[offsets[index] : offsets[index + 1]] = vectors
            array.flush()
            del array
            index = {"offsets": offsets, "conversation_ids": list(conversation_ids), "description": description}
            (tmp / "index.json").write_text(json.dumps(index), encoding="utf-8")
            target = self.entry_dir(key)
            if target.exists() and self.lookup(key) is None:  # an unreadable leftover
                shutil.rmtree(target, ignore_errors=True)
            try:
                os.replace(tmp, target)
            except OSError:
                # Another process stored the same entry first (same key, same features): keep
                # theirs, which a reader may already have mapped.
                if self.lookup(key) is None:
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        cached = self.lookup(key)
        assert cached is not None
        return cached


class NonFiniteVectorsError(CognitiveTwinError):
    """A pooled vector that is NaN or infinite (or overflows float16): never cached."""


_FLOAT16_MAX = 65504.0


def _check_finite(vectors, conversation_id: str) -> None:
    import numpy as np

    array = np.asarray(vectors)
    if not np.isfinite(array).all():
        raise NonFiniteVectorsError(
            f"The base model produced NaN or infinite states for conversation {conversation_id}; nothing was "
            "cached. Encode in float32 (--device cpu, or a GPU with bf16 support)."
        )
    if array.size and float(np.abs(array).max()) > _FLOAT16_MAX:
        raise NonFiniteVectorsError(
            f"A pooled state of conversation {conversation_id} is too large for the float16 cache "
            f"({float(np.abs(array).max()):.3g}); nothing was cached. This base's hidden states are unusual: "
            "report it, or choose another base."
        )


def base_context_length(base_model: str | Path) -> int | None:
    from cognitivetwin_core.models.loader import base_model_dir, text_config_dict

    config_path = Path(base_model_dir(base_model)) / "config.json"
    try:
        value = text_config_dict(json.loads(config_path.read_text(encoding="utf-8"))).get("max_position_embeddings")
    except (OSError, ValueError):
        return None
    return int(value) if value else None


def default_cache_root() -> Path:
    from cognitivetwin_core.paths import user_cache_dir

    return user_cache_dir() / "phase2-features"


def cache_entry_for(
    conversations: Sequence[Conversation],
    *,
    base_model: str | Path,
    adapter_dir: str | Path | None,
    cache_dir: str | Path | None,
    settings: EncodingSettings,
    tokenizer=None,
):
    """(FeatureCache, key, identity, tokenizer) of these conversations' entry; `settings`' window
    is clamped to the base's context first, so a loaded and an unloaded base give the same key."""
    from cognitivetwin_core.models.loader import load_tokenizer

    tokenizer = tokenizer or load_tokenizer(base_model)
    limit = base_context_length(base_model)
    if limit:
        settings.max_window_tokens = min(settings.max_window_tokens, limit)
    cache = FeatureCache(cache_dir or default_cache_root())
    identity = model_identity(base_model, adapter_dir, tokenizer)
    return cache, cache.key(identity, settings, data_hash(conversations)), identity, tokenizer


def encode_with_cache(
    conversations: Sequence[Conversation],
    *,
    progress: Callable[[int, int, int], None] | None = None,
    **kwargs,
) -> tuple[CachedFeatures | None, bool]:
    """The cached features of `conversations`, encoding them (once) on a miss.

    Keywords as `iter_encode_with_cache`; `progress(messages_done, messages_total, tokens_done)`.
    """
    steps = iter_encode_with_cache(conversations, **kwargs)
    while True:
        try:
            update = next(steps)
        except StopIteration as finished:
            return finished.value
        if progress:
            progress(*update)


def iter_encode_with_cache(
    conversations: Sequence[Conversation],
    *,
    base_model: str | Path,
    adapter_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    settings: EncodingSettings | None = None,
    device: str = "cpu",
    tokenizer=None,
    model=None,
    cancellation: Cancellation | None = None,
):
    """Generator: yields (messages_done, messages_total, tokens_done) while encoding, returns
    (CachedFeatures or None once `cancellation` is cancelled, cache hit).

    The base is loaded only on a miss, unless `model` (the frozen base, with its adapter) is given.
    """
    settings = settings or EncodingSettings()
    cache, key, identity, tokenizer = cache_entry_for(
        conversations,
        base_model=base_model,
        adapter_dir=adapter_dir,
        cache_dir=cache_dir,
        settings=settings,
        tokenizer=tokenizer,
    )
    cached = cache.lookup(key)
    if cached is not None:
        log.info("Feature cache hit: %s", cached.path)
        return cached, True
    if model is None:
        from cognitivetwin_core.models.frozen_base import load_frozen_base

        # Loaded straight onto the device in its working dtype (bf16 on recent GPUs: an 8B base
        # fits, and encoding runs at tensor-core speed; pooling is done in float32).
        # The tokenizer the cache key was made with: loading it again cost a second a run.
        model, tokenizer = load_frozen_base(
            base_model, adapter_dir, device=device, tokenizer=tokenizer, merge_adapter=True
        )
    from cognitivetwin_core.phase2.turn_encoder import TurnEncoder

    started = time.perf_counter()
    encoder = TurnEncoder(model, tokenizer, settings, device=device)
    vectors = yield from encoder.iter_encode([c.messages for c in conversations], cancellation=cancellation)
    if vectors is None:
        return None, False
    description = {
        "identity": identity,
        "pooling": settings.cache_identity(),
        "conversations": len(conversations),
        "encode_seconds": round(time.perf_counter() - started, 3),
        "encode_stats": dict(encoder.stats),
        "batch_tokens": encoder.batch_tokens,
    }
    stored = cache.store(key, vectors, [c.id for c in conversations], description)
    log.info("Encoded %d conversations into %s", len(conversations), stored.path)
    return stored, False
