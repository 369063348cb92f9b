"""Data-parallel encoding: two gloo processes started by torchrun give the cache and the
metrics a one-process run gives (no GPU here: the CUDA/NCCL path is the same code with
another backend and device)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO_ROOT


def test_shards_are_token_balanced_deterministic_and_complete():
    from cognitivetwin_core.phase2.distributed import shard_by_tokens

    counts = [900, 10, 40, 500, 480, 30, 20, 400, 5, 5]
    shards = shard_by_tokens(counts, 2)
    assert sorted(i for shard in shards for i in shard) == list(range(len(counts)))
    loads = [sum(counts[i] for i in shard) for shard in shards]
    assert abs(loads[0] - loads[1]) <= max(counts) and max(loads) <= 1.1 * sum(counts) / 2
    assert shards == shard_by_tokens(counts, 2) and all(s == sorted(s) for s in shards)
    assert shard_by_tokens(counts, 3)[2] and shard_by_tokens([], 4) == [[], [], [], []]


def test_context_comes_from_torchrun_environment():
    from cognitivetwin_core.phase2.distributed import from_environment

    assert from_environment({}) is None and from_environment({"WORLD_SIZE": "1"}) is None
    ctx = from_environment({"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0"})
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.is_main) == (2, 4, 0, False)


def _cli(args, launcher, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    command = launcher + ["-m", "cognitivetwin_core", "phase2", "train", *args]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _entry(cache_dir):
    entries = [p for p in cache_dir.iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1, entries  # one entry, no shard leftovers beside it
    assert not [p for p in cache_dir.iterdir() if p.name.startswith(".shards-")]
    return entries[0]


@pytest.mark.slow
def test_two_gloo_processes_equal_one(tiny_catalog_model, tmp_path):
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    folder = tiny_catalog_model("qwen3")
    common = ["--base-model", str(folder), "--data-file", "demo", "--epochs", "2", "--device", "cpu", "--quiet"]
    common += ["--threads", "1", "--max-window-tokens", "192", "--encode-batch-tokens", "1024"]
    _cli(
        [*common, "--output-dir", str(tmp_path / "one"), "--cache-dir", str(tmp_path / "cache-one")],
        [sys.executable],
        tmp_path,
    )
    two = _cli(
        [*common, "--output-dir", str(tmp_path / "two"), "--cache-dir", str(tmp_path / "cache-two")],
        [torchrun, "--standalone", "--nproc_per_node", "2"],
        tmp_path,
    )
    assert "Rank 1: its share of the encoding is done" in two.stderr

    one_entry, two_entry = _entry(tmp_path / "cache-one"), _entry(tmp_path / "cache-two")
    assert one_entry.name == two_entry.name  # the same key: the same model, data and settings
    index = json.loads((two_entry / "index.json").read_text())
    assert index["description"]["data_parallel"]["world_size"] == 2
    assert all(size > 0 for size in index["description"]["data_parallel"]["shard_sizes"])
    assert index["offsets"] == json.loads((one_entry / "index.json").read_text())["offsets"]
    one = np.load(one_entry / "features.npy").astype(np.float32)
    two_features = np.load(two_entry / "features.npy").astype(np.float32)
    # Equal within float16 rounding (the cache's own precision).
    assert np.allclose(one, two_features, rtol=2e-3, atol=2e-3 * np.abs(one).max())

    m1 = json.loads((tmp_path / "one" / "metrics.json").read_text())["final"]["metrics"]
    m2 = json.loads((tmp_path / "two" / "metrics.json").read_text())["final"]["metrics"]
    assert m1.keys() == m2.keys()
    for name in m1:
        # The intervals are a dict of [low, high] pairs (per plan step, nested once more).
        assert np.allclose(_numbers(m2[name]), _numbers(m1[name]), atol=1e-3), name
    assert not (tmp_path / "two" / "rank-1").exists()


def _numbers(value) -> list[float]:
    """Every number of a metric, in order: a float, a list, or a dict of (nested) lists."""
    if isinstance(value, dict):
        return [number for key in sorted(value) for number in _numbers(value[key])]
    if isinstance(value, list):
        return [number for item in value for number in _numbers(item)]
    return [float(value)]
