"""Data-parallel encoding past one GPU, under torch.distributed (docs/gpu.md).

Started with the standard launcher:

    torchrun --nproc_per_node N -m cognitivetwin_core phase2 train --base-model ... ...

Every rank loads the frozen base on its own device (cuda:LOCAL_RANK with NCCL; the CPU with
gloo) and encodes a shard of the conversations balanced by token count. Each rank writes its
shard's vectors (float32) beside the cache; rank 0 merges them, in conversation order, into
the ordinary feature-cache entry (written atomically, exactly as a one-process run writes
it), and then trains the heads alone from that cache hit. The other ranks exit cleanly.

Public:
    DistributedContext(rank, world_size, local_rank, backend); from_environment() -> ctx | None
    start(ctx, requested_device, init_method=None) -> device     # init_process_group
    shard_by_tokens(token_counts, world_size) -> list[list[int]]
    encode_sharded(conversations, ctx, device, base_model=, adapter_dir=, cache_dir=, settings=)
        -> (CachedFeatures | None on ranks > 0, cache hit)
    encode_for_trainer(trainer, ctx) -> bool (True on rank 0: go on and train)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cognitivetwin_core.atomic_files import open_atomically, write_json_atomically
from cognitivetwin_core.conversation import Conversation
from cognitivetwin_core.errors import CognitiveTwinError, InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistributedContext:
    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


# How long rank 0 (and every other rank) waits for the whole group to join before saying
# who is missing; torch's own default is 30 minutes of silence.
WAIT_ENV = "COGNITIVETWIN_DISTRIBUTED_WAIT_S"
_DEFAULT_WAIT_S = 300.0
_ONE_PROCESS = "start every process with torchrun --nproc_per_node N, or unset WORLD_SIZE for a one-process run"


def _whole_number(environ, name: str, default: str) -> int:
    value = environ.get(name, default) or default
    try:
        return int(value)
    except ValueError:
        raise InputError(f"{name} is {value!r}, not a whole number: {_ONE_PROCESS}.") from None


def from_environment(environ=None) -> DistributedContext | None:
    """The context torchrun describes in the environment, or None for a plain one-process run."""
    environ = os.environ if environ is None else environ
    world = _whole_number(environ, "WORLD_SIZE", "1")
    if world <= 1:
        return None
    rank = _whole_number(environ, "RANK", "0")
    if not 0 <= rank < world:
        raise InputError(f"RANK is {rank}, but WORLD_SIZE={world} allows 0 to {world - 1}: {_ONE_PROCESS}.")
    return DistributedContext(rank=rank, world_size=world, local_rank=_whole_number(environ, "LOCAL_RANK", str(rank)))


def wait_seconds(environ=None) -> float:
    """How long joining the group may take (COGNITIVETWIN_DISTRIBUTED_WAIT_S, default 5 minutes)."""
    environ = os.environ if environ is None else environ
    value = environ.get(WAIT_ENV, "").strip()
    try:
        return float(value) if value else _DEFAULT_WAIT_S
    except ValueError:
        raise InputError(f"{WAIT_ENV} is {value!r}, not a number of seconds.") from None


def start(ctx: DistributedContext, requested_device: str = "auto", init_method: str | None = None) -> str:
    """Join the process group (NCCL on CUDA, gloo on the CPU); return this rank's device.

    Without an `init_method` the rendezvous is torchrun's environment (MASTER_ADDR and
    MASTER_PORT): a missing one is named at once, and a group whose other processes never
    come is one sentence after `wait_seconds()`."""
    import datetime

    import torch
    import torch.distributed as dist

    from cognitivetwin_core.models.devices import select_device

    if init_method is None:
        missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
        if missing:
            raise InputError(
                f"WORLD_SIZE={ctx.world_size} asks for {ctx.world_size} processes, but {' and '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} not set: {_ONE_PROCESS}."
            )
    wait = wait_seconds()
    device = select_device(requested_device)
    if device.startswith("cuda"):
        if ctx.local_rank >= torch.cuda.device_count():
            raise CognitiveTwinError(
                f"torchrun started {ctx.world_size} processes on this machine but it has "
                f"{torch.cuda.device_count()} GPU(s): pass --nproc_per_node {torch.cuda.device_count()} or fewer."
            )
        device = f"cuda:{ctx.local_rank}"
        torch.cuda.set_device(ctx.local_rank)
        backend = "nccl"
    elif device == "cpu":
        backend = "gloo"
    else:
        raise CognitiveTwinError("Data-parallel encoding runs on CUDA GPUs or the CPU, not on Apple MPS.")
    if not dist.is_initialized():
        kwargs = {"init_method": init_method} if init_method else {}
        try:
            dist.init_process_group(
                backend=backend,
                rank=ctx.rank,
                world_size=ctx.world_size,
                timeout=datetime.timedelta(seconds=wait),
                **kwargs,
            )
        except (RuntimeError, ValueError) as exc:  # torch's DistStoreError (a timeout) is a RuntimeError
            log.warning("joining the process group failed: %s", exc)
            where = init_method or f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}"
            raise CognitiveTwinError(
                f"Process {ctx.rank} of WORLD_SIZE={ctx.world_size} waited {wait:g} s at {where} for the other "
                f"{ctx.world_size - 1} process(es), and they did not all come: {_ONE_PROCESS} "
                f"(or set {WAIT_ENV} to wait longer)."
            ) from None
    return device


def stop() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def shard_by_tokens(token_counts: Sequence[int], world_size: int) -> list[list[int]]:
    """Conversation indices per rank, balanced by tokens: longest first to the least loaded
    rank (ties to the lower rank), each shard in conversation order. Deterministic."""
    loads = [0] * world_size
    shards: list[list[int]] = [[] for _ in range(world_size)]
    for index in sorted(range(len(token_counts)), key=lambda i: (-token_counts[i], i)):
        rank = min(range(world_size), key=lambda r: (loads[r], r))
        shards[rank].append(index)
        loads[rank] += int(token_counts[index])
    return [sorted(shard) for shard in shards]


def _token_counts(tokenizer, conversations: Sequence[Conversation], ctx: DistributedContext) -> list[int]:
    """Every conversation's token count; each rank tokenises a strided share, then all share."""
    import torch.distributed as dist

    from cognitivetwin_core.phase2.turn_encoder import tokenize_conversations

    mine = list(range(ctx.rank, len(conversations), ctx.world_size))
    tokenized = tokenize_conversations(tokenizer, [conversations[i].messages for i in mine])
    counts_here = {i: len(t.input_ids) for i, t in zip(mine, tokenized)}
    gathered: list = [None] * ctx.world_size
    dist.all_gather_object(gathered, counts_here)
    merged: dict[int, int] = {}
    for part in gathered:
        merged.update(part)
    return [merged[i] for i in range(len(conversations))]


def _shard_dir(cache_root: Path, key: str) -> Path:
    return cache_root / f".shards-{key}"


def _write_shard(folder: Path, rank: int, indices: list[int], vectors: list) -> None:
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    hidden = int(vectors[0].shape[1]) if vectors else 0
    stacked = np.concatenate(vectors, axis=0) if vectors else np.zeros((0, hidden), dtype=np.float32)
    with open_atomically(folder / f"rank-{rank}.npy", "wb", encoding=None) as handle:
        np.save(handle, stacked.astype(np.float32, copy=False))
    lengths = [int(len(v)) for v in vectors]
    write_json_atomically(folder / f"rank-{rank}.json", {"indices": indices, "lengths": lengths})


def _merge_shards(folder: Path, world_size: int, count: int) -> list:
    import numpy as np

    per_conversation: list = [None] * count
    for rank in range(world_size):
        meta = json.loads((folder / f"rank-{rank}.json").read_text(encoding="utf-8"))
        stacked = np.load(folder / f"rank-{rank}.npy")
        row = 0
        for index, length in zip(meta["indices"], meta["lengths"]):
            per_conversation[index] = stacked[row : row + length]
            row += length
    missing = [i for i, v in enumerate(per_conversation) if v is None]
    if missing:
        raise CognitiveTwinError(f"Data-parallel encoding lost {len(missing)} conversation(s); run it again.")
    return per_conversation


def encode_sharded(
    conversations: Sequence[Conversation],
    ctx: DistributedContext,
    device: str,
    *,
    base_model: str | Path,
    adapter_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    settings=None,
    progress=None,
):
    """Encode this rank's shard; rank 0 merges all shards into the cache.

    Returns (CachedFeatures, hit) on rank 0 and (None, hit) on the others. Every rank must call it.
    """
    import time

    import torch.distributed as dist

    from cognitivetwin_core.models.frozen_base import load_frozen_base
    from cognitivetwin_core.phase2.feature_cache import cache_entry_for
    from cognitivetwin_core.phase2.turn_encoder import EncodingSettings, TurnEncoder

    settings = settings or EncodingSettings()
    cache, key, identity, tokenizer = cache_entry_for(
        conversations, base_model=base_model, adapter_dir=adapter_dir, cache_dir=cache_dir, settings=settings
    )
    decision = [cache.lookup(key) is not None]
    dist.broadcast_object_list(decision, src=0)  # rank 0 decides: every rank takes the same branch
    if decision[0]:
        return (cache.lookup(key) if ctx.is_main else None), True

    started = time.perf_counter()
    shards = shard_by_tokens(_token_counts(tokenizer, conversations, ctx), ctx.world_size)
    mine = shards[ctx.rank]
    log.info("Rank %d encodes %d of %d conversations on %s", ctx.rank, len(mine), len(conversations), device)
    model, tokenizer = load_frozen_base(base_model, adapter_dir, device=device, merge_adapter=True)
    encoder = TurnEncoder(model, tokenizer, settings, device=device)
    vectors = encoder.encode([conversations[i].messages for i in mine], progress=progress)
    folder = _shard_dir(cache.root, key)
    _write_shard(folder, ctx.rank, mine, vectors)
    del model, encoder
    dist.barrier()  # every shard is on disk
    stored = None
    if ctx.is_main:
        try:
            merged = _merge_shards(folder, ctx.world_size, len(conversations))
            description = {
                "identity": identity,
                "pooling": settings.cache_identity(),
                "conversations": len(conversations),
                "encode_seconds": round(time.perf_counter() - started, 3),
                "data_parallel": {"world_size": ctx.world_size, "shard_sizes": [len(s) for s in shards]},
            }
            stored = cache.store(key, merged, [c.id for c in conversations], description)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    dist.barrier()  # the entry is in place (or rank 0 failed and says why)
    return stored, False


def encode_for_trainer(trainer, ctx: DistributedContext, init_method: str | None = None, progress=None) -> bool:
    """Run a Phase2Trainer's encoding data-parallel; True on rank 0, which then trains (its
    `run()` finds the cache entry), False on the other ranks, which are done."""
    device = start(ctx, trainer.config.device, init_method=init_method)
    try:
        conversations, _source = trainer._load_conversations()
        encode_sharded(
            conversations,
            ctx,
            device,
            base_model=trainer.config.base_model,
            adapter_dir=trainer.config.adapter_dir,
            cache_dir=trainer.feature_cache_dir(),
            settings=trainer.encoding_settings_for(device),
            progress=progress,
        )
    finally:
        stop()
    return ctx.is_main
